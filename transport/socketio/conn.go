package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wardline/wardline/transport/engineio"
)

// Connection states.
const (
	connConnecting uint32 = iota + 1 // the ConnectHandler runs; frames are held
	connConnected                    // the CONNECT reply went out
	connClosed                       // left the namespace, or refused
)

// Conn is one client's membership of one namespace (a socket.io "socket").
// Its methods are safe for concurrent use.
type Conn struct {
	id     string
	ns     *Namespace
	cl     *client
	ctx    context.Context
	cancel context.CancelFunc
	state  atomic.Uint32

	mu      sync.Mutex
	pending []Frame // held until the CONNECT reply
	pid     string
	reason  error
	value   any
}

func newConn(cl *client, ns *Namespace) *Conn {
	c := &Conn{id: newID(), ns: ns, cl: cl}
	// Not derived from the Engine.IO session's context, which would then
	// allocate a done channel and a children map (~250 bytes of every idle
	// connection): client.onStop cancels it when the session stops.
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.state.Store(connConnecting)
	return c
}

// ID is the socket id the client sees as socket.id. It is new on every
// connection, recovered ones included.
func (c *Conn) ID() string { return c.id }

// Namespace is the namespace name.
func (c *Conn) Namespace() string { return c.ns.name }

// Socket is the Engine.IO session: transport, remote address, and the
// handshake request's headers and query.
func (c *Conn) Socket() *engineio.Socket { return c.cl.eio }

// Context ends when the connection leaves the namespace or the client goes away.
func (c *Conn) Context() context.Context { return c.ctx }

// SetValue attaches owner data (the authenticated user, say) to c.
func (c *Conn) SetValue(v any) {
	c.mu.Lock()
	c.value = v
	c.mu.Unlock()
}

// Value returns what SetValue stored.
func (c *Conn) Value() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.value
}

// SetPID sets the connection-state-recovery session id sent in the CONNECT
// reply ({"sid":…,"pid":…}). Call it from the ConnectHandler; later calls
// have no effect. socket.io-client stores the pid, sends it back with its
// last offset in the auth of its next CONNECT, and sets socket.recovered to
// true only when the reply carries the same pid again. See the package doc.
func (c *Conn) SetPID(pid string) {
	c.mu.Lock()
	c.pid = pid
	c.mu.Unlock()
}

