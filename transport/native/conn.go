package native

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/internal/coalesce"
	"github.com/wardline/wardline/transport/internal/idlewait"
	"github.com/wardline/wardline/transport/wsframe"
)

// Conn is one upgraded connection. Its methods are safe for concurrent use;
// the gateway holds it from OnAuth/OnConnect until OnClose.
type Conn struct {
	srv    *Server
	ws     *websocket.Conn
	br     *bufio.Reader // gorilla's reader of the socket (see idlewait.Hijacker)
	id     string
	ns     string
	remote string
	// header is the handshake request's header until OnConnect has run;
	// dropped then, since an idle connection need not keep ~800 bytes of
	// parsed request headers for its whole life.
	header atomic.Pointer[http.Header]
	ctx    context.Context
	cancel context.CancelFunc

	session atomic.Pointer[Session]
	abort   atomic.Bool // stop writing queued frames: slow consumer

	mu     sync.Mutex
	queue  [][]byte
	spare  [][]byte // the other half of the double buffer
	queued int      // bytes in queue
	// inflight and inflightBytes count the batch a writer that may wait
	// (writeLoop) took and has not written. The queue bound counts them:
	// a client that stopped reading would otherwise get a second queue's
	// worth while its writer waits on the full socket.
	inflight      int
	inflightBytes int
	writing       bool           // a writer goroutine is running
	hold          coalesce.State // CoalesceWindow
	inHandler     bool           // the reader is in a hook whose reply is owed
	urgent        bool           // a reply is being queued: its writer goes first
	owed          int            // replies of Pending requests not yet written
	authed        bool
	pingDue       bool
	closeReq      *closeRequest
	closeSent     bool
	closed        bool // the reader has exited; nothing more is sent
	broken        bool // a write failed; the reader is about to fail too
	// writeTimedOut: the failed write hit the write deadline (the client
	// stopped reading).
	writeTimedOut bool
	space         chan struct{} // closed when the queue drains; nil if nobody waits

	writers sync.WaitGroup
	// raw is the socket for the shared writers' non-blocking writes; nil
	// when it has none (TLS), and then every write burst gets a goroutine
	// that may wait.
	raw syscall.RawConn
	// rest is the unwritten end of a shared writer's batch whose socket
	// was full; the connection's waiting writer (writeLoop) writes it
	// first. Only the connection's current writer touches it.
	rest     *wsframe.Writer
	pending  sync.WaitGroup // goroutines of Pending requests
	slots    chan struct{}  // one per Pending in flight; made at the first
	pingSlot *pingSlot      // the connection's place in the Server's ping schedule
	auth     *pendingAuth   // nil unless waiting for an auth frame

	dlMu    sync.Mutex // orders read-deadline updates against the close grace
	closing bool
	// readDeadline is the socket's read deadline as last set, in Unix
	// nanoseconds: a parked reader (see park) waits in no read that the
	// deadline could end, so the ping schedule checks it (watchDeadline).
	readDeadline atomic.Int64

	// parked: the reader goroutine has exited and the socket waits in the
	// Server's poller; wake starts a reader again. poll is the socket's
	// registration there, owned by the current reader.
	parked atomic.Bool
	kicked atomic.Bool // a wake found the reader not parked (see park)
	poll   *idlewait.Handle

	// wmu orders the writer's data frames, which bypass gorilla's write
	// lock, against the control frames the reader answers with (pong, the
	// close reply): a frame is never split by another, and no data frame
	// follows the close reply.
	wmu           sync.Mutex
	peerClosed    bool      // the close reply is written; guarded by wmu
	writeDeadline time.Time // the socket's write deadline as last set; guarded by wmu
}

// pendingAuth is what a connection needs while it waits for its auth
// frame, kept apart so that an authenticated connection does not carry it.
type pendingAuth struct {
	timer    *time.Timer
	deadline time.Time
	cancel   context.CancelFunc // OnAuth's ctx while OnAuth runs; drop cancels it
}

// authDeadline is when the connection must have authenticated; zero if it
// is not waiting for an auth frame. Called by the reader's hooks only.
func (c *Conn) authDeadline() time.Time {
	if a := c.auth; a != nil {
		return a.deadline
	}
	return time.Time{}
}

type closeRequest struct {
	code   int
	reason string
	err    error
	abort  bool // drop the queue and close at once
}

func newConn(s *Server, ws *websocket.Conn, ns string, r *http.Request) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		srv:    s,
		ws:     ws,
		id:     s.cfg.NewSessionID(),
		ns:     ns,
		remote: r.RemoteAddr,
		ctx:    ctx,
		cancel: cancel,
	}
	h := r.Header
	c.header.Store(&h)
	if tc, ok := ws.NetConn().(*net.TCPConn); ok && wsframe.CanTryWrite {
		if raw, err := tc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	return c
}

// ID is the session id: the sessionId of the auth ack and the socketId of the
// connected push. It is set at the upgrade, before authentication.
func (c *Conn) ID() string { return c.id }

// Namespace is the {namespace} of /ws/{namespace}, without slash.
func (c *Conn) Namespace() string { return c.ns }

// RemoteAddr is the peer address of the handshake request.
func (c *Conn) RemoteAddr() string { return c.remote }

