package engineio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/internal/idlewait"
	"github.com/wardline/wardline/transport/wsframe"
)

// maxKeptReadBuffer bounds the read buffer a connection keeps between
// messages; a larger message's buffer is dropped after use.
const maxKeptReadBuffer = 16 << 10

// writeLoop drains the queue onto conn and returns when it is empty, so an
// idle connection has no writer. It owns conn's write side while
// s.writerOn is true. When the socket is closing it writes the close frame
// last; when it was aborted it drops the queue, writes the close frame and
// closes conn. After a close frame the write side is sealed.
func (s *Socket) writeLoop(conn *websocket.Conn) {
	defer s.srv.wg.Done()
	if s.rest != nil {
		s.setInflight(s.rest.Len(), 0)
		err := s.writeRest(conn)
		s.setInflight(0, 0)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.abort(fmt.Errorf("%w: %w", ErrWriteTimeout, err))
		} else if err != nil {
			s.abort(fmt.Errorf("%w: write: %v", ErrTransportClosed, err))
		}
	}
	for {
		s.mu.Lock()
		if s.state == stateClosed {
			clear(s.queue)
			s.queue = s.queue[:0]
			s.queueBytes = 0
			reason := s.closeErr
			s.writeSealed = true
			s.mu.Unlock()
			s.writeCloseGuarded(conn, reason)
			conn.Close()
			s.wakeReader()
			s.writerExit()
			return
		}
		if len(s.queue) == 0 {
			if s.state == stateClosing {
				s.writeSealed = true
				reason := s.closeErr
				s.mu.Unlock()
				s.writeCloseGuarded(conn, reason)
				// The reader ends when the peer answers the close frame, or
				// at this deadline, and then finalizes the socket.
				_ = conn.SetReadDeadline(time.Now().Add(closeWait))
				time.AfterFunc(closeWait, s.wakeReader)
				s.writerExit()
				return
			}
			s.writerOn = false
			s.writerIdle.Broadcast()
			s.mu.Unlock()
			return
		}
		batch, n := s.takeQueueBytesLocked()
		s.inflight, s.inflightBytes = len(batch), n
		s.mu.Unlock()

		err := s.writeBatch(conn, batch)
		s.setInflight(0, 0)
		s.recycle(batch)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.abort(fmt.Errorf("%w: %w", ErrWriteTimeout, err))
		} else if err != nil {
			s.abort(fmt.Errorf("%w: write: %v", ErrTransportClosed, err))
		}
	}
}

