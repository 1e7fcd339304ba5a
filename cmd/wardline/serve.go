package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/guard"
)

// server is one running wardline node: the store, the projections that
// follow it, and the HTTP listener. Run owns every goroutine it starts and
// returns only after they have stopped.
type server struct {
	cfg      Config
	log      *slog.Logger
	store    eventstore.Store
	runner   *projections.Runner
	registry *prometheus.Registry
	verifier *auth.Verifier
	gateway  *gateway.Gateway
	ln       net.Listener
	http     *http.Server
	debugLn  net.Listener
	debug    *http.Server

	// onApplied forwards applied batches to the gateway's hub once it exists.
	mu        sync.RWMutex
	onApplied func(context.Context, []projections.Applied)
}

func runServe(ctx context.Context, args []string, stdio IO) error {
	cfg, err := parseServe(args, stdio.Getenv, stdio.Stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stdio.Stderr, nil))
	if cfg.usingDevSecret() {
		log.Warn("USING THE PUBLIC DEVELOPMENT JWT SECRET: anyone can mint tokens for this server; set WARDLINE_JWT_SECRET (or a public key / JWKS URL) before real use")
	}
	s, err := newServer(ctx, cfg, log)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// newServer opens the store, the projections and the listener. On error
// everything opened so far is closed again.
func newServer(ctx context.Context, cfg Config, log *slog.Logger) (_ *server, err error) {
	s := &server{cfg: cfg, log: log, registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			s.closeStorage()
		}
	}()
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.store = newInstrumentedStore(store, s.registry)

	r, p := readModels()
	pcfg := projectionsConfig(cfg, s.store)
	pcfg.Logger = log
	pcfg.SnapshotInterval = cfg.SnapshotInterval
	pcfg.OnApplied = s.forwardApplied
	s.runner, err = projections.NewRunner(ctx, pcfg, r, p)
	if err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	s.registry.MustRegister(&projectionCollector{runner: s.runner})

	s.verifier, err = newVerifier(cfg, log)
	if err != nil {
		return nil, err
	}
	secret, err := sessionSecret(cfg, log)
	if err != nil {
		return nil, err
	}
	s.gateway, err = newGateway(ctx, gatewayDeps{
		Store: s.store, Runner: s.runner, Rooms: r, Presence: p, Verifier: s.verifier,
		Secret: secret, AllowedOrigins: cfg.AllowedOrigins, AllowQueryToken: cfg.AllowQueryToken,
		NodeID:           cfg.NodeID,
		RateLimit:        guard.LimitConfig{Rate: cfg.RateLimit, Burst: cfg.RateBurst},
		Limits:           domain.Limits{MaxContentBytes: cfg.MaxContentBytes},
		MaxQueueMessages: cfg.MaxQueueMessages,
		MaxQueueBytes:    cfg.MaxQueueBytes,
		CoalesceWindow:   cfg.CoalesceWindow,
		Registry:         s.registry, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.onApplied = s.gateway.OnApplied
	s.mu.Unlock()

	mux := http.NewServeMux()
	mux.Handle("/", s.gateway.Handler())
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))

	s.ln, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if cfg.DebugAddr != "" {
		s.debugLn, err = net.Listen("tcp", cfg.DebugAddr)
		if err != nil {
			s.ln.Close()
			return nil, fmt.Errorf("listen on --debug-addr %s: %w", cfg.DebugAddr, err)
		}
		dm := http.NewServeMux()
		dm.HandleFunc("/debug/pprof/", pprof.Index)
		dm.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		dm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		dm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		dm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		s.debug = &http.Server{Handler: dm, ReadHeaderTimeout: 10 * time.Second}
	}
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// forwardApplied hands applied batches to the current subscriber (the hub).
func (s *server) forwardApplied(ctx context.Context, batch []projections.Applied) {
	s.mu.RLock()
	f := s.onApplied
	s.mu.RUnlock()
	if f != nil {
		f(ctx, batch)
	}
}

