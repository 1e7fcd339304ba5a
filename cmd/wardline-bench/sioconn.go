package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// errSIONotMounted is returned when /socket.io/ answers 404.
var errSIONotMounted = errors.New("socket.io not mounted in wardline serve (/socket.io/ answers 404)")

// errSIODisconnected is returned when the server ends the Engine.IO session
// (close packet) or the /chat namespace (DISCONNECT).
var errSIODisconnected = errors.New("socket.io: disconnected by the server")

// dialSIO opens an Engine.IO v4 WebSocket session at
// ws://addr/socket.io/ and reads its open packet; the /chat CONNECT is
// authenticate's.
func dialSIO(ctx context.Context, d *websocket.Dialer, addr string) (*conn, error) {
	ws, resp, err := d.DialContext(ctx, "ws://"+addr+"/socket.io/?EIO=4&transport=websocket", nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return nil, errSIONotMounted
		}
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", addr, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &conn{ws: ws, buf: make([]byte, 0, 512), sio: true}
	_ = ws.SetReadDeadline(setupDeadline(ctx))
	defer func() { _ = ws.SetReadDeadline(time.Time{}) }()
	typ, err := c.read()
	if err == nil && (typ != websocket.TextMessage || len(c.buf) == 0 || c.buf[0] != eioOpen) {
		err = fmt.Errorf("%w: engine.io open packet expected, got %q", errDecode, c.buf)
	}
	if err == nil {
		err = parseSIOOpen(c.buf[1:])
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return c, nil
}

// setupDeadline is setupTimeout from now, or ctx's deadline if sooner.
func setupDeadline(ctx context.Context) time.Time {
	deadline := time.Now().Add(setupTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return deadline
}

// connectSIO joins /chat with auth {token} and waits for the CONNECT reply.
// Only for setup: the reader goroutine must not be running.
func (c *conn) connectSIO(ctx context.Context, token string) error {
	auth, err := json.Marshal(map[string]string{"token": token})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	deadline := setupDeadline(ctx)
	if err := c.write(appendSIOConnect(nil, auth), deadline); err != nil {
		return fmt.Errorf("connect: write: %w", err)
	}
	_ = c.ws.SetReadDeadline(deadline)
	defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	for {
		p, err := c.nextSIO()
		if err != nil {
			return fmt.Errorf("connect: read: %w", err)
		}
		switch p.Type {
		case sioConnect:
			return nil
		case sioConnectError:
			return fmt.Errorf("connect: %w: %s", errRefused, p.Data)
		case sioDisconnect:
			return fmt.Errorf("connect: %w", errSIODisconnected)
		}
	}
}

// nextSIOFrame reads the next EVENT or ACK as a frame.
func (c *conn) nextSIOFrame() (frame, error) {
	p, err := c.nextSIO()
	if err != nil {
		return frame{}, err
	}
	if p.Type == sioDisconnect {
		return frame{}, errSIODisconnected
	}
	return sioFrame(p)
}

// nextSIO reads the next Socket.IO packet, answering the server's pings on
// the way (promptly: a ping unanswered within pingTimeout closes the session).
func (c *conn) nextSIO() (sioPacket, error) {
	for {
		typ, err := c.read()
		if err != nil {
			return sioPacket{}, err
		}
		if typ != websocket.TextMessage || len(c.buf) == 0 {
			return sioPacket{}, fmt.Errorf("%w: binary or empty engine.io packet", errDecode)
		}
		switch c.buf[0] {
		case eioMessage:
			return parseSIOPacket(c.buf[1:])
		case eioPing:
			if err := c.write(pong, time.Now().Add(writeWait)); err != nil {
				return sioPacket{}, fmt.Errorf("pong: %w", err)
			}
		case eioPong, eioNoop:
		case eioClose:
			return sioPacket{}, errSIODisconnected
		default:
			return sioPacket{}, fmt.Errorf("%w: engine.io packet type %q", errDecode, c.buf[0])
		}
	}
}

// pong is the Engine.IO answer to a ping.
var pong = []byte{eioPong}
