package gateway_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore/memstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/presence"
	"github.com/wardline/wardline/projections/rooms"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/native"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// harness runs a real gateway on 127.0.0.1 over the in-memory store and a
// real projections Runner.
type harness struct {
	t        testing.TB
	store    *memstore.Store
	runner   *projections.Runner
	rooms    *rooms.Model
	presence *presence.Model
	gw       *gateway.Gateway
	srv      *httptest.Server
	minter   *auth.Minter
	registry *prometheus.Registry
	listener *trackingListener
	cfg      gateway.Config
}

// config is the harness gateway's Config, without its metrics registry, to
// build another Gateway from.
func (h *harness) config() gateway.Config {
	c := h.cfg
	c.Registry = nil
	return c
}

// trackingListener remembers accepted connections so a test can cut them
// all from the server side.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	// sendBuffer, when set, shrinks the server side's socket send buffer,
	// so that a client that stops reading blocks the server's writes at
	// once rather than after megabytes of kernel buffering.
	sendBuffer atomic.Int32
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if n := l.sendBuffer.Load(); err == nil && n > 0 {
		_ = c.(*net.TCPConn).SetWriteBuffer(int(n))
	}
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// dropAll closes every connection accepted so far, as a network failure
// would.
func (l *trackingListener) dropAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

