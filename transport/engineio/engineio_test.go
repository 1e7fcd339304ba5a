package engineio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wardline/wardline/transport/engineio"
	"github.com/wardline/wardline/transport/internal/idletest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for something the server should do soon.
const waitLimit = 5 * time.Second

type message struct {
	data   string
	binary bool
}

// harness runs a Server behind httptest and records what its sockets see.
type harness struct {
	t      *testing.T
	srv    *engineio.Server
	ts     *httptest.Server
	client *http.Client
	opened chan *engineio.Socket
	msgs   chan message
	closed chan error
}

type harnessOption func(*engineio.Config)

func newHarness(t *testing.T, echo bool, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		opened: make(chan *engineio.Socket, 16),
		msgs:   make(chan message, 256),
		closed: make(chan error, 16),
	}
	cfg := engineio.Config{
		OnConnection: func(s *engineio.Socket) {
			s.OnMessage(func(data []byte, binary bool) {
				h.msgs <- message{string(data), binary}
				if echo {
					if binary {
						_ = s.SendBinary(data)
					} else {
						_ = s.Send(data)
					}
				}
			})
			s.OnClose(func(reason error) { h.closed <- reason })
			h.opened <- s
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := engineio.NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	h.srv = srv
	h.ts = httptest.NewServer(srv)
	h.client = &http.Client{Transport: &http.Transport{}, Timeout: waitLimit}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		h.client.CloseIdleConnections()
		h.ts.Close()
	})
	return h
}

func (h *harness) url(query string) string { return h.ts.URL + "/engine.io/?" + query }

func (h *harness) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(h.ts.URL, "http") + "/engine.io/?" + query
}

func (h *harness) do(method, query, body string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url(query), strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, query, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading body: %v", method, query, err)
	}
	return resp.StatusCode, string(b)
}

type openPayload struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

func parseOpen(t *testing.T, packet string) openPayload {
	t.Helper()
	if !strings.HasPrefix(packet, "0") {
		t.Fatalf("first packet %q is not an open packet", packet)
	}
	var op openPayload
	if err := json.Unmarshal([]byte(packet[1:]), &op); err != nil {
		t.Fatalf("open packet %q: %v", packet, err)
	}
	return op
}

// handshake opens a long-polling session and returns its sid.
func (h *harness) handshake() string {
	h.t.Helper()
	status, body := h.do(http.MethodGet, "EIO=4&transport=polling", "")
	if status != http.StatusOK {
		h.t.Fatalf("handshake: status %d %q", status, body)
	}
	return parseOpen(h.t, body).SID
}

// leave ends a long-polling session as a client does, with a close packet,
// so that Shutdown does not wait for its next poll.
func (h *harness) leave(sid string) {
	h.t.Helper()
	if status, body := h.do(http.MethodPost, "EIO=4&transport=polling&sid="+sid, "1"); status != http.StatusOK {
		h.t.Fatalf("POST close: %d %q", status, body)
	}
}

func (h *harness) dial(query string) *websocket.Conn {
	h.t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(h.wsURL(query), nil)
	if err != nil {
		h.t.Fatalf("dial %s: %v (response %v)", query, err, resp)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	typ, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading WebSocket: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("got a binary frame %x, want text", b)
	}
	return string(b)
}

// readClose reads until the server closes and returns its close code.
func readClose(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("connection ended without a close frame: %v", err)
	}
}

func TestHandshakeAnnouncesSessionParameters(t *testing.T) {
	h := newHarness(t, false, func(c *engineio.Config) {
		c.PingInterval, c.PingTimeout, c.MaxPayload = 300*time.Millisecond, 200*time.Millisecond, 1000
	})
	_, body := h.do(http.MethodGet, "EIO=4&transport=polling", "")
	op := parseOpen(t, body)
	defer h.leave(op.SID)
	if len(op.SID) != 20 || op.PingInterval != 300 || op.PingTimeout != 200 || op.MaxPayload != 1000 {
		t.Errorf("open packet %+v", op)
	}
	if len(op.Upgrades) != 1 || op.Upgrades[0] != "websocket" {
		t.Errorf("polling upgrades = %v, want [websocket]", op.Upgrades)
	}
	s := recv(t, h.opened, "OnConnection")
	if s.ID() != op.SID || s.Transport() != "polling" {
		t.Errorf("socket id %q transport %q, want %q polling", s.ID(), s.Transport(), op.SID)
	}

	ws := h.dial("EIO=4&transport=websocket&x=1")
	op = parseOpen(t, readText(t, ws))
	if len(op.Upgrades) != 0 {
		t.Errorf("websocket upgrades = %v, want none", op.Upgrades)
	}
	s = recv(t, h.opened, "OnConnection")
	if s.Transport() != "websocket" || s.Query().Get("x") != "1" || s.RemoteAddr() == "" {
		t.Errorf("socket transport %q query %v addr %q", s.Transport(), s.Query(), s.RemoteAddr())
	}
	if op.PingInterval != 300 || op.MaxPayload != 1000 {
		t.Errorf("websocket open packet %+v", op)
	}
}