// Addr is the address the server listens on.
func (s *server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends, then shuts down within the configured timeout:
// stop accepting, close connections, stop projections (persisting their
// read models), close the store.
func (s *server) Run(ctx context.Context) error {
	runCtx, stopRunner := context.WithCancel(context.Background())
	defer stopRunner()
	runnerDone := make(chan error, 1)
	go func() { runnerDone <- s.runner.Run(runCtx) }()

	serveDone := make(chan error, 1)
	go func() {
		var err error
		if s.cfg.TLSCert != "" {
			err = s.http.ServeTLS(s.ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			err = s.http.Serve(s.ln)
		}
		serveDone <- err
	}()
	debugDone := make(chan error, 1)
	if s.debug != nil {
		go func() { debugDone <- s.debug.Serve(s.debugLn) }()
		s.log.Info("pprof serving", "url", "http://"+s.debugLn.Addr().String()+"/debug/pprof/")
	} else {
		debugDone <- http.ErrServerClosed
	}
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	s.log.Info("wardline serving", "url", scheme+"://"+s.ln.Addr().String(), "store", redact(storeName(s.cfg)), "epoch", s.store.Epoch())

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveDone:
		serveDone <- err
		runErr = fmt.Errorf("http: %w", err)
	case err := <-runnerDone:
		runnerDone <- err
		runErr = fmt.Errorf("projections stopped: %w", err)
	}

	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// The gateway first: http.Server.Shutdown does not wait for hijacked
	// WebSocket connections, and session ends must reach the store.
	if err := s.gateway.Shutdown(sctx); err != nil {
		s.log.Warn("gateway shutdown", "err", err)
	}
	if err := s.http.Shutdown(sctx); err != nil {
		s.log.Warn("http shutdown", "err", err)
	}
	if s.debug != nil {
		_ = s.debug.Close()
	}
	<-debugDone
	if err := <-serveDone; err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = fmt.Errorf("http: %w", err)
	}
	stopRunner()
	if err := <-runnerDone; err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
		runErr = fmt.Errorf("projections: %w", err)
	}
	if err := s.closeStorage(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func (s *server) closeStorage() error {
	var errs []error
	if s.verifier != nil {
		errs = append(errs, s.verifier.Close())
	}
	if s.runner != nil {
		errs = append(errs, s.runner.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	if s.ln != nil && s.http == nil {
		errs = append(errs, s.ln.Close())
	}
	return errors.Join(errs...)
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// readyz is ready while the store answers and every projection is live and
// within ReadyMaxLag events of the head.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	body := readyzBody{Ready: true}
	if _, err := s.store.Head(ctx); err != nil {
		body.Ready, body.Reason = false, "store: "+err.Error()
	}
	statuses, err := s.runner.Status(ctx)
	if err != nil && body.Ready {
		body.Ready, body.Reason = false, "projections: "+err.Error()
	}
	body.Projections = statuses
	for _, st := range statuses {
		if !body.Ready {
			break
		}
		switch {
		case st.Err != nil:
			body.Ready, body.Reason = false, fmt.Sprintf("projection %s failed: %v", st.Name, st.Err)
		case st.Lag > s.cfg.ReadyMaxLag:
			body.Ready, body.Reason = false, fmt.Sprintf("projection %s is %d events behind", st.Name, st.Lag)
		}
	}
	code := http.StatusOK
	if !body.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// newVerifier builds the JWT verifier from the configuration.
func newVerifier(cfg Config, log *slog.Logger) (*auth.Verifier, error) {
	ac := auth.Config{
		Secret:          cfg.verifierSecret(),
		JWKSURL:         cfg.JWKSURL,
		Issuer:          cfg.JWTIssuer,
		Audience:        cfg.JWTAudience,
		AllowQueryToken: cfg.AllowQueryToken,
		Logger:          log,
	}
	for _, f := range strings.Split(cfg.JWTPublicKey, ",") {
		if f = strings.TrimSpace(f); f != "" {
			ac.PublicKeyFiles = append(ac.PublicKeyFiles, f)
		}
	}
	v, err := auth.NewVerifier(ac)
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	return v, nil
}

// sessionSecret keys session cookies and Socket.IO resume ids. Every node
// must share it, so a random one is only a fallback, with a warning.
func sessionSecret(cfg Config, log *slog.Logger) ([]byte, error) {
	switch {
	case cfg.SessionSecret != "":
		if len(cfg.SessionSecret) < 32 {
			return nil, fmt.Errorf("--session-secret: at least 32 bytes, got %d", len(cfg.SessionSecret))
		}
		return []byte(cfg.SessionSecret), nil
	case cfg.verifierSecret() != nil:
		return cfg.verifierSecret(), nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	log.Warn("no WARDLINE_SESSION_SECRET: using a random one, so session cookies and Socket.IO resume do not survive a restart and do not work across nodes")
	return b, nil
}
