package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/migrations"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/presence"
	"github.com/wardline/wardline/projections/rooms"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/guard"
)

// gatewayDeps is what the /chat gateway needs from serve.
type gatewayDeps struct {
	Store    eventstore.Store
	Runner   *projections.Runner
	Rooms    *rooms.Model
	Presence *presence.Model
	Verifier *auth.Verifier
	// Secret keys Socket.IO resume ids and session cookies (derived keys,
	// never the raw secret); at least 32 bytes and the same on every node.
	Secret []byte
	// AllowedOrigins is WARDLINE_ALLOWED_ORIGINS, comma-separated.
	AllowedOrigins string
	// AllowQueryToken must match the Verifier's own AllowQueryToken.
	AllowQueryToken  bool
	NodeID           string
	RateLimit        guard.LimitConfig
	Limits           domain.Limits
	MaxQueueMessages int
	MaxQueueBytes    int
	CoalesceWindow   time.Duration
	Registry         *prometheus.Registry
	Logger           *slog.Logger
}

// newGateway builds the /chat gateway. What serve must do with it:
//
//   - build the rooms and presence models and the projections Runner first,
//     with Config.OnApplied forwarding to gw.OnApplied once gw exists
//     (serve's forwardApplied indirection: set s.onApplied = gw.OnApplied);
//     batches applied before that are not pushed to anyone, which is right
//     since no client can be connected yet;
//   - mount gw.Handler() at "/" beside /healthz, /readyz and /metrics (it
//     serves /socket.io/, /ws/{namespace}, /api/v1/sessions,
//     /api/v1/presence and /api/v1/rooms/{id}/messages);
//   - on shutdown call gw.Shutdown(ctx) before http.Server.Shutdown (which
//     does not wait for hijacked WebSocket connections) and before stopping
//     the Runner and closing the store, so that session ends are recorded.
func newGateway(_ context.Context, deps gatewayDeps) (*gateway.Gateway, error) {
	gw, err := gateway.New(gateway.Config{
		Store: deps.Store, Runner: deps.Runner, Rooms: deps.Rooms, Presence: deps.Presence,
		Verifier: deps.Verifier, Secret: deps.Secret,
		Decoder:          projections.DecoderFunc(migrations.Decode),
		AllowedOrigins:   guard.ParseOrigins(deps.AllowedOrigins),
		AllowQueryToken:  deps.AllowQueryToken,
		NodeID:           deps.NodeID,
		RateLimit:        deps.RateLimit,
		Limits:           deps.Limits,
		MaxQueueMessages: deps.MaxQueueMessages,
		MaxQueueBytes:    deps.MaxQueueBytes,
		CoalesceWindow:   deps.CoalesceWindow,
		Registry:         deps.Registry,
		Logger:           deps.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return gw, nil
}
