package native

import (
	"sync"
	"time"
)

// pinger schedules every connection's pings on one runtime timer. A
// time.AfterFunc per connection was ~180 bytes of each idle connection's
// live heap (the timer and its closure; forced-GC heap profile at 10k idle
// connections), and every byte of live heap costs about two of RSS.
//
// All connections ping at the same period, so a connection re-armed at
// now + period always belongs at the back: the schedule is a FIFO, in due
// order, and the timer is armed for its head. A closed connection's slot
// lets go of the connection at once and leaves the FIFO when it comes due.
type pinger struct {
	period time.Duration
	base   time.Time // monotonic origin of the due times

	mu      sync.Mutex
	fifo    []pingEntry // due order, from head
	head    int
	timer   *time.Timer // armed for fifo[head]; nil until the first add
	stopped bool
}

type pingEntry struct {
	due  int64 // nanoseconds after base
	slot *pingSlot
}

// pingSlot is a connection's place in the schedule; c is nil once the
// connection has closed. Guarded by pinger.mu.
type pingSlot struct{ c *Conn }

func newPinger(period time.Duration) *pinger {
	return &pinger{period: period, base: time.Now()}
}

// add schedules c's first ping one period from now and returns its slot.
func (p *pinger) add(c *Conn) *pingSlot {
	slot := &pingSlot{c: c}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return slot
	}
	p.fifo = append(p.fifo, pingEntry{due: int64(time.Since(p.base) + p.period), slot: slot})
	if p.head == len(p.fifo)-1 {
		p.armLocked()
	}
	return slot
}

// remove lets go of the connection of slot: it is pinged no more.
func (p *pinger) remove(slot *pingSlot) {
	p.mu.Lock()
	slot.c = nil
	p.mu.Unlock()
}

// stop ends the schedule for good.
func (p *pinger) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	clear(p.fifo)
	p.fifo, p.head = nil, 0
	if p.timer != nil {
		p.timer.Stop()
	}
}

// armLocked sets the timer for the head of the schedule.
func (p *pinger) armLocked() {
	if p.head == len(p.fifo) {
		if p.timer != nil {
			p.timer.Stop()
		}
		return
	}
	in := time.Duration(p.fifo[p.head].due) - time.Since(p.base)
	if p.timer == nil {
		p.timer = time.AfterFunc(in, p.run)
		return
	}
	p.timer.Reset(in)
}

// run pings the connections that are due and schedules their next ping.
// A run for a Reset that raced with it finds nothing due and re-arms.
func (p *pinger) run() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	now := int64(time.Since(p.base))
	var due []*Conn
	for p.head < len(p.fifo) && p.fifo[p.head].due <= now {
		e := p.fifo[p.head]
		p.fifo[p.head] = pingEntry{}
		p.head++
		if e.slot.c == nil {
			continue // closed: its slot leaves the schedule
		}
		due = append(due, e.slot.c)
		p.fifo = append(p.fifo, pingEntry{due: now + int64(p.period), slot: e.slot})
	}
	p.compactLocked()
	p.armLocked()
	p.mu.Unlock()
	for _, c := range due {
		c.schedulePing()
	}
}

// compactLocked moves the live part of the FIFO to the front of its array
// once the consumed head is at least half of it, so the array does not
// grow without bound.
func (p *pinger) compactLocked() {
	if p.head == 0 || p.head < len(p.fifo)/2 {
		return
	}
	n := copy(p.fifo, p.fifo[p.head:])
	clear(p.fifo[n:])
	p.fifo, p.head = p.fifo[:n], 0
	if cap(p.fifo) > 64 && n < cap(p.fifo)/4 {
		p.fifo = append([]pingEntry(nil), p.fifo...) // release a storm's array
	}
}
