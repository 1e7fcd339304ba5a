package native_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wardline/wardline/transport/native"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type closed struct {
	conn *native.Conn
	info native.CloseInfo
}

type connected struct {
	conn   *native.Conn
	offset string
}

// harness runs a native.Server on 127.0.0.1 with hooks that tests steer by
// token and event name.
type harness struct {
	t        testing.TB
	srv      *native.Server
	hs       *httptest.Server
	connects chan connected
	closes   chan closed
	release  chan struct{} // unblocks the "block" event
	started  chan struct{} // a "block" event has started
}

func newHarness(t testing.TB, adjust func(*native.Config)) *harness {
	t.Helper()
	return newHarnessOn(t, adjust, nil)
}

// newHarnessOn is newHarness whose HTTP server accepts through wrap's
// listener (the plain one when wrap is nil).
func newHarnessOn(t testing.TB, adjust func(*native.Config), wrap func(net.Listener) net.Listener) *harness {
	t.Helper()
	h := &harness{
		t:        t,
		connects: make(chan connected, 100),
		closes:   make(chan closed, 100),
		release:  make(chan struct{}),
		started:  make(chan struct{}, 10),
	}
	cfg := native.Config{
		Namespaces: []string{"chat", "/notifications"},
		Authenticate: func(r *http.Request) (native.Session, error) {
			auth := r.Header.Get("Authorization")
			switch {
			case auth == "":
				return native.Session{}, native.ErrNoCredentials
			case strings.HasPrefix(auth, "Bearer good:"):
				return native.Session{UserID: strings.TrimPrefix(auth, "Bearer good:")}, nil
			}
			return native.Session{}, errors.New("signature invalid")
		},
		OnAuth: func(ctx context.Context, c *native.Conn, token, offset string) (native.Session, error) {
			switch {
			case strings.HasPrefix(token, "good:"):
				return native.Session{UserID: strings.TrimPrefix(token, "good:")}, nil
			case token == "malformed-offset":
				return native.Session{}, native.Errorf(native.CodeInvalid, "bad offset")
			case token == "forbidden":
				return native.Session{}, native.Errorf(native.CodeForbidden, "account locked")
			case token == "slow":
				<-ctx.Done()
				return native.Session{}, ctx.Err()
			}
			return native.Session{}, native.Errorf(native.CodeUnauthorized, "token refused")
		},
		OnConnect: func(ctx context.Context, c *native.Conn, offset string) {
			h.connects <- connected{c, offset}
		},
		OnEvent: func(ctx context.Context, c *native.Conn, event string, data json.RawMessage) (any, error) {
			switch event {
			case "echo":
				return data, nil
			case "fail":
				return nil, native.Errorf(native.CodeNotFound, "no such room")
			case "oops":
				return nil, errors.New("db: connection reset")
			case "panic":
				panic("handler bug")
			case "block":
				h.started <- struct{}{}
				select {
				case <-h.release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				return map[string]string{"done": "yes"}, nil
			case "later":
				h.started <- struct{}{}
				return native.Pending(func() (any, error) {
					select {
					case <-h.release:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
					return map[string]string{"done": "later"}, nil
				}), nil
			case "limit":
				c.CloseWithError(native.CloseRateLimited, &native.Error{Code: native.CodeRateLimited, Message: "rate limit exceeded"}, event)
				return nil, nil
			}
			return nil, native.Errorf(native.CodeInvalid, "unknown event %q", event)
		},
		OnClose: func(c *native.Conn, info native.CloseInfo) {
			h.closes <- closed{c, info}
		},
	}
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := native.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/ws/{namespace}", srv)
	h.hs = httptest.NewUnstartedServer(mux)
	if wrap != nil {
		h.hs.Listener = wrap(h.hs.Listener)
	}
	h.hs.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		h.hs.Close()
	})
	return h
}

func (h *harness) url(ns string) string {
	return "ws" + strings.TrimPrefix(h.hs.URL, "http") + "/ws/" + ns
}

type wsConn struct {
	t testing.TB
	c *websocket.Conn
}

func (h *harness) dial(ns string, hdr http.Header) *wsConn {
	h.t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(h.url(ns), hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		h.t.Fatalf("dial %s: %v (HTTP %d)", ns, err, status)
	}
	h.t.Cleanup(func() { c.Close() })
	return &wsConn{t: h.t, c: c}
}

// dialStatus dials expecting a refusal and returns the HTTP status.
func (h *harness) dialStatus(ns string, hdr http.Header) int {
	h.t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(h.url(ns), hdr)
	if err == nil {
		c.Close()
		h.t.Fatalf("dial %s succeeded, want a refusal", ns)
	}
	if resp == nil {
		h.t.Fatalf("dial %s: %v without a response", ns, err)
		return 0
	}
	return resp.StatusCode
}

