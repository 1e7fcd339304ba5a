package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wardline/wardline/transport/engineio"
)

// Defaults of Config.
const (
	// DefaultConnectTimeout is the reference server's connectTimeout.
	DefaultConnectTimeout = 45 * time.Second
	// DefaultMaxAttachments bounds binary attachments per packet.
	DefaultMaxAttachments = 10
)

// maxPendingFrames bounds what may be sent to a connection while its
// ConnectHandler runs (a recovery replay, say), before the CONNECT reply.
const maxPendingFrames = 4096

// Config configures a Server.
type Config struct {
	// Engine configures the Engine.IO layer (heartbeat, MaxPayload, queue
	// bounds, AllowRequest). Leave Engine.OnConnection nil: the Server sets it.
	Engine engineio.Config
	// ConnectTimeout closes an Engine.IO session that has joined no
	// namespace this long after its handshake.
	ConnectTimeout time.Duration
	// MaxAttachments bounds the binary attachments of one packet; a packet
	// announcing more closes the connection with ErrBinaryRefused.
	MaxAttachments int
	// RejectBinary refuses BINARY_EVENT and BINARY_ACK packets: the
	// connection is closed with ErrBinaryRefused.
	RejectBinary bool
}

// Server is a Socket.IO v5 server (Socket.IO v3/v4 clients) over an
// Engine.IO v4 server. Mount it at "/socket.io/".
type Server struct {
	cfg    Config
	engine *engineio.Server

	mu   sync.RWMutex
	nsps map[string]*Namespace
}

// NewServer validates cfg and returns a Server with no namespace: register
// them with Of. A CONNECT to an unregistered namespace is answered with
// CONNECT_ERROR {"message":"Invalid namespace"}.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Engine.OnConnection != nil {
		return nil, fmt.Errorf("%w: Engine.OnConnection is set by socketio.Server", engineio.ErrInvalidConfig)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.MaxAttachments == 0 {
		cfg.MaxAttachments = DefaultMaxAttachments
	}
	if cfg.ConnectTimeout < 0 || cfg.MaxAttachments < 0 {
		return nil, fmt.Errorf("%w: negative ConnectTimeout or MaxAttachments", engineio.ErrInvalidConfig)
	}
	s := &Server{cfg: cfg, nsps: make(map[string]*Namespace)}
	cfg.Engine.OnConnection = s.onEngineConnection
	eng, err := engineio.NewServer(cfg.Engine)
	if err != nil {
		return nil, fmt.Errorf("socketio: %w", err)
	}
	s.engine = eng
	return s, nil
}

// ServeHTTP serves Engine.IO requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Engine is the underlying Engine.IO server.
func (s *Server) Engine() *engineio.Server { return s.engine }

// Shutdown closes every Engine.IO session with ErrServerShutdown (WebSocket
// close 1001) without sending Socket.IO DISCONNECT, so clients reconnect
// by themselves; see engineio.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error { return s.engine.Shutdown(ctx) }

// Of returns the namespace called name, creating it on first use. A name
// without a leading slash gets one; "" is the main namespace "/".
func (s *Server) Of(name string) *Namespace {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ns := s.nsps[name]
	if ns == nil {
		ns = &Namespace{name: name, handlers: make(map[string]EventHandler)}
		s.nsps[name] = ns
	}
	return ns
}

func (s *Server) lookup(name string) *Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nsps[name]
}

func (s *Server) onEngineConnection(es *engineio.Socket) {
	cl := &client{srv: s, eio: es, conns: make(map[string]*Conn)}
	es.OnMessage(cl.onMessage)
	es.OnClose(cl.onClose)
	es.OnStop(cl.onStop)
	cl.connectTimer = time.AfterFunc(s.cfg.ConnectTimeout, cl.onConnectTimeout)
}

// ConnectHandler decides whether c may join its namespace. auth is the
// CONNECT payload (the client's `auth` option, plus "pid" and "offset" on
// a connection-state-recovery attempt; `{}` when the client sent none).
// ctx ends when the client goes away. Return nil to accept, a
// *ConnectError to refuse with a message and data. Frames sent to c from
// here (Emit, SendEncoded, from any goroutine) are held and delivered right
// after the CONNECT reply, in order. It runs on the connection's reader, so
// while it runs no other packet of this client is read.
type ConnectHandler func(ctx context.Context, c *Conn, auth json.RawMessage) error