// Header is the handshake request's header; it must not be modified. It is
// available to the Authenticate, OnAuth and OnConnect hooks and nil after
// OnConnect has returned.
func (c *Conn) Header() http.Header {
	if h := c.header.Load(); h != nil {
		return *h
	}
	return nil
}

// Context is cancelled when the connection has ended (or Shutdown gave up
// waiting): bind per-connection goroutines to it.
func (c *Conn) Context() context.Context { return c.ctx }

// Session returns what authentication established; false before it.
func (c *Conn) Session() (Session, bool) {
	s := c.session.Load()
	if s == nil {
		return Session{}, false
	}
	return *s, true
}

// Send queues a pre-encoded frame (EncodePush) without blocking. frame is
// shared, not copied: it must not be modified afterwards, which is what lets
// one broadcast encoding serve every connection. When the queue is full
// (Config.SendQueueMessages or SendQueueBytes) the client is a slow
// consumer: the queue is dropped, the connection closes with 1013 (best
// effort: the close frame waits for the write in progress) and Send returns
// ErrSlowConsumer; OnClose then sees CloseInfo.Err ErrSlowConsumer. After
// Close, Send returns ErrClosed.
func (c *Conn) Send(frame []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closeReq != nil {
		return ErrClosed
	}
	if !c.fitsLocked(len(frame)) {
		c.requestCloseLocked(&closeRequest{code: CloseTryAgain, reason: "slow consumer", err: ErrSlowConsumer, abort: true})
		return ErrSlowConsumer
	}
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	if c.writing {
		return nil // the running writer takes it
	}
	w := c.srv.cfg.CoalesceWindow
	if w <= 0 {
		c.kickLocked()
		return nil
	}
	writeNow, listAt := c.hold.Push(time.Now(), len(c.queue), w)
	if listAt != 0 {
		c.srv.flusher.Add((*heldConn)(c), listAt)
	}
	if writeNow {
		c.kickLocked()
	}
	return nil
}

// heldConn is a Conn as the coalescing Flusher sees it.
type heldConn Conn

func (h *heldConn) FlushDue(now int64, stop bool) {
	c := (*Conn)(h)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold.Due(now, stop) {
		c.kickLocked()
	}
}

