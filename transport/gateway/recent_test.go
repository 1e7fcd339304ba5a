package gateway_test

import (
	"context"
	"testing"

	"github.com/wardline/wardline/eventstore"

	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/native/client"
)

// A replay is served from the hub's ring of recent pushes when its window
// lies within the ring and from the log otherwise, handing over to the
// ring once the rest lies within it; every way must deliver the same:
// everything missed, in order, once, then live.
func TestResumeDeliversTheSameWhateverTheRecentRingHolds(t *testing.T) {
	for _, tc := range []struct {
		name string
		ring int
	}{
		{"a resume within the recent ring is served from memory", 4096},
		{"a resume older than the ring reads the log until the ring takes over", 4},
		{"a node without a ring replays everything from the log", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			gateway.SetRecentRing(h.gw, tc.ring)
			alice := h.dialClient(h.nurse("alice"))
			mustOK(t, alice.emit("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"bob"}}))
			bob := h.dialClient(h.nurse("bob"))
			mustOK(t, alice.emit("message:send", map[string]any{"roomId": "ward", "content": "m1"}))
			bob.waitPush("message:new", nil)
			last := bob.c.Offset()
			if err := bob.c.Close(); err != nil {
				t.Fatal(err)
			}
			const missed, during = 20, 20
			for range missed {
				mustOK(t, alice.emit("message:send", map[string]any{"roomId": "ward", "content": "missed"}))
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range during {
					_, _ = alice.c.Emit(context.Background(), "message:send", map[string]any{"roomId": "ward", "content": "during"})
				}
			}()
			bob = h.dialClient(h.nurse("bob"), client.WithOffset(last))
			<-done
			mustOK(t, alice.emit("message:send", map[string]any{"roomId": "ward", "content": "live"}))
			for want := uint64(2); want <= 1+missed+during+1; want++ {
				m := decode[msgPayload](t, bob.waitPush("message:new", nil).Data)
				if m.Seq != want {
					t.Fatalf("got seq %d, want %d: a gap, a duplicate or a reordering", m.Seq, want)
				}
			}
			mustOK(t, alice.emit("typing:start", map[string]any{"roomId": "ward"}))
			bob.noPushBefore("message:new", func() { bob.waitPush("typing:user-typing", nil) })
		})
	}
}

// A session that connects while its room is busy misses nothing committed
// after it connected and gets nothing twice, whether the few events between
// its start and its registration come from the ring or from the log.
func TestAFreshSessionDuringTrafficMissesNothingAfterItsStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		ring int
	}{
		{"with the recent ring", 4096},
		{"without a ring", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			gateway.SetRecentRing(h.gw, tc.ring)
			alice := h.dialClient(h.nurse("alice"))
			mustOK(t, alice.emit("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"bob"}}))
			const n = 40
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range n {
					_, _ = alice.c.Emit(context.Background(), "message:send", map[string]any{"roomId": "ward", "content": "busy"})
				}
			}()
			bob := h.dialClient(h.nurse("bob"))
			start, err := eventstore.ParseOffset(h.store.Epoch(), bob.waitPush("session:offset", nil).Offset)
			if err != nil {
				t.Fatal(err)
			}
			<-done
			mustOK(t, alice.emit("message:send", map[string]any{"roomId": "ward", "content": "last"}))
			// bob's first message is the log's first one after its start,
			// and the rest follow with no gap and no repeat.
			got := bob.waitPush("message:new", nil)
			if want := firstMessageAfter(t, h, start); got.Offset != want {
				t.Fatalf("first message:new at %s, want %s (the first one after the session's start)", got.Offset, want)
			}
			first := decode[msgPayload](t, got.Data).Seq
			for want := first + 1; want <= n+1; want++ {
				m := decode[msgPayload](t, bob.waitPush("message:new", nil).Data)
				if m.Seq != want {
					t.Fatalf("got seq %d, want %d: a gap, a duplicate or a reordering", m.Seq, want)
				}
			}
		})
	}
}

// firstMessageAfter is the offset of the log's first MessagePosted after
// start.
func firstMessageAfter(t *testing.T, h *harness, start eventstore.Position) string {
	t.Helper()
	evs, err := h.store.ReadAll(context.Background(), start, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == "MessagePosted" {
			return eventstore.FormatOffset(h.store.Epoch(), e.Position)
		}
	}
	t.Fatalf("no message after %d", start)
	return ""
}
