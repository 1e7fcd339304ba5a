package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// errGatewayNotMounted is returned when /ws/chat answers 404: the server
// runs but has no native gateway to measure.
var errGatewayNotMounted = errors.New("gateway not mounted in wardline serve (/ws/chat answers 404)")

// errRefused is returned when the server answers a request with success false.
var errRefused = errors.New("request refused")

// setupTimeout bounds one connection's dial, auth and first request, so a
// stuck server cannot hang a scenario's setup.
const setupTimeout = 30 * time.Second

// writeWait bounds every write, so a server that stops reading cannot block
// a publisher forever.
const writeWait = 10 * time.Second

// conn is one client connection, native or Socket.IO (sioconn.go). It is
// a minimal client on purpose (one reader goroutine at most, a reused read
// buffer, no decoding beyond the frame envelope), because the tool shares
// two cores with the server it measures. Writes come from one goroutine at
// a time, but for a Socket.IO reader's pongs; the read side is owned by
// whoever is reading (setup, then the reader goroutine).
type conn struct {
	ws  *websocket.Conn
	buf []byte
	sio bool       // Socket.IO on /chat rather than the native protocol
	wmu sync.Mutex // serialises a Socket.IO connection's writes (see write)
}

// newDialer returns a dialer with small buffers and a shared write-buffer
// pool: 10,000 idle connections must cost the tool little memory, and the
// frames it reads are small (a larger one simply takes several reads).
func newDialer() *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   (&net.Dialer{Timeout: setupTimeout}).DialContext,
		HandshakeTimeout: setupTimeout,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
	}
}

// dial opens ws://addr/ws/chat.
func dial(ctx context.Context, d *websocket.Dialer, addr string) (*conn, error) {
	ws, resp, err := d.DialContext(ctx, "ws://"+addr+"/ws/chat", nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return nil, errGatewayNotMounted
		}
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", addr, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &conn{ws: ws, buf: make([]byte, 0, 512)}, nil
}

// next reads the next frame and decodes its envelope: a native frame, or a
// Socket.IO EVENT or ACK (answering the pings before it). The returned frame
// aliases the buffer until the next call.
func (c *conn) next() (frame, error) {
	if c.sio {
		return c.nextSIOFrame()
	}
	typ, err := c.read()
	if err != nil {
		return frame{}, err
	}
	if typ != websocket.TextMessage {
		return frame{}, fmt.Errorf("%w: binary frame", errDecode)
	}
	return parseFrame(c.buf)
}

// read reads the next WebSocket message into the connection's buffer.
func (c *conn) read() (int, error) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return 0, err
	}
	c.buf = c.buf[:0]
	for {
		if len(c.buf) == cap(c.buf) {
			c.buf = append(c.buf, 0)[:len(c.buf)]
		}
		n, err := r.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if errors.Is(err, io.EOF) {
			return typ, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// write writes one text message. A Socket.IO connection's writes are
// serialised: its reader answers pings with a message of its own, while a
// native connection's pongs are control frames gorilla may write at any time.
func (c *conn) write(b []byte, deadline time.Time) error {
	if c.sio {
		c.wmu.Lock()
		defer c.wmu.Unlock()
	}
	_ = c.ws.SetWriteDeadline(deadline)
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// appendRequest writes a request in the connection's protocol: a native
// frame with id, or a Socket.IO EVENT asking for ack id.
func (c *conn) appendRequest(b []byte, id int64, event string, data []byte) []byte {
	if c.sio {
		return appendSIOEvent(b, id, event, data)
	}
	return appendRequest(b, id, event, data)
}

// appendRequest writes a request frame; data must be a JSON object.
func appendRequest(b []byte, id int64, event string, data []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"event":"`...)
	b = append(b, event...)
	b = append(b, `","data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// request sends one request and reads until its reply, skipping the pushes
// in between. Only for setup: the reader goroutine must not be running.
func (c *conn) request(ctx context.Context, id int64, event string, data any) (ackResult, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return ackResult{}, fmt.Errorf("%s: %w", event, err)
	}
	deadline := time.Now().Add(setupTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.write(c.appendRequest(nil, id, event, raw), deadline); err != nil {
		return ackResult{}, fmt.Errorf("%s: write: %w", event, err)
	}
	_ = c.ws.SetReadDeadline(deadline)
	defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	for {
		f, err := c.next()
		if err != nil {
			return ackResult{}, fmt.Errorf("%s: read: %w", event, err)
		}
		if string(f.Event) == "exception" && !f.HasID {
			return ackResult{}, fmt.Errorf("%s: %w: exception %s", event, errRefused, f.Data)
		}
		if !f.HasID || f.ID != id || len(f.Event) != 0 {
			continue
		}
		a, err := parseAck(f.Data)
		if err != nil {
			return a, fmt.Errorf("%s: %w", event, err)
		}
		if !a.Success {
			return a, fmt.Errorf("%s: %w: %s", event, errRefused, f.Data)
		}
		return a, nil
	}
}

// authenticate sends the auth frame as request 1, or the Socket.IO CONNECT.
func (c *conn) authenticate(ctx context.Context, token string) error {
	if c.sio {
		return c.connectSIO(ctx, token)
	}
	_, err := c.request(ctx, 1, "auth", map[string]string{"token": token})
	return err
}

// close says goodbye with a close frame (best effort) and closes the socket,
// which also ends a reader blocked in next.
func (c *conn) close() {
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bench done"), time.Now().Add(time.Second))
	_ = c.ws.Close()
}