// rawOf is conn's socket for the shared writers' non-blocking writes, or
// nil (TLS): then every write burst gets a goroutine that may wait.
func rawOf(conn *websocket.Conn) syscall.RawConn {
	tc, ok := conn.NetConn().(*net.TCPConn)
	if !ok || !wsframe.CanTryWrite {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writeNow is a shared writer's turn at the socket (see workpool.Turns):
// it writes what is queued without waiting for the socket. again reports
// that more was queued meanwhile. Whatever may wait (the end of a batch
// the full socket did not take, the close frame) goes to writeLoop on a
// goroutine of its own, which takes over the writer's hold on srv.wg.
func (s *Socket) writeNow(conn *websocket.Conn) (again bool) {
	s.mu.Lock()
	switch {
	case s.state != stateOpen || s.wsRaw == nil || s.ws != conn:
		s.mu.Unlock()
		s.srv.startWriter(writeJob{s, conn})
		return false
	case len(s.queue) == 0:
		s.writerOn = false
		s.writerIdle.Broadcast()
		s.mu.Unlock()
		s.srv.wg.Done()
		return false
	}
	raw := s.wsRaw
	batch := s.takeQueueLocked()
	s.mu.Unlock()
	left, err := s.tryWriteBatch(conn, raw, batch)
	if err == nil && left != nil {
		s.mu.Lock()
		if s.state == stateOpen {
			s.queue = append(append(make([]item, 0, len(left)+len(s.queue)), left...), s.queue...)
			for _, it := range left {
				s.queueBytes += len(it.data)
			}
		}
		s.mu.Unlock()
	}
	s.recycle(batch)
	if err != nil {
		s.abort(fmt.Errorf("%w: write: %v", ErrTransportClosed, err))
	}
	if err != nil || s.rest != nil || left != nil {
		s.srv.startWriter(writeJob{s, conn}) // writes the rest, or the close frame
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 || s.state != stateOpen {
		return true
	}
	s.writerOn = false
	s.writerIdle.Broadcast()
	s.srv.wg.Done()
	return false
}

// takeQueueLocked takes the queued items as the next batch.
func (s *Socket) takeQueueLocked() []item {
	batch, _ := s.takeQueueBytesLocked()
	return batch
}

// takeQueueBytesLocked is takeQueueLocked that also returns the batch's
// bytes.
func (s *Socket) takeQueueBytesLocked() ([]item, int) {
	if s.srv.cfg.CoalesceWindow > 0 {
		s.hold.Written(time.Now()) // held pushes go out with this batch
	}
	batch, n := s.queue, s.queueBytes
	s.queue, s.spare = s.spare[:0], nil
	s.queueBytes = 0
	return batch, n
}

// setInflight records what a writer that may wait holds (items and bytes
// taken from the queue, not yet written): the queue bound counts them, or
// a client that stopped reading would be found out only after its writer
// had waited WriteTimeout, with a full queue's worth more behind it.
func (s *Socket) setInflight(items, bytes int) {
	s.mu.Lock()
	s.inflight, s.inflightBytes = items, bytes
	s.mu.Unlock()
}

// recycle keeps a written batch's slice as the next spare (unless it grew
// large), without its references to the messages.
func (s *Socket) recycle(batch []item) {
	clear(batch)
	if cap(batch) <= maxSpareItems {
		s.mu.Lock()
		s.spare = batch[:0]
		s.mu.Unlock()
	}
}

// tryWriteBatch writes batch with writevs that never wait, a chunk at a
// time. When the socket fills, the chunk's unwritten end is left in s.rest
// and the items after the chunk are returned (copied: batch is recycled).
//
// When the reader is writing a control frame (a pong to a client whose
// socket may be full), the whole batch is returned: a shared writer must
// not wait for that.
func (s *Socket) tryWriteBatch(conn *websocket.Conn, raw syscall.RawConn, batch []item) (left []item, err error) {
	if !s.wmu.TryLock() {
		return append([]item(nil), batch...), nil
	}
	defer s.wmu.Unlock()
	for len(batch) > 0 {
		chunk := batch[:min(len(batch), wsframe.MaxFrames)]
		batch = batch[len(chunk):]
		done, err := s.tryWriteChunk(conn, raw, chunk)
		if err != nil {
			return nil, err
		}
		if !done {
			if len(batch) > 0 {
				left = append([]item(nil), batch...)
			}
			return left, nil
		}
	}
	return nil, nil
}

// tryWriteChunk is tryWriteBatch's step; s.wmu is held.
func (s *Socket) tryWriteChunk(conn *websocket.Conn, raw syscall.RawConn, chunk []item) (done bool, err error) {
	if s.aborted.Load() || s.peerClosed == conn {
		return true, nil
	}
	fw := s.srv.frames.Get()
	addFrames(fw, chunk)
	done, err = fw.TryWriteTo(raw)
	if done || err != nil {
		s.srv.frames.Put(fw)
		return done, err
	}
	s.rest = fw
	return false, nil
}

// writeRest writes, waiting for the socket, the end of a batch that a
// shared writer left in s.rest.
func (s *Socket) writeRest(conn *websocket.Conn) error {
	fw := s.rest
	s.rest = nil
	defer s.srv.frames.Put(fw)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.aborted.Load() || s.peerClosed == conn {
		return nil
	}
	s.writeDeadline = time.Now().Add(s.srv.cfg.WriteTimeout)
	nc := conn.NetConn()
	if err := nc.SetWriteDeadline(s.writeDeadline); err != nil {
		return err
	}
	return fw.WriteRest(nc)
}

func (s *Socket) writerExit() {
	s.mu.Lock()
	s.writerOn = false
	s.writerIdle.Broadcast()
	s.mu.Unlock()
}

func (s *Socket) writeBatch(conn *websocket.Conn, batch []item) error {
	fw := s.srv.frames.Get()
	defer s.srv.frames.Put(fw)
	nc := conn.NetConn()
	now := time.Now()
	for len(batch) > 0 {
		chunk := batch[:min(len(batch), wsframe.MaxFrames)]
		batch = batch[len(chunk):]
		if err := s.writeChunk(fw, conn, nc, chunk, now); err != nil {
			return err
		}
	}
	return nil
}

func (s *Socket) writeChunk(fw *wsframe.Writer, conn *websocket.Conn, nc net.Conn, chunk []item, now time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.aborted.Load() || s.peerClosed == conn {
		return nil
	}
	// A batch gets between WriteTimeout/2 and WriteTimeout: setting the
	// deadline (a runtime timer update) for every batch was 5% of the
	// server's CPU at 50k deliveries/s, mostly one-frame batches.
	wait := s.srv.cfg.WriteTimeout
	if s.writeDeadline.Before(now.Add(wait / 2)) {
		s.writeDeadline = now.Add(wait)
		if err := nc.SetWriteDeadline(s.writeDeadline); err != nil {
			return err
		}
	}
	addFrames(fw, chunk)
	return fw.WriteTo(nc)
}

// messagePrefix is the Engine.IO packet type a plain message's frame
// carries before the queued payload.
var messagePrefix = []byte{byte(packetMessage)}

// addFrames frames chunk's items into fw.
func addFrames(fw *wsframe.Writer, chunk []item) {
	for _, it := range chunk {
		switch it.kind {
		case kindMessage:
			fw.Add(wsframe.OpText, messagePrefix, it.data)
		case kindBinary:
			fw.Add(wsframe.OpBinary, nil, it.data)
		default:
			fw.Add(wsframe.OpText, nil, it.data)
		}
	}
}

// guardWrites replaces gorilla's ping and close handlers, whose replies
// would otherwise race the writer's frames, which bypass gorilla's write
// lock: with wmu held no frame is split by another, and once the close
// reply is written no data frame follows it.
func (s *Socket) guardWrites(conn *websocket.Conn) {
	conn.SetPingHandler(func(data string) error {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		if s.peerClosed == conn {
			return nil
		}
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.srv.cfg.WriteTimeout))
		s.writeDeadline = time.Time{} // WriteControl has set its own
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
			return nil // as gorilla's default: the reader sees the failure next
		}
		return err
	})
	conn.SetCloseHandler(func(code int, _ string) error {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		s.peerClosed = conn
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(closeWait))
		s.writeDeadline = time.Time{}
		return nil
	})
}