// SendWait queues frame like Send but waits for room instead of treating a
// full queue as a slow consumer: for a replay, where the sender can be paced
// by the client. It returns ErrClosed once the connection is closing, or
// ctx.Err().
func (c *Conn) SendWait(ctx context.Context, frame []byte) error {
	for {
		c.mu.Lock()
		if c.closed || c.closeReq != nil {
			c.mu.Unlock()
			return ErrClosed
		}
		if c.fitsLocked(len(frame)) {
			c.enqueueLocked(frame)
			c.mu.Unlock()
			return nil
		}
		if c.space == nil {
			c.space = make(chan struct{})
		}
		space := c.space
		c.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close closes the connection with code and reason (at most 123 bytes;
// longer is cut). Frames already queued, and the reply of a request being
// handled, are written first; later Sends fail. Closing twice keeps the
// first code. Use the Close* constants: 4401 token expired, 4403, 4429, ….
func (c *Conn) Close(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closeReq != nil {
		return
	}
	c.requestCloseLocked(&closeRequest{code: code, reason: reason})
}

// CloseWithError sends an exception frame carrying e (for event, "" if
// none), then closes with code and e.Message as the reason: the rate-limit
// and token-expiry endings, where the client must be told why.
func (c *Conn) CloseWithError(code int, e *Error, event string) {
	frame := EncodeException(e, event)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closeReq != nil {
		return
	}
	c.enqueueLocked(frame)
	c.requestCloseLocked(&closeRequest{code: code, reason: e.Message})
}

func (c *Conn) fitsLocked(n int) bool {
	cfg := &c.srv.cfg
	// A single frame larger than the byte bound still goes through an
	// empty queue, or it could never be sent at all.
	held := len(c.queue) + c.inflight
	return held < cfg.SendQueueMessages && (held == 0 || c.queued+c.inflightBytes+n <= cfg.SendQueueBytes)
}

func (c *Conn) enqueueLocked(frame []byte) {
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	c.kickLocked()
}

// reply queues a frame owed to the client for a request being handled; it
// is accepted during a graceful close so an in-flight request still gets
// its answer before the close frame.
func (c *Conn) reply(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inHandler = false
	c.replyLocked(frame)
}

func (c *Conn) replyLocked(frame []byte) {
	c.urgent = true // the client waits for it: ahead of the shared writers' list
	if frame != nil && !c.closed && (c.closeReq == nil || !c.closeReq.abort) && !c.closeSent {
		c.enqueueBoundedLocked(frame)
	}
	c.kickLocked()
	c.urgent = false
}

// enqueueBoundedLocked queues a frame the reader owes the client, under
// the same bound as Send: a client that sends requests but does not read
// the answers is a slow consumer too, or a flood of bad frames before
// authentication (which no gateway rate limit sees) would grow the queue
// without limit.
func (c *Conn) enqueueBoundedLocked(frame []byte) {
	if !c.fitsLocked(len(frame)) {
		if c.closeReq == nil {
			c.requestCloseLocked(&closeRequest{code: CloseTryAgain, reason: "slow consumer", err: ErrSlowConsumer, abort: true})
		}
		return
	}
	c.enqueueLocked(frame)
}

func (c *Conn) requestCloseLocked(req *closeRequest) {
	c.closeReq = req
	if req.abort {
		c.abort.Store(true)
		clear(c.queue)
		c.queue = c.queue[:0]
		c.queued = 0
	}
	c.wakeSendersLocked()
	c.kickLocked()
}

func (c *Conn) wakeSendersLocked() {
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
}

// kickLocked starts the writer if it is not running and there is work:
// a shared writer for data frames, a goroutine that may wait for anything
// else (see workpool.Turns).
func (c *Conn) kickLocked() {
	if c.writing || c.closed || c.broken {
		return
	}
	if len(c.queue) == 0 && !c.pingDue && (c.closeReq == nil || c.closeSent) {
		return
	}
	c.writing = true
	c.writers.Add(1)
	if c.raw != nil && !c.pingDue && c.closeReq == nil {
		if c.urgent {
			c.srv.shared.PushFront(c)
		} else {
			c.srv.shared.Push(c)
		}
		return
	}
	c.srv.startWriter(c)
}

// writeNow is a shared writer's turn at c: it writes what is queued
// without waiting for the socket. again reports that more was queued
// meanwhile; the shared writer then gives c another turn later. Whatever
// may wait (the end of a batch the full socket did not take, a ping, a
// close frame) goes to writeLoop on a goroutine of its own, which takes
// over c's writing flag.
func (c *Conn) writeNow() (again bool) {
	c.mu.Lock()
	switch {
	case c.closed || len(c.queue) == 0 && !c.pingDue && (c.closeReq == nil || c.closeSent):
		c.writing = false
		c.mu.Unlock()
		c.writers.Done()
		return false
	case c.pingDue || c.closeReq != nil:
		c.mu.Unlock()
		c.srv.startWriter(c)
		return false
	}
	batch := c.takeQueueLocked()
	c.mu.Unlock()
	left, err := c.tryWriteBatch(batch)
	if err == nil && left != nil {
		c.mu.Lock()
		c.requeueLocked(left)
		c.mu.Unlock()
	}
	if err != nil || c.rest != nil || left != nil {
		c.recycle(batch)
		if err != nil {
			c.writeFailed(err)
			c.writers.Done()
		} else {
			c.srv.startWriter(c)
		}
		return false
	}
	clear(batch)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.spare = batch[:0]
	if !c.closed && (len(c.queue) > 0 || c.pingDue || c.closeReq != nil && !c.closeSent) {
		return true
	}
	c.writing = false
	c.writers.Done()
	return false
}

// takeQueueLocked takes the queued frames as the next batch.
func (c *Conn) takeQueueLocked() [][]byte {
	if c.srv.cfg.CoalesceWindow > 0 {
		c.hold.Written(time.Now()) // held pushes go out with this batch
	}
	batch := c.queue
	c.queue, c.spare = c.spare[:0], nil
	c.queued = 0
	c.wakeSendersLocked()
	return batch
}

// recycle keeps a written batch's slice as the next spare, without its
// references to shared broadcast frames (nil: none to keep); what the
// writer took no longer counts as in flight, so senders waiting for room
// may find it.
func (c *Conn) recycle(batch [][]byte) {
	clear(batch)
	c.mu.Lock()
	if batch != nil {
		c.spare = batch[:0]
	}
	if c.inflight > 0 {
		c.inflight, c.inflightBytes = 0, 0
		c.wakeSendersLocked()
	}
	c.mu.Unlock()
}

// requeueLocked puts frames a full socket did not take back at the front
// of the queue, for the waiting writer.
func (c *Conn) requeueLocked(left [][]byte) {
	if c.closed || c.abort.Load() {
		return
	}
	n := 0
	for _, f := range left {
		n += len(f)
	}
	c.queue = append(append(make([][]byte, 0, len(left)+len(c.queue)), left...), c.queue...)
	c.queued += n
}

// tryWriteBatch writes batch with writevs that never wait, a chunk at a
// time. When the socket fills, the chunk's unwritten end is left in c.rest
// and the frames after the chunk are returned (copied: batch is recycled).
// When the reader is writing a control frame (a pong to a client whose
// socket may be full), the whole batch is returned: a shared writer must
// not wait for that.
func (c *Conn) tryWriteBatch(batch [][]byte) (left [][]byte, err error) {
	if !c.wmu.TryLock() {
		return append([][]byte(nil), batch...), nil
	}
	defer c.wmu.Unlock()
	for len(batch) > 0 {
		chunk := batch[:min(len(batch), wsframe.MaxFrames)]
		batch = batch[len(chunk):]
		done, err := c.tryWriteChunk(chunk)
		if err != nil {
			return nil, err
		}
		if !done {
			if len(batch) > 0 {
				left = append([][]byte(nil), batch...)
			}
			return left, nil
		}
	}
	return nil, nil
}

// tryWriteChunk is tryWriteBatch's step; c.wmu is held.
func (c *Conn) tryWriteChunk(chunk [][]byte) (done bool, err error) {
	if c.abort.Load() || c.peerClosed {
		return true, nil
	}
	fw := c.srv.frames.Get()
	for _, f := range chunk {
		fw.Add(wsframe.OpText, nil, f)
	}
	done, err = fw.TryWriteTo(c.raw)
	if done || err != nil {
		c.srv.frames.Put(fw)
		return done, err
	}
	c.rest = fw
	return false, nil
}

// writeRest writes, waiting for the socket, the end of a batch that a
// shared writer left in c.rest.
func (c *Conn) writeRest() error {
	fw := c.rest
	c.rest = nil
	defer c.srv.frames.Put(fw)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.abort.Load() || c.peerClosed {
		return nil
	}
	c.writeDeadline = time.Now().Add(c.srv.cfg.WriteWait)
	if err := c.ws.NetConn().SetWriteDeadline(c.writeDeadline); err != nil {
		return err
	}
	return fw.WriteRest(c.ws.NetConn())
}

// writeLoop drains the queue and returns when it is empty, so only
// connections with something to send hold a writer goroutine. Frames queued
// while a batch is written are taken as the next batch, back to back.
func (c *Conn) writeLoop() {
	defer c.writers.Done()
	if c.rest != nil {
		c.mu.Lock()
		c.inflight = c.rest.Len() // its bytes are not counted: a chunk's end
		c.mu.Unlock()
		err := c.writeRest()
		c.recycle(nil)
		if err != nil {
			c.writeFailed(err)
			return
		}
	}
	for {
		c.mu.Lock()
		switch {
		case c.closed:
		case len(c.queue) > 0:
			n := c.queued
			batch := c.takeQueueLocked()
			c.inflight, c.inflightBytes = len(batch), n
			c.mu.Unlock()
			err := c.writeBatch(batch)
			c.recycle(batch)
			if err != nil {
				c.writeFailed(err)
				return
			}
			continue
		case c.pingDue && !c.closeSent:
			c.pingDue = false
			c.mu.Unlock()
			if err := c.writeControl(websocket.PingMessage, nil); err != nil {
				c.writeFailed(err)
				return
			}
			continue
		case c.closeReq != nil && !c.closeSent && (c.closeReq.abort || !c.inHandler && c.owed == 0):
			c.closeSent = true
			req := c.closeReq
			c.mu.Unlock()
			msg := websocket.FormatCloseMessage(req.code, truncateReason(req.reason))
			if err := c.writeControl(websocket.CloseMessage, msg); err != nil {
				c.writeFailed(err)
				return
			}
			c.startCloseGrace()
			continue
		}
		c.writing = false
		c.mu.Unlock()
		return
	}
}

func (c *Conn) writeBatch(batch [][]byte) error {
	fw := c.srv.frames.Get()
	defer c.srv.frames.Put(fw)
	nc := c.ws.NetConn()
	now := time.Now()
	for len(batch) > 0 {
		chunk := batch[:min(len(batch), wsframe.MaxFrames)]
		batch = batch[len(chunk):]
		if err := c.writeChunk(fw, nc, chunk, now); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) writeChunk(fw *wsframe.Writer, nc net.Conn, chunk [][]byte, now time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.abort.Load() || c.peerClosed {
		return nil
	}
	// A batch gets between WriteWait/2 and WriteWait: setting the deadline
	// (a runtime timer update) for every batch was 5% of the server's CPU
	// at 50k deliveries/s, mostly one-frame batches.
	wait := c.srv.cfg.WriteWait
	if c.writeDeadline.Before(now.Add(wait / 2)) {
		c.writeDeadline = now.Add(wait)
		if err := nc.SetWriteDeadline(c.writeDeadline); err != nil {
			return err
		}
	}
	for _, f := range chunk {
		fw.Add(wsframe.OpText, nil, f)
	}
	return fw.WriteTo(nc)
}

// writeControl writes the writer's own control frames under wmu, as
// WriteControl sets the socket's write deadline.
func (c *Conn) writeControl(typ int, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.writeDeadline = time.Time{}
	return c.ws.WriteControl(typ, data, time.Now().Add(c.srv.cfg.WriteWait))
}

// answerPing replaces gorilla's ping handler, whose pong would otherwise
// race the writer's own writes on the socket.
func (c *Conn) answerPing(data string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.peerClosed {
		return nil
	}
	err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.srv.cfg.WriteWait))
	c.writeDeadline = time.Time{} // WriteControl has set its own
	var ne net.Error
	if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
		return nil // as gorilla's default: the reader sees the failure next
	}
	return err
}

// answerClose replaces gorilla's close handler: it echoes the peer's close
// code and stops the writer, so no data frame follows the close reply.
func (c *Conn) answerClose(code int, _ string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.peerClosed = true
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(c.srv.cfg.WriteWait))
	c.writeDeadline = time.Time{}
	return nil
}

