package engineio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/internal/coalesce"
	"github.com/wardline/wardline/transport/internal/idlewait"
	"github.com/wardline/wardline/transport/internal/workpool"
	"github.com/wardline/wardline/transport/wsframe"
)

// Server is an Engine.IO v4 server. Mount it at the Engine.IO path (for
// Socket.IO, "/socket.io/"); it does not look at the URL path.
type Server struct {
	cfg      Config
	upgrader websocket.Upgrader
	// writePool holds gorilla's write buffer only while it writes a frame
	// itself (handshake, "3probe"): the writer frames data frames itself.
	writePool sync.Pool
	frames    wsframe.Pool
	readBufs  sync.Pool // *[]byte for incoming WebSocket messages; see readMessage

	// Writers shared by the sockets: shared writes queued packets without
	// waiting for the socket; writers are goroutines that may wait (see
	// startWriter).
	shared *workpool.Turns[writeJob]
	// flusher writes the sockets whose held pushes are due.
	flusher *coalesce.Flusher
	writers *workpool.Pool[writeJob]
	// deep runs the readers' message reading and handling (see readLoop).
	deep *workpool.Caller
	// poller watches the sockets of parked WebSocket readers (see
	// wsReader.park); nil where there is none.
	poller *idlewait.Poller

	mu       sync.RWMutex
	sockets  map[string]*Socket
	shutdown bool
	// wg holds one count per live session (released when its close
	// callback returned) and one per running writer goroutine.
	wg sync.WaitGroup
}

// NewServer validates cfg, fills in defaults and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	srv := &Server{
		cfg:     cfg,
		sockets: make(map[string]*Socket),
		shared:  workpool.NewTurns(writerIdle, writeJob.turn),
		flusher: coalesce.NewFlusher(cfg.CoalesceWindow),
		writers: workpool.New(writerIdle, writeJob.run),
		deep:    workpool.NewCaller(writerIdle),
		poller:  idlewait.NewPoller(),
	}
	srv.readBufs.New = func() any {
		b := make([]byte, 0, 512)
		return &b
	}
	srv.upgrader = websocket.Upgrader{
		// ReadBufferSize is left at 0 so that gorilla adopts the reader
		// idlewait.Hijacker hands it (readBufferSize bytes, not net/http's
		// 4 KiB one), which lets the reader wait for the next frame on a
		// small stack (see readLoop). gorilla needs the buffer only for
		// frame headers and control frames; larger reads go straight to
		// the caller's slice.
		WriteBufferPool: &srv.writePool,
		// Origin policy is the owner's AllowRequest, checked before this.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return srv, nil
}

// Len is the number of sessions that are not closed yet.
func (srv *Server) Len() int {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	return len(srv.sockets)
}

// ServeHTTP routes a request by its query: a handshake (no sid) opens a
// session on long-polling or WebSocket; with a sid it is a poll, a POST of
// packets, or an upgrade to WebSocket.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("EIO") != "4" {
		writeError(w, http.StatusBadRequest, codeUnsupportedProtocol)
		return
	}
	transport := q.Get("transport")
	if transport != "polling" && transport != "websocket" {
		writeError(w, http.StatusBadRequest, codeUnknownTransport)
		return
	}
	isUpgrade := websocket.IsWebSocketUpgrade(r)

	if sid := q.Get("sid"); sid != "" {
		srv.mu.RLock()
		s := srv.sockets[sid]
		srv.mu.RUnlock()
		if s == nil {
			writeError(w, http.StatusBadRequest, codeUnknownSID)
			return
		}
		switch {
		case transport == "websocket" && isUpgrade:
			s.serveUpgrade(w, r)
		case transport == "websocket":
			writeError(w, http.StatusBadRequest, codeBadRequest)
		case r.Method == http.MethodGet:
			s.servePoll(w, r)
		case r.Method == http.MethodPost:
			s.servePost(w, r)
		default:
			writeError(w, http.StatusBadRequest, codeBadRequest)
		}
		return
	}

	if r.Method != http.MethodGet {
		writeError(w, http.StatusBadRequest, codeBadHandshakeMethod)
		return
	}
	if transport == "websocket" && !isUpgrade {
		writeError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	if srv.cfg.AllowRequest != nil {
		if err := srv.cfg.AllowRequest(r); err != nil {
			writeError(w, http.StatusForbidden, codeForbidden)
			return
		}
	}
	// Take the session's hold on wg before Shutdown can start waiting.
	srv.mu.Lock()
	if srv.shutdown {
		srv.mu.Unlock()
		writeErrorMessage(w, http.StatusServiceUnavailable, codeBadRequest, "Server is shutting down")
		return
	}
	srv.wg.Add(1)
	srv.mu.Unlock()

	if transport == "websocket" {
		srv.serveWebSocketHandshake(w, r)
		return
	}
	s := newSocket(srv, r, newID(), transportPolling)
	s.queue = append(s.queue, item{data: srv.openPacket(s.id, true), kind: kindPacket})
	srv.open(s)
	// The handshake GET is the session's first poll: it carries the open
	// packet and whatever OnConnection queued.
	s.servePoll(w, r)
}

