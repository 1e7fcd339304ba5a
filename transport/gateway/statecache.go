package gateway

import (
	"fmt"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// stateCache holds the folded states of the streams this node decides on.
//
// An entry with a decision queued or being decided (a leader) is busy: it
// sits in busy and is never dropped, so that every decision of the stream
// on this node goes through the one entry and its queue. Once its leader
// finds the queue empty the entry becomes idle and moves to an LRU bounded
// at size entries; when one more idle entry would not fit, the least
// recently used one is dropped, and its stream is loaded from the store
// again at its next decision. busy is bounded by the requests in flight.
type stateCache struct {
	mu   sync.Mutex
	busy map[string]*streamEntry
	idle *simplelru.LRU[string, *streamEntry]
}

func newStateCache(size int) *stateCache {
	idle, err := simplelru.NewLRU[string, *streamEntry](size, nil)
	if err != nil {
		panic(fmt.Sprintf("gateway: state cache of %d entries: %v", size, err)) // a wiring bug
	}
	return &stateCache{busy: map[string]*streamEntry{}, idle: idle}
}

// enqueue queues d on stream's entry, creating the entry with mk when the
// stream has none cached, and reports whether the caller is to lead it (no
// leader was running). The entry stays busy until its leader settles it.
func (c *stateCache) enqueue(stream string, mk func() folder, d *decision) (e *streamEntry, lead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e = c.busy[stream]
	if e == nil {
		var ok bool
		if e, ok = c.idle.Peek(stream); ok {
			c.idle.Remove(stream)
		} else {
			e = &streamEntry{state: mk()}
		}
		c.busy[stream] = e
	}
	e.qmu.Lock()
	e.waiting = append(e.waiting, d)
	lead = !e.leading
	e.leading = true
	e.qmu.Unlock()
	return e, lead
}

// settle moves e to the idle entries if nothing is queued on it and no
// leader runs. A leader calls it after it stopped leading; if a new leader
// started meanwhile, that one settles e in turn.
func (c *stateCache) settle(stream string, e *streamEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy[stream] != e {
		return
	}
	e.qmu.Lock()
	busy := e.leading || len(e.waiting) > 0
	e.qmu.Unlock()
	if busy {
		return
	}
	delete(c.busy, stream)
	c.idle.Add(stream, e)
}

// peek returns stream's entry, busy or idle, without touching its recency.
func (c *stateCache) peek(stream string) (*streamEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.busy[stream]; ok {
		return e, true
	}
	return c.idle.Peek(stream)
}

// len returns how many entries are cached, busy and idle.
func (c *stateCache) len() (busy, idle int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.busy), c.idle.Len()
}
