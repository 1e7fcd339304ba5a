package gateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/guard"
)

func TestASlowSocketIOConsumerIsClosedWhileAnotherSocketIOClientKeepsReceiving(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) {
		// A write deadline far longer than the queue takes to fill, so that
		// the queue bound is what drops the slow consumer here.
		c.MaxQueueMessages, c.WriteTimeout = 64, 30*time.Second
		// The publisher is not the subject here.
		c.RateLimit = guard.LimitConfig{Rate: 1e5, Burst: 1e5}
	})
	alice := h.connect(h.nurse("alice"), "")
	mustOK(t, alice.request("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"bob", "slow"}}))
	bob := h.connectSocketIO(h.nurse("bob"))
	// Small server-side socket buffers for the slow consumer only, so that
	// its queue overflows after a few messages rather than megabytes.
	h.listener.sendBuffer.Store(4096)
	h.dialSocketIOUnread(h.nurse("slow"))
	h.listener.sendBuffer.Store(0)
	waitFor(t, "the slow consumer's session to be recorded", func() bool { return len(h.presence.SessionsOf("slow")) > 0 })
	alice.waitPush("user:online", func(f frame) bool { return string(f.Data) == `{"userId":"slow"}` })

	const n = 100
	content := strings.Repeat("x", 15<<10)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for range n {
			if alice.tryRequest("message:send", map[string]any{"roomId": "ward", "content": content}) == nil {
				return
			}
		}
	}()
	for i := uint64(1); i <= n; i++ {
		args := bob.waitEvent("message:new")
		m := decode[msgPayload](t, args[0])
		if m.Seq != i {
			t.Fatalf("bob got seq %d, want %d", m.Seq, i)
		}
		var offset string
		if len(args) != 2 || json.Unmarshal(args[1], &offset) != nil || offset == "" {
			t.Fatalf("message:new without its offset as the last argument: %s", args)
		}
	}
	<-sent
	// The slow consumer's end is recorded like any other: its session
	// ends, and its roommates see it go offline.
	waitFor(t, "the slow consumer's session to end", func() bool { return len(h.presence.SessionsOf("slow")) == 0 })
	alice.waitPush("user:offline", func(f frame) bool { return string(f.Data) == `{"userId":"slow"}` })
	if got := h.metricValue("wardline_gateway_queue_overflows_total", map[string]string{"transport": "socketio"}); got != 1 {
		t.Fatalf("queue_overflows_total{transport=socketio} = %v, want 1", got)
	}
	if got := sessionEndReasons(t, h, "slow"); len(got) != 1 || got[0] != "slow consumer" {
		t.Fatalf("SessionEnded reasons of slow = %q, want one \"slow consumer\"", got)
	}
}

// sessionEndReasons reads the reasons of user's SessionEnded events.
func sessionEndReasons(t testing.TB, h *harness, user string) []string {
	t.Helper()
	evs, err := h.store.ReadStream(context.Background(), domain.PresenceStream(user), 1, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Type == "SessionEnded" {
			out = append(out, decode[domain.SessionEnded](t, e.Data).Reason)
		}
	}
	return out
}

func TestAConsumerStuckPastTheWriteDeadlineIsDroppedAndItsSessionEnds(t *testing.T) {
	for _, transport := range []string{"native", "socketio"} {
		t.Run(transport, func(t *testing.T) {
			h := newHarness(t, func(c *gateway.Config) {
				// A queue that never fills here: only the deadline can act.
				c.MaxQueueMessages, c.WriteTimeout = 1024, 300*time.Millisecond
			})
			alice := h.connect(h.nurse("alice"), "")
			mustOK(t, alice.request("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"stuck"}}))
			h.listener.sendBuffer.Store(4096)
			if transport == "native" {
				conn, _, err := h.dialNativeUnread(h.nurse("stuck"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = conn.Close() })
			} else {
				h.dialSocketIOUnread(h.nurse("stuck"))
			}
			waitFor(t, "the stuck consumer's session to be recorded", func() bool { return len(h.presence.SessionsOf("stuck")) > 0 })
			alice.waitPush("user:online", func(f frame) bool { return string(f.Data) == `{"userId":"stuck"}` })
			start := time.Now()
			content := strings.Repeat("x", 15<<10)
			for range 20 {
				mustOK(t, alice.request("message:send", map[string]any{"roomId": "ward", "content": content}))
			}
			waitFor(t, "the stuck consumer's session to end", func() bool { return len(h.presence.SessionsOf("stuck")) == 0 })
			alice.waitPush("user:offline", func(f frame) bool { return string(f.Data) == `{"userId":"stuck"}` })
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("dropped after %v; the write deadline is 300 ms", d)
			}
		})
	}
}

// waitFor polls cond until it holds, failing after 15 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