// EventHandler handles one event. It runs on the connection's reader:
// events of one client are handled one at a time, in order; a slow handler
// delays that client only (but must return well within the ping timeout,
// or the session times out). ev.Ack may be called later, from any
// goroutine.
type EventHandler func(c *Conn, ev *Event)

// Namespace holds the handlers of one Socket.IO namespace. Its methods are
// safe for concurrent use; register handlers before clients connect.
type Namespace struct {
	name string

	mu           sync.RWMutex
	onConnect    ConnectHandler
	onDisconnect func(*Conn, error)
	handlers     map[string]EventHandler
	onAny        EventHandler
}

// Name is the namespace name, "/" or "/chat" for example.
func (n *Namespace) Name() string { return n.name }

// OnConnect sets the hook that accepts or refuses connections. Without
// one, every connection is accepted.
func (n *Namespace) OnConnect(h ConnectHandler) {
	n.mu.Lock()
	n.onConnect = h
	n.mu.Unlock()
}

// OnDisconnect sets the hook called once for every accepted connection
// when it leaves the namespace, with the reason: ErrClientDisconnect,
// ErrServerDisconnect, or ErrTransportClose wrapping the engineio reason.
// It runs on the goroutine that caused the disconnect (the reader, the
// Engine.IO close, or the caller of Conn.Disconnect).
func (n *Namespace) OnDisconnect(h func(c *Conn, reason error)) {
	n.mu.Lock()
	n.onDisconnect = h
	n.mu.Unlock()
}

// On sets the handler of one event name.
func (n *Namespace) On(event string, h EventHandler) {
	n.mu.Lock()
	n.handlers[event] = h
	n.mu.Unlock()
}

// OnAny sets the handler of events that have no handler of their own.
// Events with no handler at all are dropped (as by the reference server).
func (n *Namespace) OnAny(h EventHandler) {
	n.mu.Lock()
	n.onAny = h
	n.mu.Unlock()
}

func (n *Namespace) connectHandler() ConnectHandler {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.onConnect
}

func (n *Namespace) disconnectHandler() func(*Conn, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.onDisconnect
}

func (n *Namespace) eventHandler(name string) EventHandler {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if h := n.handlers[name]; h != nil {
		return h
	}
	return n.onAny
}

// client is the Socket.IO side of one Engine.IO session: the namespaces it
// joined and the binary packet being reassembled.
type client struct {
	srv *Server
	eio *engineio.Socket

	mu           sync.Mutex
	conns        map[string]*Conn // by namespace
	closed       bool
	connectTimer *time.Timer

	// Only the Engine.IO reader touches these (messages arrive one by one).
	partial    *Packet
	partialBin [][]byte
}

func (cl *client) fail(err error) { cl.eio.Close(err) }

func (cl *client) onConnectTimeout() {
	cl.mu.Lock()
	idle := len(cl.conns) == 0 && !cl.closed
	cl.mu.Unlock()
	if idle {
		cl.fail(ErrConnectTimeout)
	}
}

// onStop ends the contexts of the client's namespace connections as soon
// as the Engine.IO session stops being open: a handler waiting on one must
// return before the session's close callback (onClose) can run.
func (cl *client) onStop() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	// No CONNECT is taken from now on: its context would miss this.
	cl.closed = true
	for _, c := range cl.conns {
		c.cancel()
	}
}

func (cl *client) onClose(reason error) {
	cl.connectTimer.Stop()
	cl.mu.Lock()
	cl.closed = true
	conns := make([]*Conn, 0, len(cl.conns))
	for _, c := range cl.conns {
		conns = append(conns, c)
	}
	cl.mu.Unlock()
	for _, c := range conns {
		c.end(fmt.Errorf("%w: %w", ErrTransportClose, reason), false)
	}
}

func (cl *client) remove(c *Conn) {
	cl.mu.Lock()
	if cl.conns[c.ns.name] == c {
		delete(cl.conns, c.ns.name)
	}
	cl.mu.Unlock()
}

func (cl *client) conn(namespace string) *Conn {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.conns[namespace]
}

