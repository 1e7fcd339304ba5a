package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/wardline/wardline/transport/native/client"
)

// gclient drives the gateway with the real native Go client
// (transport/native/client), the one services and the load tool use.
type gclient struct {
	t testing.TB
	c *client.Client
	// pending holds pushes read while waiting for something else.
	pending []client.Push
}

// dialClient connects and authenticates with the Go client. The event
// buffer is large so that a test goroutine that both emits and drains
// never stalls the client's reader.
func (h *harness) dialClient(token string, opts ...client.Option) *gclient {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]client.Option{client.WithToken(token), client.WithEventBuffer(8192)}, opts...)
	c, err := client.Dial(ctx, h.wsURL(), opts...)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	g := &gclient{t: h.t, c: c}
	g.waitPush("connected", nil)
	return g
}

// emit sends a request and returns its ack envelope, or the failed ack as
// an envelope {"success":false,"error":{...}} so that tests read both the
// same way.
func (g *gclient) emit(event string, data any) json.RawMessage {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := g.c.Emit(ctx, event, data)
	var e *client.Error
	switch {
	case errors.As(err, &e):
		return mustMarshal(g.t, map[string]any{"success": false, "error": e})
	case err != nil:
		g.t.Fatalf("%s: %v", event, err)
	}
	return raw
}

// next returns the next push matching keep, keeping the others for later.
func (g *gclient) next(keep func(client.Push) bool, what string) client.Push {
	g.t.Helper()
	for i, p := range g.pending {
		if keep(p) {
			g.pending = append(g.pending[:i], g.pending[i+1:]...)
			return p
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p, ok := <-g.c.Events():
			if !ok {
				g.t.Fatalf("client ended (%v) while waiting for %s", g.c.Err(), what)
			}
			if keep(p) {
				return p
			}
			g.pending = append(g.pending, p)
		case <-timeout:
			g.t.Fatalf("timed out waiting for %s; pending %v", what, g.pending)
		}
	}
}

func (g *gclient) waitPush(event string, match func(client.Push) bool) client.Push {
	g.t.Helper()
	return g.next(func(p client.Push) bool { return p.Event == event && (match == nil || match(p)) }, "push "+event)
}

// noPushBefore asserts that no push of event arrives before marker's push
// (the hub delivers in log order).
func (g *gclient) noPushBefore(event string, marker func()) {
	g.t.Helper()
	marker()
	for _, p := range g.pending {
		if p.Event == event {
			g.t.Fatalf("unexpected %s push: %s", event, p.Data)
		}
	}
}
