// Package coalesce holds a streaming connection's pushes so that one write
// carries several: the transports' coalescing window.
//
// On this machine one write per delivery (a syscall that also runs the
// receiver's TCP path on loopback and wakes it) is most of a delivery's
// cost. The rule, with window W: a push to a connection written less than
// 2W ago is held until a second push is queued and W has passed since the
// last write, or until it has waited 1.5W, whichever comes first. A stream
// slower than one push per 2W is never held; at 50 pushes/s per
// connection and W = 20 ms a write carries two pushes (the first waits
// ~20 ms, the second none); at 200/s it carries four. Replies, pings and
// close frames are never held: the transport writes them at once, with
// whatever is held.
//
// A transport keeps a State per connection, guarded by the connection's
// lock, asks it at each push whether to write now, and tells it when a
// write takes the queue. A Flusher writes the connections whose held
// pushes have come due.
package coalesce

import (
	"sync"
	"sync/atomic"
	"time"
)

// State is one connection's part of the rule. Its methods are called with
// the connection's lock held, except DueAt.
type State struct {
	// dueAt is when held pushes must be written (unix ns; 0: none held);
	// the flusher reads it without the connection's lock.
	dueAt     atomic.Int64
	held      bool // pushes are held until dueAt
	listed    bool // on the Flusher's list
	lastWrite time.Time
}

// Push is the rule at a push that left queued frames in the connection's
// queue. now says true when the connection is to be written at once;
// otherwise its pushes are held and, when list is true, the caller must
// put the connection on its Flusher's list (Flusher.Add).
func (s *State) Push(now time.Time, queued int, w time.Duration) (writeNow, list bool) {
	if !s.held {
		if now.Sub(s.lastWrite) >= 2*w {
			return true, false // not in a stream: no delay
		}
		s.held = true
		// 1.5W, not 2W: when the room's next message is late (a slow
		// commit), waiting longer for it only adds to this one's delay.
		s.dueAt.Store(now.Add(w + w/2).UnixNano())
		list = !s.listed
		s.listed = true
	}
	if queued >= 2 {
		// Company arrived: write once a window has passed since the last
		// write, now if it has.
		at := s.lastWrite.Add(w)
		if !now.Before(at) {
			s.held = false
			s.dueAt.Store(0)
			return true, list
		}
		if at.UnixNano() < s.dueAt.Load() {
			s.dueAt.Store(at.UnixNano())
		}
	}
	return false, list
}

// Written records a write that takes the whole queue, held pushes
// included.
func (s *State) Written(now time.Time) {
	s.lastWrite = now
	if s.held {
		s.held = false
		s.dueAt.Store(0)
	}
}

// DueAt is when the held pushes are due (unix ns), 0 if none is held. It
// needs no lock.
func (s *State) DueAt() int64 { return s.dueAt.Load() }

// Due is the flusher's check, with the connection's lock held: it reports
// whether the connection stays listed (its pushes are held and not due at
// now), and otherwise takes it off the list and reports whether held
// pushes must be written now. stop writes everything held.
func (s *State) Due(now int64, stop bool) (keep, write bool) {
	if s.held && !stop && s.dueAt.Load() > now {
		return true, false
	}
	s.listed = false
	if !s.held {
		return false, false
	}
	s.held = false
	s.dueAt.Store(0)
	return false, true
}

// Conn is a connection the Flusher can write.
type Conn interface {
	// Coalesce returns the connection's State (DueAt is read without the
	// lock).
	Coalesce() *State
	// FlushDue takes the connection's lock, calls State.Due and, when it
	// says so, starts writing the connection's queue; it returns Due's
	// keep.
	FlushDue(now int64, stop bool) (keep bool)
}

// Flusher checks the listed connections every quarter window and writes
// those whose held pushes are due. Its goroutine runs only while a
// connection is listed, so an idle server holds no ticking goroutine; a
// listed connection costs each tick one atomic load until it is due.
type Flusher struct {
	window time.Duration

	mu       sync.Mutex
	due      []Conn
	flushing bool
	quit     chan struct{}
	quitOnce sync.Once
	wg       sync.WaitGroup
}

// NewFlusher returns a Flusher for window.
func NewFlusher(window time.Duration) *Flusher {
	return &Flusher{window: window, quit: make(chan struct{})}
}

// Add lists c, whose State.Push said list, starting the goroutine when it
// is not running. The caller may hold c's lock.
func (f *Flusher) Add(c Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.due = append(f.due, c)
	if !f.flushing {
		f.flushing = true
		f.wg.Add(1)
		go f.run()
	}
}

func (f *Flusher) run() {
	defer f.wg.Done()
	tick := time.NewTicker(max(f.window/4, time.Millisecond))
	defer tick.Stop()
	var list, keep []Conn
	for {
		stop := false
		select {
		case <-tick.C:
		case <-f.quit:
			stop = true
		}
		now := time.Now().UnixNano()
		f.mu.Lock()
		list, f.due = f.due, list[:0]
		f.mu.Unlock()
		keep = keep[:0]
		for i, c := range list {
			list[i] = nil
			if due := c.Coalesce().DueAt(); (due > now && !stop) || c.FlushDue(now, stop) {
				keep = append(keep, c)
			}
		}
		f.mu.Lock()
		f.due = append(f.due, keep...)
		clear(keep)
		if len(f.due) == 0 || stop {
			f.flushing = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
	}
}

// Stop writes what is held at once and ends the goroutine.
func (f *Flusher) Stop() {
	f.quitOnce.Do(func() { close(f.quit) })
	f.wg.Wait()
}