func (w *wsConn) send(s string) {
	w.t.Helper()
	if err := w.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// next reads one frame, failing the test on a close or timeout.
func (w *wsConn) next() native.Frame {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, b, err := w.c.ReadMessage()
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		w.t.Fatalf("server sent frame type %d", typ)
	}
	f, err := native.DecodeFrame(b)
	if err != nil {
		w.t.Fatalf("server sent %q: %v", b, err)
	}
	return f
}

// dialSmallReadBuffer dials /ws/chat with a client receive buffer of
// size bytes, so that the server's writes block after little data.
func (h *harness) dialSmallReadBuffer(size int) *websocket.Conn {
	h.t.Helper()
	dialer := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(size)
		}
		return c, err
	}}
	c, _, err := dialer.Dial(h.url("chat"), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// expectClose reads until the server's close frame and checks its code.
func (w *wsConn) expectClose(code int) *websocket.CloseError {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := w.c.ReadMessage()
		if err == nil {
			continue // frames queued before the close
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			w.t.Fatalf("read %q then %v, want close %d", b, err, code)
		}
		if ce.Code != code {
			w.t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Text, code)
		}
		return ce
	}
}

type ack struct {
	Success   bool          `json:"success"`
	Error     *native.Error `json:"error"`
	UserID    string        `json:"userId"`
	SessionID string        `json:"sessionId"`
}

func decodeAck(t testing.TB, f native.Frame, id int64) ack {
	t.Helper()
	if !f.HasID || f.ID != id || f.Event != "" {
		t.Fatalf("got frame %+v (data %s), want the reply to %d", f, f.Data, id)
	}
	var a ack
	if err := json.Unmarshal(f.Data, &a); err != nil {
		t.Fatalf("ack %s: %v", f.Data, err)
	}
	return a
}

