package main

import "math/bits"

// seqSet is a growable bitset of room sequence numbers. seq is gap-free
// from 1 per room (DESIGN.md), so a bitset is both exact and small: 8,000
// messages cost 1 KB per connection.
type seqSet struct{ words []uint64 }

// add inserts n and reports whether it was already present.
func (s *seqSet) add(n uint64) (dup bool) {
	w := int(n / 64)
	if w >= len(s.words) {
		s.words = append(s.words, make([]uint64, w+1-len(s.words))...)
	}
	bit := uint64(1) << (n % 64)
	dup = s.words[w]&bit != 0
	s.words[w] |= bit
	return dup
}

func (s *seqSet) has(n uint64) bool {
	w := int(n / 64)
	return w < len(s.words) && s.words[w]&(uint64(1)<<(n%64)) != 0
}

// len is the number of members.
func (s *seqSet) len() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// union adds every member of o to s.
func (s *seqSet) union(o *seqSet) {
	if len(o.words) > len(s.words) {
		s.words = append(s.words, make([]uint64, len(o.words)-len(s.words))...)
	}
	for i, w := range o.words {
		s.words[i] |= w
	}
}

// missing counts the members of want that s lacks.
func (s *seqSet) missing(want *seqSet) int {
	n := 0
	for i, w := range want.words {
		var have uint64
		if i < len(s.words) {
			have = s.words[i]
		}
		n += bits.OnesCount64(w &^ have)
	}
	return n
}

// tally is one connection's delivery accounting for one room. Only the
// connection's reader goroutine touches it until the reader has exited.
type tally struct {
	seen       seqSet
	last       uint64
	received   uint64 // every message:new, duplicates included
	duplicates uint64 // a seq seen before on this connection
	reordered  uint64 // a seq lower than one already received
}

// observe accounts for one delivery of room sequence seq and reports
// whether it was new to this connection.
func (t *tally) observe(seq uint64) (fresh bool) {
	t.received++
	if t.seen.add(seq) {
		t.duplicates++
		return false
	}
	if seq < t.last {
		t.reordered++
	} else {
		t.last = seq
	}
	return true
}
