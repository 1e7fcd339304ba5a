// Package client is the Go client of Wardline's native WebSocket protocol
// (/ws/{namespace}, see package native). Tests, the load tool and backend
// services use it to send requests and await their acks, and to receive
// pushes with their offsets, optionally reconnecting and resuming from the
// last offset seen.
//
// A Client owns one goroutine, the reader, plus the caller's calls; Close
// stops it. Pushes go to Events in arrival order. The reader blocks while
// Events is full, so a caller that stops draining Events stops acks too and,
// eventually, the server drops the connection as a slow consumer (1013);
// with WithReconnect the client then resumes from its offset. Drain Events
// from a goroutine other than the one that waits on Emit.
//
// Delivery after a resume is exactly the events after the offset sent, but
// the protocol's guarantee is at-least-once: callers must de-duplicate
// message pushes by their messageId (DESIGN "Delivery guarantees").
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/native"
)

// Error is a failed ack's (or an exception's) {code, message}.
type Error = native.Error

// Push is a server→client event. Offset is set for events from the log.
type Push struct {
	Event  string
	Data   json.RawMessage
	Offset string
}

// CloseError reports the close frame the server ended the connection with,
// or Code 1006 when it dropped without one.
type CloseError struct {
	Code int
	Text string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("client: connection closed by server: %d %s", e.Code, e.Text)
}

// HandshakeError reports a refused upgrade: 404 unknown namespace, 403
// refused origin, 503 server shutting down.
type HandshakeError struct {
	StatusCode int
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("client: handshake refused: HTTP %d", e.StatusCode)
}

var (
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("client: closed")
	// ErrDisconnected is returned by an Emit whose connection ended before
	// its ack arrived (wrapped with the *CloseError when there is one).
	// The request may or may not have been processed: retry it with the
	// same clientMsgId, which the server de-duplicates.
	ErrDisconnected = errors.New("client: disconnected before the ack")
)

// Reconnect configures automatic reconnection.
type Reconnect struct {
	MinDelay    time.Duration // first retry delay, doubled per failure; default 100 ms
	MaxDelay    time.Duration // default 5 s
	MaxAttempts int           // consecutive failed attempts before giving up; 0 = no limit
}

type options struct {
	token       string
	headerToken bool
	offset      string
	header      http.Header
	reconnect   *Reconnect
	eventBuffer int
	dialer      *websocket.Dialer
	idle        time.Duration
	writeWait   time.Duration
}

// Option configures Dial.
type Option func(*options)

// WithToken authenticates with an auth frame {"token", "offset"}, the way
// browsers do.
func WithToken(token string) Option {
	return func(o *options) { o.token, o.headerToken = token, false }
}

// WithHeaderToken authenticates in the handshake (Authorization: Bearer);
// the resume offset then travels as the ?offset= query parameter.
func WithHeaderToken(token string) Option {
	return func(o *options) { o.token, o.headerToken = token, true }
}

// WithOffset resumes the first connection after offset (later connections
// resume after the last offset received).
func WithOffset(offset string) Option { return func(o *options) { o.offset = offset } }

// WithHeader adds handshake headers (Origin, cookies).
func WithHeader(h http.Header) Option { return func(o *options) { o.header = h.Clone() } }

// WithReconnect reconnects after a connection loss the server did not mean
// as final (any close but 1000, 1002, 1003, 1007, 1008, 1009, 1010, 4401,
// 4403, 4408), resuming from the last offset received.
func WithReconnect(r Reconnect) Option { return func(o *options) { o.reconnect = &r } }

// WithEventBuffer sets the capacity of Events (default 256).
func WithEventBuffer(n int) Option { return func(o *options) { o.eventBuffer = n } }

// WithDialer replaces websocket.DefaultDialer.
func WithDialer(d *websocket.Dialer) Option { return func(o *options) { o.dialer = d } }

// WithIdleTimeout drops a connection on which nothing (frame or ping) has
// arrived for d; default 90 s, above the server's 54 s ping period.
func WithIdleTimeout(d time.Duration) Option { return func(o *options) { o.idle = d } }

// maxServerFrame bounds what the client reads: a history page of 200
// messages of 16 KiB is 3.2 MiB.
const maxServerFrame = 32 << 20

// Client is a connection to /ws/{namespace}, re-established by WithReconnect.
// Its methods are safe for concurrent use.
type Client struct {
	url    string
	opts   options
	events chan Push
	nextID atomic.Int64

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	cur       *conn
	ready     chan struct{} // closed when cur is set again
	offset    string
	userID    string
	sessionID string
	err       error // why the client ended; set before done closes
}

