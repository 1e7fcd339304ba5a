package gateway

import (
	"container/heap"
	"sync"
	"time"
)

// expiryQueue runs the token-expiry timers of all sessions (the
// auth:expiring warning, then the automatic logoff) on one runtime timer.
// A time.AfterFunc per session, with its closure, was about 150 bytes of
// every idle connection's live heap; a queued session costs a 24-byte slot
// of a min-heap ordered by due time, and the timer is armed for the
// earliest. A session leaves the queue when its timer fires, is re-armed,
// or the session closes, so a closed session is not held until its token
// would have expired.
type expiryQueue struct {
	// fire runs for a session whose timer came due, with the generation
	// it was armed with, on the timer's goroutine, outside mu.
	fire func(s *session, gen uint32)

	mu    sync.Mutex
	base  time.Time // monotonic origin of the due times
	items expiryHeap
	timer *time.Timer // armed for items[0]; nil until the first add
	// stopped is set by stop: nothing is armed any more.
	stopped bool
}

// expiryItem is a session's place in the queue.
type expiryItem struct {
	due int64 // nanoseconds after base
	s   *session
	gen uint32
}

func newExpiryQueue(fire func(s *session, gen uint32)) *expiryQueue {
	return &expiryQueue{fire: fire, base: time.Now()}
}

// add arms s's timer to fire after in with gen, replacing the one armed
// before, if any.
func (q *expiryQueue) add(s *session, in time.Duration, gen uint32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return
	}
	due := int64(time.Since(q.base) + in)
	if i := s.expiryIdx - 1; i >= 0 {
		q.items[i].due, q.items[i].gen = due, gen
		heap.Fix(&q.items, int(i))
	} else {
		heap.Push(&q.items, expiryItem{due: due, s: s, gen: gen})
	}
	q.armLocked()
}

// remove disarms s's timer, if armed.
func (q *expiryQueue) remove(s *session) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := s.expiryIdx - 1; i >= 0 {
		heap.Remove(&q.items, int(i))
		q.armLocked()
	}
}

// stop disarms every timer for good: later adds do nothing.
func (q *expiryQueue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	for _, it := range q.items {
		it.s.expiryIdx = 0
	}
	q.items = nil
	if q.timer != nil {
		q.timer.Stop()
	}
}

// armLocked sets the runtime timer for the earliest item.
func (q *expiryQueue) armLocked() {
	if len(q.items) == 0 {
		if q.timer != nil {
			q.timer.Stop()
		}
		if cap(q.items) > 64 {
			q.items = nil // release a storm's array once the queue is empty
		}
		return
	}
	in := time.Duration(q.items[0].due) - time.Since(q.base)
	if q.timer == nil {
		q.timer = time.AfterFunc(in, q.run)
		return
	}
	q.timer.Reset(in)
}

// run fires every item that is due and re-arms for the next. A run for a
// Reset that raced with it finds nothing due and only re-arms.
func (q *expiryQueue) run() {
	q.mu.Lock()
	now := int64(time.Since(q.base))
	var due []expiryItem
	for len(q.items) > 0 && q.items[0].due <= now {
		due = append(due, heap.Pop(&q.items).(expiryItem))
	}
	if !q.stopped {
		q.armLocked()
	}
	q.mu.Unlock()
	for _, it := range due {
		q.fire(it.s, it.gen)
	}
}

// expiryHeap is a min-heap of items by due time that keeps each session's
// expiryIdx (index + 1, 0 when not queued) up to date; only expiryQueue
// uses it, under its mu.
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].due < h[j].due }

func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].s.expiryIdx, h[j].s.expiryIdx = int32(i+1), int32(j+1)
}

func (h *expiryHeap) Push(x any) {
	it := x.(expiryItem)
	it.s.expiryIdx = int32(len(*h) + 1)
	*h = append(*h, it)
}

func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = expiryItem{}
	*h = old[:len(old)-1]
	it.s.expiryIdx = 0
	return it
}