// closeCode maps a close reason to the WebSocket close code the client sees.
func closeCode(reason error) (int, string) {
	var ce *CloseError
	switch {
	case errors.As(reason, &ce):
		text := ce.Text
		if len(text) > 123 { // a control frame payload is at most 125 bytes
			text = text[:123]
		}
		return ce.Code, text
	case errors.Is(reason, ErrServerShutdown):
		return websocket.CloseGoingAway, "server shutting down"
	case errors.Is(reason, ErrQueueFull):
		return websocket.CloseTryAgainLater, "send queue full"
	case errors.Is(reason, ErrPayloadTooLarge):
		return websocket.CloseMessageTooBig, "payload too large"
	case errors.Is(reason, ErrInvalidPacket):
		return websocket.CloseProtocolError, "invalid packet"
	case errors.Is(reason, ErrPingTimeout):
		return websocket.CloseNormalClosure, "ping timeout"
	}
	return websocket.CloseNormalClosure, ""
}

// writeCloseGuarded is writeClose for the writer: under wmu, as
// WriteControl sets the socket's write deadline.
func (s *Socket) writeCloseGuarded(conn *websocket.Conn, reason error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.writeDeadline = time.Time{}
	writeClose(conn, reason)
}

func writeClose(conn *websocket.Conn, reason error) {
	code, text := closeCode(reason)
	// An error means the peer is gone or a close frame was already sent.
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(closeWait))
}

// readMessage reads the next message into buf (grown as needed) and
// returns its type and bytes; the bytes alias buf.
func readMessage(conn *websocket.Conn, buf *[]byte) (int, []byte, error) {
	typ, r, err := conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	return readAll(typ, r, buf)
}

// readAll reads r into buf (grown as needed).
func readAll(typ int, r io.Reader, buf *[]byte) (int, []byte, error) {
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, nil, err
		}
	}
	if cap(b) <= maxKeptReadBuffer {
		*buf = b
	} else {
		*buf = nil
	}
	return typ, b, nil
}

// readErrReason turns a read error into a close reason.
func readErrReason(err error) error {
	if errors.Is(err, websocket.ErrReadLimit) {
		return ErrPayloadTooLarge // gorilla has already sent close 1009
	}
	return fmt.Errorf("%w: %v", ErrTransportClosed, err)
}

// readLoop is the one reader of an active WebSocket transport. It returns
// when the connection fails or the session ends, then finalizes the socket.
//
// It waits for each message in idlewait.Wait and has it read and handled
// on one of the Server's deep workers: an idle session's reader then fits
// the smallest goroutine stack (see idlewait), where waiting in gorilla's
// NextReader, and authenticating the namespace CONNECT, left it 4 KiB or
// more. It is the goroutine's first function for the same reason.
//
// Between messages it parks the connection in the Server's poller
// (wsReader.park): the goroutine exits and another starts when the socket
// has something to read, so an idle session has no goroutine at all.
func (s *Socket) readLoop(conn *websocket.Conn, br *bufio.Reader) {
	rd := &wsReader{s: s, conn: conn, br: br, raw: rawOf(conn)}
	s.reader.Store(rd)
	rd.run(false)
}