// writeFailed ends a connection whose socket cannot be written: closing the
// socket makes the reader fail and run the ending.
func (c *Conn) writeFailed(err error) {
	c.mu.Lock()
	c.writing = false
	c.broken = true
	c.writeTimedOut = errors.Is(err, os.ErrDeadlineExceeded)
	c.mu.Unlock()
	_ = c.ws.NetConn().Close()
	c.wake() // a parked reader would not see the close
}

// startCloseGrace gives the peer closeGracePeriod to answer our close frame.
func (c *Conn) startCloseGrace() {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.closing = true
	c.setReadDeadlineLocked(time.Now().Add(closeGracePeriod))
	// A parked reader sees the peer's answer, or this, its absence.
	time.AfterFunc(closeGracePeriod, c.wake)
}

func (c *Conn) setReadDeadlineLocked(t time.Time) {
	c.readDeadline.Store(t.UnixNano())
	_ = c.ws.SetReadDeadline(t)
}

// extendReadDeadline gives the peer PongWait more to send something; a
// no-op once the close grace has started.
func (c *Conn) extendReadDeadline() {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	if !c.closing {
		c.setReadDeadlineLocked(time.Now().Add(c.srv.cfg.PongWait))
	}
}

// watchDeadline runs at each of the connection's pings: when the read
// deadline falls before the next one, a timer wakes a parked reader at
// the deadline, whose wait then fails as a blocked read would have. A
// timer lives only for the last PongWait-PingPeriod of a deadline.
func (c *Conn) watchDeadline() {
	if !c.canPark() {
		return // never parks: a reader goroutine waits under the deadline
	}
	in := time.Until(time.Unix(0, c.readDeadline.Load()))
	if in < c.srv.cfg.PingPeriod {
		time.AfterFunc(max(in, 0)+time.Millisecond, c.wakeIfExpired)
	}
}

