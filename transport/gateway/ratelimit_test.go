package gateway_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/guard"
	"github.com/wardline/wardline/transport/socketio"
)

func TestUserRateLimitIsSharedByAllOfAUsersConnections(t *testing.T) {
	// Rates so slow that no token comes back during the test: every
	// outcome follows from the bursts alone.
	const slow = 0.01
	tests := []struct {
		name string
		conn guard.LimitConfig
		user guard.KeyedConfig
		// perConn requests from each of conns connections of alice.
		conns, perConn int
		wantOK         int
	}{
		{
			name:  "by default a user's connections together get three times one connection's burst",
			conn:  guard.LimitConfig{Rate: slow, Burst: 2, DisconnectAfter: time.Hour},
			user:  guard.KeyedConfig{IdleAfter: time.Hour},
			conns: 4, perConn: 2, wantOK: 6,
		},
		{
			name:  "an explicit per-user burst refuses a second connection that has tokens of its own",
			conn:  guard.LimitConfig{Rate: slow, Burst: 5, DisconnectAfter: time.Hour},
			user:  guard.KeyedConfig{LimitConfig: guard.LimitConfig{Rate: slow, Burst: 3}, IdleAfter: time.Hour},
			conns: 2, perConn: 3, wantOK: 3,
		},
		{
			name:  "the per-connection limit still holds when the user has tokens left",
			conn:  guard.LimitConfig{Rate: slow, Burst: 2, DisconnectAfter: time.Hour},
			user:  guard.KeyedConfig{LimitConfig: guard.LimitConfig{Rate: slow, Burst: 20}, IdleAfter: time.Hour},
			conns: 2, perConn: 3, wantOK: 4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *gateway.Config) { c.RateLimit, c.UserRateLimit = tc.conn, tc.user })
			query := map[string]any{"userIds": []string{"alice"}}
			ok, limited := 0, 0
			for range tc.conns {
				c := h.connect(h.nurse("alice"), "")
				for range tc.perConn {
					raw := c.request("presence:query", query)
					switch {
					case success(raw):
						ok++
					case errCode(raw) == "rate_limited":
						limited++
					default:
						t.Fatalf("presence:query = %s", raw)
					}
				}
			}
			if ok != tc.wantOK || ok+limited != tc.conns*tc.perConn {
				t.Fatalf("%d allowed and %d rate_limited, want %d allowed of %d", ok, limited, tc.wantOK, tc.conns*tc.perConn)
			}
			// Another user is not charged for alice's traffic.
			bob := h.connect(h.nurse("bob"), "")
			mustOK(t, bob.request("presence:query", query))
		})
	}
}

func TestSocketIOFloodIsRateLimitedThenGetsAnExceptionAndAServerDisconnect(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) {
		c.RateLimit = guard.LimitConfig{Rate: 1, Burst: 5, DisconnectAfter: 300 * time.Millisecond, ResetAfter: time.Second}
	})
	c := h.connectSocketIO(h.nurse("alice"))
	query := map[string]any{"userIds": []string{"alice"}}
	var acks []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) || len(acks) > 10_000 {
			t.Fatalf("never disconnected; acks %v", acks)
		}
		id := c.emit("presence:query", query)
		p := c.next(func(p socketio.Packet) bool {
			return (p.Type == socketio.PacketAck && p.ID == id) || p.Type == socketio.PacketDisconnect
		}, "the ack or a DISCONNECT")
		if p.Type == socketio.PacketDisconnect {
			if p.Namespace != "/chat" {
				t.Fatalf("DISCONNECT for namespace %q", p.Namespace)
			}
			break
		}
		raw := sioArgs(t, p)[0]
		if success(raw) {
			acks = append(acks, "ok")
		} else {
			acks = append(acks, errCode(raw))
		}
	}
	assertFlood(t, acks)
	// Packets that came before the DISCONNECT are pending, in order.
	ex, ok := c.tryNext(func(p socketio.Packet) bool {
		return p.Type == socketio.PacketEvent && eventName(p) == "exception"
	}, 0)
	if !ok {
		t.Fatal("no exception before the server DISCONNECT")
	}
	var e struct{ Code, Event string }
	if err := json.Unmarshal(sioArgs(t, ex)[1], &e); err != nil || e.Code != "rate_limited" || e.Event != "presence:query" {
		t.Fatalf("exception = %s", ex.Data)
	}
}

// assertFlood checks a flood's acks: the burst allowed, then rate_limited
// until the disconnect.
func assertFlood(t *testing.T, acks []string) {
	t.Helper()
	limited := 0
	for i, a := range acks {
		switch {
		case a == "rate_limited":
			limited++
		case a == "ok" && limited == 0:
		default:
			t.Fatalf("ack %d is %q after %d rate_limited: %v", i, a, limited, acks)
		}
	}
	if limited == 0 {
		t.Fatalf("no request was rate_limited before the disconnect: %v", acks)
	}
}

func TestThePerUserDefaultsAcceptEveryValidPerConnectionLimit(t *testing.T) {
	tests := []struct {
		name string
		conn guard.LimitConfig
	}{
		{"a limit lifted to the largest rate (benchmarks)", guard.LimitConfig{Rate: 1e9, Burst: 1 << 30}},
		{"a low rate with the default burst, slower to refill than the default idle time", guard.LimitConfig{Rate: 1, Burst: 200}},
		{"a fractional rate", guard.LimitConfig{Rate: 0.5, Burst: 1000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *gateway.Config) { c.RateLimit = tc.conn })
			c := h.connect(h.nurse("alice"), "")
			mustOK(t, c.request("presence:query", map[string]any{"userIds": []string{"alice"}}))
		})
	}
}
