package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wardline/wardline/transport/engineio"
	"github.com/wardline/wardline/transport/socketio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitLimit = 5 * time.Second

type disconnect struct {
	conn   *socketio.Conn
	reason error
}

// harness serves a socketio.Server with a "/chat" namespace and records
// what happens to its connections.
type harness struct {
	t           *testing.T
	srv         *socketio.Server
	chat        *socketio.Namespace
	ts          *httptest.Server
	connected   chan *socketio.Conn
	auths       chan json.RawMessage
	disconnects chan disconnect
}

func newHarness(t *testing.T, cfg socketio.Config) *harness {
	t.Helper()
	srv, err := socketio.NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	h := &harness{
		t:           t,
		srv:         srv,
		chat:        srv.Of("chat"),
		connected:   make(chan *socketio.Conn, 16),
		auths:       make(chan json.RawMessage, 16),
		disconnects: make(chan disconnect, 16),
	}
	h.chat.OnConnect(func(_ context.Context, c *socketio.Conn, auth json.RawMessage) error {
		h.auths <- auth
		h.connected <- c
		return nil
	})
	h.chat.OnDisconnect(func(c *socketio.Conn, reason error) { h.disconnects <- disconnect{c, reason} })
	h.ts = httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		h.ts.Close()
	})
	return h
}

// client is a raw Socket.IO client over one WebSocket.
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func (h *harness) dial() *client {
	h.t.Helper()
	u := "ws" + strings.TrimPrefix(h.ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	h.t.Cleanup(func() { ws.Close() })
	c := &client{t: h.t, ws: ws}
	if open := c.read(); !strings.HasPrefix(open, "0{") {
		h.t.Fatalf("first frame %q is not the Engine.IO open packet", open)
	}
	return c
}

func (c *client) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("write %q: %v", frame, err)
	}
}

func (c *client) sendBinary(b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatalf("write binary: %v", err)
	}
}

// read returns the next text frame, answering pings on the way.
func (c *client) read() string {
	c.t.Helper()
	for {
		typ, b := c.readAny()
		if typ != websocket.TextMessage {
			c.t.Fatalf("got binary frame %x, want text", b)
		}
		if string(b) == "2" {
			c.send("3")
			continue
		}
		return string(b)
	}
}

func (c *client) readAny() (int, []byte) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(waitLimit))
	typ, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return typ, b
}

