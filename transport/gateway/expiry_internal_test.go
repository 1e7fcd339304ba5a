package gateway

import (
	"testing"
	"time"
)

type fired struct {
	s   *session
	gen uint32
}

func newTestExpiryQueue(t *testing.T) (*expiryQueue, <-chan fired) {
	t.Helper()
	out := make(chan fired, 16)
	q := newExpiryQueue(func(s *session, gen uint32) { out <- fired{s, gen} })
	t.Cleanup(q.stop)
	return q, out
}

func next(t *testing.T, out <-chan fired) fired {
	t.Helper()
	select {
	case f := <-out:
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no expiry timer fired")
		return fired{}
	}
}

func TestExpiryTimersFireInDueOrderOnceEach(t *testing.T) {
	q, out := newTestExpiryQueue(t)
	a, b, c := &session{id: "a"}, &session{id: "b"}, &session{id: "c"}
	q.add(c, 60*time.Millisecond, 3)
	q.add(a, 20*time.Millisecond, 1)
	q.add(b, 40*time.Millisecond, 2)
	for _, want := range []fired{{a, 1}, {b, 2}, {c, 3}} {
		if got := next(t, out); got != want {
			t.Fatalf("fired %s gen %d, want %s gen %d", got.s.id, got.gen, want.s.id, want.gen)
		}
	}
	select {
	case f := <-out:
		t.Fatalf("%s fired twice", f.s.id)
	case <-time.After(100 * time.Millisecond):
	}
	if q.items.Len() != 0 || a.expiryIdx != 0 {
		t.Fatalf("%d timers still queued after firing", q.items.Len())
	}
}

func TestARearmedExpiryTimerFiresOnlyForItsNewArming(t *testing.T) {
	q, out := newTestExpiryQueue(t)
	a, b := &session{id: "a"}, &session{id: "b"}
	q.add(a, 20*time.Millisecond, 1)
	q.add(b, 50*time.Millisecond, 1)
	q.add(a, 80*time.Millisecond, 2) // a refresh pushes a's expiry back
	if got := next(t, out); got != (fired{b, 1}) {
		t.Fatalf("fired %s gen %d first, want b gen 1", got.s.id, got.gen)
	}
	if got := next(t, out); got != (fired{a, 2}) {
		t.Fatalf("fired %s gen %d, want a gen 2", got.s.id, got.gen)
	}
}

func TestAClosedSessionLeavesTheExpiryQueueAtOnce(t *testing.T) {
	q, out := newTestExpiryQueue(t)
	sessions := make([]*session, 100)
	for i := range sessions {
		sessions[i] = &session{}
		q.add(sessions[i], time.Hour+time.Duration(i)*time.Second, 1)
	}
	for _, i := range []int{0, 50, 99, 1, 98} {
		q.remove(sessions[i])
		if sessions[i].expiryIdx != 0 {
			t.Fatalf("session %d still has place %d", i, sessions[i].expiryIdx)
		}
	}
	if n := q.items.Len(); n != 95 {
		t.Fatalf("%d timers queued, want 95", n)
	}
	for i, it := range q.items {
		if it.s.expiryIdx != int32(i+1) {
			t.Fatalf("item %d records place %d", i, it.s.expiryIdx)
		}
	}
	for _, s := range sessions {
		q.remove(s)
	}
	if n := q.items.Len(); n != 0 {
		t.Fatalf("%d timers queued after every session closed", n)
	}
	q.add(sessions[0], 10*time.Millisecond, 7)
	if got := next(t, out); got != (fired{sessions[0], 7}) {
		t.Fatalf("fired gen %d, want 7", got.gen)
	}
}