// wsReader is the reader of a WebSocket transport, kept while it is
// parked in the Server's poller.
type wsReader struct {
	s    *Socket
	conn *websocket.Conn
	br   *bufio.Reader
	raw  syscall.RawConn  // nil: no poller for this socket (TLS)
	poll *idlewait.Handle // the socket's registration; the current reader's
	// parked: no goroutine reads; wake starts one.
	parked atomic.Bool
	kicked atomic.Bool // a wake found the reader not parked (see park)
}

// run reads until it parks or the socket ends. woken: the socket has
// something to read, or must end, so it does not park first.
func (rd *wsReader) run(woken bool) {
	s, conn := rd.s, rd.conn
	for keep := true; keep; {
		if !woken && !rd.arrivesSoon() && rd.park() {
			return
		}
		woken = false
		idlewait.Wait(rd.br, conn.NetConn())
		s.srv.deep.Call(func() { keep = s.readOne(conn) })
	}
	if rd.poll != nil {
		rd.poll.Close()
	}
	// abort has handed the connection to a writer, which sends the close
	// frame; close the connection once no writer can be using it.
	s.mu.Lock()
	for s.writerOn {
		s.writerIdle.Wait()
	}
	s.mu.Unlock()
	conn.Close()
	s.finalize()
}

func (rd *wsReader) canPark() bool {
	return rd.s.srv.poller != nil && rd.raw != nil && rd.br != nil
}

// arrivesSoon waits up to idlewait.ParkAfter, in the runtime's poller, for
// the next message, and reports whether it came; false: the socket is idle
// and parks. A socket past its open state (closing, under the writer's
// close deadline) does not wait here.
func (rd *wsReader) arrivesSoon() bool {
	if !rd.canPark() || rd.br.Buffered() > 0 {
		return true
	}
	s := rd.s
	s.mu.Lock()
	open := s.state == stateOpen
	s.mu.Unlock()
	if !open {
		return true
	}
	_ = rd.conn.SetReadDeadline(time.Now().Add(idlewait.ParkAfter))
	ready := idlewait.WaitReady(rd.br, rd.conn.NetConn())
	// An open WebSocket has no read deadline; once closing, the writer
	// has set the one it needs.
	s.mu.Lock()
	open = s.state == stateOpen
	if open {
		_ = rd.conn.SetReadDeadline(time.Time{})
	}
	s.mu.Unlock()
	// Once closing, wait here under the writer's close deadline.
	return ready || !open
}

// park hands the idle socket to the Server's poller and reports whether
// it did; the goroutine then exits (see readLoop). Nothing may be buffered:
// the poller sees only the socket.
func (rd *wsReader) park() bool {
	if !rd.canPark() || rd.br.Buffered() > 0 {
		return false
	}
	if rd.poll == nil {
		h, err := rd.s.srv.poller.Register(rd.raw, rd.resume)
		if err != nil {
			return false
		}
		rd.poll = h
	}
	rd.parked.Store(true)
	// A wake that came while the reader was still running (the close
	// deadline's timer, a close) is not lost: the reader goes on.
	if rd.kicked.Swap(false) && rd.parked.CompareAndSwap(true, false) {
		return false
	}
	if err := rd.poll.Arm(); err != nil && rd.parked.CompareAndSwap(true, false) {
		return false // the socket is closed: the reader meets it
	}
	return true // parked, or a wake has started the next reader already
}

// resume starts a reader for a parked socket that is ready.
func (rd *wsReader) resume() {
	if rd.parked.CompareAndSwap(true, false) {
		go rd.run(true)
	}
}

// wake starts a reader for a parked socket that must end, or has a
// running reader not park next time.
func (rd *wsReader) wake() {
	rd.kicked.Store(true)
	if rd.parked.CompareAndSwap(true, false) {
		rd.kicked.Store(false)
		go rd.run(true)
	}
}

// wakeReader wakes the WebSocket's parked reader, if any, after its
// connection was closed or its read deadline set: the poller sees neither.
func (s *Socket) wakeReader() {
	if rd := s.reader.Load(); rd != nil {
		rd.wake()
	}
}

