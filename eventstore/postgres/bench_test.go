package postgres_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardline/wardline/eventstore"
)

// BenchmarkAppend measures acknowledged single-event appends with 1, 16
// and 256 concurrent writers, each on its own stream with exact expected
// versions (the gateway's pattern). Group commit is what lets throughput
// grow with the writers.
func BenchmarkAppend(b *testing.B) {
	payload := []byte(`{"roomId":"icu-1","senderId":"u-1","content":"vitals stable, next check 14:00"}`)
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := newStore(b)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Go(func() {
					stream := "bench-" + strconv.Itoa(w)
					var version uint64
					for {
						n := next.Add(1)
						if n > int64(b.N) {
							return
						}
						ev := []eventstore.EventData{{ID: strconv.FormatInt(n, 10), Type: "MessagePosted", SchemaVersion: 1, Data: payload}}
						res, err := s.Append(ctx, stream, eventstore.Exact(version), ev)
						if err != nil {
							b.Error(err)
							return
						}
						version = res.Version
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