func TestBadRequestsAreAnsweredLikeTheReferenceServer(t *testing.T) {
	h := newHarness(t, false)
	sid := h.handshake()
	defer h.leave(sid)
	tests := []struct {
		name, method, query string
		status, code        int
	}{
		{"a missing EIO is an unsupported protocol", "GET", "transport=polling", 400, 5},
		{"EIO=3 is an unsupported protocol", "GET", "EIO=3&transport=polling", 400, 5},
		{"a missing transport is unknown", "GET", "EIO=4", 400, 0},
		{"an unknown transport is refused", "GET", "EIO=4&transport=abc", 400, 0},
		{"a POST handshake is a bad handshake method", "POST", "EIO=4&transport=polling", 400, 2},
		{"a PUT handshake is a bad handshake method", "PUT", "EIO=4&transport=polling", 400, 2},
		{"an unknown sid is refused", "GET", "EIO=4&transport=polling&sid=nope", 400, 1},
		{"a websocket handshake without upgrade is a bad request", "GET", "EIO=4&transport=websocket", 400, 3},
		{"a websocket request with sid but no upgrade is a bad request", "GET", "EIO=4&transport=websocket&sid=" + sid, 400, 3},
		{"a PUT with a sid is a bad request", "PUT", "EIO=4&transport=polling&sid=" + sid, 400, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := h.do(tc.method, tc.query, "")
			var e struct {
				Code    *int   `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code == nil {
				t.Fatalf("body %q is not {code, message}: %v", body, err)
			}
			if status != tc.status || *e.Code != tc.code || e.Message == "" {
				t.Errorf("got %d %s, want %d with code %d", status, body, tc.status, tc.code)
			}
		})
	}
}

func TestAllowRequestRefusalIsForbiddenBeforeAnySession(t *testing.T) {
	h := newHarness(t, false, func(c *engineio.Config) {
		c.AllowRequest = func(r *http.Request) error {
			if r.Header.Get("Origin") == "https://evil.example" {
				return errors.New("origin not allowed")
			}
			return nil
		}
	})
	req, _ := http.NewRequest(http.MethodGet, h.url("EIO=4&transport=polling"), nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || string(body) != `{"code":4,"message":"Forbidden"}` {
		t.Errorf("polling: got %d %s", resp.StatusCode, body)
	}

	_, resp, err = websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket"), http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("websocket: got %v, response %v; want HTTP 403 before the upgrade", err, resp)
	}
	if h.srv.Len() != 0 {
		t.Errorf("%d sessions exist after refusals", h.srv.Len())
	}
	select {
	case s := <-h.opened:
		t.Errorf("OnConnection ran for refused session %s", s.ID())
	default:
	}
	h.leave(h.handshake()) // an allowed request still works
}

func TestLongPollingCarriesTextAndBinaryBothWays(t *testing.T) {
	h := newHarness(t, true)
	sid := h.handshake()
	q := "EIO=4&transport=polling&sid=" + sid

	status, body := h.do(http.MethodPost, q, "4hello\x1ebAQIDBA==\x1e4wörld")
	if status != http.StatusOK || body != "ok" {
		t.Fatalf("POST: %d %q", status, body)
	}
	want := []message{{"hello", false}, {"\x01\x02\x03\x04", true}, {"wörld", false}}
	for _, w := range want {
		if got := recv(t, h.msgs, "a message"); got != w {
			t.Errorf("received %+v, want %+v", got, w)
		}
	}
	status, body = h.do(http.MethodGet, q, "")
	if status != http.StatusOK || body != "4hello\x1ebAQIDBA==\x1e4wörld" {
		t.Errorf("poll: %d %q", status, body)
	}
	h.leave(sid)
}

func TestInvalidPostPayloadClosesTheSession(t *testing.T) {
	h := newHarness(t, false)
	sid := h.handshake()
	q := "EIO=4&transport=polling&sid=" + sid
	if status, _ := h.do(http.MethodPost, q, "4ok\x1eabc"); status != http.StatusBadRequest {
		t.Errorf("invalid payload: status %d, want 400", status)
	}
	if err := recv(t, h.closed, "close"); !errors.Is(err, engineio.ErrInvalidPacket) {
		t.Errorf("close reason %v, want ErrInvalidPacket", err)
	}
	select {
	case m := <-h.msgs:
		t.Errorf("message %+v of an invalid payload was delivered", m)
	default:
	}
	if status, _ := h.do(http.MethodGet, q, ""); status != http.StatusBadRequest {
		t.Errorf("poll after close: status %d, want 400", status)
	}
}

func TestOversizedPostIsRefusedWith413AndClosesTheSession(t *testing.T) {
	h := newHarness(t, false, func(c *engineio.Config) { c.MaxPayload = 64 })
	sid := h.handshake()
	q := "EIO=4&transport=polling&sid=" + sid
	if status, _ := h.do(http.MethodPost, q, "4"+strings.Repeat("x", 64)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", status)
	}
	if err := recv(t, h.closed, "close"); !errors.Is(err, engineio.ErrPayloadTooLarge) {
		t.Errorf("close reason %v, want ErrPayloadTooLarge", err)
	}
}

func TestWebSocketCarriesTextAndBinaryBothWays(t *testing.T) {
	h := newHarness(t, true)
	ws := h.dial("EIO=4&transport=websocket")
	parseOpen(t, readText(t, ws))
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4héllo")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "4héllo" {
		t.Errorf("echo %q", got)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(waitLimit))
	typ, b, err := ws.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || string(b) != "\x01\x02\x03" {
		t.Errorf("binary echo: type %d %x %v", typ, b, err)
	}
	if got := recv(t, h.msgs, "text"); got != (message{"héllo", false}) {
		t.Errorf("received %+v", got)
	}
}

func TestOversizedWebSocketMessageClosesWith1009(t *testing.T) {
	h := newHarness(t, false, func(c *engineio.Config) { c.MaxPayload = 64 })
	ws := h.dial("EIO=4&transport=websocket")
	readText(t, ws)
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4"+strings.Repeat("x", 64))); err != nil {
		t.Fatal(err)
	}
	if code := readClose(t, ws); code != websocket.CloseMessageTooBig {
		t.Errorf("close code %d, want 1009", code)
	}
	if err := recv(t, h.closed, "close"); !errors.Is(err, engineio.ErrPayloadTooLarge) {
		t.Errorf("close reason %v, want ErrPayloadTooLarge", err)
	}
}

func TestUpgradeFromPollingToWebSocket(t *testing.T) {
	h := newHarness(t, true)
	sid := h.handshake()
	s := recv(t, h.opened, "OnConnection")
	q := "EIO=4&transport=polling&sid=" + sid

	// A poll during the probe phase is released with noop, whether it
	// was parked before the probe or arrives just after it.
	pollDone := make(chan string, 1)
	go func() {
		_, body := h.do(http.MethodGet, q, "")
		pollDone <- body
	}()
	ws := h.dial("EIO=4&transport=websocket&sid=" + sid)
	if err := ws.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	if got := recv(t, pollDone, "the waiting poll"); got != "6" {
		t.Errorf("waiting poll got %q, want noop 6", got)
	}
	// Sent before the upgrade completes: delivered on the WebSocket after it.
	if err := s.Send([]byte("queued")); err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "4queued" {
		t.Errorf("after upgrade got %q, want the queued message", got)
	}
	if s.Transport() != "websocket" {
		t.Errorf("transport %q after upgrade", s.Transport())
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4hi")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "4hi" {
		t.Errorf("echo over upgraded transport %q", got)
	}
	if status, _ := h.do(http.MethodGet, q, ""); status != http.StatusBadRequest {
		t.Errorf("poll after upgrade: %d, want 400", status)
	}
	second, _, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket&sid="+sid), nil)
	if err != nil {
		t.Fatalf("second WebSocket: %v", err)
	}
	defer second.Close()
	readClose(t, second)
}

func TestHeartbeatPingsAndClosesWithoutPong(t *testing.T) {
	h := newHarness(t, false, func(c *engineio.Config) {
		c.PingInterval, c.PingTimeout = 100*time.Millisecond, 300*time.Millisecond
	})
	ws := h.dial("EIO=4&transport=websocket")
	readText(t, ws)
	for range 3 {
		if got := readText(t, ws); got != "2" {
			t.Fatalf("got %q, want ping", got)
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte("3")); err != nil {
			t.Fatal(err)
		}
	}
	if got := readText(t, ws); got != "2" {
		t.Fatalf("got %q, want ping", got)
	}
	readClose(t, ws)
	if err := recv(t, h.closed, "close"); !errors.Is(err, engineio.ErrPingTimeout) {
		t.Errorf("close reason %v, want ErrPingTimeout", err)
	}

	sid := h.handshake()
	if _, body := h.do(http.MethodGet, "EIO=4&transport=polling&sid="+sid, ""); body != "2" {
		t.Errorf("poll got %q, want ping", body)
	}
	if err := recv(t, h.closed, "close"); !errors.Is(err, engineio.ErrPingTimeout) {
		t.Errorf("polling close reason %v, want ErrPingTimeout", err)
	}
	if status, _ := h.do(http.MethodGet, "EIO=4&transport=polling&sid="+sid, ""); status != http.StatusBadRequest {
		t.Errorf("poll after timeout: %d, want 400", status)
	}
}

func TestOverflowingTheSendQueueClosesWith1013(t *testing.T) {
	h := newHarness(t, false, func(c *engineio.Config) { c.MaxQueueMessages = 4 })
	sid := h.handshake()
	s := recv(t, h.opened, "OnConnection")
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		err = s.Send([]byte("x"))
	}
	if !errors.Is(err, engineio.ErrQueueFull) {
		t.Fatalf("fifth Send: %v, want ErrQueueFull", err)
	}
	if err := recv(t, h.closed, "close"); !errors.Is(err, engineio.ErrQueueFull) {
		t.Errorf("close reason %v, want ErrQueueFull", err)
	}
	if err := s.Send([]byte("late")); !errors.Is(err, engineio.ErrClosed) {
		t.Errorf("Send after close: %v, want ErrClosed", err)
	}
	if status, _ := h.do(http.MethodGet, "EIO=4&transport=polling&sid="+sid, ""); status != http.StatusBadRequest {
		t.Errorf("poll after overflow: %d, want 400", status)
	}

	h2 := newHarness(t, false, func(c *engineio.Config) { c.MaxQueueBytes = 10 })
	ws := h2.dial("EIO=4&transport=websocket")
	readText(t, ws)
	s2 := recv(t, h2.opened, "OnConnection")
	if err := s2.Send(make([]byte, 11)); !errors.Is(err, engineio.ErrQueueFull) {
		t.Fatalf("Send of 11 bytes: %v, want ErrQueueFull", err)
	}
	if code := readClose(t, ws); code != websocket.CloseTryAgainLater {
		t.Errorf("close code %d, want 1013", code)
	}
}

func TestGracefulCloseDeliversQueuedMessagesFirst(t *testing.T) {
	h := newHarness(t, false)
	ws := h.dial("EIO=4&transport=websocket")
	readText(t, ws)
	s := recv(t, h.opened, "OnConnection")
	for _, m := range []string{"a", "b"} {
		if err := s.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close(&engineio.CloseError{Code: 4401, Text: "token expired"})
	if got := readText(t, ws) + readText(t, ws); got != "4a4b" {
		t.Errorf("got %q before the close", got)
	}
	if code := readClose(t, ws); code != 4401 {
		t.Errorf("close code %d, want 4401", code)
	}
	var ce *engineio.CloseError
	if err := recv(t, h.closed, "close"); !errors.As(err, &ce) || ce.Code != 4401 {
		t.Errorf("close reason %v", err)
	}
	select {
	case <-s.Done():
	case <-time.After(waitLimit):
		t.Error("Done not closed after the close callback")
	}

	sid := h.handshake()
	s = recv(t, h.opened, "OnConnection")
	_ = s.Send([]byte("bye"))
	s.Close(nil)
	if _, body := h.do(http.MethodGet, "EIO=4&transport=polling&sid="+sid, ""); body != "4bye\x1e1" {
		t.Errorf("poll after Close got %q, want the message then the close packet", body)
	}
	if err := recv(t, h.closed, "close"); !errors.Is(err, engineio.ErrClosedByServer) {
		t.Errorf("close reason %v, want ErrClosedByServer", err)
	}
}

func TestClientClosePacketEndsTheSession(t *testing.T) {
	h := newHarness(t, false)
	ws := h.dial("EIO=4&transport=websocket")
	readText(t, ws)
	if err := ws.WriteMessage(websocket.TextMessage, []byte("1")); err != nil {
		t.Fatal(err)
	}
	readClose(t, ws)
	if err := recv(t, h.closed, "close"); !errors.Is(err, engineio.ErrClientClose) {
		t.Errorf("close reason %v, want ErrClientClose", err)
	}

	sid := h.handshake()
	q := "EIO=4&transport=polling&sid=" + sid
	if status, _ := h.do(http.MethodPost, q, "1"); status != http.StatusOK {
		t.Errorf("POST close: %d", status)
	}
	// A GET racing the close (sent at the same time on another
	// connection) is ended with noop rather than refused.
	if status, body := h.do(http.MethodGet, q, ""); status != http.StatusOK || body != "6" {
		t.Errorf("racing GET: %d %q, want 200 noop", status, body)
	}
	if status, _ := h.do(http.MethodGet, q, ""); status != http.StatusBadRequest {
		t.Errorf("GET after close: %d, want 400", status)
	}
}

func TestShutdownClosesWebSocketsWithGoingAwayAndRefusesNewSessions(t *testing.T) {
	h := newHarness(t, false)
	ws := h.dial("EIO=4&transport=websocket")
	readText(t, ws)
	s := recv(t, h.opened, "OnConnection")
	_ = s.Send([]byte("last"))
	sid := h.handshake()
	pollDone := make(chan string, 1)
	go func() {
		_, body := h.do(http.MethodGet, "EIO=4&transport=polling&sid="+sid, "")
		pollDone <- body
	}()

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := readText(t, ws); got != "4last" {
		t.Errorf("queued message %q not flushed before close", got)
	}
	if code := readClose(t, ws); code != websocket.CloseGoingAway {
		t.Errorf("close code %d, want 1001", code)
	}
	if got := recv(t, pollDone, "poll"); got != "1" {
		t.Errorf("waiting poll got %q, want close packet", got)
	}
	for range 2 {
		if err := recv(t, h.closed, "close"); !errors.Is(err, engineio.ErrServerShutdown) {
			t.Errorf("close reason %v, want ErrServerShutdown", err)
		}
	}
	if status, _ := h.do(http.MethodGet, "EIO=4&transport=polling", ""); status != http.StatusServiceUnavailable {
		t.Errorf("handshake after shutdown: %d, want 503", status)
	}
}

func TestDuplicatePollFailsTheSession(t *testing.T) {
	h := newHarness(t, false)
	sid := h.handshake()
	q := "EIO=4&transport=polling&sid=" + sid
	type result struct {
		status int
		body   string
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			status, body := h.do(http.MethodGet, q, "")
			results <- result{status, body}
		}()
	}
	// Whichever GET arrives second is refused; the parked one gets close.
	got := []result{recv(t, results, "a poll"), recv(t, results, "a poll")}
	if got[0].status == http.StatusBadRequest {
		got[0], got[1] = got[1], got[0]
	}
	if got[0] != (result{http.StatusOK, "1"}) || got[1].status != http.StatusBadRequest {
		t.Errorf("polls got %+v, want one close packet and one 400", got)
	}
	if err := recv(t, h.closed, "close"); !errors.Is(err, engineio.ErrInvalidPacket) {
		t.Errorf("close reason %v, want ErrInvalidPacket", err)
	}
}

func TestConfigIsValidated(t *testing.T) {
	tests := []struct {
		name string
		cfg  engineio.Config
	}{
		{"a config without OnConnection is refused", engineio.Config{}},
		{"a negative ping interval is refused", engineio.Config{PingInterval: -1, OnConnection: func(*engineio.Socket) {}}},
		{"a tiny max payload is refused", engineio.Config{MaxPayload: 8, OnConnection: func(*engineio.Socket) {}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := engineio.NewServer(tc.cfg); !errors.Is(err, engineio.ErrInvalidConfig) {
				t.Errorf("NewServer: %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestAppendMessagePacketsAreSentAsIs(t *testing.T) {
	h := newHarness(t, false)
	ws := h.dial("EIO=4&transport=websocket")
	readText(t, ws)
	s := recv(t, h.opened, "OnConnection")
	pkt := engineio.AppendMessage(nil, []byte(`2["x"]`))
	if err := s.SendPacket(pkt); err != nil {
		t.Fatal(err)
	}
	if err := s.SendPacketWithBinary(pkt, [][]byte{{9}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SendPacket([]byte("2")); !errors.Is(err, engineio.ErrInvalidPacket) {
		t.Errorf("SendPacket of a ping: %v, want ErrInvalidPacket", err)
	}
	if got := readText(t, ws) + readText(t, ws); got != `42["x"]42["x"]` {
		t.Errorf("got %q", got)
	}
	_ = ws.SetReadDeadline(time.Now().Add(waitLimit))
	if typ, b, err := ws.ReadMessage(); err != nil || typ != websocket.BinaryMessage || len(b) != 1 || b[0] != 9 {
		t.Errorf("attachment: %d %x %v", typ, b, err)
	}
}

// The reader waits for each message outside gorilla (on a small stack) and
// reads it on a worker: messages that arrive together, in one segment with
// whatever else, must all be delivered, in order.
func TestWebSocketMessagesArrivingInOneSegmentAreAllDeliveredInOrder(t *testing.T) {
	h := newHarness(t, false)
	ws := h.dial("EIO=4&transport=websocket")
	parseOpen(t, readText(t, ws))
	// Masked text frames with a zero key, written in one write.
	frame := func(payload string) []byte {
		return append([]byte{0x80 | websocket.TextMessage, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
	}
	var burst []byte
	for i := range 5 {
		burst = append(burst, frame(fmt.Sprint("4m", i))...)
	}
	if _, err := ws.UnderlyingConn().Write(burst); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if got := recv(t, h.msgs, "message"); got != (message{fmt.Sprint("m", i), false}) {
			t.Fatalf("message %d: %+v", i, got)
		}
	}
}

func TestIdleWebSocketSessionsHoldNoGoroutineAndStillEcho(t *testing.T) {
	h := newHarness(t, true)
	time.Sleep(50 * time.Millisecond) // the harness's goroutines settle
	base := runtime.NumGoroutine()
	const n = 40
	conns := make([]*websocket.Conn, 0, n)
	closes := 0
	t.Cleanup(func() {
		// Before the harness's Shutdown, whose OnClose calls would fill
		// h.closed if this test failed half way.
		for _, ws := range conns {
			ws.Close()
		}
		for ; closes < len(conns); closes++ {
			select {
			case <-h.closed:
			case <-time.After(waitLimit):
				return
			}
		}
	})
	for range n {
		conns = append(conns, h.dial("EIO=4&transport=websocket"))
		i := len(conns) - 1
		parseOpen(t, readText(t, conns[i]))
		recv(t, h.opened, "OnConnection")
	}
	idletest.ExpectFewGoroutines(t, base, n, "WebSocket sessions")
	for round := 0; round < 3; round++ {
		for i, ws := range conns {
			msg := fmt.Sprintf("4r%d-c%d", round, i)
			if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			if got := readText(t, ws); got != msg {
				t.Fatalf("echo %q, want %q", got, msg)
			}
			recv(t, h.msgs, "message")
		}
	}
	// A parked reader sees its peer leave.
	for _, ws := range conns {
		ws.Close()
		recv(t, h.closed, "close")
		closes++
	}
}

func TestASessionKeepsOnlyWhatKeepHandshakePickedOfItsRequest(t *testing.T) {
	h := newHarness(t, false, func(c *engineio.Config) {
		c.KeepHandshake = func(r *http.Request) (http.Header, url.Values) {
			return http.Header{"Cookie": r.Header.Values("Cookie")}, nil
		}
	})
	hdr := http.Header{"Cookie": {"a=1"}, "X-Other": {"dropped"}}
	ws, resp, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket&x=1"), hdr)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	defer ws.Close()
	s := recv(t, h.opened, "OnConnection")
	if got := s.Header(); len(got) != 1 || got.Get("Cookie") != "a=1" {
		t.Errorf("Header() = %v, want only the cookie", got)
	}
	if q := s.Query(); q != nil {
		t.Errorf("Query() = %v, want nil", q)
	}
}
