package engineio

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/internal/coalesce"
	"github.com/wardline/wardline/transport/wsframe"
)

// itemKind says how a queued item goes on the wire.
type itemKind uint8

const (
	kindPacket  itemKind = iota + 1 // a complete text packet, type digit included
	kindMessage                     // a text message; "4" is prepended on the wire
	kindBinary                      // a binary message
)

// item is one entry of a socket's send queue. data is never modified.
type item struct {
	data []byte
	kind itemKind
}

type transportKind uint8

const (
	transportPolling transportKind = iota + 1
	transportWebSocket
)

func (t transportKind) String() string {
	if t == transportWebSocket {
		return "websocket"
	}
	return "polling"
}

type socketState uint8

const (
	stateOpen    socketState = iota + 1
	stateClosing             // Close was called: the queue drains, then the transport closes
	stateClosed              // no more traffic; the close callback is due or done
)

// maxSpareItems bounds the queue slice a socket keeps between bursts, so an
// idle connection does not hold a large burst's backing array.
const maxSpareItems = 128

// Socket is one Engine.IO session. Its methods are safe for concurrent use.
type Socket struct {
	srv        *Server
	id         string
	remoteAddr string
	header     http.Header
	query      url.Values

	// deliverMu is held while a callback runs, so message callbacks of one
	// socket never overlap and the close callback comes after the last one.
	deliverMu sync.Mutex
	onMessage func(data []byte, binary bool)
	onClose   func(reason error)
	onStop    func() // guarded by mu; taken when the socket stops being open

	mu        sync.Mutex
	state     socketState
	closeErr  error
	transport transportKind
	ws        *websocket.Conn          // the WebSocket transport, once active
	wsRaw     syscall.RawConn          // ws's socket for non-blocking writes; nil if none (TLS)
	reader    atomic.Pointer[wsReader] // ws's reader, once it runs
	// rest is the unwritten end of a shared writer's batch whose socket
	// was full; the waiting writer (writeLoop) writes it first. Only the
	// socket's current writer touches it.
	rest          *wsframe.Writer
	hold          coalesce.State  // CoalesceWindow, WebSocket only
	urgent        bool            // a packet that is not a push is being queued
	probe         *websocket.Conn // a WebSocket in the upgrade probe phase
	probedAt      time.Time       // when the probe ping arrived; zero if none
	queue         []item
	queueBytes    int
	inflight      int // items a writer that may wait took and has not written
	inflightBytes int
	spare         []item
	writerOn      bool       // a writer goroutine owns the WebSocket's write side
	writeSealed   bool       // the close frame is written: no writer may start
	writerIdle    sync.Cond  // signalled (on mu) when a writer goroutine exits
	polling       bool       // a long-polling GET is waiting
	posting       bool       // a long-polling POST is being processed
	closeReply    packetType // what a waiting GET answers when the session ends
	lingerReply   bool       // a GET racing the client's close still gets closeReply
	awaitingPong  bool
	heartbeatDue  time.Time
	heartbeat     *time.Timer
	graceTimer    *time.Timer

	// wmu orders the writer's frames, which bypass gorilla's write lock,
	// against the control frames the reader answers with (pong, the close
	// reply). peerClosed is the connection whose close reply is written.
	wmu           sync.Mutex
	peerClosed    *websocket.Conn
	writeDeadline time.Time // of ws, as last set by the writer; zero if unknown

	ctx     context.Context // cancelled when the socket stops being open
	cancel  context.CancelFunc
	aborted atomic.Bool   // state reached stateClosed; read by the writer per frame
	wake    chan struct{} // wakes a waiting GET; capacity 1
	done    chan struct{} // closed after the close callback returned
}

