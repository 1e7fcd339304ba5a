package bolt

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	bbolt "go.etcd.io/bbolt"
)

// flushChunkEntries is the fewest index entries a commit writes while a
// generation is being flushed. Writing a whole generation (32,768 events,
// 65,536 entries) in one commit took ~200 ms of the writer at 200,000
// deliveries/s, and every append waited behind it: one such stall per run
// pushed the gateway's delivery p99 past 100 ms. In chunks the same work
// adds a few ms to each of a few dozen commits.
const flushChunkEntries = 1024

// flushPlan writes a frozen generation to the on-disk indexes over several
// commits, in key order: all stream entries (streams in key order, each in
// version order), then the event IDs. The generation stays in memory, and
// readers find its entries there, until the last chunk has committed; only
// that chunk moves the "indexed" marker, so a crash midway replays the whole
// generation at Open and rewrites the entries already written, unchanged.
type flushPlan struct {
	g       *generation
	streams []string  // in key order (length first)
	ids     []uuidKey // sorted; byte order is their canonical strings' order
	other   []string  // sorted
	at      flushCursor
}

// flushCursor is the next entry a flushPlan writes.
type flushCursor struct {
	stream, version int // index in streams, offset in that stream's positions
	id, other       int
}

func newFlushPlan(g *generation) *flushPlan {
	p := &flushPlan{g: g, streams: make([]string, 0, len(g.streams)), ids: make([]uuidKey, 0, len(g.ids))}
	for stream := range g.streams {
		p.streams = append(p.streams, stream)
	}
	// Sort by the key encoding (length first), not by the name.
	slices.SortFunc(p.streams, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	})
	for k := range g.ids {
		p.ids = append(p.ids, k)
	}
	slices.SortFunc(p.ids, func(a, b uuidKey) int { return bytes.Compare(a[:], b[:]) })
	for id := range g.otherIDs {
		p.other = append(p.other, id)
	}
	slices.Sort(p.other)
	return p
}

// write puts up to n entries, from where the last committed chunk ended,
// into tx. It returns where the next chunk starts once tx commits, and
// whether this chunk ends the plan (it then also moves the "indexed"
// marker). Keys go in sorted: bbolt splits nodes only at commit, so
// unsorted inserts into one leaf shift its growing entry slice every time
// (the profile showed 75% of the writer's CPU in that memmove before
// sorting).
func (p *flushPlan) write(tx *bbolt.Tx, n int) (flushCursor, bool, error) {
	streamsB, idsB := tx.Bucket(bucketStreams), tx.Bucket(bucketIDs)
	idsB.FillPercent = 0.9 // UUIDv7 IDs arrive nearly in order
	at := p.at
	// Keys and values must stay valid until the commit: one array for all.
	buf := make([]byte, 0, n*64)
	put := func(b *bbolt.Bucket, keyStart, valStart int) error {
		return b.Put(buf[keyStart:valStart:valStart], buf[valStart:len(buf):len(buf)])
	}
	for ; n > 0 && at.stream < len(p.streams); at.stream, at.version = at.stream+1, 0 {
		stream := p.streams[at.stream]
		t := p.g.streams[stream]
		for ; n > 0 && at.version < len(t.positions); at.version, n = at.version+1, n-1 {
			k := len(buf)
			buf = streamKey(buf, stream, t.first+uint64(at.version))
			v := len(buf)
			buf = positionKey(buf, t.positions[at.version])
			if err := put(streamsB, k, v); err != nil {
				return at, false, fmt.Errorf("bolt: index stream %q: %w", stream, err)
			}
		}
		if at.version < len(t.positions) {
			break // chunk full within this stream
		}
	}
	for ; n > 0 && at.id < len(p.ids); at.id, n = at.id+1, n-1 {
		key := p.ids[at.id]
		k := len(buf)
		buf = appendCanonical(buf, key)
		v := len(buf)
		buf = positionKey(buf, p.g.ids[key])
		if err := put(idsB, k, v); err != nil {
			return at, false, fmt.Errorf("bolt: index event %s: %w", key, err)
		}
	}
	for ; n > 0 && at.other < len(p.other); at.other, n = at.other+1, n-1 {
		id := p.other[at.other]
		k := len(buf)
		buf = append(buf, id...)
		v := len(buf)
		buf = positionKey(buf, p.g.otherIDs[id])
		if err := put(idsB, k, v); err != nil {
			return at, false, fmt.Errorf("bolt: index event %s: %w", id, err)
		}
	}
	done := at.stream == len(p.streams) && at.id == len(p.ids) && at.other == len(p.other)
	if done {
		if err := tx.Bucket(bucketMeta).Put(keyIndexed, positionKey(nil, p.g.through)); err != nil {
			return at, false, err
		}
	}
	return at, done, nil
}

// appendCanonical appends k's canonical string form.
func appendCanonical(dst []byte, k uuidKey) []byte {
	const digits = "0123456789abcdef"
	for i, c := range k {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, digits[c>>4], digits[c&0xf])
	}
	return dst
}

// flushChunk is how many entries a commit that adds events new events
// writes: at least least, and twice the entries the commit adds (one per
// stream version, one per ID), so a flush always ends before the next
// generation fills.
func flushChunk(least, events int) int { return max(least, 4*events) }
