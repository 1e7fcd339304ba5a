package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wardline/wardline/eventstore"
)

// A log record is the value stored under an event's big-endian position in
// the "log" bucket. Layout (version 1):
//
//	[0]      recordFormat
//	[1:9]    RecordedAt, Unix nanoseconds, big-endian
//	[9:17]   stream version, big-endian
//	varint   SchemaVersion
//	uvarint  len, stream
//	uvarint  len, ID
//	uvarint  len, Type
//	uvarint  len, Data
//	uvarint  len, Metadata
//
// The commit time and version sit at fixed offsets so that the encoding can
// be done by the appending goroutine, in parallel, and the single writer
// only patches them in (see patchRecord).
const (
	recordFormat     = 1
	recordHeaderSize = 17
)

var errCorruptRecord = errors.New("bolt: corrupt log record")

// recordView is a decoded record whose byte fields alias the encoded bytes.
type recordView struct {
	at      int64
	version uint64
	schema  int
	stream  []byte
	id      []byte
	typ     []byte
	data    []byte
	meta    []byte
}

// encodedSize is the exact size encodeRecord will produce.
func encodedSize(stream string, e eventstore.EventData) int {
	n := recordHeaderSize + binary.MaxVarintLen64
	for _, l := range []int{len(stream), len(e.ID), len(e.Type), len(e.Data), len(e.Metadata)} {
		n += uvarintLen(uint64(l)) + l
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// varintLen is the length of x's zigzag varint. The decoder accepts only
// minimal varints, so every record has exactly one encoding.
func varintLen(x int64) int { return uvarintLen(uint64(x<<1) ^ uint64(x>>63)) }

// appendRecord appends e's record, with zero commit time and version, to dst.
func appendRecord(dst []byte, stream string, e eventstore.EventData) []byte {
	dst = append(dst, recordFormat)
	dst = append(dst, make([]byte, 16)...)
	dst = binary.AppendVarint(dst, int64(e.SchemaVersion))
	dst = appendString(dst, stream)
	dst = appendString(dst, e.ID)
	dst = appendString(dst, e.Type)
	dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
	dst = append(dst, e.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Metadata)))
	return append(dst, e.Metadata...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// patchRecord sets the commit time and stream version of an encoded record.
func patchRecord(rec []byte, at int64, version uint64) {
	binary.BigEndian.PutUint64(rec[1:9], uint64(at))
	binary.BigEndian.PutUint64(rec[9:17], version)
}

// decodeRecord parses a record. It never panics and accepts only the exact
// encoding: trailing bytes are corruption.
func decodeRecord(b []byte) (recordView, error) {
	var v recordView
	if len(b) < recordHeaderSize || b[0] != recordFormat {
		return v, errCorruptRecord
	}
	v.at = int64(binary.BigEndian.Uint64(b[1:9]))
	v.version = binary.BigEndian.Uint64(b[9:17])
	rest := b[recordHeaderSize:]
	schema, n := binary.Varint(rest)
	if n <= 0 || n != varintLen(schema) || schema != int64(int(schema)) {
		return v, errCorruptRecord
	}
	v.schema = int(schema)
	rest = rest[n:]
	for _, field := range []*[]byte{&v.stream, &v.id, &v.typ, &v.data, &v.meta} {
		l, n := binary.Uvarint(rest)
		if n <= 0 || n != uvarintLen(l) || l > uint64(len(rest)-n) {
			return v, errCorruptRecord
		}
		*field = rest[n : n+int(l) : n+int(l)]
		rest = rest[n+int(l):]
	}
	if len(rest) != 0 {
		return v, errCorruptRecord
	}
	return v, nil
}

// batchDecoder turns raw records read in one transaction into RecordedEvents
// that own their memory, with a handful of allocations per batch instead of
// several per event: all strings share one backing string, all data and
// metadata one backing array. Consecutive events of the same stream or type
// share one copy of the name. Its slices are scratch space a Store reuses
// (reset) across reads; only what events returns escapes.
type batchDecoder struct {
	views     []recordView
	positions []eventstore.Position
	offs      []strOffsets
	strBytes  int
	dataBytes int
}

// strOffsets locates an event's strings in the batch's backing string.
type strOffsets struct{ stream, id, typ [2]int }

// reset empties d for reuse, dropping its references into the last
// transaction's memory.
func (d *batchDecoder) reset() {
	clear(d.views)
	d.views, d.positions, d.offs = d.views[:0], d.positions[:0], d.offs[:0]
	d.strBytes, d.dataBytes = 0, 0
}

func (d *batchDecoder) add(p eventstore.Position, raw []byte) error {
	v, err := decodeRecord(raw)
	if err != nil {
		return fmt.Errorf("%w at position %d", err, p)
	}
	if n := len(d.views); n == 0 || string(v.stream) != string(d.views[n-1].stream) {
		d.strBytes += len(v.stream)
	}
	if n := len(d.views); n == 0 || string(v.typ) != string(d.views[n-1].typ) {
		d.strBytes += len(v.typ)
	}
	d.strBytes += len(v.id)
	d.dataBytes += len(v.data) + len(v.meta)
	d.views = append(d.views, v)
	d.positions = append(d.positions, p)
	return nil
}

func (d *batchDecoder) len() int { return len(d.views) }

// events copies the batch out of the transaction's memory. It must run
// before the transaction ends.
func (d *batchDecoder) events() []eventstore.RecordedEvent {
	if len(d.views) == 0 {
		return nil
	}
	var sb strings.Builder
	sb.Grow(d.strBytes)
	put := func(b []byte) [2]int {
		start := sb.Len()
		sb.Write(b)
		return [2]int{start, sb.Len()}
	}
	d.offs = slices.Grow(d.offs[:0], len(d.views))[:len(d.views)]
	for i, v := range d.views {
		o := &d.offs[i]
		if i > 0 && string(v.stream) == string(d.views[i-1].stream) {
			o.stream = d.offs[i-1].stream
		} else {
			o.stream = put(v.stream)
		}
		if i > 0 && string(v.typ) == string(d.views[i-1].typ) {
			o.typ = d.offs[i-1].typ
		} else {
			o.typ = put(v.typ)
		}
		o.id = put(v.id)
	}
	strs := sb.String()
	var data []byte
	if d.dataBytes > 0 {
		data = make([]byte, 0, d.dataBytes)
	}
	out := make([]eventstore.RecordedEvent, len(d.views))
	for i := range d.views {
		v, o, e := &d.views[i], &d.offs[i], &out[i]
		e.Stream = strs[o.stream[0]:o.stream[1]]
		e.ID = strs[o.id[0]:o.id[1]]
		e.Type = strs[o.typ[0]:o.typ[1]]
		e.Version = v.version
		e.Position = d.positions[i]
		e.SchemaVersion = v.schema
		e.RecordedAt = time.Unix(0, v.at).UTC()
		if len(v.data) > 0 {
			start := len(data)
			data = append(data, v.data...)
			e.Data = data[start:len(data):len(data)]
		}
		if len(v.meta) > 0 {
			start := len(data)
			data = append(data, v.meta...)
			e.Metadata = data[start:len(data):len(data)]
		}
	}
	return out
}

// streamMeta encoding: MaxAge in nanoseconds and MaxCount, both uvarint.
func encodeStreamMeta(m eventstore.StreamMetadata) []byte {
	b := binary.AppendUvarint(nil, uint64(m.MaxAge))
	return binary.AppendUvarint(b, m.MaxCount)
}

var errCorruptStreamMeta = errors.New("bolt: corrupt stream metadata")

func decodeStreamMeta(b []byte) (eventstore.StreamMetadata, error) {
	age, n := binary.Uvarint(b)
	if n <= 0 || n != uvarintLen(age) || age > 1<<63-1 {
		return eventstore.StreamMetadata{}, errCorruptStreamMeta
	}
	count, m := binary.Uvarint(b[n:])
	if m <= 0 || m != uvarintLen(count) || n+m != len(b) {
		return eventstore.StreamMetadata{}, errCorruptStreamMeta
	}
	return eventstore.StreamMetadata{MaxAge: time.Duration(age), MaxCount: count}, nil
}

// streamPrefix is the key prefix of a stream's entries in the "streams"
// index: the name's length, then the name. The length makes prefixes
// unambiguous, so "room-1" never matches "room-10"'s entries.
func streamPrefix(dst []byte, stream string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	return append(dst, stream...)
}

func streamKey(dst []byte, stream string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(streamPrefix(dst, stream), version)
}

func positionKey(dst []byte, p eventstore.Position) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(p))
}