func newSocket(srv *Server, r *http.Request, id string, t transportKind) *Socket {
	s := &Socket{
		srv:        srv,
		id:         id,
		remoteAddr: r.RemoteAddr,
		state:      stateOpen,
		transport:  t,
		closeReply: packetClose,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	if keep := srv.cfg.KeepHandshake; keep != nil {
		s.header, s.query = keep(r)
	} else {
		s.header, s.query = r.Header.Clone(), r.URL.Query()
	}
	s.writerIdle.L = &s.mu
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// ID is the session id (the "sid" query parameter of the client).
func (s *Socket) ID() string { return s.id }

// RemoteAddr is the network address of the handshake request.
func (s *Socket) RemoteAddr() string { return s.remoteAddr }

// Header is a copy of the handshake request's headers (those
// Config.KeepHandshake kept, if set). Do not modify it.
func (s *Socket) Header() http.Header { return s.header }

// Query is the handshake request's query (what Config.KeepHandshake kept,
// if set). Do not modify it.
func (s *Socket) Query() url.Values { return s.query }

// Transport is the active transport: "polling" or "websocket".
func (s *Socket) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport.String()
}

// OnMessage sets the callback for incoming messages. Call it from
// Config.OnConnection. data belongs to the callback (it may keep it). The
// callback runs on the connection's reader, never concurrently with another
// callback of this socket; while it runs, no further message is read, so it
// must not block for long (a blocked reader misses pongs and the session
// times out). It must not wait for Done.
func (s *Socket) OnMessage(fn func(data []byte, binary bool)) {
	s.deliverMu.Lock()
	s.onMessage = fn
	s.deliverMu.Unlock()
}

// OnClose sets the callback called once when the session has ended, after
// the last message callback returned, with the reason (see the Err* values).
func (s *Socket) OnClose(fn func(reason error)) {
	s.deliverMu.Lock()
	s.onClose = fn
	s.deliverMu.Unlock()
}

// OnStop registers fn to run once when the socket stops being open (Close
// was called or the session failed), just after Context is cancelled and
// before the close callback. It runs on the goroutine that stopped the
// socket and must not block or call the socket's methods. It lets an owner
// end contexts of its own at that moment without deriving them from
// Context, which would cost every session a channel and a map for its
// whole life.
func (s *Socket) OnStop(fn func()) {
	s.mu.Lock()
	open := s.state == stateOpen
	if open {
		s.onStop = fn
	}
	s.mu.Unlock()
	if !open {
		fn()
	}
}

// takeOnStopLocked returns the OnStop callback the first time it is
// called (nil after), with mu held.
func (s *Socket) takeOnStopLocked() func() {
	fn := s.onStop
	s.onStop = nil
	return fn
}

// Context is cancelled as soon as the socket stops being open (Close was
// called or the session failed), before the close callback runs. Work done
// on behalf of this client (an authentication lookup, say) can use it.
func (s *Socket) Context() context.Context { return s.ctx }

// Done is closed once the session has ended and the close callback returned.
func (s *Socket) Done() <-chan struct{} { return s.done }

// Err is the close reason, or nil while the socket is open.
func (s *Socket) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

// Send enqueues a text message. It never blocks: it returns ErrClosed once
// the socket is closing, and ErrQueueFull (closing the socket) when the
// queue bound is reached. msg is retained until written and not modified.
func (s *Socket) Send(msg []byte) error {
	return s.enqueue(item{data: msg, kind: kindMessage}, nil, false)
}

// SendBinary enqueues a binary message, like Send.
func (s *Socket) SendBinary(msg []byte) error {
	return s.enqueue(item{data: msg, kind: kindBinary}, nil, false)
}

// SendPacket enqueues a text message already encoded as an Engine.IO packet
// by AppendMessage, so that one encoding can be shared by many sockets.
func (s *Socket) SendPacket(pkt []byte) error {
	if len(pkt) == 0 || packetType(pkt[0]) != packetMessage {
		return ErrInvalidPacket
	}
	return s.enqueue(item{data: pkt, kind: kindPacket}, nil, false)
}

// PushPacket is SendPacket for a push: a packet the client did not ask
// for, which the WebSocket transport may hold for Config.CoalesceWindow
// to share a write with the next one.
func (s *Socket) PushPacket(pkt []byte) error {
	if len(pkt) == 0 || packetType(pkt[0]) != packetMessage {
		return ErrInvalidPacket
	}
	return s.enqueue(item{data: pkt, kind: kindPacket}, nil, true)
}

// PushPacketWithBinary is SendPacketWithBinary for a push (see
// PushPacket).
func (s *Socket) PushPacketWithBinary(pkt []byte, binary [][]byte) error {
	if len(pkt) == 0 || packetType(pkt[0]) != packetMessage {
		return ErrInvalidPacket
	}
	return s.enqueue(item{data: pkt, kind: kindPacket}, binary, true)
}

// SendPacketWithBinary enqueues pkt (as SendPacket) followed by binary
// messages, atomically: all are queued back to back, or none is.
func (s *Socket) SendPacketWithBinary(pkt []byte, binary [][]byte) error {
	if len(pkt) == 0 || packetType(pkt[0]) != packetMessage {
		return ErrInvalidPacket
	}
	return s.enqueue(item{data: pkt, kind: kindPacket}, binary, false)
}

func (s *Socket) enqueue(it item, binary [][]byte, push bool) error {
	size := len(it.data)
	for _, b := range binary {
		size += len(b)
	}
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return ErrClosed
	}
	cfg := &s.srv.cfg
	if len(s.queue)+s.inflight+1+len(binary) > cfg.MaxQueueMessages || s.queueBytes+s.inflightBytes+size > cfg.MaxQueueBytes {
		s.mu.Unlock()
		s.abort(ErrQueueFull)
		return ErrQueueFull
	}
	s.queue = append(s.queue, it)
	for _, b := range binary {
		s.queue = append(s.queue, item{data: b, kind: kindBinary})
	}
	s.queueBytes += size
	if w := cfg.CoalesceWindow; push && w > 0 && s.transport == transportWebSocket && !s.writerOn {
		writeNow, listAt := s.hold.Push(time.Now(), len(s.queue), w)
		if listAt != 0 {
			s.srv.flusher.Add((*heldSocket)(s), listAt)
		}
		if writeNow {
			s.kickLocked()
		}
	} else {
		s.urgent = !push // an ack or a ping: ahead of the shared writers' list
		s.kickLocked()
		s.urgent = false
	}
	s.mu.Unlock()
	return nil
}