// conn is one WebSocket connection of a Client.
type conn struct {
	ws      *websocket.Conn
	writeMu sync.Mutex
	first   *Push // read during the handshake, delivered by the reader

	mu      sync.Mutex
	pending map[int64]chan result
	dead    error // set when the connection ended
}

type result struct {
	data json.RawMessage
	err  error
}

// Dial connects to a ws:// or wss:// URL ending in /ws/{namespace} and, with
// a token, authenticates before returning. A refused token returns an error
// matching both *Error (the exception) and *CloseError (4401/4403).
func Dial(ctx context.Context, rawURL string, opts ...Option) (*Client, error) {
	o := options{eventBuffer: 256, dialer: websocket.DefaultDialer, idle: 90 * time.Second, writeWait: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.reconnect != nil {
		if o.reconnect.MinDelay <= 0 {
			o.reconnect.MinDelay = 100 * time.Millisecond
		}
		if o.reconnect.MaxDelay < o.reconnect.MinDelay {
			o.reconnect.MaxDelay = max(5*time.Second, o.reconnect.MinDelay)
		}
	}
	if _, err := url.Parse(rawURL); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		url:    rawURL,
		opts:   o,
		events: make(chan Push, max(o.eventBuffer, 0)),
		ctx:    cctx,
		cancel: cancel,
		done:   make(chan struct{}),
		ready:  make(chan struct{}),
		offset: o.offset,
	}
	first, err := c.connect(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	c.setConn(first)
	go c.run(first)
	return c, nil
}

// Events delivers pushes, exceptions included ({code, message, event} in
// Data), in arrival order across reconnects; each (re)connection starts
// with a "connected" push, then (from a Wardline gateway) a
// "session:offset" push whose offset is where the session's delivery
// starts, so Offset is a valid resume point from then on. It is closed
// when the client ends.
func (c *Client) Events() <-chan Push { return c.events }

// Offset is the offset of the last push received from the log; it is where
// a reconnect resumes.
func (c *Client) Offset() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// SessionID is the server's id for the current session ("" before auth).
func (c *Client) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// UserID is the authenticated user ("" before auth).
func (c *Client) UserID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.userID
}

// Done is closed when the client has ended: Close, a final close by the
// server, or reconnection given up.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err tells why the client ended once Done is closed: nil after Close, a
// *CloseError for a final close by the server, or the last dial error.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Emit sends a request and waits for its ack. It returns the ack envelope
// ({"success":true, ...}) on success, an *Error on a failed ack, ctx.Err(),
// ErrDisconnected (wrapped) if the connection ended first, or ErrClosed.
// While a reconnect is under way, Emit waits for it (bounded by ctx).
func (c *Client) Emit(ctx context.Context, event string, data any) (json.RawMessage, error) {
	id := c.nextID.Add(1)
	frame, err := native.EncodeRequest(id, event, data)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	for {
		cn, err := c.waitConn(ctx)
		if err != nil {
			return nil, err
		}
		ch := make(chan result, 1)
		if !cn.register(id, ch) {
			continue // that connection just ended; nothing was sent
		}
		if err := cn.write(frame, c.opts.writeWait); err != nil {
			cn.unregister(id)
			return nil, fmt.Errorf("%w: %w", ErrDisconnected, err)
		}
		select {
		case r := <-ch:
			return r.data, r.err
		case <-ctx.Done():
			cn.unregister(id)
			return nil, ctx.Err()
		}
	}
}

// Send sends a request without id: the server sends no ack, and a failure
// comes back as an "exception" push on Events.
func (c *Client) Send(ctx context.Context, event string, data any) error {
	frame, err := native.EncodeRequest(native.NoID, event, data)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	cn, err := c.waitConn(ctx)
	if err != nil {
		return err
	}
	if err := cn.write(frame, c.opts.writeWait); err != nil {
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	return nil
}

// Close ends the client: a normal close (1000) to the server, then it waits
// for the reader to stop. Pending Emits fail; Events is closed.
func (c *Client) Close() error {
	c.cancel()
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn != nil {
		cn.writeMu.Lock()
		_ = cn.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(native.CloseNormal, ""), time.Now().Add(time.Second))
		cn.writeMu.Unlock()
		// Give the server a moment to answer the close, then cut.
		select {
		case <-c.done:
		case <-time.After(time.Second):
			_ = cn.ws.NetConn().Close()
		}
	}
	<-c.done
	return nil
}

func (c *Client) waitConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cn, ready := c.cur, c.ready
		c.mu.Unlock()
		if cn != nil {
			return cn, nil
		}
		select {
		case <-ready:
		case <-c.done:
			if err := c.Err(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrClosed, err)
			}
			return nil, ErrClosed
		case <-c.ctx.Done():
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *Client) setConn(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = cn
	close(c.ready)
}