// open hands a new socket to the owner, publishes it and starts its heartbeat.
func (srv *Server) open(s *Socket) {
	srv.cfg.OnConnection(s)
	srv.mu.Lock()
	if srv.shutdown {
		srv.mu.Unlock()
		s.abort(ErrServerShutdown)
		return
	}
	srv.sockets[s.id] = s
	srv.mu.Unlock()
	s.startHeartbeat()
}

func (srv *Server) remove(s *Socket) {
	srv.mu.Lock()
	if srv.sockets[s.id] == s {
		delete(srv.sockets, s.id)
	}
	srv.mu.Unlock()
}

// openPacket is the handshake packet: "0" and the session parameters.
func (srv *Server) openPacket(sid string, canUpgrade bool) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `0{"sid":`...)
	b = strconv.AppendQuote(b, sid) // ids are base64url: quoting is JSON-safe
	if canUpgrade {
		b = append(b, `,"upgrades":["websocket"]`...)
	} else {
		b = append(b, `,"upgrades":[]`...)
	}
	b = append(b, `,"pingInterval":`...)
	b = strconv.AppendInt(b, srv.cfg.PingInterval.Milliseconds(), 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, srv.cfg.PingTimeout.Milliseconds(), 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, int64(srv.cfg.MaxPayload), 10)
	return append(b, '}')
}

// Shutdown stops accepting sessions and closes every open one gracefully
// with ErrServerShutdown: queued messages are flushed, then WebSocket
// transports close with 1001 (going away) and long-polling clients get a
// close packet. Nothing above Engine.IO is sent, so Socket.IO clients
// reconnect by themselves. When ctx ends first, remaining connections are
// cut and ctx.Err() is returned. Call it alongside http.Server.Shutdown,
// which does not wait for WebSocket (hijacked) connections.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.shutdown = true
	all := make([]*Socket, 0, len(srv.sockets))
	for _, s := range srv.sockets {
		all = append(all, s)
	}
	srv.mu.Unlock()

	for _, s := range all {
		s.Close(ErrServerShutdown)
	}
	done := make(chan struct{})
	go func() {
		srv.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		srv.stopWriters()
		return nil
	case <-ctx.Done():
	}
	for _, s := range all {
		s.kill()
	}
	<-done
	srv.stopWriters()
	return ctx.Err()
}

// writerIdle is how long a writer goroutine waits for another socket to
// write for before it exits. Under load a writer finds work within
// microseconds; idle, the goroutines are gone a moment after the traffic.
const writerIdle = 250 * time.Millisecond

// writeJob is a socket whose queue a writer is to drain onto conn.
type writeJob struct {
	s    *Socket
	conn *websocket.Conn
}

func (j writeJob) run() { j.s.writeLoop(j.conn) }

func (j writeJob) turn() bool { return j.s.writeNow(j.conn) }

// startWriter hands a socket with queued packets to an idle writer
// goroutine, or starts one (see workpool: the writev path needs a grown
// stack).
func (srv *Server) startWriter(j writeJob) { srv.writers.Go(j) }

// stopWriters ends the idle writer goroutines once no session is left.
func (srv *Server) stopWriters() {
	srv.flusher.Stop()
	srv.poller.Stop()
	srv.shared.Stop()
	srv.writers.Stop()
	srv.deep.Stop()
}

// readBufferSize is gorilla's per-connection read buffer (see the
// upgrader in NewServer).
const readBufferSize = 320

// newID returns a session id: 15 random bytes, base64url (20 characters),
// like the reference server's.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func writeError(w http.ResponseWriter, status int, code errorCode) {
	writeErrorMessage(w, status, code, code.message())
}

func writeErrorMessage(w http.ResponseWriter, status int, code errorCode, message string) {
	body := make([]byte, 0, 64)
	body = append(body, `{"code":`...)
	body = strconv.AppendInt(body, int64(code), 10)
	body = append(body, `,"message":`...)
	body = strconv.AppendQuote(body, message)
	body = append(body, '}')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