func decodeException(t testing.TB, f native.Frame) (e native.Error, event string) {
	t.Helper()
	if f.Event != "exception" || f.HasID {
		t.Fatalf("got frame %+v (data %s), want an exception", f, f.Data)
	}
	var d struct {
		Code    native.Code `json:"code"`
		Message string      `json:"message"`
		Event   *string     `json:"event"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil || d.Event == nil {
		t.Fatalf("exception %s: %v (event present: %v)", f.Data, err, d.Event != nil)
	}
	return native.Error{Code: d.Code, Message: d.Message}, *d.Event
}

// authenticate sends an auth frame and checks the ack and connected push.
func (w *wsConn) authenticate(user string) (sessionID string) {
	w.t.Helper()
	w.send(`{"id":1,"event":"auth","data":{"token":"good:` + user + `","offset":"e.5"}}`)
	a := decodeAck(w.t, w.next(), 1)
	if !a.Success || a.UserID != user || a.SessionID == "" {
		w.t.Fatalf("auth ack %+v", a)
	}
	f := w.next()
	var c struct{ SocketID, UserID, Timestamp string }
	if f.Event != "connected" || json.Unmarshal(f.Data, &c) != nil || c.SocketID != a.SessionID || c.UserID != user {
		w.t.Fatalf("after the ack got %+v (%s), want connected", f, f.Data)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z07:00", c.Timestamp); err != nil || !strings.HasSuffix(c.Timestamp, "Z") {
		w.t.Fatalf("connected timestamp %q is not RFC 3339 UTC with milliseconds", c.Timestamp)
	}
	return a.SessionID
}

// echoes checks the connection still serves requests.
func (w *wsConn) echoes(id int64) {
	w.t.Helper()
	w.send(`{"id":` + itoa(id) + `,"event":"echo","data":{"n":1}}`)
	f := w.next()
	if a := decodeAck(w.t, f, id); !a.Success || !strings.Contains(string(f.Data), `"n":1`) {
		w.t.Fatalf("echo reply %s", f.Data)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func (h *harness) waitClose() closed {
	h.t.Helper()
	select {
	case c := <-h.closes:
		return c
	case <-time.After(10 * time.Second):
		h.t.Fatal("no OnClose")
	}
	return closed{}
}

func (h *harness) waitConnect() connected {
	h.t.Helper()
	select {
	case c := <-h.connects:
		return c
	case <-time.After(5 * time.Second):
		h.t.Fatal("no OnConnect")
	}
	return connected{}
}

func TestHandshakeIsRefusedBeforeTheUpgrade(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name   string
		ns     string
		header http.Header
		want   int
	}{
		{"an unknown namespace is 404", "admin", nil, http.StatusNotFound},
		{"a nested path is 404", "chat/x", nil, http.StatusNotFound},
		{"a foreign origin is 403", "chat", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"the null origin is 403", "chat", http.Header{"Origin": {"null"}}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.dialStatus(tt.ns, tt.header); got != tt.want {
				t.Fatalf("HTTP %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("the same origin and no origin are accepted", func(t *testing.T) {
		h.dial("chat", http.Header{"Origin": {h.hs.URL}})
		h.dial("notifications", nil)
	})
}

func TestCheckRequestRefusalIs403(t *testing.T) {
	h := newHarness(t, func(c *native.Config) {
		c.CheckRequest = func(r *http.Request) error {
			if r.Header.Get("Origin") != "https://app.example" {
				return errors.New("origin not in allow-list")
			}
			return nil
		}
	})
	if got := h.dialStatus("chat", http.Header{"Origin": {"https://other.example"}}); got != http.StatusForbidden {
		t.Fatalf("HTTP %d, want 403", got)
	}
	h.dial("chat", http.Header{"Origin": {"https://app.example"}})
}

func TestAuthFrameAuthenticates(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	sid := w.authenticate("u1")
	got := h.waitConnect()
	if got.conn.ID() != sid || got.offset != "e.5" || got.conn.Namespace() != "chat" {
		t.Fatalf("OnConnect got id %q offset %q ns %q; want %q e.5 chat", got.conn.ID(), got.offset, got.conn.Namespace(), sid)
	}
	if s, ok := got.conn.Session(); !ok || s.UserID != "u1" {
		t.Fatalf("session %+v %v", s, ok)
	}
	w.echoes(2)
}

func TestRequestBeforeAuthIsUnauthorizedAndTheConnectionStays(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.send(`{"id":3,"event":"echo","data":{}}`)
	if a := decodeAck(t, w.next(), 3); a.Success || a.Error == nil || a.Error.Code != native.CodeUnauthorized {
		t.Fatalf("ack %+v, want unauthorized", a)
	}
	w.send(`{"event":"typing:start","data":{}}`)
	if e, ev := decodeException(t, w.next()); e.Code != native.CodeUnauthorized || ev != "typing:start" {
		t.Fatalf("exception %+v for %q, want unauthorized for typing:start", e, ev)
	}
	w.authenticate("u1")
	w.echoes(4)
}

func TestAuthTimeoutCloses4408(t *testing.T) {
	h := newHarness(t, func(c *native.Config) { c.AuthTimeout = 200 * time.Millisecond })
	w := h.dial("chat", nil)
	w.expectClose(native.CloseAuthTimeout)
	got := h.waitClose()
	if got.info.Code != native.CloseAuthTimeout || !errors.Is(got.info.Err, native.ErrAuthTimeout) || got.info.Remote {
		t.Fatalf("OnClose %+v", got.info)
	}
}

func TestAuthThatOutlivesTheTimeoutIsNotEstablished(t *testing.T) {
	h := newHarness(t, func(c *native.Config) { c.AuthTimeout = 200 * time.Millisecond })
	w := h.dial("chat", nil)
	w.send(`{"id":1,"event":"auth","data":{"token":"slow"}}`)
	w.expectClose(native.CloseAuthTimeout)
}

func TestRefusedAuthFrame(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		wantCode  native.Code
		wantClose int
	}{
		{"a refused token gets an unauthorized exception and 4401", "bad", native.CodeUnauthorized, native.CloseUnauthorized},
		{"a forbidden account gets a forbidden exception and 4403", "forbidden", native.CodeForbidden, native.CloseForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			w := h.dial("chat", nil)
			w.send(`{"id":1,"event":"auth","data":{"token":"` + tt.token + `"}}`)
			e, ev := decodeException(t, w.next())
			if e.Code != tt.wantCode || ev != "auth" {
				t.Fatalf("exception %+v for %q", e, ev)
			}
			ce := w.expectClose(tt.wantClose)
			if ce.Text != e.Message {
				t.Fatalf("close reason %q, want %q", ce.Text, e.Message)
			}
			if got := h.waitClose(); got.info.Code != tt.wantClose || got.info.Remote {
				t.Fatalf("OnClose %+v", got.info)
			}
		})
	}
}

func TestMalformedAuthDataIsInvalidAndTheConnectionStays(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	for i, data := range []string{`null`, `"tok"`, `{}`, `{"token":""}`, `{"token":5}`, `{"token":"t","offset":1}`} {
		id := int64(i + 1)
		w.send(`{"id":` + itoa(id) + `,"event":"auth","data":` + data + `}`)
		if a := decodeAck(t, w.next(), id); a.Success || a.Error.Code != native.CodeInvalid {
			t.Fatalf("auth data %s: ack %+v, want invalid", data, a)
		}
	}
	w.send(`{"id":20,"event":"auth","data":{"token":"malformed-offset","offset":"zz"}}`)
	if a := decodeAck(t, w.next(), 20); a.Success || a.Error.Code != native.CodeInvalid || a.Error.Message != "bad offset" {
		t.Fatalf("OnAuth invalid: ack %+v", a)
	}
	w.authenticate("u1")
	w.send(`{"id":21,"event":"auth","data":{"token":"good:u1"}}`)
	if a := decodeAck(t, w.next(), 21); a.Success || a.Error.Code != native.CodeInvalid {
		t.Fatalf("second auth: ack %+v, want invalid", a)
	}
}

func TestHandshakeAuthentication(t *testing.T) {
	t.Run("a valid Authorization header authenticates at once", func(t *testing.T) {
		h := newHarness(t, nil)
		q := h.url("chat")
		c, _, err := websocket.DefaultDialer.Dial(q+"?offset=e.9", http.Header{"Authorization": {"Bearer good:u7"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		w := &wsConn{t: t, c: c}
		f := w.next()
		if f.Event != "connected" || !strings.Contains(string(f.Data), `"userId":"u7"`) {
			t.Fatalf("first frame %+v %s, want connected", f, f.Data)
		}
		if got := h.waitConnect(); got.offset != "e.9" {
			t.Fatalf("OnConnect offset %q, want e.9", got.offset)
		}
		w.echoes(1)
	})
	t.Run("a refused Authorization header gets an exception and 4401", func(t *testing.T) {
		h := newHarness(t, nil)
		w := h.dial("chat", http.Header{"Authorization": {"Bearer forged"}})
		if e, _ := decodeException(t, w.next()); e.Code != native.CodeUnauthorized || e.Message != "authentication failed" {
			t.Fatalf("exception %+v; an uncoded error must not leak its text", e)
		}
		w.expectClose(native.CloseUnauthorized)
	})
}

func TestMalformedFramesGetAnInvalidExceptionAndTheConnectionStays(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.authenticate("u1")
	tests := []struct {
		name      string
		frame     string
		wantEvent string
		wantText  string
	}{
		{"text that is not JSON", `not json`, "", "not valid JSON"},
		{"a JSON array", `[1]`, "", "not a JSON object"},
		{"an object without event", `{"id":5,"data":{}}`, "", `missing "event"`},
		{"an event that is not a string", `{"id":5,"event":7}`, "", "event must be a string"},
		{"a string id", `{"id":"5","event":"echo"}`, "echo", "id must be an integer"},
		{"a fractional id", `{"id":5.5,"event":"echo"}`, "echo", "id must be an integer"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.t = t
			w.send(tt.frame)
			e, ev := decodeException(t, w.next())
			if e.Code != native.CodeInvalid || ev != tt.wantEvent || !strings.Contains(e.Message, tt.wantText) {
				t.Fatalf("exception %+v for %q, want invalid %q for %q", e, ev, tt.wantText, tt.wantEvent)
			}
			w.echoes(int64(100 + i))
		})
	}
	t.Run("a binary frame", func(t *testing.T) {
		w.t = t
		if err := w.c.WriteMessage(websocket.BinaryMessage, []byte(`{"event":"echo"}`)); err != nil {
			t.Fatal(err)
		}
		e, _ := decodeException(t, w.next())
		if e.Code != native.CodeInvalid || !strings.Contains(e.Message, "binary") {
			t.Fatalf("exception %+v", e)
		}
		w.echoes(200)
	})
}

func TestHandlerOutcomes(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.authenticate("u1")
	tests := []struct {
		name     string
		event    string
		wantCode native.Code
		wantMsg  string
	}{
		{"a coded error is the ack's error", "fail", native.CodeNotFound, "no such room"},
		{"an uncoded error is internal", "oops", native.CodeInternal, "internal error"},
		{"a panicking handler is internal and the connection survives", "panic", native.CodeInternal, "internal error"},
		{"an unknown event is what the gateway says", "nope", native.CodeInvalid, `unknown event "nope"`},
	}
	for i, tt := range tests {
		t.Run(tt.name+" (with id)", func(t *testing.T) {
			w.t = t
			id := int64(10 + i)
			w.send(`{"id":` + itoa(id) + `,"event":"` + tt.event + `"}`)
			a := decodeAck(t, w.next(), id)
			if a.Success || a.Error.Code != tt.wantCode || a.Error.Message != tt.wantMsg {
				t.Fatalf("ack %+v", a)
			}
		})
		t.Run(tt.name+" (without id, as an exception)", func(t *testing.T) {
			w.t = t
			w.send(`{"event":"` + tt.event + `"}`)
			e, ev := decodeException(t, w.next())
			if e.Code != tt.wantCode || e.Message != tt.wantMsg || ev != tt.event {
				t.Fatalf("exception %+v for %q", e, ev)
			}
		})
	}
	t.Run("a successful request without id gets no frame", func(t *testing.T) {
		w.t = t
		w.send(`{"event":"echo","data":{}}`)
		w.echoes(50) // the next frame is this reply, so nothing came in between
	})
}

func TestOversizeFrameCloses1009(t *testing.T) {
	h := newHarness(t, func(c *native.Config) { c.MaxFrameSize = 1024 })
	w := h.dial("chat", nil)
	w.authenticate("u1")
	w.send(`{"event":"echo","data":"` + strings.Repeat("x", 2000) + `"}`)
	w.expectClose(native.CloseTooLarge)
	if got := h.waitClose(); got.info.Code != native.CloseTooLarge || !errors.Is(got.info.Err, native.ErrFrameTooLarge) {
		t.Fatalf("OnClose %+v", got.info)
	}
}

func TestGatewayCanCloseWithAReason(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.authenticate("u1")
	w.send(`{"id":2,"event":"limit"}`)
	// CloseWithError ran inside the handler, so its exception is queued
	// first; the reply owed to the request still follows, before the close.
	e, ev := decodeException(t, w.next())
	if e.Code != native.CodeRateLimited || ev != "limit" {
		t.Fatalf("exception %+v %q", e, ev)
	}
	if a := decodeAck(t, w.next(), 2); !a.Success {
		t.Fatalf("ack %+v", a)
	}
	ce := w.expectClose(native.CloseRateLimited)
	if ce.Text != "rate limit exceeded" {
		t.Fatalf("reason %q", ce.Text)
	}
	c := h.waitConnect().conn
	if err := c.Send([]byte(`{}`)); !errors.Is(err, native.ErrClosed) {
		t.Fatalf("Send after close: %v, want ErrClosed", err)
	}
}

func TestPeerThatStopsAnsweringPingsIsDropped(t *testing.T) {
	h := newHarness(t, func(c *native.Config) {
		c.PingPeriod = 50 * time.Millisecond
		c.PongWait = 200 * time.Millisecond
	})
	w := h.dial("chat", nil)
	w.c.SetPingHandler(func(string) error { return nil }) // a hung client: no pongs
	w.authenticate("u1")
	go func() { // keep reading so pings are consumed (and ignored)
		for {
			if _, _, err := w.c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	got := h.waitClose()
	if got.info.Code != native.CloseAbnormal || !got.info.Remote || got.info.Err == nil {
		t.Fatalf("OnClose %+v, want an abnormal end with the read error", got.info)
	}
}

func TestPingsKeepAHealthyIdleConnectionOpen(t *testing.T) {
	h := newHarness(t, func(c *native.Config) {
		// Wide enough margins for a loaded 2-core machine, where a pong
		// can take a few hundred milliseconds.
		c.PingPeriod = 100 * time.Millisecond
		c.PongWait = time.Second
	})
	w := h.dial("chat", nil)
	w.authenticate("u1")
	pings := make(chan struct{}, 1000)
	w.c.SetPingHandler(func(s string) error {
		pings <- struct{}{}
		return w.c.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
	})
	frames := make(chan native.Frame, 10)
	go func() { // the only reader from here on; it processes the pings
		defer close(frames)
		for {
			_, b, err := w.c.ReadMessage()
			if err != nil {
				return
			}
			f, _ := native.DecodeFrame(b)
			frames <- f
		}
	}()
	// 25 pings span more than two pong waits of data silence.
	for i := 0; i < 25; i++ {
		select {
		case <-pings:
		case got := <-h.closes:
			t.Fatalf("healthy connection closed: %+v", got.info)
		case <-time.After(5 * time.Second):
			t.Fatal("no ping")
		}
	}
	w.send(`{"id":5,"event":"echo","data":{}}`)
	select {
	case f := <-frames:
		if a := decodeAck(t, f, 5); !a.Success {
			t.Fatalf("ack %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply after the idle period")
	}
}

func TestSlowConsumerIsClosed1013WhileOthersKeepReceiving(t *testing.T) {
	h := newHarness(t, func(c *native.Config) { c.SendQueueMessages = 64 })
	// The slow client shrinks its receive buffer so the server's queue,
	// not the kernel, fills up within a bounded number of frames. (A few
	// KiB would make Linux's zero-window probing stall the final read.)
	sc := h.dialSmallReadBuffer(64 << 10)
	slow := &wsConn{t: t, c: sc}
	slow.authenticate("slow")
	slowConn := h.waitConnect().conn
	fast := h.dial("chat", nil)
	fast.authenticate("fast")
	fastConn := h.waitConnect().conn

	const max = 5000
	received := make(chan int, 1)
	go func() { // counts pushes until the end marker
		n := 0
		_ = fast.c.SetReadDeadline(time.Now().Add(60 * time.Second))
		for {
			_, b, err := fast.c.ReadMessage()
			if err != nil {
				break
			}
			if f, _ := native.DecodeFrame(b); f.Event == "end" {
				break
			}
			n++
		}
		received <- n
	}()
	payload := map[string]string{"content": strings.Repeat("p", 16<<10)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	overflowAt, sent := -1, 0
	for i := 0; i < max && (overflowAt < 0 || i < overflowAt+200); i++ {
		frame, err := native.EncodePush("message:new", payload, "e."+itoa(int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if overflowAt < 0 {
			if err := slowConn.Send(frame); errors.Is(err, native.ErrSlowConsumer) {
				overflowAt = i
			} else if err != nil {
				t.Fatalf("Send to the slow client: %v", err)
			}
		}
		// The fast client is paced by SendWait so that a scheduler hiccup
		// on a shared machine cannot make it a slow consumer too.
		if err := fastConn.SendWait(ctx, frame); err != nil {
			t.Fatalf("SendWait to the fast client at %d: %v", i, err)
		}
		sent++
	}
	if overflowAt < 0 {
		t.Fatalf("the slow client never overflowed in %d frames", max)
	}
	t.Logf("overflow at %d, sent %d", overflowAt, sent)
	// Now the slow client reads: it finds frames, then the 1013 close.
	t0 := time.Now()
	slow.expectClose(native.CloseTryAgain)
	t.Logf("slow close read in %v", time.Since(t0))
	got := h.waitClose()
	if got.conn != slowConn || got.info.Code != native.CloseTryAgain || !errors.Is(got.info.Err, native.ErrSlowConsumer) {
		t.Fatalf("OnClose %+v for %v, want the slow connection with 1013", got.info, got.conn.ID())
	}
	if err := fastConn.SendWait(ctx, []byte(`{"event":"end","data":null}`)); err != nil {
		t.Fatal(err)
	}
	if n := <-received; n != sent {
		t.Fatalf("the fast client received %d of %d frames", n, sent)
	}
}

func TestSendWaitWaitsForRoom(t *testing.T) {
	h := newHarness(t, func(c *native.Config) { c.SendQueueMessages = 2 })
	w := h.dial("chat", nil)
	w.authenticate("u1")
	c := h.waitConnect().conn
	frame, _ := native.EncodePush("n", nil, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 500; i++ {
		if err := c.SendWait(ctx, frame); err != nil {
			t.Fatalf("SendWait %d: %v", i, err)
		}
	}
	for i := 0; i < 500; i++ {
		if f := w.next(); f.Event != "n" {
			t.Fatalf("frame %d is %+v", i, f)
		}
	}
	expired, stop := context.WithCancel(context.Background())
	stop()
	// A full queue with a cancelled context returns the context's error.
	for i := 0; ; i++ {
		err := c.SendWait(expired, frame)
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil || i > 10000 {
			t.Fatalf("SendWait: %v after %d", err, i)
		}
	}
}

func TestShutdownFinishesInFlightRequestsThenCloses1001(t *testing.T) {
	h := newHarness(t, nil)
	busy := h.dial("chat", nil)
	busy.authenticate("u1")
	idle := h.dial("chat", nil) // not even authenticated
	busy.send(`{"id":9,"event":"block"}`)
	<-h.started
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	idle.expectClose(native.CloseGoingAway)
	if got := h.dialStatus("chat", nil); got != http.StatusServiceUnavailable {
		t.Fatalf("dial during shutdown: HTTP %d, want 503", got)
	}
	close(h.release)
	if a := decodeAck(t, busy.next(), 9); !a.Success {
		t.Fatalf("in-flight ack %+v", a)
	}
	ce := busy.expectClose(native.CloseGoingAway)
	if ce.Text != "going away" {
		t.Fatalf("reason %q", ce.Text)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := h.srv.Len(); n != 0 {
		t.Fatalf("%d connections left", n)
	}
}

func TestShutdownPastItsDeadlineDropsConnections(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.authenticate("u1")
	w.send(`{"id":9,"event":"block"}`)
	<-h.started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	if n := h.srv.Len(); n != 0 {
		t.Fatalf("%d connections left", n)
	}
}

func TestNewServerRefusesAnIncompleteConfig(t *testing.T) {
	ok := func(context.Context, *native.Conn, string, json.RawMessage) (any, error) { return nil, nil }
	auth := func(context.Context, *native.Conn, string, string) (native.Session, error) {
		return native.Session{}, nil
	}
	tests := []struct {
		name string
		cfg  native.Config
	}{
		{"no namespaces", native.Config{OnAuth: auth, OnEvent: ok}},
		{"no OnAuth", native.Config{Namespaces: []string{"chat"}, OnEvent: ok}},
		{"no OnEvent", native.Config{Namespaces: []string{"chat"}, OnAuth: auth}},
		{"a namespace with a slash inside", native.Config{Namespaces: []string{"a/b"}, OnAuth: auth, OnEvent: ok}},
		{"a ping period not shorter than the pong wait", native.Config{Namespaces: []string{"chat"}, OnAuth: auth, OnEvent: ok,
			PingPeriod: time.Second, PongWait: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := native.NewServer(tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestAClientThatFloodsWithoutReadingIsASlowConsumer(t *testing.T) {
	h := newHarness(t, func(c *native.Config) {
		c.SendQueueMessages = 8
		c.WriteWait = 500 * time.Millisecond
		// Filling the kernel's socket buffers with exceptions takes tens
		// of thousands of frames; on a loaded machine under -race that
		// once outlasted the default 10 s auth timeout.
		c.AuthTimeout = 2 * time.Minute
	})
	c := h.dialSmallReadBuffer(64 << 10)
	// Bad frames before authentication: each earns an exception that the
	// client never reads, so the answers must not pile up without bound.
	frame := []byte(`{"event":1,"pad":"` + strings.Repeat("x", 256) + `"}`)
	for i := 0; i < 200000; i++ {
		// Generous: a write that times out mid-frame leaves the server
		// waiting for the rest of it (until its read deadline), which is
		// not what this test is about. Under a full -race test run a 5 s
		// deadline once expired mid-frame (the server's reader was then
		// waiting for the frame's payload; why the write stalled that
		// long was not found).
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
			break // the server gave up on us
		}
		select {
		case got := <-h.closes:
			if got.info.Code != native.CloseTryAgain || !errors.Is(got.info.Err, native.ErrSlowConsumer) {
				t.Fatalf("OnClose %+v, want 1013 slow consumer", got.info)
			}
			return
		default:
		}
	}
	if got := h.waitClose(); got.info.Code != native.CloseTryAgain || !errors.Is(got.info.Err, native.ErrSlowConsumer) {
		t.Fatalf("OnClose %+v, want 1013 slow consumer", got.info)
	}
}

func TestAClientCloseIsReportedAsRemote(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.authenticate("u1")
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := w.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got := h.waitClose()
	if got.info.Code != native.CloseNormal || got.info.Reason != "bye" || !got.info.Remote || got.info.Err != nil {
		t.Fatalf("OnClose %+v", got.info)
	}
	if h.srv.Len() != 0 {
		t.Fatalf("Len() = %d after the close", h.srv.Len())
	}
}

func TestCoalesceWindowHoldsPushesToABusyConnectionButNeverAReply(t *testing.T) {
	const window = time.Second
	h := newHarness(t, func(c *native.Config) { c.CoalesceWindow = window })
	w := h.dial("chat", nil)
	w.authenticate("ann")
	conn := h.waitConnect().conn
	// Let the writer that sent the auth ack and connected push go idle: a
	// push queued while a writer still runs goes out with it, unheld.
	time.Sleep(100 * time.Millisecond)

	// The auth ack and connected push were just written: a push now waits
	// for the next flush, and pushes keep their order.
	start := time.Now()
	for i := range 3 {
		pushTick(t, conn, i)
	}
	for i := range 3 {
		f := w.next()
		var d struct{ N int }
		if f.Event != "tick" || json.Unmarshal(f.Data, &d) != nil || d.N != i {
			t.Fatalf("push %d: got %s %s", i, f.Event, f.Data)
		}
	}
	if held := time.Since(start); held < window/4 {
		t.Errorf("pushes to a connection written %v ago arrived after %v, want them held for the window", time.Since(start), held)
	}

	// A reply goes out at once, taking any held push with it ahead of it.
	pushTick(t, conn, 3)
	start = time.Now()
	w.send(`{"id":7,"event":"echo","data":{"n":1}}`)
	if f := w.next(); f.Event != "tick" {
		t.Fatalf("got %s %s, want the held push before the reply", f.Event, f.Data)
	}
	decodeAck(t, w.next(), 7)
	if took := time.Since(start); took >= window {
		t.Errorf("the reply took %v, want it not held by the %v window", took, window)
	}
}

func TestAHeldPushWaitsForCompanyOrTwoWindowsWhicheverIsFirst(t *testing.T) {
	const window = time.Second
	h := newHarness(t, func(c *native.Config) { c.CoalesceWindow = window })
	w := h.dial("chat", nil)
	w.authenticate("ann")
	conn := h.waitConnect().conn
	time.Sleep(100 * time.Millisecond) // let the connected push's writer finish

	// Alone, a push to a connection in a stream waits out two windows.
	start := time.Now()
	pushTick(t, conn, 0)
	if f := w.next(); f.Event != "tick" {
		t.Fatalf("got %s, want tick", f.Event)
	}
	if held := time.Since(start); held < 2*window-window/2 {
		t.Errorf("a lone held push arrived after %v, want about %v", held, 2*window)
	}

	// With company, once a window has passed since the last write, both
	// go out at once.
	time.Sleep(window + window/10)
	start = time.Now()
	pushTick(t, conn, 1)
	pushTick(t, conn, 2)
	for i := 1; i <= 2; i++ {
		f := w.next()
		var d struct{ N int }
		if f.Event != "tick" || json.Unmarshal(f.Data, &d) != nil || d.N != i {
			t.Fatalf("push %d: got %s %s", i, f.Event, f.Data)
		}
	}
	if took := time.Since(start); took > window-window/10 {
		t.Errorf("two pushes a window after the last write took %v, want them written at once", took)
	}
}

// pushTick sends the push "tick" {"n": n} to conn.
func pushTick(t *testing.T, conn *native.Conn, n int) {
	t.Helper()
	frame, err := native.EncodePush("tick", map[string]int{"n": n}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(frame); err != nil {
		t.Fatal(err)
	}
}

func TestWithoutACoalesceWindowEveryPushIsWrittenAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.authenticate("ann")
	conn := h.waitConnect().conn
	start := time.Now()
	for i := range 3 {
		pushTick(t, conn, i)
		if f := w.next(); f.Event != "tick" {
			t.Fatalf("got %s, want tick", f.Event)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("three pushes took %v", took)
	}
}

func TestAPendingRequestDoesNotHoldUpTheNextOne(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.authenticate("ann")
	w.send(`{"id":2,"event":"later","data":{}}`)
	<-h.started
	w.echoes(3) // answered while 2 is still pending
	h.release <- struct{}{}
	f := w.next()
	if a := decodeAck(t, f, 2); !a.Success || !strings.Contains(string(f.Data), `"done":"later"`) {
		t.Fatalf("pending reply %s", f.Data)
	}
}

func TestAtTheBoundOfPendingRepliesTheReaderWaits(t *testing.T) {
	h := newHarness(t, func(c *native.Config) { c.MaxPendingReplies = 2 })
	w := h.dial("chat", nil)
	w.authenticate("ann")
	w.send(`{"id":2,"event":"later","data":{}}`)
	w.send(`{"id":3,"event":"later","data":{}}`)
	<-h.started
	<-h.started
	w.send(`{"id":4,"event":"echo","data":{"n":1}}`)
	// Both slots are taken: the echo is not read until one is answered.
	_ = w.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, b, err := w.c.ReadMessage(); err == nil {
		t.Fatalf("got %s while both pending slots were taken, want nothing", b)
	}
	// A read that timed out leaves gorilla's connection unusable, so the
	// rest is checked through what the server answers to a new one.
	h.release <- struct{}{}
	h.release <- struct{}{}
	w2 := h.dial("chat", nil)
	w2.authenticate("bob")
	w2.echoes(5)
}

func TestShutdownWritesOwedPendingRepliesBeforeClosing(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.authenticate("ann")
	w.send(`{"id":2,"event":"later","data":{}}`)
	<-h.started
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond) // Shutdown is waiting for the owed reply
	h.release <- struct{}{}
	if a := decodeAck(t, w.next(), 2); !a.Success {
		t.Fatalf("pending reply not a success: %+v", a)
	}
	w.expectClose(native.CloseGoingAway)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAClientThatStopsReadingIsDroppedAtTheWriteDeadlineAsASlowConsumer(t *testing.T) {
	// A queue far larger than what is sent, so that the write deadline,
	// not the queue bound, ends the connection.
	h := newHarness(t, func(c *native.Config) {
		c.SendQueueMessages, c.SendQueueBytes, c.WriteWait = 1<<20, 1<<30, 300*time.Millisecond
	})
	sc := h.dialSmallReadBuffer(4 << 10)
	(&wsConn{t: t, c: sc}).authenticate("stuck")
	conn := h.waitConnect().conn
	frame, err := native.EncodePush("blob", map[string]string{"content": strings.Repeat("b", 32<<10)}, "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2000 { // far more than the kernel buffers hold
		if conn.Send(frame) != nil {
			break
		}
	}
	c := h.waitClose()
	if !errors.Is(c.info.Err, native.ErrWriteTimeout) || c.info.Code != native.CloseTryAgain || c.info.Remote {
		t.Fatalf("close info %+v, want the server's 1013 with ErrWriteTimeout", c.info)
	}
}

func TestConnectionsWhoseWriteLockIsHeldDoNotHoldUpOthersPushes(t *testing.T) {
	h := newHarness(t, nil)
	// The reader holds a connection's write lock while it writes a pong or
	// the close reply, which can wait up to WriteWait on a full socket.
	// More such connections than there are shared writers, so that a
	// writer waiting on any of them would leave none for the others.
	n := runtime.GOMAXPROCS(0) + 1
	held := make([]*wsConn, n)
	unlocks := make([]func(), n)
	for i := range held {
		held[i] = h.dial("chat", nil)
		held[i].authenticate(fmt.Sprintf("held%d", i))
		conn := h.waitConnect().conn
		unlocks[i] = native.LockWrites(conn)
		pushTick(t, conn, i)
	}
	fast := h.dial("chat", nil)
	fast.authenticate("fast")
	fastConn := h.waitConnect().conn
	start := time.Now()
	pushTick(t, fastConn, 99)
	f := fast.next()
	took := time.Since(start)
	for _, unlock := range unlocks {
		unlock()
	}
	if f.Event != "tick" {
		t.Fatalf("got %s %s, want tick", f.Event, f.Data)
	}
	if took > 2*time.Second {
		t.Fatalf("a push to a reading client took %v while others' write locks were held", took)
	}
	// Once released, the held connections get their pushes.
	for i, w := range held {
		if f := w.next(); f.Event != "tick" {
			t.Fatalf("held connection %d got %s, want tick", i, f.Event)
		}
	}
}
