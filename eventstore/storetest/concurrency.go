package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wardline/wardline/eventstore"
)

func concurrencyCases() []testCase {
	return []testCase{
		{"concurrent writers lose nothing and a subscriber sees every event once, in order", testConcurrentWriters},
	}
}

// committed is what an acknowledged append promised about one event.
type committed struct {
	stream   string
	version  uint64
	position eventstore.Position
}

func testConcurrentWriters(t *testing.T, s eventstore.Store) {
	const (
		anyWriters, anyAppends     = 8, 12 // one stream, AnyVersion
		exactWriters, exactAppends = 8, 8  // one stream, Exact with retry on conflict
		ownWriters, ownAppends     = 12, 8 // a stream each
		maxRetries                 = 10_000
	)
	anyStream := streamName("conc-any")
	exactStream := streamName("conc-exact")
	streams := []string{anyStream, exactStream}
	for i := range ownWriters {
		streams = append(streams, streamName(fmt.Sprintf("conc-own%d", i)))
	}
	start := mustHead(t, s)
	sub := subscribe(t, s, start, inStreams(streams...), nil)

	var (
		mu   sync.Mutex
		acks = map[string]committed{}
		wg   sync.WaitGroup
	)
	ctx := testContext(t)
	record := func(stream string, events []eventstore.EventData, res eventstore.AppendResult) {
		mu.Lock()
		defer mu.Unlock()
		for i, e := range events {
			acks[e.ID] = committed{stream, res.Version - uint64(len(events)-1-i), res.Positions[i]}
		}
	}
	run := func(n int, f func(w int) error) {
		for w := range n {
			wg.Go(func() {
				if err := f(w); err != nil {
					t.Error(err)
				}
			})
		}
	}
	run(anyWriters, func(w int) error {
		for i := range anyAppends {
			events := newEvents(1 + (w+i)%2)
			res, err := s.Append(ctx, anyStream, eventstore.AnyVersion, events)
			if err != nil {
				return fmt.Errorf("any-version writer %d append %d: %w", w, i, err)
			}
			record(anyStream, events, res)
		}
		return nil
	})
	run(exactWriters, func(w int) error {
		var version uint64
		for i := range exactAppends {
			events := newEvents(1 + (w+i)%2)
			for try := 0; ; try++ {
				res, err := s.Append(ctx, exactStream, eventstore.Exact(version), events)
				var wev *eventstore.WrongExpectedVersionError
				if errors.As(err, &wev) && try < maxRetries {
					if wev.Actual < version {
						return fmt.Errorf("exact writer %d: stream went back from %d to %d", w, version, wev.Actual)
					}
					version = wev.Actual
					continue
				}
				if err != nil {
					return fmt.Errorf("exact writer %d append %d: %w", w, i, err)
				}
				record(exactStream, events, res)
				version = res.Version
				break
			}
		}
		return nil
	})
	run(ownWriters, func(w int) error {
		stream := streams[2+w]
		var version uint64
		for i := range ownAppends {
			events := newEvents(1 + i%3)
			res, err := s.Append(ctx, stream, eventstore.Exact(version), events)
			if err != nil {
				return fmt.Errorf("own-stream writer %d append %d: %w", w, i, err)
			}
			record(stream, events, res)
			version = res.Version
		}
		return nil
	})
	wg.Wait()
	if t.Failed() {
		return
	}

	sub.waitFor(len(acks))
	if err := sub.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe after cancel returned %v, want context.Canceled", err)
	}
	got := sub.collected() // anything that arrived after waitFor is a duplicate
	if len(got) != len(acks) {
		t.Errorf("subscriber saw %d events, %d were acknowledged", len(got), len(acks))
	}
	seen := make(map[string]bool, len(got))
	next := make(map[string]uint64, len(streams))
	var last eventstore.Position
	for _, e := range got {
		if seen[e.ID] {
			t.Errorf("subscriber saw event %s twice", e.ID)
			continue
		}
		seen[e.ID] = true
		want, ok := acks[e.ID]
		if !ok {
			t.Errorf("subscriber saw event %s that no append acknowledged", e.ID)
			continue
		}
		if e.Stream != want.stream || e.Version != want.version || e.Position != want.position {
			t.Errorf("event %s delivered as %s v%d at %d, acknowledged as %s v%d at %d",
				e.ID, e.Stream, e.Version, e.Position, want.stream, want.version, want.position)
		}
		if e.Position <= last {
			t.Errorf("event %s at position %d delivered after position %d", e.ID, e.Position, last)
		}
		last = e.Position
		next[e.Stream]++
		if e.Version != next[e.Stream] {
			t.Errorf("stream %s: version %d delivered where %d was due", e.Stream, e.Version, next[e.Stream])
			next[e.Stream] = e.Version
		}
	}
	for id := range acks {
		if !seen[id] {
			t.Errorf("acknowledged event %s never reached the subscriber", id)
		}
	}
	// The streams agree with the subscription: versions 1..n without gaps.
	wantLen := map[string]int{anyStream: 0, exactStream: 0}
	for _, c := range acks {
		wantLen[c.stream]++
	}
	for stream, n := range wantLen {
		read := mustReadStream(t, s, stream, 0, eventstore.Forward, n+10)
		if !equalVersions(versions(read), span(1, uint64(n))) {
			t.Errorf("stream %s reads back versions %v, want 1..%d", stream, versions(read), n)
		}
	}
}
