package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/wardline/wardline/eventstore"
)

func subscribeCases() []testCase {
	return []testCase{
		{"a subscription delivers history, then live events, then ends with the context's error", testSubscribeCatchUpThenLive},
		{"a subscription from a middle position starts after it", testSubscribeFromMiddle},
		{"a handler error stops the subscription and is returned", testSubscribeHandlerError},
		{"a subscription waiting for events ends with ErrClosed when the store closes", testSubscribeClosed},
	}
}

func testSubscribeCatchUpThenLive(t *testing.T, s eventstore.Store) {
	stream := streamName("sub-live")
	start := mustHead(t, s)
	history := newEvents(5)
	mustAppend(t, s, stream, eventstore.NoStream, history[:2])
	mustAppend(t, s, stream, eventstore.Exact(2), history[2:])
	sub := subscribe(t, s, start, inStreams(stream), nil)
	if got := sub.waitFor(5); len(got) != 5 {
		t.Fatalf("catch-up delivered %d events, want 5", len(got))
	}
	live := newEvents(3)
	res := mustAppend(t, s, stream, eventstore.Exact(5), live[:1])
	mustAppend(t, s, stream, eventstore.Exact(6), live[1:])
	got := sub.waitFor(8)
	want := append(history, live...)
	if len(got) != len(want) {
		t.Fatalf("subscription delivered %d events, want %d", len(got), len(want))
	}
	var last eventstore.Position
	for i, e := range got {
		if e.ID != want[i].ID || e.Version != uint64(i+1) || e.Stream != stream {
			t.Errorf("event %d = %s v%d in %q, want %s v%d", i, e.ID, e.Version, e.Stream, want[i].ID, i+1)
		}
		if e.Position <= last {
			t.Errorf("event %d at position %d after %d", i, e.Position, last)
		}
		last = e.Position
	}
	checkEvent(t, got[5], live[0], stream, 6, res.Positions[0])
	err := sub.stop()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe after cancel returned %v, want context.Canceled", err)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.sawEmpty {
		t.Error("the handler was called with an empty batch")
	}
}

func testSubscribeFromMiddle(t *testing.T, s eventstore.Store) {
	stream := streamName("sub-middle")
	events := newEvents(6)
	res := mustAppend(t, s, stream, eventstore.NoStream, events)
	sub := subscribe(t, s, res.Positions[2], inStreams(stream), nil)
	got := sub.waitFor(3)
	if len(got) != 3 {
		t.Fatalf("subscription from the third event delivered %d events, want 3", len(got))
	}
	for i, e := range got {
		checkEvent(t, e, events[3+i], stream, uint64(4+i), res.Positions[3+i])
	}
	// Nothing else of ours arrives after a further append but the new event.
	more := mustAppend(t, s, stream, eventstore.Exact(6), newEvents(1))
	got = sub.waitFor(4)
	if len(got) != 4 || got[3].Position != more.Positions[0] {
		t.Errorf("after a live append the subscription has %d events, last at %d; want 4, last at %d",
			len(got), got[len(got)-1].Position, more.Positions[0])
	}
}

func testSubscribeHandlerError(t *testing.T, s eventstore.Store) {
	stream := streamName("sub-error")
	res := mustAppend(t, s, stream, eventstore.NoStream, newEvents(3))
	errStop := errors.New("storetest: handler stops")
	calls := 0
	sub := subscribe(t, s, res.Positions[0]-1, nil, func([]eventstore.RecordedEvent) error {
		calls++
		return errStop
	})
	err := sub.wait()
	if !errors.Is(err, errStop) {
		t.Errorf("Subscribe returned %v, want the handler's error", err)
	}
	if calls != 1 {
		t.Errorf("handler called %d times after returning an error, want 1", calls)
	}
}

func testSubscribeClosed(t *testing.T, s eventstore.Store) {
	stream := streamName("sub-closed")
	res := mustAppend(t, s, stream, eventstore.NoStream, newEvents(1))
	sub := subscribe(t, s, res.Positions[0]-1, inStreams(stream), nil)
	sub.waitFor(1)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sub.wait(); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("a waiting Subscribe returned %v after Close, want ErrClosed", err)
	}
}