// run is the client's goroutine: it reads the current connection and,
// when it ends, reconnects or ends the client.
func (c *Client) run(cn *conn) {
	defer close(c.done)
	defer close(c.events)
	for {
		err := c.read(cn)
		c.mu.Lock()
		c.cur = nil
		c.ready = make(chan struct{})
		c.mu.Unlock()
		cn.fail(err)
		if c.ctx.Err() != nil {
			return // Close
		}
		if c.opts.reconnect == nil || !retryable(err) {
			c.end(err)
			return
		}
		cn, err = c.reconnect()
		if cn == nil {
			if c.ctx.Err() == nil {
				c.end(err)
			}
			return
		}
		c.setConn(cn)
		if c.ctx.Err() != nil { // Close ran while this connection was made
			cn.fail(ErrClosed)
			return
		}
	}
}

func (c *Client) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

// reconnect dials with backoff until it connects, the error is final, the
// attempts run out, or Close.
func (c *Client) reconnect() (*conn, error) {
	r := c.opts.reconnect
	delay := r.MinDelay
	for attempt := 1; ; attempt++ {
		// Full jitter keeps a server restart from being met by every
		// client at the same instant.
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-time.After(wait):
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
		cn, err := c.connect(c.ctx)
		if err == nil {
			return cn, nil
		}
		if !retryable(err) || (r.MaxAttempts > 0 && attempt >= r.MaxAttempts) {
			return nil, err
		}
		delay = min(delay*2, r.MaxDelay)
	}
}

// retryable tells whether a connection loss or dial error is worth a
// reconnect: network trouble, going away, try again, rate limited and 5xx
// are; a refused token, forbidden, a protocol violation or 4xx are not.
func retryable(err error) bool {
	var ce *CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case native.CloseNormal, websocket.CloseProtocolError, websocket.CloseUnsupportedData,
			websocket.CloseInvalidFramePayloadData, websocket.ClosePolicyViolation, native.CloseTooLarge,
			websocket.CloseMandatoryExtension, native.CloseUnauthorized, native.CloseForbidden, native.CloseAuthTimeout:
			return false
		}
		return true
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.StatusCode >= 500
	}
	return !errors.Is(err, ErrClosed)
}

// connect dials and authenticates one connection.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	offset := c.Offset()
	target := c.url
	hdr := c.opts.header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	if c.opts.headerToken {
		hdr.Set("Authorization", "Bearer "+c.opts.token)
		if offset != "" {
			u, _ := url.Parse(c.url)
			q := u.Query()
			q.Set("offset", offset)
			u.RawQuery = q.Encode()
			target = u.String()
		}
	}
	ws, resp, err := c.opts.dialer.DialContext(ctx, target, hdr)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &HandshakeError{StatusCode: resp.StatusCode}
		}
		return nil, fmt.Errorf("client: dial %s: %w", c.url, err)
	}
	ws.SetReadLimit(maxServerFrame)
	cn := &conn{ws: ws, pending: make(map[int64]chan result)}
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(time.Now().Add(c.opts.idle))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.opts.writeWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	if c.opts.token == "" {
		return cn, nil
	}
	if err := c.authenticate(ctx, cn, offset); err != nil {
		_ = ws.Close()
		return nil, err
	}
	return cn, nil
}

// authenticate completes the auth handshake on a fresh connection: for a
// frame token, until the auth ack; for a header token, until the connected
// push, which is also delivered to Events.
func (c *Client) authenticate(ctx context.Context, cn *conn, offset string) error {
	stop := context.AfterFunc(ctx, func() { _ = cn.ws.SetReadDeadline(time.Now()) })
	defer stop()
	var authID int64 = -1
	if !c.opts.headerToken {
		authID = c.nextID.Add(1)
		frame, err := native.EncodeRequest(authID, "auth", map[string]string{"token": c.opts.token, "offset": offset})
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		if err := cn.write(frame, c.opts.writeWait); err != nil {
			return fmt.Errorf("client: send auth: %w", err)
		}
	}
	var refused *Error
	for {
		_ = cn.ws.SetReadDeadline(time.Now().Add(c.opts.idle))
		f, err := cn.next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if refused != nil {
				return fmt.Errorf("client: auth refused: %w (%w)", refused, closeErrorOf(err))
			}
			return fmt.Errorf("client: auth: %w", closeErrorOf(err))
		}
		switch {
		case f.HasID && f.ID == authID && f.Event == "":
			var a struct {
				Success   bool   `json:"success"`
				UserID    string `json:"userId"`
				SessionID string `json:"sessionId"`
				Error     *Error `json:"error"`
			}
			if err := json.Unmarshal(f.Data, &a); err != nil {
				return fmt.Errorf("client: auth ack %s: %w", f.Data, err)
			}
			if !a.Success {
				return a.Error
			}
			c.mu.Lock()
			c.userID, c.sessionID = a.UserID, a.SessionID
			c.mu.Unlock()
			return nil
		case f.Event == "exception":
			refused = decodeException(f.Data)
		case f.Event == "connected" && c.opts.headerToken:
			c.noteConnected(f.Data)
			cn.first = &Push{Event: f.Event, Data: f.Data}
			return nil
		}
	}
}

