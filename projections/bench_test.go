package projections_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/bolt"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/rooms"
)

// benchEvents is the size of the benchmark log: 1,000,000 unless
// WARDLINE_BENCH_EVENTS says otherwise (smaller for a quick look).
func benchEvents(b *testing.B) int {
	if v := os.Getenv("WARDLINE_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("WARDLINE_BENCH_EVENTS=%q: want a positive count", v)
		}
		return n
	}
	return 1_000_000
}

// buildLog appends at least n generated events to store in large appends:
// each stream's events are gathered into appends of up to 512, and 16
// writers append concurrently so the store's group commit shares syncs.
// The generator's mix is kept; only the interleaving of streams coarsens.
func buildLog(b *testing.B, store eventstore.Store, n int) eventstore.Position {
	b.Helper()
	const (
		perAppend = 512
		writers   = 16
	)
	var (
		queues [writers]chan command
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
	)
	for i := range queues {
		queues[i] = make(chan command, 64)
		q := queues[i]
		wg.Go(func() {
			for c := range q {
				if _, err := store.Append(context.Background(), c.stream, eventstore.AnyVersion, c.events); err != nil {
					mu.Lock()
					failed = fmt.Errorf("append %d events to %s: %w", len(c.events), c.stream, err)
					mu.Unlock()
				}
			}
		})
	}
	send := func(c command) {
		h := fnv.New32a()
		_, _ = h.Write([]byte(c.stream))
		queues[h.Sum32()%writers] <- c
	}
	g := newGenerator(42)
	g.maxRooms = 2000
	pending := map[string]*command{}
	for count := 0; count < n; {
		for _, c := range g.next(b) {
			p := pending[c.stream]
			if p == nil {
				p = &command{stream: c.stream}
				pending[c.stream] = p
			}
			p.events = append(p.events, c.events...)
			count += len(c.events)
			if len(p.events) >= perAppend {
				send(*p)
				delete(pending, c.stream)
			}
		}
	}
	rest := make([]string, 0, len(pending))
	for s := range pending {
		rest = append(rest, s)
	}
	sort.Strings(rest)
	for _, s := range rest {
		send(*pending[s])
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if failed != nil {
		b.Fatal(failed)
	}
	head, err := store.Head(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return head
}

// benchLog opens a bolt store holding the benchmark log. The log is built in
// a temporary directory, or, when WARDLINE_BENCH_LOG_DIR names a directory,
// built there once and reused by later runs (for profiling sessions).
func benchLog(b *testing.B) (eventstore.Store, eventstore.Position) {
	n := benchEvents(b)
	dir := os.Getenv("WARDLINE_BENCH_LOG_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		dir = filepath.Join(dir, strconv.Itoa(n))
	}
	store, err := bolt.Open(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	head, err := store.Head(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if head >= eventstore.Position(n) {
		b.Logf("reusing the log of %d events in %s", head, dir)
		return store, head
	}
	if head > 0 {
		b.Fatalf("%s holds a partial log (%d events); remove it", dir, head)
	}
	start := time.Now()
	head = buildLog(b, store, n)
	b.Logf("built a log of %d events in %v", head, time.Since(start).Round(time.Millisecond))
	return store, head
}

// BenchmarkRebuildRooms measures `projections rebuild rooms` on the
// embedded store: read the whole log, decode the room events, fold them,
// save the snapshot. The log is built once; each iteration rebuilds from
// zero. Compare the sub-benchmarks in one run: the machine is shared.
func BenchmarkRebuildRooms(b *testing.B) {
	store, head := benchLog(b)
	for _, mode := range []struct {
		name   string
		noFast bool
	}{
		{name: "fastdecode"},
		{name: "encoding-json", noFast: true},
	} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := projections.Config{
				Store: store, Path: filepath.Join(b.TempDir(), "projections.db"),
				DisableFastDecode: mode.noFast,
			}
			b.ReportAllocs()
			var events uint64
			var took time.Duration
			for b.Loop() {
				m := rooms.New()
				t0 := time.Now()
				prog, err := projections.RebuildOffline(context.Background(), cfg, m, nil)
				took += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if prog.Position != head {
					b.Fatalf("rebuilt to %d, want %d", prog.Position, head)
				}
				events += prog.Events
			}
			b.ReportMetric(float64(events)/took.Seconds(), "events/s")
		})
	}
}

// BenchmarkWatermillRouter measures what routing each event through a
// watermill Router (GoChannel pub/sub, Recoverer middleware, a handler that
// does nothing) costs per event, to compare with the rebuild budget of
// about 3 µs per event for 300,000 events/s. It is why the Runner applies
// batches directly and uses watermill middleware per batch only.
func BenchmarkWatermillRouter(b *testing.B) {
	logger := watermill.NopLogger{}
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 4096}, logger)
	defer pubsub.Close()
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		b.Fatal(err)
	}
	router.AddMiddleware(middleware.Recoverer)
	got := make(chan struct{}, 1)
	var seen, want int
	var mu sync.Mutex
	router.AddConsumerHandler("rooms", "events", pubsub, func(*message.Message) error {
		mu.Lock()
		seen++
		done := seen == want
		mu.Unlock()
		if done {
			got <- struct{}{}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- router.Run(ctx) }()
	defer func() {
		cancel()
		<-runDone
	}()
	<-router.Running()

	payload := []byte(`{"messageId":"m1","roomId":"icu-1","senderId":"u1","content":"BP 120/80","seq":1}`)
	b.ReportAllocs()
	start := time.Now()
	count := 0
	for b.Loop() {
		mu.Lock()
		want += 1000
		mu.Unlock()
		for range 1000 {
			count++
			if err := pubsub.Publish("events", message.NewMessage(strconv.Itoa(count), payload)); err != nil {
				b.Fatal(err)
			}
		}
		<-got
	}
	b.ReportMetric(float64(count)/time.Since(start).Seconds(), "events/s")
}
