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
	"time"
)

// State is one connection's part of the rule. Its methods are called with
// the connection's lock held.
type State struct {
	dueAt     int64 // when held pushes must be written (unix ns; 0: none held)
	held      bool  // pushes are held until dueAt
	lastWrite time.Time
}

// Push is the rule at a push that left queued frames in the connection's
// queue. writeNow says the connection is to be written at once; otherwise
// its pushes are held and, when listAt is not 0, the caller must list the
// connection with its Flusher to be flushed at listAt (Flusher.Add).
func (s *State) Push(now time.Time, queued int, w time.Duration) (writeNow bool, listAt int64) {
	if !s.held {
		if now.Sub(s.lastWrite) >= 2*w {
			return true, 0 // not in a stream: no delay
		}
		s.held = true
		// 1.5W, not 2W: when the room's next message is late (a slow
		// commit), waiting longer for it only adds to this one's delay.
		s.dueAt = now.Add(w + w/2).UnixNano()
		listAt = s.dueAt
	}
	if queued >= 2 {
		// Company arrived: write once a window has passed since the last
		// write, now if it has.
		at := s.lastWrite.Add(w)
		if !now.Before(at) {
			s.held = false
			s.dueAt = 0
			return true, 0
		}
		if at.UnixNano() < s.dueAt {
			// Due sooner: listed again at the new time. The entry at the
			// old time finds the pushes written, or held anew and due
			// later, and does nothing (see Due).
			s.dueAt = at.UnixNano()
			listAt = s.dueAt
		}
	}
	return false, listAt
}

// Written records a write that takes the whole queue, held pushes
// included.
func (s *State) Written(now time.Time) {
	s.lastWrite = now
	s.held = false
	s.dueAt = 0
}

// DueAt is when the held pushes are due (unix ns), 0 if none is held.
func (s *State) DueAt() int64 { return s.dueAt }

// Due is the flusher's check of an entry that came due at or before now:
// it reports whether held pushes must be written now. An entry listed for
// an earlier hold, or for this one before its due time moved, finds
// nothing held or a due time still to come, and writes nothing: the hold
// has an entry at its own due time. stop writes everything held.
func (s *State) Due(now int64, stop bool) (write bool) {
	if !s.held || !stop && s.dueAt > now {
		return false
	}
	s.held = false
	s.dueAt = 0
	return true
}

// Conn is a connection the Flusher can write.
type Conn interface {
	// FlushDue takes the connection's lock, calls State.Due and, when it
	// says so, starts writing the connection's queue.
	FlushDue(now int64, stop bool)
}

// entry is a listed connection and when it is due.
type entry struct {
	c   Conn
	due int64
}

// Flusher checks its entries every quarter window and writes the
// connections whose held pushes are due. An entry carries its due time, so
// a check touches only the connections that are due: reading every held
// connection's due time at every tick was ~1% of the server's CPU with
// 1,000 streaming connections and grows with their number. Its goroutine
// runs only while something is listed, so an idle server holds no ticking
// goroutine.
type Flusher struct {
	window time.Duration

	mu       sync.Mutex
	due      []entry
	spare    []entry // the flusher goroutine's other buffer
	flushing bool
	quit     chan struct{}
	quitOnce sync.Once
	wg       sync.WaitGroup
}

// NewFlusher returns a Flusher for window.
func NewFlusher(window time.Duration) *Flusher {
	return &Flusher{window: window, quit: make(chan struct{})}
}

// Add lists c, to be flushed at at (unix ns; what State.Push said),
// starting the goroutine when it is not running. The caller may hold c's
// lock.
func (f *Flusher) Add(c Conn, at int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.due = append(f.due, entry{c: c, due: at})
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
	for {
		stop := false
		select {
		case <-tick.C:
		case <-f.quit:
			stop = true
		}
		if !f.check(time.Now().UnixNano(), stop) || stop {
			return
		}
	}
}

// check flushes the entries due at now (all of them when stop) and
// reports whether any is left; when none is, the goroutine has ended its
// run (flushing is false).
func (f *Flusher) check(now int64, stop bool) (more bool) {
	f.mu.Lock()
	list := f.due
	f.due = f.spare[:0]
	f.mu.Unlock()
	n := 0
	for _, e := range list {
		if e.due > now && !stop {
			list[n] = e
			n++
			continue
		}
		e.c.FlushDue(now, stop)
	}
	clear(list[n:])
	list = list[:n]
	f.mu.Lock()
	defer f.mu.Unlock()
	list = append(list, f.due...) // listed meanwhile
	clear(f.due)
	f.spare, f.due = f.due[:0], list
	if len(f.due) == 0 || stop {
		f.flushing = false
		return false
	}
	return true
}

// Stop writes what is held at once and ends the goroutine.
func (f *Flusher) Stop() {
	f.quitOnce.Do(func() { close(f.quit) })
	f.wg.Wait()
}