// heldSocket is a Socket as the coalescing Flusher sees it.
type heldSocket Socket

func (h *heldSocket) FlushDue(now int64, stop bool) {
	s := (*Socket)(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold.Due(now, stop) {
		s.kickLocked()
	}
}

// kickLocked makes the active transport pick up the queue: it starts the
// WebSocket writer if idle, or wakes a waiting long-polling GET.
func (s *Socket) kickLocked() {
	switch {
	case s.transport == transportWebSocket:
		s.startWriterLocked()
	case s.polling:
		s.signal()
	}
}

// startWriterLocked starts the WebSocket writer unless one runs or the
// write side is sealed.
func (s *Socket) startWriterLocked() {
	if s.writerOn || s.writeSealed || s.ws == nil {
		return
	}
	s.writerOn = true
	s.srv.wg.Add(1)
	if s.state == stateOpen && s.wsRaw != nil {
		if s.urgent {
			s.srv.shared.PushFront(writeJob{s, s.ws})
		} else {
			s.srv.shared.Push(writeJob{s, s.ws})
		}
		return
	}
	s.srv.startWriter(writeJob{s, s.ws})
}

func (s *Socket) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close ends the session gracefully: what is queued is still delivered,
// then the transport closes (WebSocket close frame with the code of reason,
// see CloseError; long-polling clients get a close packet). reason is
// reported to the close callback; nil means ErrClosedByServer.
func (s *Socket) Close(reason error) {
	if reason == nil {
		reason = ErrClosedByServer
	}
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return
	}
	s.state = stateClosing
	s.closeErr = reason
	s.cancel()
	stop := s.takeOnStopLocked()
	s.stopHeartbeatLocked()
	if s.transport == transportWebSocket {
		s.startWriterLocked()
	} else {
		s.graceTimer = time.AfterFunc(pollingCloseGrace, func() { s.abort(reason) })
		s.signal()
	}
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// abort ends the session at once: the queue is dropped, the transport is
// closed, and the close callback is scheduled.
func (s *Socket) abort(reason error) {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	s.state = stateClosed
	if s.closeErr == nil {
		s.closeErr = reason
	}
	s.aborted.Store(true)
	s.cancel()
	stop := s.takeOnStopLocked()
	s.stopHeartbeatLocked()
	if s.ws != nil {
		// A write blocked on a full socket (a slow consumer's, which is
		// why the queue overflowed) would hold the close for the whole
		// WriteTimeout; what it was writing is dropped anyway.
		_ = s.ws.NetConn().SetWriteDeadline(time.Now())
	}
	if s.graceTimer != nil {
		s.graceTimer.Stop()
	}
	probe := s.probe
	s.probe = nil
	finalizeHere := false
	if s.transport == transportWebSocket {
		// The writer closes the connection; the reader then finalizes.
		s.startWriterLocked()
	} else {
		clear(s.queue)
		s.queue = s.queue[:0]
		s.queueBytes = 0
		s.signal()
		finalizeHere = true
	}
	// A client that POSTs its close packet while its GET is in flight on
	// another connection expects the GET to end with noop, not with 400:
	// keep the session findable for that GET a moment.
	linger := finalizeHere && !s.polling && s.closeReply == packetNoop
	s.lingerReply = linger
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	if linger {
		time.AfterFunc(closeReplyGrace, func() { s.srv.remove(s) })
	} else {
		s.srv.remove(s)
	}
	if probe != nil {
		probe.Close()
	}
	if finalizeHere {
		go s.finalize()
	}
}

// kill closes the network connections at once; Shutdown uses it when its
// context ends before the sockets closed gracefully.
func (s *Socket) kill() {
	s.mu.Lock()
	ws, probe := s.ws, s.probe
	s.mu.Unlock()
	s.abort(ErrServerShutdown)
	if ws != nil {
		ws.Close()
		s.wakeReader()
	}
	if probe != nil {
		probe.Close()
	}
}

// finalize runs once per socket after it reached stateClosed and its
// transport is gone. It releases the socket's hold on Server.wg.
func (s *Socket) finalize() {
	s.deliverMu.Lock()
	fn := s.onClose
	s.onMessage, s.onClose = nil, nil
	s.deliverMu.Unlock()
	if fn != nil {
		fn(s.Err())
	}
	close(s.done)
	s.srv.wg.Done()
}

// deliver hands one incoming message to the owner.
func (s *Socket) deliver(data []byte, binary bool) {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	if s.onMessage == nil || s.aborted.Load() {
		return
	}
	s.mu.Lock()
	open := s.state == stateOpen
	s.mu.Unlock()
	if open {
		s.onMessage(data, binary)
	}
}

// handlePacket applies one packet received on the active transport and
// reports whether the transport should keep reading.
func (s *Socket) handlePacket(p packet) bool {
	switch p.typ {
	case packetPong:
		s.onPong()
	case packetMessage:
		s.deliver(p.data, p.binary)
	case packetClose:
		s.mu.Lock()
		s.closeReply = packetNoop // the reference server ends a waiting GET with noop here
		s.mu.Unlock()
		s.abort(ErrClientClose)
		return false
	case packetPing:
		// Engine.IO v4 pings only from server to client.
		s.abort(ErrInvalidPacket)
		return false
	}
	// open, upgrade and noop carry nothing once the session is established.
	return true
}

// startHeartbeat arms the first ping, PingInterval after the handshake.
func (s *Socket) startHeartbeat() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen {
		return
	}
	d := s.srv.cfg.PingInterval
	s.heartbeatDue = time.Now().Add(d)
	s.heartbeat = time.AfterFunc(d, s.onHeartbeat)
}

