package native

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/internal/coalesce"
	"github.com/wardline/wardline/transport/internal/idlewait"
	"github.com/wardline/wardline/transport/internal/workpool"
	"github.com/wardline/wardline/transport/wsframe"
)

// Defaults of Config. The ping/pong pair follows gorilla's chat example: the
// server pings every DefaultPingPeriod and a peer silent for DefaultPongWait
// (no pong, no frame) is dropped, so a dead TCP peer is noticed within a
// minute; the ratio 9/10 leaves a pong time to arrive.
const (
	DefaultMaxFrameSize      = 64 << 10 // DESIGN: a frame over 64 KiB closes with 1009
	DefaultAuthTimeout       = 10 * time.Second
	DefaultSendQueueMessages = 1024
	DefaultSendQueueBytes    = 4 << 20
	DefaultWriteWait         = 10 * time.Second // one write (or batch of writes) may take this long
	DefaultMaxPendingReplies = 64
	DefaultPongWait          = 60 * time.Second
	DefaultPingPeriod        = DefaultPongWait * 9 / 10
	// closeGracePeriod is how long a peer has to answer our close frame
	// before the TCP connection is dropped.
	closeGracePeriod = 3 * time.Second
	// readBufferSize is the per-connection read buffer, which gorilla
	// adopts from idlewait.Hijacker (it must be over 256 bytes for that, and
	// hold a control frame's 125-byte payload with its header); larger
	// payloads are read past it. 320 rather than 512: 190 bytes less live
	// heap per idle connection (BenchmarkIdleConnMemory 6,058 -> ~5,790 B).
	readBufferSize = 320
)

// Session is what authentication established for a connection.
type Session struct {
	UserID string
	// Value is the gateway's own per-connection state (claims, roles,
	// expiry); this package only stores it for Conn.Session.
	Value any
}

// CloseInfo tells Config.OnClose how a connection ended.
type CloseInfo struct {
	// Code and Reason are the close frame that ended the connection: ours
	// when the server closed (Remote false), the client's otherwise.
	// CloseAbnormal when the connection dropped without a close frame.
	Code   int
	Reason string
	// Remote is true when the client closed or the network failed.
	Remote bool
	// Err is the cause when there is one to tell apart: ErrSlowConsumer,
	// ErrAuthTimeout, ErrFrameTooLarge, or the read error of a dropped
	// connection. Nil for a close requested with Conn.Close.
	Err error
}

