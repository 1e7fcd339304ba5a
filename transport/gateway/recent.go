package gateway

import (
	"sort"

	"github.com/wardline/wardline/eventstore"
)

// The recent ring's bounds. Only events somebody may see take an entry, so
// 4096 entries are seconds of a busy node's traffic, which is what a
// connecting session's replay window spans (the few events committed
// between reading its start position and registering with the hub).
// Bytes count the payload three times (the payload and one encoded frame
// per transport) plus the routing.
const (
	recentMaxEntries = 4096
	recentMaxBytes   = 8 << 20
	recentOverhead   = 256 // the push and route structs, the offset, roughly
)

// recentRing holds the latest routed pushes with their routing, in log
// order, so that a replay window that lies within it is served from memory:
// no store read, no decoding, no routing, and the frames already encoded for
// the live recipients are reused. It is not safe for concurrent use (the
// hub's mu guards it).
type recentRing struct {
	buf      []recentEntry // circular: n entries from head
	head, n  int
	bytes    int
	maxBytes int
	// low is the ring's coverage: every routed event after low is held.
	// It is meaningless until started (the hub has seen an event).
	low     eventstore.Position
	started bool
}

type recentEntry struct {
	r    route
	size int
}

func newRecentRing(entries, maxBytes int) recentRing {
	return recentRing{buf: make([]recentEntry, entries), maxBytes: maxBytes}
}

// add records the event at pos, which is after every event added before:
// routed (ok) with r, or seen by nobody. The first event starts the
// coverage just before it: the Runner hands the hub every event after that
// one, in order.
func (rr *recentRing) add(pos eventstore.Position, r route, ok bool) {
	if !rr.started {
		rr.started = true
		if pos > 0 {
			rr.low = pos - 1
		}
	}
	if !ok {
		return
	}
	if len(rr.buf) == 0 {
		rr.low = pos
		return
	}
	size := recentOverhead + 3*len(r.push.data) + 16*len(r.users)
	for rr.n > 0 && (rr.n == len(rr.buf) || rr.bytes+size > rr.maxBytes) {
		rr.evict()
	}
	if size > rr.maxBytes {
		rr.low = pos // too big to keep: the window that needs it reads the log
		return
	}
	rr.buf[(rr.head+rr.n)%len(rr.buf)] = recentEntry{r: r, size: size}
	rr.n++
	rr.bytes += size
}

func (rr *recentRing) evict() {
	e := &rr.buf[rr.head]
	rr.low = e.r.push.pos
	rr.bytes -= e.size
	*e = recentEntry{}
	rr.head = (rr.head + 1) % len(rr.buf)
	rr.n--
}

func (rr *recentRing) at(i int) *recentEntry { return &rr.buf[(rr.head+i)%len(rr.buf)] }

// window returns the pushes in (from, live] that reach user, and false
// when part of that window is older than the ring.
func (rr *recentRing) window(user string, from, live eventstore.Position) ([]*push, bool) {
	if !rr.started || from < rr.low {
		return nil, false
	}
	first := sort.Search(rr.n, func(i int) bool { return rr.at(i).r.push.pos > from })
	var out []*push
	for i := first; i < rr.n; i++ {
		e := rr.at(i)
		if e.r.push.pos > live {
			break
		}
		if e.r.reaches(user) {
			out = append(out, e.r.push)
		}
	}
	return out, true
}
