package gateway_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardline/wardline/transport/gateway"
)

// presenceRoom connects carol, who shares a room with alice, and returns
// her client.
func presenceRoom(t *testing.T, h *harness) *gclient {
	t.Helper()
	carol := h.dialClient(h.nurse("carol"))
	mustOK(t, carol.emit("room:create", map[string]any{"roomId": "team", "name": "Team", "members": []string{"alice"}}))
	return carol
}

func TestAReconnectWithinThePresenceGraceShowsRoommatesNoOfflineOnlineFlap(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) { c.PresenceGrace = 500 * time.Millisecond })
	carol := presenceRoom(t, h)
	alice := h.dialClient(h.nurse("alice"))
	carol.waitPush("user:online", nil)
	if err := alice.c.Close(); err != nil {
		t.Fatal(err)
	}
	alice = h.dialClient(h.nurse("alice"))
	// Wait until the first session's end is recorded (after the grace),
	// then a message is the marker: nothing about alice's presence before
	// it.
	waitFor(t, "the first session's end", func() bool { return len(sessionEndReasons(t, h, "alice")) == 1 })
	waitFor(t, "the presence model to show one session", func() bool { return len(h.presence.SessionsOf("alice")) == 1 })
	mustOK(t, alice.emit("message:send", map[string]any{"roomId": "team", "content": "back"}))
	carol.noPushBefore("user:offline", func() { carol.waitPush("message:new", nil) })
	carol.noPushBefore("user:online", func() {})
}

func TestUserOfflineComesAfterTheGraceAndWithinFiveSeconds(t *testing.T) {
	const grace = time.Second
	h := newHarness(t, func(c *gateway.Config) { c.PresenceGrace = grace })
	carol := presenceRoom(t, h)
	alice := h.dialClient(h.nurse("alice"))
	carol.waitPush("user:online", nil)
	start := time.Now()
	if err := alice.c.Close(); err != nil {
		t.Fatal(err)
	}
	carol.waitPush("user:offline", nil)
	if d := time.Since(start); d < grace || d > 5*time.Second {
		t.Fatalf("user:offline after %v, want between the grace (%v) and 5 s", d, grace)
	}
}

func TestANegativePresenceGraceRecordsTheEndAtOnce(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) { c.PresenceGrace = -1 })
	carol := presenceRoom(t, h)
	alice := h.dialClient(h.nurse("alice"))
	carol.waitPush("user:online", nil)
	if err := alice.c.Close(); err != nil {
		t.Fatal(err)
	}
	// Without a grace, even an immediate reconnect comes after the end.
	carol.waitPush("user:offline", nil)
}

func TestShutdownRecordsTheEndsStillWaitingOutTheirGrace(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) { c.PresenceGrace = gateway.MaxPresenceGrace })
	alice := h.dialClient(h.nurse("alice"))
	waitFor(t, "alice's session", func() bool { return len(h.presence.SessionsOf("alice")) == 1 })
	if err := alice.c.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := h.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Shutdown did not wait out the 3 s grace, and the end is in the log.
	if d := time.Since(start); d >= gateway.MaxPresenceGrace {
		t.Fatalf("Shutdown took %v", d)
	}
	if got := sessionEndReasons(t, h, "alice"); len(got) != 1 {
		t.Fatalf("SessionEnded reasons after Shutdown = %q, want one", got)
	}
}

func TestAPresenceGraceOverThreeSecondsIsRefused(t *testing.T) {
	h := newHarness(t, nil) // for its dependencies
	cfg := h.config()
	cfg.PresenceGrace = gateway.MaxPresenceGrace + time.Millisecond
	if _, err := gateway.New(cfg); !errors.Is(err, gateway.ErrInvalidConfig) {
		t.Fatalf("New = %v, want ErrInvalidConfig", err)
	}
}