// Config configures a Server. The hooks are called for the connection's
// reader, which waits for them (on a shared deep worker; OnClose on the
// reader, after everything else), one at a time per connection, so a
// hook never runs concurrently with another hook of the same connection.
// Hooks of different connections run concurrently.
type Config struct {
	// Namespaces lists the namespaces served, with or without the leading
	// slash ("chat" or "/chat"). Any other /ws/{namespace} is HTTP 404
	// before the upgrade. Required.
	Namespaces []string

	// CheckRequest vets the handshake request before the upgrade (origin
	// allow-list, …); an error answers HTTP 403. Nil applies the same-origin
	// rule: no Origin header, or an Origin whose host is the request's Host.
	CheckRequest func(r *http.Request) error

	// Authenticate reads credentials the handshake carries (Authorization
	// header, cookie, ?token= when allowed). It returns ErrNoCredentials
	// when there are none, and the connection waits for an auth frame.
	// Any other error refuses them: the connection is upgraded, gets an
	// exception (the *Error's code, else unauthorized) and is closed with
	// 4401 (4403 for forbidden), because a browser cannot read the status of
	// a refused upgrade but can read a close code. The resume offset of a
	// handshake-authenticated connection is the ?offset= query parameter.
	// Nil means every connection authenticates with an auth frame.
	Authenticate func(r *http.Request) (Session, error)

	// OnAuth checks the token (and may check the offset) of an auth frame
	// {"event":"auth","data":{"token","offset"}}. Its ctx expires at the
	// auth deadline. An *Error with code invalid answers the frame and
	// leaves the connection waiting for a valid auth frame; any other error
	// refuses the connection: exception then close 4401 (forbidden: 4403,
	// unavailable: 1013); errors that are not *Error count as unauthorized
	// with a fixed message. Required.
	OnAuth func(ctx context.Context, c *Conn, token, offset string) (Session, error)

	// OnConnect is called once the connection is authenticated and the
	// auth ack and the connected push are queued, so anything the gateway
	// sends from here (replay from offset, live events) follows them. It
	// runs for the reader, which waits for it: long work (a replay)
	// belongs in a goroutine bound to c.Context(), using SendWait for
	// back-pressure.
	OnConnect func(ctx context.Context, c *Conn, offset string)

	// OnEvent handles one request of an authenticated connection and
	// returns the ack result (encoded as by EncodeAck) or an error (mapped
	// by ErrorOf). It is called synchronously, in frame order, and its
	// return is the reply: for a request without id the result is dropped
	// and an error becomes an exception frame. data aliases the read
	// buffer and is valid only until OnEvent returns. "auth" never reaches
	// OnEvent. ctx is cancelled when the connection ends. Required.
	OnEvent func(ctx context.Context, c *Conn, event string, data json.RawMessage) (any, error)

	// OnClose is called exactly once per upgraded connection, after its
	// goroutines have stopped and Send has started to fail.
	OnClose func(c *Conn, info CloseInfo)

	MaxFrameSize      int64         // default DefaultMaxFrameSize; larger frames close with 1009
	AuthTimeout       time.Duration // default DefaultAuthTimeout; then close 4408
	SendQueueMessages int           // default DefaultSendQueueMessages
	SendQueueBytes    int           // default DefaultSendQueueBytes; overflow closes with 1013
	WriteWait         time.Duration // default DefaultWriteWait
	PingPeriod        time.Duration // default DefaultPingPeriod
	PongWait          time.Duration // default DefaultPongWait; must exceed PingPeriod

	// MaxPendingReplies bounds the Pending requests one connection may
	// have in flight; default DefaultMaxPendingReplies.
	MaxPendingReplies int

	// CoalesceWindow holds pushes (Send) to a connection in a stream, so
	// that one write carries several: a push to a connection written less
	// than two windows ago is held until a second one is queued and a
	// window has passed since the last write, or until it has waited two
	// windows. Replies, pings and close frames never wait (and take held
	// pushes with them). A connection that receives less than one push per
	// two windows sees no delay at all. 0 writes every push at once. Each
	// write is a syscall that also wakes the client; under a heavy stream
	// that, not encoding, is most of the cost of a delivery.
	CoalesceWindow time.Duration

	// NewSessionID makes connection ids (the sessionId and the connected
	// push's socketId). Default: 128 random bits, base64url.
	NewSessionID func() string
	// Now stamps the connected push. Default time.Now.
	Now func() time.Time
	// Logger receives hook panics and encoding failures. Nil discards.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = DefaultAuthTimeout
	}
	if c.SendQueueMessages <= 0 {
		c.SendQueueMessages = DefaultSendQueueMessages
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = DefaultSendQueueBytes
	}
	if c.WriteWait <= 0 {
		c.WriteWait = DefaultWriteWait
	}
	if c.MaxPendingReplies <= 0 {
		c.MaxPendingReplies = DefaultMaxPendingReplies
	}
	if c.PongWait <= 0 {
		c.PongWait = DefaultPongWait
	}
	if c.PingPeriod <= 0 {
		c.PingPeriod = c.PongWait * 9 / 10
	}
	if c.NewSessionID == nil {
		c.NewSessionID = randomID
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	switch {
	case len(c.Namespaces) == 0:
		return errors.New("native: Config.Namespaces is empty")
	case c.OnAuth == nil:
		return errors.New("native: Config.OnAuth is required")
	case c.OnEvent == nil:
		return errors.New("native: Config.OnEvent is required")
	case c.PingPeriod >= c.PongWait:
		return fmt.Errorf("native: PingPeriod %s must be shorter than PongWait %s", c.PingPeriod, c.PongWait)
	}
	for _, ns := range c.Namespaces {
		if n := strings.TrimPrefix(ns, "/"); n == "" || strings.Contains(n, "/") {
			return fmt.Errorf("native: bad namespace %q", ns)
		}
	}
	return nil
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Server serves /ws/{namespace}. It is an http.Handler; mount it on a path
// ending in /ws/{namespace} (it reads the last path segment, or the
// "namespace" path value of a net/http pattern). Safe for concurrent use.
type Server struct {
	cfg        Config
	namespaces map[string]bool
	upgrader   websocket.Upgrader
	writePool  sync.Pool
	frames     wsframe.Pool
	readBufs   sync.Pool // *bytes.Buffer for incoming messages; at most MaxFrameSize grown

	// Writer goroutines, shared by the connections (see startWriter), and
	// deep workers (see deep).
	shared  *workpool.Turns[*Conn]
	writers *workpool.Pool[*Conn]
	deeps   *workpool.Caller
	// pendings run the Pending replies (see Conn.await) on goroutines
	// whose stacks have grown already: a fresh goroutine per message:send
	// grew its stack through the decision and append every time, 5% of
	// the server's CPU (runtime.newstack) at 50k deliveries/s.
	pendings *workpool.Pool[func()]

	// flusher writes the connections whose held pushes are due
	// (CoalesceWindow).
	flusher *coalesce.Flusher
	// pinger schedules every connection's pings.
	pinger *pinger
	// poller watches the parked connections' sockets (Conn.park); nil
	// where there is none.
	poller *idlewait.Poller

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	shutdown bool
	wg       sync.WaitGroup // one per connection being served
}

// NewServer checks cfg, fills its defaults and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		namespaces: make(map[string]bool, len(cfg.Namespaces)),
		conns:      make(map[*Conn]struct{}),
		flusher:    coalesce.NewFlusher(cfg.CoalesceWindow),
		pinger:     newPinger(cfg.PingPeriod),
		poller:     idlewait.NewPoller(),
		shared:     workpool.NewTurns(workerIdle, (*Conn).writeNow),
		writers:    workpool.New(workerIdle, (*Conn).writeLoop),
		deeps:      workpool.NewCaller(workerIdle),
		pendings:   workpool.New(workerIdle, func(f func()) { f() }),
	}
	s.readBufs.New = func() any { return new(bytes.Buffer) }
	for _, ns := range cfg.Namespaces {
		s.namespaces[strings.TrimPrefix(ns, "/")] = true
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.WriteWait,
		// ReadBufferSize is left at 0 so that gorilla adopts the reader
		// that idlewait.Hijacker hands it (readBufferSize bytes, not the
		// HTTP server's 4 KiB one): the reader goroutine then waits for
		// the next frame in that reader's Peek, on a small stack (see
		// Conn.waitIdle). gorilla only needs the buffer for frame headers
		// and control frames: payloads of a message's Read larger than
		// the buffer go straight to the caller's slice.
		// A pool means an idle connection holds no write buffer: with
		// thousands of mostly idle sockets that is most of the memory.
		WriteBufferPool: &s.writePool,
		// The request was vetted by CheckRequest before Upgrade runs.
		CheckOrigin: func(*http.Request) bool { return true },
		// Compression is off: it would cost CPU per connection and defeat
		// encoding a broadcast once.
		EnableCompression: false,
	}
	return s, nil
}

