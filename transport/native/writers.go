package native

import (
	"runtime"
	"sync"
	"time"
)

// sharedWriters are a few goroutines (one per CPU at most) that take turns
// writing the connections that have frames queued, each with one writev
// that never waits for the socket (wsframe.Writer.TryWriteTo).
//
// Handing every write burst to a goroutine of its own, even a pooled one,
// parks and wakes a goroutine per write: in a CPU profile of wardline serve
// at 50k deliveries/s (1,000 connections, ~42k writev/s), the pool's
// hand-off (channel send to an idle worker, its select and idle timer,
// the scheduler) was ~15% of the server's CPU, besides the writev itself.
// A shared writer instead finds the next connection on a list: one wake per
// fan-out burst, not per connection. A socket that is full (the client
// reads slowly) is the exception, and only then does the connection get a
// goroutine that may wait (Server.startWriter), so a slow client never
// holds up the others.
type sharedWriters struct {
	run  func(*Conn) (again bool) // writes c once; again: more is queued
	max  int
	idle time.Duration

	mu      sync.Mutex
	ready   []*Conn // FIFO from head
	head    int
	running int
	parked  int           // writers waiting without a wake-up sent to them
	wake    chan struct{} // capacity max; sent to only under mu
	quit    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func newSharedWriters(idle time.Duration, run func(*Conn) bool) *sharedWriters {
	n := max(runtime.GOMAXPROCS(0), 1)
	return &sharedWriters{run: run, max: n, idle: idle, wake: make(chan struct{}, n), quit: make(chan struct{})}
}

// push queues c, whose writing flag its caller has set, for a writer.
func (w *sharedWriters) push(c *Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ready = append(w.ready, c)
	switch {
	case w.parked > 0:
		w.parked--
		w.wake <- struct{}{} // never blocks: at most max are outstanding
	case w.running < w.max:
		w.running++
		w.wg.Add(1)
		go w.loop()
	}
}

func (w *sharedWriters) popLocked() (*Conn, bool) {
	if w.head == len(w.ready) {
		return nil, false
	}
	c := w.ready[w.head]
	w.ready[w.head] = nil
	w.head++
	if w.head == len(w.ready) {
		w.ready, w.head = w.ready[:0], 0
	}
	return c, true
}

// loop writes connections until none has been ready for the idle period,
// so an idle server holds no writer.
func (w *sharedWriters) loop() {
	defer w.wg.Done()
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for {
		w.mu.Lock()
		if c, ok := w.popLocked(); ok {
			w.mu.Unlock()
			if w.run(c) {
				w.push(c) // to the back: a busy connection takes turns
			}
			continue
		}
		w.parked++
		w.mu.Unlock()
		if idle == nil {
			idle = time.NewTimer(w.idle)
		} else {
			idle.Reset(w.idle)
		}
		select {
		case <-w.wake:
			continue
		case <-idle.C:
		case <-w.quit:
		}
		w.mu.Lock()
		select {
		case <-w.wake: // a push picked this writer as it gave up
			w.mu.Unlock()
			continue
		default:
		}
		w.parked--
		w.running--
		w.mu.Unlock()
		return
	}
}

// stop makes idle writers exit and waits for all of them.
func (w *sharedWriters) stop() {
	w.once.Do(func() { close(w.quit) })
	w.wg.Wait()
}