// readClose reads until the server closes the WebSocket.
func (c *client) readClose() int {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		_, b, err := c.ws.ReadMessage()
		if err == nil {
			if string(b) == "2" {
				c.send("3")
			}
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		c.t.Fatalf("connection ended without close frame: %v", err)
	}
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

type connectReply struct {
	SID string `json:"sid"`
	PID string `json:"pid"`
}

func parseConnect(t *testing.T, frame, prefix string) connectReply {
	t.Helper()
	if !strings.HasPrefix(frame, prefix) {
		t.Fatalf("frame %q, want a CONNECT reply starting %q", frame, prefix)
	}
	var r connectReply
	if err := json.Unmarshal([]byte(frame[len(prefix):]), &r); err != nil {
		t.Fatalf("CONNECT reply %q: %v", frame, err)
	}
	return r
}

func TestConnectPassesAuthAndRepliesWithSidAndPid(t *testing.T) {
	h := newHarness(t, socketio.Config{})
	h.chat.OnConnect(func(_ context.Context, c *socketio.Conn, auth json.RawMessage) error {
		h.auths <- auth
		if r, ok := socketio.ParseRecovery(auth); ok {
			c.SetPID(r.PID) // a valid pid is echoed: the client reports recovered
		} else {
			c.SetPID("fresh-pid")
		}
		h.connected <- c
		return nil
	})
	cl := h.dial()
	cl.send(`40/chat,{"token":"x"}`)
	r := parseConnect(t, cl.read(), "40/chat,")
	c := recv(t, h.connected, "OnConnect")
	if r.SID != c.ID() || r.PID != "fresh-pid" || c.PID() != "fresh-pid" || c.Namespace() != "/chat" {
		t.Errorf("reply %+v for conn %s pid %q in %s", r, c.ID(), c.PID(), c.Namespace())
	}
	if got := recv(t, h.auths, "auth"); string(got) != `{"token":"x"}` {
		t.Errorf("auth %s", got)
	}
	if c.Socket().Transport() != "websocket" {
		t.Errorf("transport %q", c.Socket().Transport())
	}

	cl2 := h.dial()
	cl2.send(`40/chat,{"pid":"fresh-pid","offset":"o-17","token":"x"}`)
	if r := parseConnect(t, cl2.read(), "40/chat,"); r.PID != "fresh-pid" || r.SID == c.ID() {
		t.Errorf("recovered reply %+v", r)
	}
	if got := recv(t, h.auths, "auth"); !strings.Contains(string(got), `"offset":"o-17"`) {
		t.Errorf("recovery auth %s", got)
	}

	cl3 := h.dial()
	cl3.send(`40/chat,`)
	recv(t, h.connected, "OnConnect")
	recv(t, h.connected, "OnConnect")
	if got := recv(t, h.auths, "auth"); string(got) != `{}` {
		t.Errorf("auth of a CONNECT without payload = %s, want {}", got)
	}
	if r := parseConnect(t, cl3.read(), "40/chat,"); r.PID != "fresh-pid" {
		t.Errorf("reply %+v", r)
	}
}

func TestFramesSentDuringConnectFollowTheReplyInOrder(t *testing.T) {
	h := newHarness(t, socketio.Config{})
	h.chat.OnConnect(func(_ context.Context, c *socketio.Conn, _ json.RawMessage) error {
		var wg sync.WaitGroup
		for i := range 3 {
			if err := c.Emit("replay", i, "offset-"+string(rune('a'+i))); err != nil {
				return err
			}
		}
		wg.Add(1)
		go func() { // another goroutine (a hub) may push meanwhile
			defer wg.Done()
			f, _ := socketio.EncodeEvent("/chat", "live", "x")
			_ = c.SendEncoded(f)
		}()
		wg.Wait()
		return nil
	})
	cl := h.dial()
	cl.send("40/chat,")
	parseConnect(t, cl.read(), "40/chat,")
	want := []string{`42/chat,["replay",0,"offset-a"]`, `42/chat,["replay",1,"offset-b"]`, `42/chat,["replay",2,"offset-c"]`, `42/chat,["live","x"]`}
	for _, w := range want {
		if got := cl.read(); got != w {
			t.Errorf("got %s, want %s", got, w)
		}
	}
}

func TestRefusedConnectsGetConnectError(t *testing.T) {
	h := newHarness(t, socketio.Config{})
	h.chat.OnConnect(func(_ context.Context, _ *socketio.Conn, auth json.RawMessage) error {
		if strings.Contains(string(auth), "bad") {
			return &socketio.ConnectError{Message: "unauthorized", Data: map[string]string{"code": "unauthorized"}}
		}
		if strings.Contains(string(auth), "bug") {
			return errors.New("database password is hunter2")
		}
		return nil
	})
	h.srv.Of("/other")
	tests := []struct {
		name, send, want string
	}{
		{"a ConnectError sends its message and data", `40/chat,{"token":"bad"}`,
			`44/chat,{"message":"unauthorized","data":{"code":"unauthorized"}}`},
		{"another error is an internal error without details", `40/chat,{"token":"bug"}`, `44/chat,{"message":"internal error"}`},
		{"an unknown namespace is invalid", `40/nope,`, `44/nope,{"message":"Invalid namespace"}`},
	}
	cl := h.dial()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl.send(tc.send)
			if got := cl.read(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	// The session stays usable: another namespace, then a good retry.
	cl.send("40/other,")
	parseConnect(t, cl.read(), "40/other,")
	cl.send(`40/chat,{"token":"good"}`)
	parseConnect(t, cl.read(), "40/chat,")
	select {
	case d := <-h.disconnects:
		t.Errorf("OnDisconnect ran for a refused connection: %v", d.reason)
	default:
	}
}

func TestEventsAreDispatchedAndAcknowledged(t *testing.T) {
	h := newHarness(t, socketio.Config{})
	events := make(chan *socketio.Event, 8)
	h.chat.On("message:send", func(_ *socketio.Conn, ev *socketio.Event) {
		events <- ev
		var body struct {
			RoomID string `json:"roomId"`
		}
		if err := ev.Unmarshal(0, &body); err != nil {
			t.Errorf("Unmarshal: %v", err)
		}
		if err := ev.Ack(map[string]any{"success": true, "roomId": body.RoomID}); err != nil {
			t.Errorf("Ack: %v", err)
		}
		if err := ev.Ack("again"); !errors.Is(err, socketio.ErrAlreadyAcked) {
			t.Errorf("second Ack: %v", err)
		}
	})
	h.chat.OnAny(func(_ *socketio.Conn, ev *socketio.Event) {
		events <- ev
		if err := ev.Ack(); !errors.Is(err, socketio.ErrNoAck) {
			t.Errorf("Ack without id: %v", err)
		}
	})
	cl := h.dial()
	cl.send("40/chat,")
	parseConnect(t, cl.read(), "40/chat,")
	recv(t, h.connected, "OnConnect")

	cl.send(`42/chat,17["message:send",{"roomId":"r1"}]`)
	if got := cl.read(); got != `43/chat,17[{"roomId":"r1","success":true}]` {
		t.Errorf("ack %s", got)
	}
	if ev := recv(t, events, "event"); ev.Name != "message:send" || !ev.HasAck() || len(ev.Args) != 1 {
		t.Errorf("event %+v", ev)
	}
	cl.send(`42/chat,["typing:start",{"roomId":"r1"},"x"]`)
	if ev := recv(t, events, "event"); ev.Name != "typing:start" || ev.HasAck() || len(ev.Args) != 2 || string(ev.Args[1]) != `"x"` {
		t.Errorf("OnAny event %+v", ev)
	}
	cl.send(`42["message:send",{"roomId":"r1"}]`) // main namespace: not joined, dropped
	cl.send(`42/chat,["typing:stop"]`)
	if ev := recv(t, events, "event"); ev.Name != "typing:stop" {
		t.Errorf("event %q arrived, the one to an unjoined namespace was not dropped", ev.Name)
	}
}

func TestBinaryAttachmentsAreReassembled(t *testing.T) {
	h := newHarness(t, socketio.Config{})
	got := make(chan []byte, 2)
	h.chat.On("upload", func(c *socketio.Conn, ev *socketio.Event) {
		raw, ok := ev.BinaryArg(0)
		if !ok {
			t.Errorf("argument 0 %s is not an attachment", ev.Args[0])
		}
		got <- raw
		var meta struct {
			Name  string `json:"name"`
			Thumb []byte `json:"thumb"`
		}
		if err := ev.Unmarshal(1, &meta); err != nil {
			t.Errorf("Unmarshal: %v", err)
		}
		got <- meta.Thumb
		if err := c.Emit("stored", socketio.Binary(raw), meta.Name); err != nil {
			t.Errorf("Emit: %v", err)
		}
	})
	cl := h.dial()
	cl.send("40/chat,")
	parseConnect(t, cl.read(), "40/chat,")
	cl.send(`452-/chat,["upload",{"_placeholder":true,"num":0},{"name":"a.png","thumb":{"_placeholder":true,"num":1}}]`)
	cl.sendBinary([]byte{1, 2, 3})
	cl.sendBinary([]byte{9})
	if b := recv(t, got, "attachment"); string(b) != "\x01\x02\x03" {
		t.Errorf("attachment %x", b)
	}
	if b := recv(t, got, "nested attachment"); string(b) != "\x09" {
		t.Errorf("nested attachment %x", b)
	}
	if f := cl.read(); f != `451-/chat,["stored",{"_placeholder":true,"num":0},"a.png"]` {
		t.Errorf("binary emit %s", f)
	}
	if typ, b := cl.readAny(); typ != websocket.BinaryMessage || string(b) != "\x01\x02\x03" {
		t.Errorf("emitted attachment %d %x", typ, b)
	}
}

func TestProtocolViolationsCloseTheConnection(t *testing.T) {
	tests := []struct {
		name   string
		cfg    socketio.Config
		frames []string
		want   error
	}{
		{"an unknown packet type", socketio.Config{}, []string{"4abc"}, socketio.ErrInvalidPacket},
		{"an event that is an object", socketio.Config{}, []string{"42/chat,{}"}, socketio.ErrInvalidPacket},
		{"a bad ack id", socketio.Config{}, []string{`42/chat,abc["m"]`}, socketio.ErrInvalidPacket},
		{"a second CONNECT to the same namespace", socketio.Config{}, []string{"40/chat,"}, socketio.ErrInvalidPacket},
		{"text while attachments are due", socketio.Config{}, []string{`451-/chat,["m",{"_placeholder":true,"num":0}]`, `42/chat,["m"]`}, socketio.ErrInvalidPacket},
		{"a placeholder past the attachments", socketio.Config{}, []string{`450-/chat,["m",{"_placeholder":true,"num":0}]`}, socketio.ErrInvalidPacket},
		{"binary when binary is refused", socketio.Config{RejectBinary: true}, []string{`451-/chat,["m",{"_placeholder":true,"num":0}]`}, socketio.ErrBinaryRefused},
		{"more attachments than allowed", socketio.Config{MaxAttachments: 1}, []string{`452-/chat,["m",1]`}, socketio.ErrBinaryRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			cl := h.dial()
			cl.send("40/chat,")
			parseConnect(t, cl.read(), "40/chat,")
			for _, f := range tc.frames {
				cl.send(f)
			}
			cl.readClose()
			d := recv(t, h.disconnects, "OnDisconnect")
			if !errors.Is(d.reason, tc.want) || !errors.Is(d.reason, socketio.ErrTransportClose) {
				t.Errorf("reason %v, want %v within ErrTransportClose", d.reason, tc.want)
			}
		})
	}
}

func TestDisconnectsFromEitherSide(t *testing.T) {
	h := newHarness(t, socketio.Config{})
	h.srv.Of("/")
	cl := h.dial()
	cl.send("40/chat,")
	parseConnect(t, cl.read(), "40/chat,")
	c := recv(t, h.connected, "OnConnect")
	cl.send("41/chat,")
	if d := recv(t, h.disconnects, "OnDisconnect"); d.conn != c || !errors.Is(d.reason, socketio.ErrClientDisconnect) {
		t.Errorf("client disconnect reason %v", d.reason)
	}
	if err := c.Context().Err(); err == nil {
		t.Error("Context not cancelled after disconnect")
	}
	if err := c.Emit("late"); !errors.Is(err, socketio.ErrDisconnected) {
		t.Errorf("Emit after disconnect: %v", err)
	}

	cl.send("40/chat,")
	parseConnect(t, cl.read(), "40/chat,")
	c = recv(t, h.connected, "OnConnect")
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if got := cl.read(); got != "41/chat," {
		t.Errorf("server disconnect frame %q", got)
	}
	if d := recv(t, h.disconnects, "OnDisconnect"); !errors.Is(d.reason, socketio.ErrServerDisconnect) || !errors.Is(c.Reason(), socketio.ErrServerDisconnect) {
		t.Errorf("server disconnect reason %v", d.reason)
	}
	if err := c.Disconnect(); !errors.Is(err, socketio.ErrDisconnected) {
		t.Errorf("second Disconnect: %v", err)
	}
	// The Engine.IO session is still there for other namespaces.
	cl.send("40")
	parseConnect(t, cl.read(), "40")

	cl.send("40/chat,")
	parseConnect(t, cl.read(), "40/chat,")
	recv(t, h.connected, "OnConnect")
	cl.ws.Close()
	d := recv(t, h.disconnects, "OnDisconnect")
	if !errors.Is(d.reason, socketio.ErrTransportClose) || !errors.Is(d.reason, engineio.ErrTransportClosed) {
		t.Errorf("transport close reason %v", d.reason)
	}
}

func TestSendEncodedSharesFramesWithinOneNamespace(t *testing.T) {
	h := newHarness(t, socketio.Config{})
	var clients []*client
	var conns []*socketio.Conn
	for range 3 {
		cl := h.dial()
		cl.send("40/chat,")
		parseConnect(t, cl.read(), "40/chat,")
		clients = append(clients, cl)
		conns = append(conns, recv(t, h.connected, "OnConnect"))
	}
	f, err := socketio.EncodeEvent("/chat", "message:new", map[string]string{"messageId": "m1"}, "off-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if err := c.SendEncoded(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, cl := range clients {
		if got := cl.read(); got != `42/chat,["message:new",{"messageId":"m1"},"off-1"]` {
			t.Errorf("got %s", got)
		}
	}
	other, _ := socketio.EncodeEvent("/admin", "x")
	if err := conns[0].SendEncoded(other); !errors.Is(err, socketio.ErrNamespaceMismatch) {
		t.Errorf("SendEncoded of another namespace's frame: %v", err)
	}
}

func TestSessionsThatJoinNothingTimeOut(t *testing.T) {
	h := newHarness(t, socketio.Config{ConnectTimeout: 50 * time.Millisecond})
	cl := h.dial()
	cl.readClose()
}

func TestShutdownClosesWithGoingAwayAndNoDisconnectPacket(t *testing.T) {
	h := newHarness(t, socketio.Config{})
	cl := h.dial()
	cl.send("40/chat,")
	parseConnect(t, cl.read(), "40/chat,")
	recv(t, h.connected, "OnConnect")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = cl.ws.SetReadDeadline(time.Now().Add(waitLimit))
	_, b, err := cl.ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("after Shutdown read %q, %v; want close 1001 and no DISCONNECT packet", b, err)
	}
	if d := recv(t, h.disconnects, "OnDisconnect"); !errors.Is(d.reason, engineio.ErrServerShutdown) {
		t.Errorf("reason %v", d.reason)
	}
}

func TestNewServerRefusesAnEngineOnConnection(t *testing.T) {
	_, err := socketio.NewServer(socketio.Config{Engine: engineio.Config{OnConnection: func(*engineio.Socket) {}}})
	if !errors.Is(err, engineio.ErrInvalidConfig) {
		t.Errorf("NewServer: %v, want ErrInvalidConfig", err)
	}
}