// readOne reads and handles the next message; false ends the reader.
func (s *Socket) readOne(conn *websocket.Conn) bool {
	typ, r, err := conn.NextReader()
	if err != nil {
		s.abort(readErrReason(err))
		return false
	}
	// The read buffer is pooled rather than kept per session, and taken
	// only once a message has arrived: an idle session, the common case,
	// then holds none.
	buf := s.srv.readBufs.Get().(*[]byte)
	typ, data, err := readAll(typ, r, buf)
	if err != nil {
		s.srv.readBufs.Put(buf)
		s.abort(readErrReason(err))
		return false
	}
	if typ == websocket.BinaryMessage {
		msg := append([]byte(nil), data...)
		s.srv.readBufs.Put(buf)
		s.deliver(msg, true)
		return true
	}
	p, err := parseTextPacket(data)
	if err != nil {
		s.srv.readBufs.Put(buf)
		s.abort(err)
		return false
	}
	if p.typ == packetMessage {
		p.data = append([]byte(nil), p.data...) // the owner may keep it; buf is reused
	}
	s.srv.readBufs.Put(buf) // nothing below aliases it
	return s.handlePacket(p)
}

// serveWebSocketHandshake opens a session whose first transport is WebSocket.
func (srv *Server) serveWebSocketHandshake(w http.ResponseWriter, r *http.Request) {
	hj := &idlewait.Hijacker{ResponseWriter: w, Size: readBufferSize}
	conn, err := srv.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		srv.wg.Done() // the hold taken for this session; Upgrade answered the client
		return
	}
	conn.SetReadLimit(int64(srv.cfg.MaxPayload))
	s := newSocket(srv, r, newID(), transportWebSocket)
	s.guardWrites(conn)
	s.ws, s.wsRaw = conn, rawOf(conn)
	s.queue = append(s.queue, item{data: srv.openPacket(s.id, false), kind: kindPacket})
	srv.open(s)
	s.mu.Lock()
	if s.state == stateOpen {
		s.kickLocked()
	}
	s.mu.Unlock()
	// The reader gets a goroutine of its own (owned by the session's hold
	// on srv.wg, which it releases in finalize) so that this handler can
	// return: net/http then drops the request's 8 KiB of bufio buffers and
	// the handler's grown stack, which an idle session would keep.
	go s.readLoop(conn, hj.BR)
}

// serveUpgrade runs the polling→WebSocket upgrade for an existing session:
// answer the "2probe" ping with "3probe", switch transports on "5". The
// handler goroutine then stays as the WebSocket's reader.
func (s *Socket) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := s.state == stateOpen && s.transport == transportPolling && s.probe == nil
	s.mu.Unlock()
	hj := &idlewait.Hijacker{ResponseWriter: w, Size: readBufferSize}
	conn, err := s.srv.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		return
	}
	s.guardWrites(conn)
	if ok {
		s.mu.Lock()
		ok = s.state == stateOpen && s.transport == transportPolling && s.probe == nil
		if ok {
			s.probe = conn
		}
		s.mu.Unlock()
	}
	if !ok {
		// As the reference server: a second WebSocket for the session is
		// accepted, then closed.
		writeClose(conn, nil)
		conn.Close()
		return
	}
	conn.SetReadLimit(int64(s.srv.cfg.MaxPayload))
	_ = conn.SetReadDeadline(time.Now().Add(s.srv.cfg.UpgradeTimeout))
	if !s.probeLoop(conn) {
		s.mu.Lock()
		if s.probe == conn {
			s.probe = nil
			s.probedAt = time.Time{}
		}
		s.mu.Unlock()
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	go s.readLoop(conn, hj.BR) // as in serveWebSocketHandshake: let the handler return
}

// probeLoop reads the probe phase and reports whether the upgrade completed.
func (s *Socket) probeLoop(conn *websocket.Conn) bool {
	var buf []byte
	for {
		typ, data, err := readMessage(conn, &buf)
		if err != nil || typ != websocket.TextMessage {
			return false
		}
		p, err := parseTextPacket(data)
		if err != nil {
			return false
		}
		switch {
		case p.typ == packetPing && string(p.data) == "probe":
			_ = conn.SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout))
			if err := conn.WriteMessage(websocket.TextMessage, []byte("3probe")); err != nil {
				return false
			}
			s.mu.Lock()
			if s.probe == conn {
				s.probedAt = time.Now()
				s.signal() // a waiting GET answers noop so the client can pause polling
			}
			s.mu.Unlock()
		case p.typ == packetUpgrade:
			s.mu.Lock()
			if s.state != stateOpen || s.probe != conn {
				s.mu.Unlock()
				return false
			}
			s.probe, s.probedAt = nil, time.Time{}
			s.transport, s.ws, s.wsRaw = transportWebSocket, conn, rawOf(conn)
			s.signal() // a GET still waiting is refused: the session moved
			if len(s.queue) > 0 {
				s.kickLocked()
			}
			s.mu.Unlock()
			return true
		default:
			return false
		}
	}
}
