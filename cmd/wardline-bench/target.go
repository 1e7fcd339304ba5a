package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
)

// tokenTTL outlives any bounded run, so no session ends mid-measurement.
const tokenTTL = 2 * time.Hour

// target is the server under test: where to connect, how to mint tokens
// it accepts, and (when known) its pid for CPU and memory figures.
type target struct {
	addr      string
	debugAddr string // the server's /debug/pprof listener; empty when unknown
	pid       int    // 0 when the server's process is unknown
	minter    *auth.Minter
	runID     string // prefixes user and room ids, so runs against one server never collide
	dialer    *websocket.Dialer
	transport transport
}

// transport is the protocol the tool speaks to the server.
type transport string

const (
	transportNative   transport = "native"   // /ws/chat
	transportSocketIO transport = "socketio" // Socket.IO v4 on /chat, WebSocket only
)

func (t *transport) String() string { return string(*t) }

// Set implements flag.Value.
func (t *transport) Set(v string) error {
	switch transport(v) {
	case transportNative, transportSocketIO:
		*t = transport(v)
		return nil
	}
	return fmt.Errorf("transport %q is not native or socketio", v)
}

// dial opens a connection in the target's protocol, not yet authenticated.
func (t *target) dial(ctx context.Context) (*conn, error) {
	if t.transport == transportSocketIO {
		return dialSIO(ctx, t.dialer, t.addr)
	}
	return dial(ctx, t.dialer, t.addr)
}

// token mints a token for user with roles.
func (t *target) token(user string, roles ...domain.Role) (string, error) {
	tok, err := t.minter.Mint(auth.Claims{Subject: user, Roles: roles}, tokenTTL)
	if err != nil {
		return "", fmt.Errorf("mint token for %s: %w", user, err)
	}
	return tok, nil
}

// connect dials /ws/chat (or /socket.io/) and authenticates with token.
func (t *target) connect(ctx context.Context, token string) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	c, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.authenticate(ctx, token); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// sample reads the server's CPU and memory; ok is false when the server's
// pid is unknown.
func (t *target) sample() (s procSample, ok bool, err error) {
	if t.pid == 0 {
		return s, false, nil
	}
	s, err = readProc(t.pid)
	return s, err == nil, err
}

// forEach runs fn(i) for i in [0, n) with at most inflight calls at once
// and returns the first error; it stops starting new calls after an error
// or when ctx ends, and returns only when every started call has returned.
func forEach(ctx context.Context, n, inflight int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(inflight, 1))
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		// ctx ended from outside (the parent), not by an error of ours.
		firstErr = ctx.Err()
	}
	return firstErr
}

// errNoServerPprof is returned when the server does not serve /debug/pprof/.
var errNoServerPprof = errors.New("server exposes no /debug/pprof/profile (give --server-debug-addr with --addr)")

// serverProfile fetches a CPU profile of the server over the next d from
// its /debug/pprof/profile endpoint into path.
func (t *target) serverProfile(ctx context.Context, d time.Duration, path string) error {
	if t.debugAddr == "" {
		return errNoServerPprof
	}
	secs := max(int(d/time.Second), 1)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.debugAddr, secs), nil)
	if err != nil {
		return fmt.Errorf("server profile: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("server profile: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusNotFound {
		return errNoServerPprof
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server profile: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("server profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("server profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("server profile: %w", err)
	}
	return nil
}