func (s *Socket) stopHeartbeatLocked() {
	if s.heartbeat != nil {
		s.heartbeat.Stop()
	}
}

// onHeartbeat either sends a ping and waits PingTimeout for the pong, or,
// when a pong is overdue, ends the session.
func (s *Socket) onHeartbeat() {
	s.mu.Lock()
	now := time.Now()
	if s.state != stateOpen || now.Before(s.heartbeatDue) {
		// Closed, or a stale firing: a pong re-armed the timer meanwhile.
		s.mu.Unlock()
		return
	}
	if s.awaitingPong {
		s.mu.Unlock()
		s.abort(ErrPingTimeout)
		return
	}
	s.awaitingPong = true
	// The pong is due PingTimeout after the ping was scheduled, not after
	// this (possibly late) timer run, so timer lateness does not add up.
	s.heartbeatDue = s.heartbeatDue.Add(s.srv.cfg.PingTimeout)
	s.heartbeat.Reset(max(time.Until(s.heartbeatDue), 0))
	s.mu.Unlock()
	_ = s.enqueue(item{data: []byte{byte(packetPing)}, kind: kindPacket}, nil, false) // failure already closed the socket
}

// pongOverdueLocked reports whether the pong deadline has passed, even if
// the heartbeat timer has not run yet (timers run late on a busy machine).
func (s *Socket) pongOverdueLocked(now time.Time) bool {
	return s.state == stateOpen && s.awaitingPong && !now.Before(s.heartbeatDue)
}

func (s *Socket) onPong() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen || !s.awaitingPong {
		return
	}
	s.awaitingPong = false
	d := s.srv.cfg.PingInterval
	s.heartbeatDue = time.Now().Add(d)
	s.heartbeat.Reset(d)
}