// Len returns the number of open connections.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) namespaceOf(r *http.Request) (string, bool) {
	ns := r.PathValue("namespace")
	if ns == "" {
		i := strings.LastIndex(r.URL.Path, "/ws/")
		if i < 0 {
			return "", false
		}
		ns = r.URL.Path[i+len("/ws/"):]
	}
	return ns, s.namespaces[ns]
}

// ServeHTTP checks the handshake, upgrades, and hands the connection to a
// reader goroutine that the Server owns (Shutdown waits for it); it returns
// once the connection is upgraded. Returning lets net/http drop what it
// keeps for the request's life, about 8 KiB of bufio buffers and the
// handler's grown stack, which an idle connection would otherwise hold
// for hours; the new goroutine starts with a small stack. Checks, in order:
// unknown namespace 404, CheckRequest 403, shutting down 503, then
// Authenticate.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ns, ok := s.namespaceOf(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	check := s.cfg.CheckRequest
	if check == nil {
		check = sameOrigin
	}
	if err := check(r); err != nil {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	handedOver := false
	defer func() {
		if !handedOver {
			s.wg.Done()
		}
	}()

	var pre *Session
	var preErr error
	if s.cfg.Authenticate != nil {
		sess, err := s.cfg.Authenticate(r)
		switch {
		case err == nil:
			pre = &sess
		case !errors.Is(err, ErrNoCredentials):
			preErr = err
		}
	}
	hj := &idlewait.Hijacker{ResponseWriter: w, Size: readBufferSize}
	ws, err := s.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		return // Upgrade has answered the request with an HTTP error
	}
	c := newConn(s, ws, ns, r)
	c.br = hj.BR
	s.mu.Lock()
	s.conns[c] = struct{}{}
	late := s.shutdown
	s.mu.Unlock()
	if late {
		c.Close(CloseGoingAway, "going away")
	}
	offset := r.URL.Query().Get("offset")
	handedOver = true
	go c.serve(pre, preErr, offset) // calls s.wg.Done
}

func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting connections (503 before the upgrade), closes
// every connection with 1001 "going away" after the reply of its in-flight
// request, and waits for them to end. When ctx ends first, the remaining
// connections are dropped and their contexts cancelled; Shutdown then waits
// for their hooks to return (they must honour ctx) and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close(CloseGoingAway, "going away")
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.stopWriters()
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.drop()
	}
	s.mu.Unlock()
	<-done
	s.stopWriters()
	return ctx.Err()
}

// workerIdle is how long a writer or deep worker waits for another job
// before it exits. Under load a worker finds work within microseconds;
// idle, the goroutines are gone a moment after the traffic.
const workerIdle = 250 * time.Millisecond

// startWriter hands c, whose queue has work, to an idle writer goroutine
// that may wait for the socket, or starts one (see workpool: the writev
// path needs a grown stack).
func (s *Server) startWriter(c *Conn) { s.writers.Go(c) }

// deep runs fn on a deep worker goroutine and waits for it: the readers
// hand over the work that needs a deep stack, so their own stacks stay at
// 2 KiB (see Conn.serve). Like the writers, the workers are shared and
// outlive the job, so a busy server does not grow a fresh goroutine's
// stack for every message; idle, they are gone after workerIdle.
func (s *Server) deep(fn func()) { s.deeps.Call(fn) }

// stopWriters ends the idle workers and the flusher once no connection is
// left.
func (s *Server) stopWriters() {
	s.pinger.stop()
	s.poller.Stop()
	s.flusher.Stop()
	s.shared.Stop()
	s.writers.Stop()
	s.deeps.Stop()
	s.pendings.Stop()
}

// sameOrigin is the default CheckRequest: non-browser clients send no
// Origin; a browser's must name this host. "null" (sandboxed pages, file:)
// is refused.
func sameOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || origin == "null" || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("native: origin %q not allowed", origin)
	}
	return nil
}