// onMessage receives every Engine.IO message of the session, in order.
func (cl *client) onMessage(data []byte, binary bool) {
	if cl.partial != nil {
		if !binary {
			cl.fail(fmt.Errorf("%w: text message while %d attachments are due", ErrInvalidPacket, cl.partial.Attachments-len(cl.partialBin)))
			return
		}
		cl.partialBin = append(cl.partialBin, data)
		if len(cl.partialBin) < cl.partial.Attachments {
			return
		}
		p, bins := *cl.partial, cl.partialBin
		cl.partial, cl.partialBin = nil, nil
		if err := checkPlaceholders(p.Data, len(bins)); err != nil {
			cl.fail(err)
			return
		}
		cl.dispatch(p, bins)
		return
	}
	if binary {
		cl.fail(fmt.Errorf("%w: binary message without a binary packet", ErrInvalidPacket))
		return
	}
	p, err := DecodePacket(data)
	if err != nil {
		cl.fail(err)
		return
	}
	if p.Type.binary() {
		switch {
		case cl.srv.cfg.RejectBinary:
			cl.fail(ErrBinaryRefused)
			return
		case p.Attachments > cl.srv.cfg.MaxAttachments:
			cl.fail(fmt.Errorf("%w: %d attachments, at most %d", ErrBinaryRefused, p.Attachments, cl.srv.cfg.MaxAttachments))
			return
		case p.Attachments > 0:
			cl.partial = &p
			cl.partialBin = make([][]byte, 0, p.Attachments)
			return
		}
		if err := checkPlaceholders(p.Data, 0); err != nil {
			cl.fail(err)
			return
		}
	}
	cl.dispatch(p, nil)
}

func (cl *client) dispatch(p Packet, bins [][]byte) {
	switch p.Type {
	case PacketConnect:
		cl.connect(p)
	case PacketDisconnect:
		if c := cl.conn(p.Namespace); c != nil {
			c.end(ErrClientDisconnect, false)
		}
	case PacketEvent, PacketBinaryEvent:
		c := cl.conn(p.Namespace)
		if c == nil || c.state.Load() != connConnected {
			return // not joined: dropped, as by the reference server
		}
		ev := &Event{conn: c, id: p.ID, hasID: p.HasID, Binary: bins}
		all := splitArray(p.Data)
		ev.Name, _ = unquote(all[0]) // DecodePacket checked it
		if jsonKind(all[0]) == '0' {
			ev.Name = string(all[0])
		}
		ev.Args = all[1:]
		if h := c.ns.eventHandler(ev.Name); h != nil {
			h(c, ev)
		}
	case PacketAck, PacketBinaryAck:
		// The server never asks the client for acknowledgements.
	case PacketConnectError:
		cl.fail(fmt.Errorf("%w: CONNECT_ERROR from a client", ErrInvalidPacket))
	}
}

var invalidNamespace = json.RawMessage(`{"message":"Invalid namespace"}`)

func (cl *client) connect(p Packet) {
	ns := cl.srv.lookup(p.Namespace)
	if ns == nil {
		f := encodePacket(Packet{Type: PacketConnectError, Namespace: p.Namespace, Data: invalidNamespace}, nil)
		_ = cl.eio.SendPacket(f.packet) // a failure has closed the session
		return
	}
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return
	}
	if _, dup := cl.conns[ns.name]; dup {
		cl.mu.Unlock()
		cl.fail(fmt.Errorf("%w: second CONNECT to %s", ErrInvalidPacket, ns.name))
		return
	}
	c := newConn(cl, ns)
	cl.conns[ns.name] = c
	cl.mu.Unlock()

	auth := p.Data
	if auth == nil {
		auth = json.RawMessage("{}")
	}
	var err error
	if h := ns.connectHandler(); h != nil {
		err = h(c.ctx, c, auth)
	}
	if err != nil {
		c.end(err, false)
		var ce *ConnectError
		if !errors.As(err, &ce) {
			ce = &ConnectError{Message: "internal error"}
		}
		f := encodePacket(Packet{Type: PacketConnectError, Namespace: ns.name, Data: ce.payload()}, nil)
		_ = cl.eio.SendPacket(f.packet)
		return
	}
	cl.connectTimer.Stop()
	c.accept()
}

// newID returns a Socket.IO socket id like the reference server's.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
