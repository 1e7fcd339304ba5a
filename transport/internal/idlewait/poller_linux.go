//go:build linux

package idlewait

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// Poller watches idle connections' sockets with its own epoll instance,
// so that an idle connection needs no goroutine at all: not even the
// smallest goroutine stack that Wait parks on. A goroutine's stack, its g
// and the runtime's bookkeeping were about 2.6 KB of each idle
// connection's memory (runtime stack_inuse at 10,000 idle connections),
// more than any structure of the connection itself.
//
// The socket stays in Go's own poller too, for the reads and writes that
// the connection still makes through net.Conn; an fd may belong to two
// epoll sets. Interest is one-shot: a ready socket is reported once and
// then stays quiet until its reader, done with what arrived, arms it again.
// The goroutine that waits on the epoll set runs only while some socket is
// registered, so a Poller with no connections holds no goroutine.
type Poller struct {
	mu      sync.Mutex
	cur     *pollerRun       // nil while no goroutine runs
	count   int              // registered handles
	ready   map[int32]func() // by token
	next    int32            // last token given out
	stopped bool
}

// pollerRun is one run of the Poller's goroutine with its epoll set and
// wake pipe, which only that goroutine closes, when it exits: fd numbers
// are reused at once, so nobody else may act on them by number.
type pollerRun struct {
	epfd, wakeR, wakeW int
	done               chan struct{} // closed when the goroutine exits
}

// Handle is one socket's registration.
type Handle struct {
	p     *Poller
	raw   syscall.RawConn
	token int32
}

// ErrStopped is returned by Register after Stop.
var ErrStopped = errors.New("idlewait: poller stopped")

// wakeToken marks the pipe's events; connection tokens are positive.
const wakeToken = -1

// armed asks for one report of readability. Registered without it, a
// socket is only watched for errors, once (EPOLLONESHOT), so as not to
// be reported over and over.
const armed = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// NewPoller returns a Poller; on Linux it is never nil.
func NewPoller() *Poller {
	return &Poller{ready: make(map[int32]func())}
}

// Register adds raw's socket to the Poller, disarmed: after each Arm,
// ready is called once, on the Poller's goroutine, when the socket has
// something to read (data, the peer's close, an error). ready must not
// block.
func (p *Poller) Register(raw syscall.RawConn, ready func()) (*Handle, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil, ErrStopped
	}
	if p.cur == nil {
		if err := p.startLocked(); err != nil {
			return nil, err
		}
	}
	for {
		p.next++
		if p.next <= 0 {
			p.next = 1
		}
		if _, used := p.ready[p.next]; !used {
			break
		}
	}
	h := &Handle{p: p, raw: raw, token: p.next}
	if err := h.ctl(syscall.EPOLL_CTL_ADD, p.cur.epfd, syscall.EPOLLONESHOT); err != nil {
		if p.count == 0 {
			p.cur.interrupt() // nothing registered: the goroutine exits
		}
		return nil, err
	}
	p.ready[h.token] = ready
	p.count++
	return h, nil
}

// Arm asks for one more ready call. It fails once the socket is closed.
func (h *Handle) Arm() error {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	if _, ok := h.p.ready[h.token]; !ok {
		return ErrStopped
	}
	return h.ctl(syscall.EPOLL_CTL_MOD, h.p.cur.epfd, armed)
}

// Close ends the registration; a ready call already on its way may still
// arrive. The socket itself is not closed.
func (h *Handle) Close() {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.ready[h.token]; !ok {
		return
	}
	// A closed socket has left the epoll set already, and Control fails.
	_ = h.ctl(syscall.EPOLL_CTL_DEL, p.cur.epfd, 0)
	delete(p.ready, h.token)
	p.count--
	if p.count == 0 {
		p.cur.interrupt()
	}
}

// ctl runs epoll_ctl on the socket inside RawConn.Control, which keeps Go
// from closing (and the kernel from reusing) the fd meanwhile.
func (h *Handle) ctl(op, epfd int, events uint32) error {
	ev := syscall.EpollEvent{Events: events, Fd: h.token}
	var cerr error
	err := h.raw.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(epfd, op, int(fd), &ev)
	})
	if err != nil {
		return fmt.Errorf("idlewait: socket: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("idlewait: epoll_ctl: %w", cerr)
	}
	return nil
}

// Stop ends the Poller: Register fails from now on, and Stop returns once
// its goroutine has exited. Handles still registered get no more calls.
func (p *Poller) Stop() {
	p.mu.Lock()
	p.stopped = true
	run := p.cur
	if run != nil {
		clear(p.ready)
		p.count = 0
		run.interrupt()
	}
	p.mu.Unlock()
	if run != nil {
		<-run.done
	}
}

func (p *Poller) startLocked() error {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("idlewait: epoll_create1: %w", err)
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		_ = syscall.Close(epfd)
		return fmt.Errorf("idlewait: pipe2: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeToken}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		_ = syscall.Close(epfd)
		_ = syscall.Close(pipe[0])
		_ = syscall.Close(pipe[1])
		return fmt.Errorf("idlewait: epoll_ctl of the wake pipe: %w", err)
	}
	run := &pollerRun{epfd: epfd, wakeR: pipe[0], wakeW: pipe[1], done: make(chan struct{})}
	p.cur = run
	go p.run(run)
	return nil
}

// interrupt wakes the goroutine from its wait. Called with the Poller's
// lock held, while run is its current run, so the pipe is open.
func (r *pollerRun) interrupt() {
	_, _ = syscall.Write(r.wakeW, []byte{0})
}

// run waits on the epoll set and calls the ready functions, until no
// handle is registered; then it closes the set and the pipe.
func (p *Poller) run(r *pollerRun) {
	defer func() {
		_ = syscall.Close(r.epfd)
		_ = syscall.Close(r.wakeR)
		_ = syscall.Close(r.wakeW)
		close(r.done)
	}()
	events := make([]syscall.EpollEvent, 128)
	var calls []func()
	var drain [64]byte
	for {
		n, err := syscall.EpollWait(r.epfd, events, -1)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			// Not expected with valid fds. Rather than spin, give up
			// the set and call every registered function: their
			// handles are closed, so each connection finds Arm
			// failing and waits in a goroutine again.
			p.mu.Lock()
			for _, f := range p.ready {
				calls = append(calls, f)
			}
			clear(p.ready)
			p.count = 0
			p.cur = nil
			p.mu.Unlock()
			for _, f := range calls {
				f()
			}
			return
		}
		p.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == wakeToken {
				for {
					if k, _ := syscall.Read(r.wakeR, drain[:]); k <= 0 {
						break
					}
				}
				continue
			}
			if f, ok := p.ready[ev.Fd]; ok {
				calls = append(calls, f)
			}
		}
		if p.count == 0 {
			p.cur = nil // a Register from now on starts a new run
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		for i, f := range calls {
			f()
			calls[i] = nil
		}
		calls = calls[:0]
	}
}