func (c *Conn) wakeIfExpired() {
	if time.Now().UnixNano() >= c.readDeadline.Load() {
		c.wake()
	}
}

// drop ends the connection at once, for Shutdown past its deadline.
func (c *Conn) drop() {
	c.cancel()
	c.mu.Lock()
	var cancelAuth context.CancelFunc
	if c.auth != nil {
		cancelAuth = c.auth.cancel
	}
	c.mu.Unlock()
	if cancelAuth != nil {
		cancelAuth()
	}
	_ = c.ws.NetConn().Close()
	c.wake() // a parked reader would not see the close
}

func (c *Conn) schedulePing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.pingDue = true
	c.kickLocked()
	c.watchDeadline()
}

func (c *Conn) authExpired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.authed || c.closed || c.closeReq != nil {
		return
	}
	c.requestCloseLocked(&closeRequest{code: CloseAuthTimeout, reason: "authentication timeout", err: ErrAuthTimeout})
}

// serve is the reader: it runs the connection from the upgrade to OnClose.
// It waits for frames itself, in waitIdle, and has each message read and
// handled on one of the Server's deep workers (Server.deep): a goroutine's
// stack keeps its high-water size, and reading a message through gorilla
// and handling it (token verification, OnConnect, OnEvent) grew the
// reader's to 4 KiB or more. Waiting in waitIdle it fits the smallest
// goroutine stack, 2 KiB: in a heap profile of wardline serve holding
// 10,000 idle connections, stacks were 42 MB, and they count towards the
// GC's heap goal as well.
//
// It is the goroutine's first function, not called from a closure, for
// the same reason; it marks the connection done in the Server's wait group.
func (c *Conn) serve(pre *Session, preErr error, offset string) {
	c.start(pre, preErr, offset)
	c.extendReadDeadline()
	c.read(false)
}

// read is the reader from the upgrade, or from a wake, until it parks the
// connection in the poller or the connection ends. woken: the socket has
// something to read, or the connection must end, so it waits no more.
func (c *Conn) read(woken bool) {
	var err error
	// idle: the reader is between messages, at a frame boundary, so it
	// may wait for the next frame in waitIdle, or park.
	idle := true
	for err == nil {
		if idle {
			if !woken && !c.arrivesSoon() && c.park() {
				return
			}
			again := c.waitIdle(c.canPark())
			woken = false
			if again {
				continue // pongs were all: wait again, or park
			}
		}
		c.srv.deep(func() { idle, err = c.readMessage() })
		if err == nil {
			c.extendReadDeadline()
		}
	}
	defer c.srv.wg.Done()
	if c.poll != nil {
		c.poll.Close()
	}
	c.finish(err)
}

// canPark reports whether the connection can wait in the Server's poller.
// Without one (not Linux, or TLS, whose own buffer the socket does not
// show) its reader waits in waitIdle.
func (c *Conn) canPark() bool {
	return c.srv.poller != nil && c.raw != nil && c.br != nil
}

// arrivesSoon waits up to idlewait.ParkAfter, in the runtime's poller, for
// the next frame, and reports whether it came; false: the connection is
// idle and parks. Cut short by the read deadline when that comes first.
func (c *Conn) arrivesSoon() bool {
	if !c.canPark() || c.br.Buffered() > 0 {
		return true
	}
	soon := time.Now().Add(idlewait.ParkAfter)
	if soon.UnixNano() >= c.readDeadline.Load() {
		return false // the deadline comes first: park, a timer wakes it then
	}
	_ = c.ws.SetReadDeadline(soon)
	ready := idlewait.WaitReady(c.br, c.ws.NetConn())
	// Back to the deadline as last set (extendReadDeadline or the close
	// grace may have moved it meanwhile).
	c.dlMu.Lock()
	_ = c.ws.SetReadDeadline(time.Unix(0, c.readDeadline.Load()))
	c.dlMu.Unlock()
	return ready
}

