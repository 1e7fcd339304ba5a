package guard_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardline/wardline/transport/guard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func mustLimiter(tb testing.TB, cfg guard.LimitConfig) *guard.Limiter {
	tb.Helper()
	l, err := guard.NewLimiter(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// send delivers n events spread evenly from start at rate per second and
// counts the verdicts; first is when each verdict was first seen.
func send(l interface{ Allow(time.Time) guard.Verdict }, start time.Time, n int, rate float64) (counts map[guard.Verdict]int, first map[guard.Verdict]time.Duration) {
	counts, first = map[guard.Verdict]int{}, map[guard.Verdict]time.Duration{}
	for i := range n {
		off := time.Duration(float64(i) / rate * float64(time.Second))
		v := l.Allow(start.Add(off))
		if _, seen := first[v]; !seen {
			first[v] = off
		}
		counts[v]++
	}
	return counts, first
}

func TestLimiterDecisions(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, l *guard.Limiter)
	}{
		{"a burst up to the bucket size is allowed and the next event refused", func(t *testing.T, l *guard.Limiter) {
			for i := range 200 {
				if v := l.Allow(t0); v != guard.Allowed {
					t.Fatalf("event %d: %v", i, v)
				}
			}
			if v := l.Allow(t0); v != guard.Refused {
				t.Fatalf("event 201: %v", v)
			}
		}},
		{"tokens come back at the rate", func(t *testing.T, l *guard.Limiter) {
			for range 200 {
				l.Allow(t0)
			}
			at := t0.Add(10 * time.Millisecond) // one token at 100/s
			if v := l.Allow(at); v != guard.Allowed {
				t.Fatalf("after 10ms: %v", v)
			}
			if v := l.Allow(at); v != guard.Refused {
				t.Fatalf("second event after 10ms: %v", v)
			}
		}},
		{"a sender at the rate is never refused", func(t *testing.T, l *guard.Limiter) {
			counts, _ := send(l, t0, 3000, 100)
			if counts[guard.Allowed] != 3000 {
				t.Fatalf("verdicts %v", counts)
			}
		}},
		{"a sender steadily over the rate is disconnected about 5 s after its burst runs out", func(t *testing.T, l *guard.Limiter) {
			// 150/s drains the 200-token burst at 50/s: empty at 4 s, so
			// refusals start then and Disconnect comes at 9 s.
			counts, first := send(l, t0, 150*12, 150)
			if got := first[guard.Refused]; got < 3900*time.Millisecond || got > 4100*time.Millisecond {
				t.Errorf("first refusal at %v, want about 4s", got)
			}
			if got := first[guard.Disconnect]; got < 8900*time.Millisecond || got > 9100*time.Millisecond {
				t.Errorf("first disconnect at %v, want about 9s", got)
			}
			if counts[guard.Disconnect] == 0 {
				t.Fatalf("never disconnected: %v", counts)
			}
		}},
		{"disconnect is final for a connection", func(t *testing.T, l *guard.Limiter) {
			send(l, t0, 150*12, 150)
			if v := l.Allow(t0.Add(time.Hour)); v != guard.Disconnect {
				t.Fatalf("an hour later: %v", v)
			}
		}},
		{"a burst followed by a pause is refused but never disconnected", func(t *testing.T, l *guard.Limiter) {
			for cycle := range 10 {
				at := t0.Add(time.Duration(cycle) * 2 * time.Second)
				for range 400 {
					if v := l.Allow(at); v == guard.Disconnect {
						t.Fatalf("cycle %d: disconnected", cycle)
					}
				}
			}
		}},
		{"refusals that stop for the reset period start a new streak", func(t *testing.T, l *guard.Limiter) {
			for range 201 {
				l.Allow(t0)
			}
			// Refused again 4.5 s later, but after 1 s of quiet: a new streak.
			at := t0.Add(4500 * time.Millisecond)
			for range 500 {
				l.Allow(at)
			}
			if v := l.Allow(at.Add(time.Second)); v == guard.Disconnect {
				t.Fatal("disconnected for a streak that had reset")
			}
		}},
		{"a clock stepping back refills nothing", func(t *testing.T, l *guard.Limiter) {
			for range 200 {
				l.Allow(t0)
			}
			if v := l.Allow(t0.Add(-time.Hour)); v != guard.Refused {
				t.Fatalf("after a step back: %v", v)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, mustLimiter(t, guard.LimitConfig{}))
		})
	}
}

func TestLimitConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  guard.LimitConfig
	}{
		{"a negative rate", guard.LimitConfig{Rate: -1}},
		{"a NaN rate", guard.LimitConfig{Rate: nan()}},
		{"a negative burst", guard.LimitConfig{Burst: -1}},
		{"a negative disconnect time", guard.LimitConfig{DisconnectAfter: -time.Second}},
	} {
		t.Run("a limit with "+tt.name+" is invalid", func(t *testing.T) {
			if err := tt.cfg.Validate(); err == nil {
				t.Fatal("accepted")
			}
			if _, err := guard.NewLimiter(tt.cfg); err == nil {
				t.Fatal("NewLimiter accepted")
			}
		})
	}
	if err := (guard.LimitConfig{}).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestVerdictStrings(t *testing.T) {
	for v, want := range map[guard.Verdict]string{guard.Allowed: "allowed", guard.Refused: "refused", guard.Disconnect: "disconnect", 0: "verdict(0)"} {
		if v.String() != want {
			t.Errorf("%d: %q", v, v.String())
		}
	}
}

func mustKeyed(tb testing.TB, cfg guard.KeyedConfig) *guard.KeyedLimiter {
	tb.Helper()
	k, err := guard.NewKeyedLimiter(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

type keyed struct {
	k   *guard.KeyedLimiter
	key string
}

func (k keyed) Allow(now time.Time) guard.Verdict { return k.k.Allow(k.key, now) }

func TestKeyedLimiter(t *testing.T) {
	t.Run("each key has its own bucket", func(t *testing.T) {
		k := mustKeyed(t, guard.KeyedConfig{LimitConfig: guard.LimitConfig{Rate: 1, Burst: 2}})
		for _, key := range []string{"alice", "bob"} {
			for i := range 2 {
				if v := k.Allow(key, t0); v != guard.Allowed {
					t.Fatalf("%s event %d: %v", key, i, v)
				}
			}
		}
		if v := k.Allow("alice", t0); v != guard.Refused {
			t.Fatalf("alice's third event: %v", v)
		}
	})
	t.Run("a user over the limit across connections is told to disconnect, and may return after a pause", func(t *testing.T) {
		k := mustKeyed(t, guard.KeyedConfig{})
		_, first := send(keyed{k, "u"}, t0, 150*12, 150)
		if got := first[guard.Disconnect]; got < 8900*time.Millisecond || got > 9100*time.Millisecond {
			t.Fatalf("first disconnect at %v, want about 9s", got)
		}
		if v := k.Allow("u", t0.Add(13*time.Second)); v != guard.Allowed {
			t.Fatalf("after a pause: %v", v)
		}
	})
	t.Run("idle buckets are swept by the owner", func(t *testing.T) {
		k := mustKeyed(t, guard.KeyedConfig{IdleAfter: time.Minute})
		for i := range 100 {
			k.Allow(fmt.Sprintf("user-%d", i), t0)
		}
		k.Allow("busy", t0.Add(30*time.Second))
		if n := k.Sweep(t0.Add(59 * time.Second)); n != 0 {
			t.Fatalf("swept %d before IdleAfter", n)
		}
		if n := k.Sweep(t0.Add(time.Minute)); n != 100 {
			t.Fatalf("swept %d, want 100", n)
		}
		if k.Len() != 1 {
			t.Fatalf("Len = %d, want the busy key only", k.Len())
		}
	})
	t.Run("idle buckets are swept by traffic without an owner loop", func(t *testing.T) {
		k := mustKeyed(t, guard.KeyedConfig{IdleAfter: time.Minute, Shards: 1})
		for i := range 100 {
			k.Allow(fmt.Sprintf("user-%d", i), t0)
		}
		k.Allow("late", t0.Add(2*time.Minute))
		if k.Len() != 1 {
			t.Fatalf("Len = %d after traffic past IdleAfter, want 1", k.Len())
		}
	})
	t.Run("an idle period shorter than the refill time is invalid, so sweeping never forgives", func(t *testing.T) {
		cfg := guard.KeyedConfig{LimitConfig: guard.LimitConfig{Rate: 1, Burst: 100}, IdleAfter: 30 * time.Second}
		if err := cfg.Validate(); err == nil {
			t.Fatal("accepted")
		}
		if _, err := guard.NewKeyedLimiter(guard.KeyedConfig{Shards: -1}); err == nil {
			t.Fatal("negative shards accepted")
		}
	})
	t.Run("concurrent users share the limiter safely", func(t *testing.T) {
		k := mustKeyed(t, guard.KeyedConfig{LimitConfig: guard.LimitConfig{Rate: 1, Burst: 50}})
		var wg sync.WaitGroup
		allowed := make([]int, 8)
		for g := range 8 {
			wg.Go(func() {
				for i := range 1000 {
					// Every goroutine hits "shared" and one key of its own.
					if k.Allow("shared", t0) == guard.Allowed {
						allowed[g]++
					}
					k.Allow(fmt.Sprintf("own-%d-%d", g, i%10), t0)
				}
			})
		}
		wg.Wait()
		total := 0
		for _, n := range allowed {
			total += n
		}
		if total != 50 {
			t.Fatalf("shared key allowed %d events in total, want exactly the burst of 50", total)
		}
		if k.Len() != 81 {
			t.Fatalf("Len = %d, want 81", k.Len())
		}
	})
}
