package gateway_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/socketio"
)

// sioClient is a minimal Socket.IO v5 client over a WebSocket-only
// Engine.IO v4 session, speaking the real wire through the socketio codec:
// enough to drive the gateway's Socket.IO side from Go tests.
type sioClient struct {
	t       testing.TB
	conn    *websocket.Conn
	packets chan socketio.Packet
	done    chan struct{}
	writeMu sync.Mutex
	nextID  uint64
	// pending holds packets read while waiting for something else.
	pending []socketio.Packet
}

func (h *harness) sioURL() string {
	return "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
}

// dialSocketIO opens an Engine.IO WebSocket session and returns it before
// any Socket.IO CONNECT, with its open packet read.
func (h *harness) dialSocketIO() *sioClient {
	h.t.Helper()
	return h.dialSocketIOWith(nil, "")
}

// dialSocketIOWith is dialSocketIO with handshake headers and extra query
// parameters (query: "&k=v...").
func (h *harness) dialSocketIOWith(header http.Header, query string) *sioClient {
	h.t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(h.sioURL()+query, header)
	if err != nil {
		h.t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, open, err := conn.ReadMessage()
	if err != nil || len(open) == 0 || open[0] != '0' {
		h.t.Fatalf("engine.io open packet %q: %v", open, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	c := &sioClient{t: h.t, conn: conn, packets: make(chan socketio.Packet, 4096), done: make(chan struct{})}
	go c.read()
	h.t.Cleanup(func() { _ = c.conn.Close(); <-c.done })
	return c
}

// connectSocketIO joins /chat with token and waits for the CONNECT reply
// and the connected event.
func (h *harness) connectSocketIO(token string) *sioClient {
	h.t.Helper()
	c := h.dialSocketIO()
	c.write(socketio.Packet{Type: socketio.PacketConnect, Namespace: "/chat", Data: mustMarshal(h.t, map[string]string{"token": token})})
	p := c.next(func(p socketio.Packet) bool {
		return p.Type == socketio.PacketConnect || p.Type == socketio.PacketConnectError
	}, "CONNECT reply")
	if p.Type != socketio.PacketConnect {
		h.t.Fatalf("connect refused: %s", p.Data)
	}
	c.waitEvent("connected")
	return c
}

func (c *sioClient) read() {
	defer close(c.done)
	defer close(c.packets)
	for {
		_, b, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		switch {
		case string(b) == "2":
			c.writeRaw("3") // answer the server's ping
		case len(b) > 0 && b[0] == '4':
			p, err := socketio.DecodePacket(b[1:])
			if err != nil {
				c.t.Errorf("undecodable packet %q: %v", b, err)
				continue
			}
			c.packets <- p
		}
	}
}

func (c *sioClient) writeRaw(s string) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.WriteMessage(websocket.TextMessage, []byte(s))
}

func (c *sioClient) write(p socketio.Packet) {
	c.writeRaw("4" + string(p.AppendEncode(nil)))
}

// emit sends an event on /chat asking for an ack and returns its id.
func (c *sioClient) emit(event string, data any) uint64 {
	c.t.Helper()
	c.nextID++
	args, err := json.Marshal([]any{event, data})
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(socketio.Packet{Type: socketio.PacketEvent, Namespace: "/chat", HasID: true, ID: c.nextID, Data: args})
	return c.nextID
}

// next returns the next packet matching keep, keeping the others.
func (c *sioClient) next(keep func(socketio.Packet) bool, what string) socketio.Packet {
	c.t.Helper()
	p, ok := c.tryNext(keep, 10*time.Second)
	if !ok {
		c.t.Fatalf("connection closed or timed out waiting for %s; pending %d packets", what, len(c.pending))
	}
	return p
}

// tryNext is next, reporting false when the connection closes or within
// passes first.
func (c *sioClient) tryNext(keep func(socketio.Packet) bool, within time.Duration) (socketio.Packet, bool) {
	for i, p := range c.pending {
		if keep(p) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return p, true
		}
	}
	timeout := time.After(within)
	for {
		select {
		case p, ok := <-c.packets:
			if !ok {
				return socketio.Packet{}, false
			}
			if keep(p) {
				return p, true
			}
			c.pending = append(c.pending, p)
		case <-timeout:
			return socketio.Packet{}, false
		}
	}
}

// waitEvent waits for a pushed event and returns its arguments.
func (c *sioClient) waitEvent(name string) []json.RawMessage {
	c.t.Helper()
	p := c.next(func(p socketio.Packet) bool { return p.Type == socketio.PacketEvent && eventName(p) == name }, "event "+name)
	return sioArgs(c.t, p)[1:]
}

func eventName(p socketio.Packet) string {
	var args []json.RawMessage
	if json.Unmarshal(p.Data, &args) != nil || len(args) == 0 {
		return ""
	}
	var name string
	_ = json.Unmarshal(args[0], &name)
	return name
}

func sioArgs(t testing.TB, p socketio.Packet) []json.RawMessage {
	t.Helper()
	var args []json.RawMessage
	if err := json.Unmarshal(p.Data, &args); err != nil || len(args) == 0 {
		t.Fatalf("packet %v data %s is not a non-empty array", p.Type, p.Data)
	}
	return args
}

// dialSocketIOUnread joins /chat and then never reads again: a slow
// consumer on the Socket.IO side, with a small receive buffer so that the
// server's writes block soon.
func (h *harness) dialSocketIOUnread(token string) *websocket.Conn {
	h.t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(h.sioURL(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	_ = conn.UnderlyingConn().(*net.TCPConn).SetReadBuffer(4096)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, open, err := conn.ReadMessage(); err != nil || len(open) == 0 || open[0] != '0' {
		h.t.Fatalf("engine.io open packet %q: %v", open, err)
	}
	connect := socketio.Packet{Type: socketio.PacketConnect, Namespace: "/chat", Data: mustMarshal(h.t, map[string]string{"token": token})}
	if err := conn.WriteMessage(websocket.TextMessage, append([]byte("4"), connect.AppendEncode(nil)...)); err != nil {
		h.t.Fatal(err)
	}
	if _, reply, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(reply), "40/chat,") {
		h.t.Fatalf("CONNECT reply %q: %v", reply, err)
	}
	return conn
}
