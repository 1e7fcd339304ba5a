package guard_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardline/wardline/transport/guard"
)

func BenchmarkLimiterAllow(b *testing.B) {
	l := mustLimiter(b, guard.LimitConfig{Rate: 1e6, Burst: 1000})
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		l.Allow(now)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkKeyedLimiterAllowParallel(b *testing.B) {
	k := mustKeyed(b, guard.KeyedConfig{LimitConfig: guard.LimitConfig{Rate: 1e6, Burst: 1000}})
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}
	var ticks atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			now := t0.Add(time.Duration(ticks.Add(1)) * time.Microsecond)
			k.Allow(keys[i%len(keys)], now)
			i += 7
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkOriginCheck(b *testing.B) {
	c, err := guard.NewOriginChecker(guard.OriginConfig{Allowed: guard.ParseOrigins("https://a.example,https://b.example")})
	if err != nil {
		b.Fatal(err)
	}
	r := newReq("https://b.example")
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Check(r); err != nil {
			b.Fatal(err)
		}
	}
}