// park hands the idle connection to the Server's poller and reports
// whether it did: the reader goroutine then exits, and wake starts another
// when the socket has something to read or the connection must end. An
// idle connection then has no goroutine (see idlewait.Poller).
func (c *Conn) park() bool {
	if !c.canPark() {
		return false
	}
	// Pongs already buffered are consumed here, as waitIdle would.
	for c.br.Buffered() > 0 {
		if !c.skipPong() {
			return false
		}
		c.extendReadDeadline()
	}
	if c.poll == nil {
		h, err := c.srv.poller.Register(c.raw, c.resume)
		if err != nil {
			return false
		}
		c.poll = h
	}
	c.parked.Store(true)
	// A wake that came while the reader was still running (a deadline
	// timer, a close) is not lost: the reader goes on instead of parking.
	if c.kicked.Swap(false) && c.parked.CompareAndSwap(true, false) {
		return false
	}
	if err := c.poll.Arm(); err != nil && c.parked.CompareAndSwap(true, false) {
		return false // the socket is closed: the reader meets it
	}
	return true // parked, or a wake has started the next reader already
}

// resume starts a reader for a parked connection whose socket is ready.
func (c *Conn) resume() {
	if c.parked.CompareAndSwap(true, false) {
		go c.read(true)
	}
}

// wake starts a reader for a parked connection that must end or check its
// deadline, or has a running reader not park next time.
func (c *Conn) wake() {
	c.kicked.Store(true)
	if c.parked.CompareAndSwap(true, false) {
		c.kicked.Store(false)
		go c.read(true)
	}
}

// start arms the connection's timers and handlers and, for a connection
// the handshake authenticated (or refused), settles that.
func (c *Conn) start(pre *Session, preErr error, offset string) {
	cfg := &c.srv.cfg
	c.ws.SetReadLimit(cfg.MaxFrameSize)
	c.ws.SetPingHandler(c.answerPing)
	c.ws.SetCloseHandler(c.answerClose)
	c.ws.SetPongHandler(func(string) error {
		c.extendReadDeadline()
		return nil
	})
	c.mu.Lock()
	c.pingSlot = c.srv.pinger.add(c)
	if pre == nil && preErr == nil {
		c.auth = &pendingAuth{
			deadline: time.Now().Add(cfg.AuthTimeout),
			timer:    time.AfterFunc(cfg.AuthTimeout, c.authExpired),
		}
	}
	c.mu.Unlock()

	switch {
	case pre != nil:
		c.mu.Lock()
		c.inHandler = true
		c.mu.Unlock()
		c.srv.deep(func() { c.authenticated(*pre, 0, false, offset) })
	case preErr != nil:
		c.refuse(preErr, "")
	}
}

// readMessage reads and handles the next message. whole reports that the
// message was read to its end, so the reader is at a frame boundary.
func (c *Conn) readMessage() (whole bool, err error) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return false, err
	}
	if c.isClosing() {
		return false, nil // draining until the peer answers our close frame
	}
	if typ == websocket.BinaryMessage {
		c.exception(&Error{Code: CodeInvalid, Message: "invalid frame: binary frames are not supported"}, "")
		return false, nil
	}
	// The buffer is pooled, not kept per connection: an idle
	// connection, the common case, then holds no message buffer.
	buf := c.srv.readBufs.Get().(*bytes.Buffer)
	buf.Reset()
	if _, err = buf.ReadFrom(r); err != nil {
		c.srv.readBufs.Put(buf)
		return false, err
	}
	c.handle(buf.Bytes()) // OnEvent's data is valid only until it returns
	c.srv.readBufs.Put(buf)
	return true, nil
}

// waitIdle waits until the next frame starts to arrive, in a Peek of the
// connection's reader rather than in gorilla's NextReader, whose call
// chain does not fit a 2 KiB stack. An idle connection's reader goroutine
// spends its life here.
//
// The client's pongs, all an idle connection receives, are consumed here
// when a whole one is buffered (what the pong handler does is extend the
// read deadline), or gorilla would handle them and go on to wait for the
// next data frame on the deep stack. Anything else, and any read error,
// is left to NextReader, which meets the error again. A reader that may
// park returns true instead of waiting once pongs were all it found, to
// wait again in arrivesSoon or park.
func (c *Conn) waitIdle(parked bool) (again bool) {
	if c.br == nil {
		return false
	}
	for {
		idlewait.Wait(c.br, c.ws.NetConn())
		if _, err := c.br.Peek(1); err != nil || !c.skipPong() {
			return false
		}
		c.extendReadDeadline()
		if parked && c.br.Buffered() == 0 {
			return true
		}
	}
}

// skipPong consumes a whole masked pong frame at the head of the reader:
// FIN set, no extension bits, a payload of at most 125 bytes. It is
// called at a frame boundary only.
func (c *Conn) skipPong() bool {
	n := c.br.Buffered()
	if n < 6 {
		return false
	}
	h, _ := c.br.Peek(2)
	size := int(h[1] & 0x7f)
	if h[0] != 0x80|websocket.PongMessage || h[1]&0x80 == 0 || size > 125 || n < 6+size {
		return false
	}
	_, _ = c.br.Discard(6 + size)
	return true
}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeReq != nil
}

func (c *Conn) exception(e *Error, event string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closeReq != nil {
		return
	}
	c.enqueueBoundedLocked(EncodeException(e, event))
}

