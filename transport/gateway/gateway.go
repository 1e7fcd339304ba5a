package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/engineio"
	"github.com/wardline/wardline/transport/guard"
	"github.com/wardline/wardline/transport/internal/workpool"
	"github.com/wardline/wardline/transport/native"
	"github.com/wardline/wardline/transport/socketio"
)

// closeRateLimited is the native close code for a sender still over the
// rate limit after DisconnectAfter.
const closeRateLimited = native.CloseRateLimited

// sessionKeyLabel derives the session-cookie key from the server secret, so
// the cookie key differs from the pid key and from the JWT secret.
const sessionKeyLabel = "wardline gateway session cookie v1"

// Gateway serves /chat over Socket.IO and the native protocol, and the HTTP
// API beside them. Create it with New, mount Handler, feed OnApplied from the
// projections Runner, and call Shutdown on the way out.
type Gateway struct {
	cfg      Config
	svc      *service
	hub      *hub
	metrics  *metrics
	table    map[string]handlerFunc
	pids     pidSigner
	origin   *guard.OriginChecker
	users    *guard.KeyedLimiter
	grace    *endGrace
	expiries *expiryQueue // the sessions' token-expiry timers
	roles    roleSets     // the sessions' role lists, interned
	authn    auth.Authenticator
	sessions *auth.Sessions
	sio      *socketio.Server
	nat      *native.Server
	mux      *http.ServeMux

	// ctx outlives connections: session ends are recorded with it after a
	// connection's own context is gone. wg owns the replay goroutines.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// workers run what spawn starts, on goroutines whose stacks have grown
	// already: a fresh goroutine per pipelined message:send or stream
	// leader grew its stack through the decision and append each time
	// (runtime.newstack was 5% of the server's CPU at 50k deliveries/s).
	workers *workpool.Pool[func()]
	// stopping is set (under spawnMu) before Shutdown waits for wg, so
	// that no goroutine is added to wg while it is being waited for.
	spawnMu  sync.Mutex
	stopping bool

	// revokedAt remembers browser sessions ended here (DELETE
	// /api/v1/sessions), so a socket of one that was still connecting is
	// closed too; entries go after auth.DefaultSessionTTL.
	revokedMu sync.Mutex
	revokedAt map[string]time.Time
}