func newHarness(t testing.TB, adjust func(*gateway.Config)) *harness {
	t.Helper()
	h := &harness{t: t, store: memstore.New(), rooms: rooms.New(), presence: presence.New(), registry: prometheus.NewRegistry()}
	var hook atomic.Pointer[gateway.Gateway]
	ctx, cancel := context.WithCancel(context.Background())
	runner, err := projections.NewRunner(ctx, projections.Config{
		Store: h.store, Path: filepath.Join(t.TempDir(), "projections.db"),
		OnApplied: func(ctx context.Context, b []projections.Applied) {
			if gw := hook.Load(); gw != nil {
				gw.OnApplied(ctx, b)
			}
		},
	}, h.rooms, h.presence)
	if err != nil {
		t.Fatal(err)
	}
	h.runner = runner
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = runner.Run(ctx)
	}()
	verifier, err := auth.NewVerifier(auth.Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	h.minter, err = auth.NewMinter(auth.MinterConfig{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{
		Store: h.store, Runner: runner, Rooms: h.rooms, Presence: h.presence, Verifier: verifier,
		Secret: testSecret, NodeID: "node-1", Registry: h.registry,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	h.cfg = cfg
	h.gw, err = gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hook.Store(h.gw)
	h.srv = httptest.NewUnstartedServer(h.gw.Handler())
	h.listener = &trackingListener{Listener: h.srv.Listener}
	h.srv.Listener = h.listener
	h.srv.Start()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = h.gw.Shutdown(sctx)
		h.srv.Close()
		cancel()
		<-done
		_ = runner.Close()
		_ = verifier.Close()
		_ = h.store.Close()
	})
	return h
}

func (h *harness) token(sub string, ttl time.Duration, roles ...domain.Role) string {
	h.t.Helper()
	tok, err := h.minter.Mint(auth.Claims{Subject: sub, Roles: roles}, ttl)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func (h *harness) nurse(sub string) string { return h.token(sub, time.Hour, domain.RoleNurse) }

func (h *harness) wsURL() string { return "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws/chat" }

// frame is a decoded server frame.
type frame struct {
	ID     *int64          `json:"id"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Offset string          `json:"offset"`
}

// nclient is a test client of the native protocol.
type nclient struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan frame
	done   chan struct{}
	mu     sync.Mutex
	close  *websocket.CloseError
	nextID int64
	// pending holds frames read while waiting for something else.
	pending []frame
}

func (h *harness) dialNative(header http.Header) (*nclient, *http.Response, error) {
	conn, resp, err := websocket.DefaultDialer.Dial(h.wsURL(), header)
	if err != nil {
		return nil, resp, err
	}
	c := &nclient{t: h.t, conn: conn, frames: make(chan frame, 4096), done: make(chan struct{})}
	go c.read()
	h.t.Cleanup(func() { _ = c.conn.Close(); <-c.done })
	return c, resp, nil
}

// connect dials and authenticates with an auth frame, returning the client
// and the auth ack.
func (h *harness) connect(token, offset string) *nclient {
	h.t.Helper()
	c, _, err := h.dialNative(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	data := map[string]string{"token": token}
	if offset != "" {
		data["offset"] = offset
	}
	ack := c.request("auth", data)
	if !success(ack) {
		h.t.Fatalf("auth refused: %s", ack)
	}
	c.waitPush("connected", nil)
	return c
}

func (c *nclient) read() {
	defer close(c.done)
	for {
		_, b, err := c.conn.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				c.mu.Lock()
				c.close = ce
				c.mu.Unlock()
			}
			close(c.frames)
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Errorf("undecodable frame %q: %v", b, err)
			continue
		}
		c.frames <- f
	}
}

func (c *nclient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *nclient) sendRaw(b []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame matching keep, keeping the others for later.
func (c *nclient) next(keep func(frame) bool, what string) frame {
	c.t.Helper()
	for i, f := range c.pending {
		if keep(f) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return f
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("connection closed (%v) while waiting for %s", c.closeErr(), what)
			}
			if keep(f) {
				return f
			}
			c.pending = append(c.pending, f)
		case <-timeout:
			c.t.Fatalf("timed out waiting for %s; pending %v", what, c.pending)
		}
	}
}

func (c *nclient) request(event string, data any) json.RawMessage {
	c.t.Helper()
	c.nextID++
	id := c.nextID
	c.send(map[string]any{"id": id, "event": event, "data": data})
	f := c.next(func(f frame) bool { return f.ID != nil && *f.ID == id }, "reply to "+event)
	return f.Data
}

// tryRequest is request, returning nil when the connection closes first.
func (c *nclient) tryRequest(event string, data any) json.RawMessage {
	c.t.Helper()
	c.nextID++
	id := c.nextID
	b, _ := json.Marshal(map[string]any{"id": id, "event": event, "data": data})
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil
	}
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return nil
			}
			if f.ID != nil && *f.ID == id {
				return f.Data
			}
			c.pending = append(c.pending, f)
		case <-time.After(10 * time.Second):
			c.t.Fatalf("timed out waiting for the reply to %s", event)
		}
	}
}

func (c *nclient) waitPush(event string, match func(frame) bool) frame {
	c.t.Helper()
	return c.next(func(f frame) bool { return f.ID == nil && f.Event == event && (match == nil || match(f)) }, "push "+event)
}

// noPush asserts that no push of event arrives before a marker request
// round-trips (the server handles a connection's frames in order, and the
// hub delivers in log order).
func (c *nclient) noPushBefore(event string, marker func()) {
	c.t.Helper()
	marker()
	for _, f := range c.pending {
		if f.ID == nil && f.Event == event {
			c.t.Fatalf("unexpected %s push: %s", event, f.Data)
		}
	}
}

func (c *nclient) closeErr() *websocket.CloseError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.close
}

// waitClosed waits for the server to close and returns the close code.
func (c *nclient) waitClosed() int {
	c.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				if ce := c.closeErr(); ce != nil {
					return ce.Code
				}
				return native.CloseAbnormal
			}
			c.pending = append(c.pending, f)
		case <-timeout:
			c.t.Fatal("timed out waiting for the close")
		}
	}
}

type ack struct {
	Success bool `json:"success"`
	Error   struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func success(raw json.RawMessage) bool {
	var a ack
	_ = json.Unmarshal(raw, &a)
	return a.Success
}

func errCode(raw json.RawMessage) string {
	var a ack
	_ = json.Unmarshal(raw, &a)
	return a.Error.Code
}

func decode[T any](t testing.TB, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

func mustOK(t testing.TB, raw json.RawMessage) json.RawMessage {
	t.Helper()
	if !success(raw) {
		t.Fatalf("request failed: %s", raw)
	}
	return raw
}

// dialNativeUnread authenticates a connection that never reads again: a
// slow consumer.
func (h *harness) dialNativeUnread(token string) (*websocket.Conn, *http.Response, error) {
	conn, resp, err := websocket.DefaultDialer.Dial(h.wsURL(), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, resp, err
	}
	_ = conn.UnderlyingConn().(*net.TCPConn).SetReadBuffer(4096)
	return conn, resp, nil
}

// metricValue sums the samples of metric name whose labels include
// every given name=value pair.
func (h *harness) metricValue(name string, labels map[string]string) float64 {
	h.t.Helper()
	mfs, err := h.registry.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}