// answer replies to a request: an ack when it has an id, an exception when
// it has none and failed.
func (c *Conn) answer(f *Frame, result any, err error) {
	frame := c.encodeAnswer(f, result, err)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inHandler = false
	c.replyLocked(frame)
}

// encodeAnswer is the ack of f, or its exception when it has no id and
// failed; nil when nothing is owed.
func (c *Conn) encodeAnswer(f *Frame, result any, err error) []byte {
	var frame []byte
	switch {
	case f.HasID:
		var encErr error
		frame, encErr = EncodeAck(f.ID, result, err)
		if encErr != nil {
			c.srv.cfg.Logger.Error("native: ack not encodable", "event", f.Event, "session", c.id, "err", encErr)
			frame, _ = EncodeAck(f.ID, nil, &Error{Code: CodeInternal, Message: "internal error"})
		}
	case err != nil:
		frame = EncodeException(ErrorOf(err), f.Event)
	}
	return frame
}

func (c *Conn) handle(b []byte) {
	f, err := DecodeRequest(b)
	if err != nil {
		c.exception(&Error{Code: CodeInvalid, Message: frameReason(err)}, f.Event)
		return
	}
	c.mu.Lock()
	c.inHandler = true
	authed := c.authed
	c.mu.Unlock()
	switch {
	case f.Event == "auth":
		c.handleAuth(&f) // on a deep worker already (serve)
	case !authed:
		c.answer(&f, nil, &Error{Code: CodeUnauthorized, Message: "not authenticated: send an auth frame first"})
	default:
		result, err := c.callOnEvent(&f)
		if p, ok := result.(Pending); ok && err == nil {
			c.await(Frame{ID: f.ID, HasID: f.HasID, Event: f.Event}, p)
			return
		}
		c.answer(&f, result, err)
	}
}

// Pending is what OnEvent returns for a request whose work goes on after
// OnEvent has returned, such as a message waiting for its append to be
// durable: the reader goes on to the next frame, so one connection's
// requests are pipelined, and the reply is written once the Pending
// returns, with what it returns. Requests whose order matters must be
// ordered by OnEvent before it returns (the gateway queues a room's
// decisions in arrival order). The Pending runs on its own goroutine; it
// must honour the connection's context. At most Config.MaxPendingReplies
// wait per connection: at that bound the reader stops reading until one
// is answered.
type Pending func() (any, error)

// await runs p for request f and answers it when p returns.
func (c *Conn) await(f Frame, p Pending) {
	c.mu.Lock()
	c.inHandler = false
	c.owed++
	if c.slots == nil {
		c.slots = make(chan struct{}, c.srv.cfg.MaxPendingReplies)
	}
	slots := c.slots
	c.mu.Unlock()
	slots <- struct{}{} // has room: the reader waited for it before reading f
	c.pending.Add(1)
	c.srv.pendings.Go(func() {
		defer c.pending.Done()
		defer func() { <-slots }()
		result, err := c.callPending(&f, p)
		frame := c.encodeAnswer(&f, result, err)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.owed--
		c.replyLocked(frame)
	})
	if len(slots) == cap(slots) {
		// At the bound: read nothing more until one is answered.
		slots <- struct{}{}
		<-slots
	}
}

func (c *Conn) callPending(f *Frame, p Pending) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.srv.cfg.Logger.Error("native: Pending panicked", "event", f.Event, "session", c.id, "panic", r, "stack", string(debug.Stack()))
			result, err = nil, &Error{Code: CodeInternal, Message: "internal error"}
		}
	}()
	return p()
}

func (c *Conn) callOnEvent(f *Frame) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.cfg.Logger.Error("native: OnEvent panicked", "event", f.Event, "session", c.id, "panic", p, "stack", string(debug.Stack()))
			result, err = nil, &Error{Code: CodeInternal, Message: "internal error"}
		}
	}()
	return c.srv.cfg.OnEvent(c.ctx, c, f.Event, f.Data)
}

type authData struct {
	Token  *string `json:"token"`
	Offset *string `json:"offset"`
}

func (c *Conn) handleAuth(f *Frame) {
	c.mu.Lock()
	authed := c.authed
	c.mu.Unlock()
	if authed {
		c.answer(f, nil, &Error{Code: CodeInvalid, Message: "already authenticated; use auth:refresh to renew the token"})
		return
	}
	var d authData
	if len(f.Data) == 0 || f.Data[0] != '{' || json.Unmarshal(f.Data, &d) != nil || d.Token == nil || *d.Token == "" {
		c.answer(f, nil, &Error{Code: CodeInvalid, Message: `auth data must be an object with a non-empty string "token" and an optional string "offset"`})
		return
	}
	offset := ""
	if d.Offset != nil {
		offset = *d.Offset
	}
	sess, err := c.callOnAuth(*d.Token, offset)
	if err != nil && !time.Now().Before(c.authDeadline()) {
		// OnAuth ran out of the time the connection had to authenticate:
		// that is the auth timeout, whichever of the timer and OnAuth's
		// ctx fired first.
		c.authExpired()
		c.reply(nil)
		return
	}
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == CodeInvalid {
			c.answer(f, nil, e)
			return
		}
		c.refuse(err, "auth")
		c.reply(nil)
		return
	}
	c.authenticated(sess, f.ID, f.HasID, offset)
}