// New builds a Gateway from cfg.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	origin, err := guard.NewOriginChecker(guard.OriginConfig{Allowed: cfg.AllowedOrigins})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	g := &Gateway{
		cfg: cfg, svc: newService(&cfg), metrics: m, pids: newPIDSigner(cfg.Secret), origin: origin,
		hub: newHub(cfg.Rooms, cfg.Store.Epoch(), m, cfg.Now), revokedAt: map[string]time.Time{},
	}
	g.svc.spawn = g.spawn
	g.expiries = newExpiryQueue(g.fireExpiry)
	g.workers = workpool.New(workerIdle, func(fn func()) { fn() })
	g.users, err = guard.NewKeyedLimiter(cfg.UserRateLimit)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.grace = newEndGrace(cfg.PresenceGrace, &g.wg, g.appendEnd)
	g.table = g.handlers()
	g.sessions, err = auth.NewSessions(auth.SessionConfig{
		Key:      derive(cfg.Secret, sessionKeyLabel),
		OnRevoke: func(_ context.Context, c auth.Claims) { g.closeAuthSession(c.SessionID) },
		OnRefused: func(ctx context.Context, r *http.Request, err error) {
			g.recordAuthFailure(ctx, "http", r.RemoteAddr, "bearer", err)
		},
		Now: cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	g.authn = auth.Authenticator{Verifier: cfg.Verifier, Sessions: g.sessions}
	if err := g.newSocketIO(); err != nil {
		return nil, err
	}
	if err := g.newNative(); err != nil {
		return nil, err
	}
	g.mux = g.routes()
	return g, nil
}

// Handler serves /socket.io/, /ws/{namespace} and the /api/v1 routes of
// the gateway.
func (g *Gateway) Handler() http.Handler { return g.mux }

// OnApplied is the projections.Config.OnApplied hook: it fans each applied
// batch out to the connected sessions. It never blocks on a client.
func (g *Gateway) OnApplied(ctx context.Context, batch []projections.Applied) {
	g.hub.onApplied(ctx, batch)
}

// Shutdown stops accepting connections, closes every WebSocket with 1001
// (no Socket.IO DISCONNECT, so clients reconnect by themselves, elsewhere if
// need be), records the end of the sessions (those waiting out the
// presence grace at once), and waits for the gateway's goroutines. When ctx ends first it returns ctx's error.
func (g *Gateway) Shutdown(ctx context.Context) error {
	errSIO := g.sio.Shutdown(ctx)
	errNat := g.nat.Shutdown(ctx)
	// The node is going away: ends waiting out the presence grace are
	// recorded now rather than lost.
	g.grace.flush()
	g.spawnMu.Lock()
	g.stopping = true
	g.spawnMu.Unlock()
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		g.workers.Stop()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.expiries.stop()
	g.cancel()
	return errors.Join(errSIO, errNat, err)
}

// fireExpiry runs a session's due expiry timer on a goroutine of its own,
// as a timer of its own did, so that one session's logoff (which may
// record its end) does not hold up the others'; in place once the gateway
// is shutting down.
func (g *Gateway) fireExpiry(s *session, gen uint32) {
	if !g.spawn(func() { s.expiryTimer(gen) }) {
		s.expiryTimer(gen)
	}
}

// spawn runs fn on a goroutine the gateway owns (Shutdown waits for it)
// and reports true, or reports false once Shutdown has begun waiting.
func (g *Gateway) spawn(fn func()) bool {
	g.spawnMu.Lock()
	defer g.spawnMu.Unlock()
	if g.stopping {
		return false
	}
	g.wg.Add(1)
	g.workers.Go(func() {
		defer g.wg.Done()
		fn()
	})
	return true
}

// workerIdle is how long a spawn worker waits for more work before it
// exits, so an idle gateway holds none.
const workerIdle = 250 * time.Millisecond

func (g *Gateway) newSocketIO() error {
	srv, err := socketio.NewServer(socketio.Config{
		Engine: engineio.Config{
			PingInterval: g.cfg.PingInterval, PingTimeout: g.cfg.PingTimeout,
			MaxPayload: g.cfg.MaxFrameSize, WriteTimeout: g.cfg.WriteTimeout,
			MaxQueueMessages: g.cfg.MaxQueueMessages, MaxQueueBytes: g.cfg.MaxQueueBytes,
			CoalesceWindow: g.cfg.CoalesceWindow,
			AllowRequest:   g.origin.Check,
			KeepHandshake:  g.keepHandshake,
		},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	chat := srv.Of(chatNamespace)
	chat.OnConnect(g.sioConnect)
	chat.OnAny(g.sioEvent)
	chat.OnDisconnect(g.sioDisconnect)
	g.sio = srv
	return nil
}

func (g *Gateway) newNative() error {
	srv, err := native.NewServer(native.Config{
		Namespaces:        []string{chatNamespace},
		CheckRequest:      g.origin.Check,
		Authenticate:      g.nativeAuthenticate,
		OnAuth:            g.nativeAuth,
		OnConnect:         g.nativeConnect,
		OnEvent:           g.nativeEvent,
		OnClose:           g.nativeClose,
		MaxFrameSize:      int64(g.cfg.MaxFrameSize),
		SendQueueMessages: g.cfg.MaxQueueMessages,
		SendQueueBytes:    g.cfg.MaxQueueBytes,
		WriteWait:         g.cfg.WriteTimeout,
		CoalesceWindow:    g.cfg.CoalesceWindow,
		Now:               g.cfg.Now,
		Logger:            g.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	g.nat = srv
	return nil
}
