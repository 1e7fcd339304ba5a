package bolt_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wardline/wardline/eventstore"
)

// BenchmarkAppend measures durable appends of one 1 KiB event each, from
// concurrent writers on their own streams: group commit turns concurrency
// into throughput.
func BenchmarkAppend(b *testing.B) {
	data := make([]byte, 1024)
	for i := range data {
		data[i] = 'a' + byte(i%26)
	}
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openStore(b, "")
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Go(func() {
					stream := fmt.Sprintf("bench-%d", w)
					for next.Add(1) <= int64(b.N) {
						ev := []eventstore.EventData{{ID: uuid.Must(uuid.NewV7()).String(), Type: "BenchHappened", Data: data}}
						if _, err := s.Append(ctx, stream, eventstore.AnyVersion, ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			st := s.Stats()
			if st.Commits > 0 {
				b.ReportMetric(float64(st.Events)/float64(st.Commits), "events/commit")
				b.ReportMetric(float64(st.CommitTime.Microseconds())/float64(st.Commits), "µs/commit")
				b.ReportMetric(float64(st.PageWrites)/float64(st.Commits), "pages/commit")
			}
		})
	}
}

// BenchmarkReadAll scans a pre-filled log of small events from the start,
// as a projection rebuild or a subscription's catch-up does.
func BenchmarkReadAll(b *testing.B) {
	total := 1_000_000
	if testing.Short() {
		total = 100_000
	}
	s := openStore(b, "")
	fill(b, s, total)
	for _, batch := range []int{1024, 16384} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				n := 0
				for from := eventstore.Position(0); ; {
					events, err := s.ReadAll(ctx, from, batch)
					if err != nil {
						b.Fatal(err)
					}
					if len(events) == 0 {
						break
					}
					n += len(events)
					from = events[len(events)-1].Position
				}
				if n != total {
					b.Fatalf("scanned %d events, want %d", n, total)
				}
			}
			b.ReportMetric(float64(total*b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// fill appends total small events in large appends from a few writers.
func fill(b *testing.B, s eventstore.Store, total int) {
	b.Helper()
	const writers, perAppend = 4, 5000
	data := []byte(`{"roomId":"icu-1","senderId":"u-42","content":"vitals stable, next check at 14:00","seq":1}`)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("fill-%d", w)
			for {
				start := next.Add(perAppend) - perAppend
				if start >= int64(total) {
					return
				}
				n := min(perAppend, total-int(start))
				events := make([]eventstore.EventData, n)
				for i := range events {
					events[i] = eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: "MessagePosted", SchemaVersion: 1, Data: data}
				}
				if _, err := s.Append(context.Background(), stream, eventstore.AnyVersion, events); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}