func (c *Conn) callOnAuth(token, offset string) (sess Session, err error) {
	// Not derived from c.ctx: a child context leaves its parent with a
	// done channel and a children map (about 0.6 KiB in a heap profile of
	// 10,000 idle connections) for the connection's life, though the
	// child is long gone. drop, the only way c.ctx ends while OnAuth
	// runs, cancels this one too.
	ctx, cancel := context.WithDeadline(context.Background(), c.authDeadline())
	c.mu.Lock()
	dropped := c.ctx.Err() != nil
	a := c.auth
	if a != nil {
		a.cancel = cancel
	}
	c.mu.Unlock()
	defer func() {
		if a != nil {
			c.mu.Lock()
			a.cancel = nil
			c.mu.Unlock()
		}
		cancel()
	}()
	if dropped {
		cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			c.srv.cfg.Logger.Error("native: OnAuth panicked", "session", c.id, "panic", p, "stack", string(debug.Stack()))
			sess, err = Session{}, &Error{Code: CodeInternal, Message: "internal error"}
		}
	}()
	return c.srv.cfg.OnAuth(ctx, c, token, offset)
}

// refuse ends a connection whose credentials were refused: an exception,
// then the close code that matches the error.
func (c *Conn) refuse(err error, event string) {
	var e *Error
	if !errors.As(err, &e) || !e.Code.Valid() {
		e = &Error{Code: CodeUnauthorized, Message: "authentication failed"}
	}
	code := CloseUnauthorized
	switch e.Code {
	case CodeForbidden:
		code = CloseForbidden
	case CodeUnavailable:
		code = CloseTryAgain
	case CodeInternal:
		code = CloseInternal
	}
	c.CloseWithError(code, e, event)
}

// authenticated records the session and queues the auth ack and the
// connected push, then hands over to OnConnect. If the connection started
// closing meanwhile (auth timeout), the session is not established.
func (c *Conn) authenticated(sess Session, id int64, hasID bool, offset string) {
	c.mu.Lock()
	if c.closed || c.closeReq != nil {
		c.inHandler = false
		c.kickLocked()
		c.mu.Unlock()
		return
	}
	c.authed = true
	c.inHandler = false
	c.session.Store(&sess)
	if c.auth != nil {
		c.auth.timer.Stop()
		c.auth = nil // ~200 bytes an idle connection need not keep
	}
	if hasID {
		c.enqueueLocked(encodeAuthAck(id, sess.UserID, c.id))
	}
	c.enqueueLocked(encodeConnected(c.id, sess.UserID, c.srv.cfg.Now()))
	c.mu.Unlock()
	defer c.header.Store(nil)
	if on := c.srv.cfg.OnConnect; on != nil {
		defer func() {
			if p := recover(); p != nil {
				c.srv.cfg.Logger.Error("native: OnConnect panicked", "session", c.id, "panic", p, "stack", string(debug.Stack()))
				c.Close(CloseInternal, "internal error")
			}
		}()
		on(c.ctx, c, offset)
	}
}

// finish runs once the reader has stopped: it settles how the connection
// ended, stops everything it owns, and reports to OnClose.
func (c *Conn) finish(readErr error) {
	c.mu.Lock()
	c.closed = true
	info := c.closeInfoLocked(readErr)
	clear(c.queue)
	c.queue, c.spare, c.queued = nil, nil, 0
	c.wakeSendersLocked()
	if c.pingSlot != nil {
		c.srv.pinger.remove(c.pingSlot)
	}
	if c.auth != nil {
		c.auth.timer.Stop()
	}
	c.mu.Unlock()

	c.cancel()
	_ = c.ws.Close()
	c.pending.Wait()
	c.writers.Wait()
	c.srv.remove(c)
	if on := c.srv.cfg.OnClose; on != nil {
		defer func() {
			if p := recover(); p != nil {
				c.srv.cfg.Logger.Error("native: OnClose panicked", "session", c.id, "panic", p, "stack", string(debug.Stack()))
			}
		}()
		on(c, info)
	}
}

func (c *Conn) closeInfoLocked(readErr error) CloseInfo {
	var ce *websocket.CloseError
	req := c.closeReq
	switch {
	case errors.Is(readErr, websocket.ErrReadLimit):
		// gorilla has already sent the 1009 close frame.
		return CloseInfo{Code: CloseTooLarge, Reason: "frame too large", Err: ErrFrameTooLarge}
	case req != nil && (c.closeSent || !errors.As(readErr, &ce)):
		return CloseInfo{Code: req.code, Reason: req.reason, Err: req.err}
	case c.writeTimedOut:
		// No close frame could be written; the client sees the TCP close.
		return CloseInfo{Code: CloseTryAgain, Reason: "slow consumer: write timed out", Err: ErrWriteTimeout}
	case errors.As(readErr, &ce):
		return CloseInfo{Code: ce.Code, Reason: ce.Text, Remote: true}
	}
	return CloseInfo{Code: CloseAbnormal, Remote: true, Err: readErr}
}

// truncateReason cuts a close reason to the 123 bytes a close frame holds,
// on a UTF-8 boundary.
func truncateReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