// PID is the recovery session id set by SetPID.
func (c *Conn) PID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// Reason is why the connection ended, or nil while it has not.
func (c *Conn) Reason() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Emit sends event with args to this connection (see EncodeEvent for the
// encoding). It never blocks; see SendEncoded for errors.
func (c *Conn) Emit(event string, args ...any) error {
	f, err := EncodeEvent(c.ns.name, event, args...)
	if err != nil {
		return err
	}
	return c.send(f)
}

// SendEncoded sends a frame made by EncodeEvent for this namespace; the
// frame's bytes are shared, not copied. It never blocks. It returns
// ErrDisconnected after the connection left the namespace, and the
// engineio errors (engineio.ErrQueueFull closes the whole session: the
// client is too slow and will resume from its offset).
func (c *Conn) SendEncoded(f Frame) error {
	if f.namespace != c.ns.name {
		return fmt.Errorf("%w: %q, connection is in %q", ErrNamespaceMismatch, f.namespace, c.ns.name)
	}
	return c.send(f)
}

// Push is SendEncoded for a push (an event the client did not ask for):
// the WebSocket transport may hold it for engineio.Config.CoalesceWindow to
// share a write with the next one. Acks and other packets are never held.
func (c *Conn) Push(f Frame) error {
	if f.namespace != c.ns.name {
		return fmt.Errorf("%w: %q, connection is in %q", ErrNamespaceMismatch, f.namespace, c.ns.name)
	}
	if c.state.Load() == connConnected {
		if len(f.binary) > 0 {
			return c.cl.eio.PushPacketWithBinary(f.packet, f.binary)
		}
		return c.cl.eio.PushPacket(f.packet)
	}
	return c.send(f) // held with the others until the CONNECT reply
}

func (c *Conn) send(f Frame) error {
	if c.state.Load() == connConnected {
		return c.write(f)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state.Load() {
	case connConnected:
		return c.write(f)
	case connClosed:
		return ErrDisconnected
	}
	if len(c.pending) >= maxPendingFrames {
		return ErrTooManyPending
	}
	c.pending = append(c.pending, f)
	return nil
}

func (c *Conn) write(f Frame) error {
	if len(f.binary) > 0 {
		return c.cl.eio.SendPacketWithBinary(f.packet, f.binary)
	}
	return c.cl.eio.SendPacket(f.packet)
}

// accept sends the CONNECT reply, then the frames held meanwhile.
func (c *Conn) accept() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Load() != connConnecting {
		return
	}
	data := append(make([]byte, 0, 64), `{"sid":`...)
	data = appendString(data, c.id)
	if c.pid != "" {
		data = append(data, `,"pid":`...)
		data = appendString(data, c.pid)
	}
	data = append(data, '}')
	// A write error means the session is closing; its close ends c.
	err := c.write(encodePacket(Packet{Type: PacketConnect, Namespace: c.ns.name, Data: data}, nil))
	for _, f := range c.pending {
		if err == nil {
			err = c.write(f)
		}
	}
	c.pending = nil
	c.state.Store(connConnected)
}

// Disconnect removes the client from the namespace with a DISCONNECT
// packet: socket.io-client reports "io server disconnect" and does not
// reconnect. The Engine.IO session stays open for other namespaces.
// Before the connection was accepted (inside the ConnectHandler) it
// returns ErrDisconnected: refuse by returning an error instead.
func (c *Conn) Disconnect() error {
	if !c.end(ErrServerDisconnect, true) {
		return ErrDisconnected
	}
	return nil
}

// end moves c to closed, once, and reports whether this call did it. With
// sendDisconnect it only acts on a connected c and sends DISCONNECT first.
func (c *Conn) end(reason error, sendDisconnect bool) bool {
	c.mu.Lock()
	st := c.state.Load()
	if st == connClosed || (sendDisconnect && st != connConnected) {
		c.mu.Unlock()
		return false
	}
	if sendDisconnect {
		_ = c.write(encodePacket(Packet{Type: PacketDisconnect, Namespace: c.ns.name}, nil))
	}
	c.state.Store(connClosed)
	c.reason = reason
	c.pending = nil
	c.mu.Unlock()
	c.cancel()
	c.cl.remove(c)
	if st == connConnected {
		if h := c.ns.disconnectHandler(); h != nil {
			h(c, reason)
		}
	}
	return true
}

// Event is one event received from a client.
type Event struct {
	// Name is the event name (the first element of the packet's array).
	Name string
	// Args are the other elements, as JSON. With binary attachments they
	// contain placeholders {"_placeholder":true,"num":N}; Unmarshal
	// reassembles them.
	Args []json.RawMessage
	// Binary are the attachments, in placeholder order.
	Binary [][]byte

	conn  *Conn
	id    uint64
	hasID bool
	acked atomic.Bool
}

// HasAck reports whether the client waits for an acknowledgement.
func (e *Event) HasAck() bool { return e.hasID }

// Ack sends the acknowledgement with args (encoded as EncodeEvent does,
// Binary included), once; it may be called from any goroutine, after the
// handler returned. It returns ErrNoAck when the client asked for none,
// ErrAlreadyAcked the second time, and the errors of Conn.SendEncoded.
func (e *Event) Ack(args ...any) error {
	if !e.hasID {
		return ErrNoAck
	}
	if !e.acked.CompareAndSwap(false, true) {
		return ErrAlreadyAcked
	}
	f, err := encodeAck(e.conn.ns.name, e.id, args)
	if err != nil {
		return err
	}
	return e.conn.send(f)
}

// Unmarshal decodes argument i into v with encoding/json, after replacing
// binary placeholders by the base64 of their attachments, so that []byte
// fields receive the attachment bytes.
func (e *Event) Unmarshal(i int, v any) error {
	if i < 0 || i >= len(e.Args) {
		return fmt.Errorf("socketio: event %q has %d arguments, no argument %d", e.Name, len(e.Args), i)
	}
	raw, err := reassemble(e.Args[i], e.Binary)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("socketio: event %q argument %d: %w", e.Name, i, err)
	}
	return nil
}

// BinaryArg returns the attachment when argument i is a bare placeholder.
func (e *Event) BinaryArg(i int) ([]byte, bool) {
	if i < 0 || i >= len(e.Args) {
		return nil, false
	}
	n, ok := placeholderNum(e.Args[i])
	if !ok || n >= len(e.Binary) {
		return nil, false
	}
	return e.Binary[n], true
}

// Recovery is what socket.io-client adds to the CONNECT auth payload when
// it reconnects after having been given a pid: the pid and the last
// string argument of the last event it received (the offset).
type Recovery struct {
	PID    string
	Offset string // empty when the client received no event with an offset
}

// ParseRecovery extracts the recovery fields from a CONNECT auth payload.
// ok is false when the payload carries no string "pid" (a first connect).
func ParseRecovery(auth json.RawMessage) (r Recovery, ok bool) {
	var v struct {
		PID    any `json:"pid"`
		Offset any `json:"offset"`
	}
	if json.Unmarshal(auth, &v) != nil {
		return Recovery{}, false
	}
	pid, _ := v.PID.(string)
	off, _ := v.Offset.(string)
	return Recovery{PID: pid, Offset: off}, pid != ""
}
