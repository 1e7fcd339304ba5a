package bolt

import (
	"sync"

	"github.com/wardline/wardline/eventstore"
)

// The stream and ID indexes are written lazily. Writing them with every
// group commit dirties one B+tree page per stream touched (a stream's
// entries sit together, far from other streams'), which tripled the pages
// and the fsync'd bytes of a commit. Instead the writer keeps the index
// entries of recent events in memory and, once DefaultIndexFlushEvents have
// piled up, writes them sorted, a chunk in the transaction of each of the
// following batches (flushPlan).
// The log is always written with its commit, so nothing durable depends on
// the lazy part: Open rebuilds it by replaying the log after the "indexed"
// marker (a few tens of thousands of events at most).

// DefaultIndexFlushEvents is how many events' index entries the writer keeps
// in memory before it writes them to the on-disk indexes.
const DefaultIndexFlushEvents = 32768

// tail holds the positions of consecutive versions of one stream, from first.
type tail struct {
	first     uint64
	positions []eventstore.Position
}

func (t *tail) last() uint64 { return t.first + uint64(len(t.positions)) - 1 }

// generation is a set of index entries not yet on disk.
type generation struct {
	streams map[string]*tail
	// ids holds the event IDs that are canonical UUIDs (the domain's are)
	// as their 16 bytes, so the index does not keep a 48-byte string per
	// event in memory; otherIDs holds any other ID, made on first use.
	ids      map[uuidKey]eventstore.Position
	otherIDs map[string]eventstore.Position
	through  eventstore.Position // the newest position it covers
	events   int
}

// uuidKey is a canonical UUID event ID: 36 characters, lowercase hex with
// hyphens at 8, 13, 18 and 23. Only that form is parsed, so that its key
// and the string it came from convert both ways exactly; an ID in another
// spelling (uppercase, braces) is a different ID and stays a string.
type uuidKey [16]byte

// parseUUIDKey returns id's key if id is a canonical UUID.
func parseUUIDKey(id string) (uuidKey, bool) {
	var k uuidKey
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return k, false
	}
	n := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := lowerHex(id[i])
		lo, ok2 := lowerHex(id[i+1])
		if !ok1 || !ok2 {
			return k, false
		}
		k[n] = hi<<4 | lo
		n++
		i += 2
	}
	return k, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// String returns the canonical form k was parsed from.
func (k uuidKey) String() string { return string(appendCanonical(make([]byte, 0, 36), k)) }

// id returns the position of event ID id in g.
func (g *generation) id(id string) (eventstore.Position, bool) {
	if k, ok := parseUUIDKey(id); ok {
		p, ok := g.ids[k]
		return p, ok
	}
	p, ok := g.otherIDs[id]
	return p, ok
}

// putID records that event ID id is at p.
func (g *generation) putID(id string, p eventstore.Position) {
	if k, ok := parseUUIDKey(id); ok {
		g.ids[k] = p
		return
	}
	if g.otherIDs == nil {
		g.otherIDs = make(map[string]eventstore.Position)
	}
	g.otherIDs[id] = p
}

// idCount is how many event IDs g holds.
func (g *generation) idCount() int { return len(g.ids) + len(g.otherIDs) }

// newGeneration sizes the maps for events entries up front: growing a map
// of tens of thousands of entries rehashes it several times, which showed
// up in the writer's profile.
func newGeneration(events int) *generation {
	return &generation{streams: make(map[string]*tail, min(events, 1024)), ids: make(map[uuidKey]eventstore.Position, events)}
}

// add records that stream's versions from first on are at positions.
func (g *generation) add(stream string, first uint64, ids []string, positions []eventstore.Position) {
	t := g.streams[stream]
	if t == nil {
		t = &tail{first: first}
		g.streams[stream] = t
	}
	t.positions = append(t.positions, positions...)
	for i, id := range ids {
		g.putID(id, positions[i])
	}
	g.through = max(g.through, positions[len(positions)-1])
	g.events += len(positions)
}

// memIndex is the in-memory part of the indexes: the generation taking new
// entries and, while it is being written out, the previous one. Only the
// writer goroutine changes it (under mu), and reads it without the lock as
// nobody else writes. A reader holds mu.RLock for the whole of its read
// transaction: entries leave memory only after the transaction that wrote
// them to disk committed, and a read transaction opened before that commit
// would find them in neither place.
type memIndex struct {
	mu       sync.RWMutex
	active   *generation
	flushing *generation // being written to disk; nil when none
	plan     *flushPlan  // the writer's progress with flushing
}

// position returns the position of stream's version from memory; the
// caller holds mu (or is the writer).
func (m *memIndex) position(stream string, version uint64) (eventstore.Position, bool) {
	for _, g := range [2]*generation{m.active, m.flushing} {
		if g == nil {
			continue
		}
		if t := g.streams[stream]; t != nil && version >= t.first && version <= t.last() {
			return t.positions[version-t.first], true
		}
	}
	return 0, false
}

// lastVersion is the writer's lock-free lookup of a stream's newest
// in-memory version.
func (m *memIndex) lastVersion(stream string) (uint64, bool) {
	if t := m.active.streams[stream]; t != nil {
		return t.last(), true
	}
	if m.flushing != nil {
		if t := m.flushing.streams[stream]; t != nil {
			return t.last(), true
		}
	}
	return 0, false
}

// id is the writer's lock-free lookup of an event ID's position.
func (m *memIndex) id(id string) (eventstore.Position, bool) {
	if p, ok := m.active.id(id); ok {
		return p, true
	}
	if m.flushing != nil {
		if p, ok := m.flushing.id(id); ok {
			return p, true
		}
	}
	return 0, false
}

// publish moves the entries of a committed transaction into the active
// generation.
func (m *memIndex) publish(staged *generation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for stream, t := range staged.streams {
		a := m.active.streams[stream]
		if a == nil {
			m.active.streams[stream] = t
			continue
		}
		a.positions = append(a.positions, t.positions...)
	}
	for k, p := range staged.ids {
		m.active.ids[k] = p
	}
	for id, p := range staged.otherIDs {
		m.active.putID(id, p)
	}
	m.active.through = max(m.active.through, staged.through)
	m.active.events += staged.events
}

// startFlush makes the active generation the flushing one if it is big
// enough and no flush is under way, and returns the plan that writes the
// flushing generation (nil for none).
func (m *memIndex) startFlush(threshold int) *flushPlan {
	if m.plan != nil {
		return m.plan
	}
	if m.active.events < threshold {
		return nil
	}
	m.mu.Lock()
	m.flushing, m.active = m.active, newGeneration(threshold)
	m.mu.Unlock()
	m.plan = newFlushPlan(m.flushing)
	return m.plan
}

// endFlush drops the flushed generation once the transaction that wrote its
// last entries committed.
func (m *memIndex) endFlush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushing, m.plan = nil, nil
}