func decodeException(data json.RawMessage) *Error {
	var e Error
	if json.Unmarshal(data, &e) != nil || e.Code == "" {
		return &Error{Code: native.CodeInternal, Message: "malformed exception"}
	}
	return &e
}

func (c *Client) noteConnected(data json.RawMessage) {
	var d struct {
		SocketID string `json:"socketId"`
		UserID   string `json:"userId"`
	}
	if json.Unmarshal(data, &d) == nil {
		c.mu.Lock()
		c.sessionID, c.userID = d.SocketID, d.UserID
		c.mu.Unlock()
	}
}

// closeErrorOf turns a read error into the *CloseError callers match.
func closeErrorOf(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: ce.Code, Text: ce.Text}
	}
	return &CloseError{Code: native.CloseAbnormal, Text: err.Error()}
}

// read runs one connection's frames until it ends, and returns why.
func (c *Client) read(cn *conn) error {
	if cn.first != nil {
		select {
		case c.events <- *cn.first:
		case <-c.ctx.Done():
			return ErrClosed
		}
	}
	for {
		_ = cn.ws.SetReadDeadline(time.Now().Add(c.opts.idle))
		f, err := cn.next()
		if err != nil {
			return closeErrorOf(err)
		}
		if f.HasID && f.Event == "" {
			cn.resolve(f.ID, f.Data)
			continue
		}
		if f.Event == "" {
			continue // not a frame of this protocol; ignore rather than fail
		}
		c.mu.Lock()
		if f.Offset != "" {
			c.offset = f.Offset
		}
		c.mu.Unlock()
		if f.Event == "connected" {
			c.noteConnected(f.Data)
		}
		select {
		case c.events <- Push{Event: f.Event, Data: f.Data, Offset: f.Offset}:
		case <-c.ctx.Done():
			return ErrClosed
		}
	}
}

func (cn *conn) next() (native.Frame, error) {
	for {
		typ, b, err := cn.ws.ReadMessage()
		if err != nil {
			return native.Frame{}, err
		}
		if typ != websocket.TextMessage {
			continue
		}
		// b is freshly allocated per message, so Data may alias it.
		f, err := native.DecodeFrame(b)
		if err != nil {
			continue // a server bug should not take the client down
		}
		return f, nil
	}
}

func (cn *conn) write(frame []byte, wait time.Duration) error {
	cn.writeMu.Lock()
	defer cn.writeMu.Unlock()
	_ = cn.ws.SetWriteDeadline(time.Now().Add(wait))
	return cn.ws.WriteMessage(websocket.TextMessage, frame)
}

func (cn *conn) register(id int64, ch chan result) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.dead != nil {
		return false
	}
	cn.pending[id] = ch
	return true
}

func (cn *conn) unregister(id int64) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	delete(cn.pending, id)
}

func (cn *conn) resolve(id int64, data json.RawMessage) {
	cn.mu.Lock()
	ch, ok := cn.pending[id]
	delete(cn.pending, id)
	cn.mu.Unlock()
	if !ok {
		return // its Emit gave up (ctx) already
	}
	var env struct {
		Success bool   `json:"success"`
		Error   *Error `json:"error"`
	}
	switch {
	case json.Unmarshal(data, &env) != nil:
		ch <- result{err: fmt.Errorf("client: malformed ack %.64q", data)}
	case env.Success:
		ch <- result{data: data}
	case env.Error != nil:
		ch <- result{err: env.Error}
	default:
		ch <- result{err: &Error{Code: native.CodeInternal, Message: "ack without success or error"}}
	}
}

// fail ends a connection: every pending Emit gets ErrDisconnected.
func (cn *conn) fail(cause error) {
	_ = cn.ws.Close()
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.dead = fmt.Errorf("%w: %w", ErrDisconnected, cause)
	for id, ch := range cn.pending {
		ch <- result{err: cn.dead}
		delete(cn.pending, id)
	}
}
