package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/wardline/wardline/eventstore"
)

// FormatVersion is the on-disk layout this binary writes and reads. A store
// with a higher marker was written by a newer Wardline and is refused with
// eventstore.ErrNewerFormat; `wardline migrate` reports it (ReadFormatVersion).
const FormatVersion = 1

// FileName is the database file inside the data dir.
const FileName = "events.db"

// Buckets and keys of the layout (FormatVersion 1):
//
//	meta        "format" → decimal FormatVersion; "epoch" → the epoch;
//	            "indexed" → big-endian position the indexes cover
//	log         big-endian position → record (record.go)
//	streams     uvarint(len(stream)) stream big-endian version → big-endian position
//	ids         event ID → big-endian position
//	streammeta  stream → StreamMetadata (record.go)
//
// streams and ids are written lazily and cover the log up to "indexed";
// the rest of their entries live in memory (index.go).
var (
	bucketMeta       = []byte("meta")
	bucketLog        = []byte("log")
	bucketStreams    = []byte("streams")
	bucketIDs        = []byte("ids")
	bucketStreamMeta = []byte("streammeta")
	keyFormat        = []byte("format")
	keyEpoch         = []byte("epoch")
	keyIndexed       = []byte("indexed")
)

var _ eventstore.Store = (*Store)(nil)

// Store is the embedded event store. It owns its data dir (one process at a
// time) and one writer goroutine, both released by Close.
type Store struct {
	db    *bbolt.DB
	path  string
	epoch string
	opts  options

	// head is the newest durable position. Reads never go past it: bbolt
	// makes a commit visible to new read transactions a moment before its
	// final fsync returns, and nobody may see an event that a crash could
	// still take back (its position would be reused).
	head atomic.Uint64

	closed  atomic.Bool
	changed atomic.Pointer[chan struct{}] // closed and replaced after each commit

	mu         sync.Mutex // guards queue and closing
	queue      []*request
	closing    bool
	wake       chan struct{} // capacity 1: "the queue may be non-empty"
	quit       chan struct{} // closed by Close: ends a paced pause
	enough     chan struct{} // capacity 1: pauseEnough requests are queued
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	mem memIndex // index entries not yet on disk
	// decoders recycles batchDecoder scratch space between reads: it is
	// several hundred bytes per event that a scan would otherwise allocate
	// and clear for every batch.
	decoders sync.Pool
	w        writerState // owned by the writer goroutine
	stats    struct {
		commits, events, pages atomic.Uint64
		commitNanos            atomic.Int64
	}
}

// Stats are cumulative counters of the writer, for metrics.
type Stats struct {
	// Commits counts transactions committed (each one fsync of the log).
	Commits uint64
	// Events counts events committed; Events/Commits is the mean group size.
	Events uint64
	// CommitTime is the total time spent building and committing
	// transactions, fsyncs included.
	CommitTime time.Duration
	// PageWrites counts page writes (4 KiB each by default), indexes and
	// bbolt's own bookkeeping included.
	PageWrites uint64
}

// Stats returns the writer's counters so far.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:    s.stats.commits.Load(),
		Events:     s.stats.events.Load(),
		CommitTime: time.Duration(s.stats.commitNanos.Load()),
		PageWrites: s.stats.pages.Load(),
	}
}

// Open opens (creating if needed) the store in dir and starts its writer.
// It fails with eventstore.ErrLocked if another process (or another Open in
// this process) has the store open, and with eventstore.ErrNewerFormat if the
// store was written by a newer format than FormatVersion.
func Open(ctx context.Context, dir string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	o.setDefaults()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: open %q: %w", dir, err)
	}
	if dir == "" {
		return nil, fmt.Errorf("bolt: open: %w: empty data dir", eventstore.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bolt: data dir %q: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: o.lockTimeout,
		// The hashmap freelist stays fast when the file is large; the array
		// one degrades with fragmentation.
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: o.initialMmapSize,
		// NoFreelistSync stays false: with an append-only log the freelist
		// is a page or two per commit, while skipping it would make every
		// Open scan the whole file to rebuild it.
		NoFreelistSync: false,
	})
	if err != nil {
		if errors.Is(err, bberrors.ErrTimeout) {
			return nil, fmt.Errorf("bolt: open %s: %w", path, eventstore.ErrLocked)
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	db.AllocSize = o.allocSize
	s := &Store{
		db:         db,
		path:       path,
		opts:       o,
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		enough:     make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	ch := make(chan struct{})
	s.changed.Store(&ch)
	go s.run()
	return s, nil
}

// load checks the format marker, initialises a new store, and reads the
// state the writer continues from.
func (s *Store) load() error {
	format := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		format, err = readFormat(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("bolt: %s: %w", s.path, err)
	}
	if format > FormatVersion {
		return fmt.Errorf("bolt: %s has format %d, this binary knows up to %d: %w",
			s.path, format, FormatVersion, eventstore.ErrNewerFormat)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("bolt: init %s: %w", s.path, err)
		}
		if format == 0 {
			if tx.Bucket(bucketLog) != nil {
				return fmt.Errorf("bolt: %s has events but no format marker", s.path)
			}
			var b [8]byte
			if _, err := rand.Read(b[:]); err != nil {
				return fmt.Errorf("bolt: init %s: epoch: %w", s.path, err)
			}
			if err := meta.Put(keyFormat, []byte(strconv.Itoa(FormatVersion))); err != nil {
				return fmt.Errorf("bolt: init %s: %w", s.path, err)
			}
			if err := meta.Put(keyEpoch, []byte(hex.EncodeToString(b[:]))); err != nil {
				return fmt.Errorf("bolt: init %s: %w", s.path, err)
			}
		}
		for _, name := range [][]byte{bucketLog, bucketStreams, bucketIDs, bucketStreamMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bolt: init %s: %w", s.path, err)
			}
		}
		s.epoch = string(meta.Get(keyEpoch))
		if s.epoch == "" {
			return fmt.Errorf("bolt: %s has no epoch", s.path)
		}
		k, v := tx.Bucket(bucketLog).Cursor().Last()
		if k != nil {
			rec, err := decodeRecord(v)
			if err != nil || len(k) != 8 {
				return fmt.Errorf("bolt: %s: newest log record: %w", s.path, errCorruptRecord)
			}
			s.head.Store(binary.BigEndian.Uint64(k))
			s.w.lastAt = rec.at
		}
		s.w.next = eventstore.Position(s.head.Load() + 1)
		return s.replayIndex(tx)
	})
}

// replayIndex rebuilds the in-memory index entries of the events after the
// "indexed" marker.
func (s *Store) replayIndex(tx *bbolt.Tx) error {
	s.mem.active = newGeneration(s.opts.indexFlushEvents)
	var indexed eventstore.Position
	if raw := tx.Bucket(bucketMeta).Get(keyIndexed); len(raw) == 8 {
		indexed = eventstore.Position(binary.BigEndian.Uint64(raw))
	}
	c := tx.Bucket(bucketLog).Cursor()
	for k, v := c.Seek(positionKey(nil, indexed+1)); k != nil; k, v = c.Next() {
		p := eventstore.Position(binary.BigEndian.Uint64(k))
		rec, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("bolt: %s: replay index at position %d: %w", s.path, p, err)
		}
		s.mem.active.add(string(rec.stream), rec.version, []string{string(rec.id)}, []eventstore.Position{p})
	}
	return nil
}

// readFormat returns the format marker, 0 for a new (empty) file.
func readFormat(tx *bbolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	raw := meta.Get(keyFormat)
	if raw == nil {
		return 0, nil
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("unreadable format marker %q", raw)
	}
	return v, nil
}

// ReadFormatVersion reports the format marker of the store in dir without
// opening it for writing, for `wardline migrate`. It fails with
// eventstore.ErrLocked while a process has the store open, and with an error
// matching fs.ErrNotExist when dir holds no store.
func ReadFormatVersion(dir string) (int, error) {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("bolt: read format of %q: %w", dir, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: DefaultLockTimeout})
	if err != nil {
		if errors.Is(err, bberrors.ErrTimeout) {
			return 0, fmt.Errorf("bolt: read format of %s: %w", path, eventstore.ErrLocked)
		}
		return 0, fmt.Errorf("bolt: read format of %s: %w", path, err)
	}
	defer db.Close()
	var v int
	err = db.View(func(tx *bbolt.Tx) error {
		var err error
		v, err = readFormat(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: read format of %s: %w", path, err)
	}
	return v, nil
}

// Epoch implements eventstore.Store: 16 hex digits, random, made when the
// store was created.
func (s *Store) Epoch() string { return s.epoch }

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	if err := s.usable(ctx, "head"); err != nil {
		return 0, err
	}
	return eventstore.Position(s.head.Load()), nil
}

// Changed implements eventstore.ChangeSource: the channel is closed once a
// later commit is durable and readable, or when the store closes.
func (s *Store) Changed() <-chan struct{} { return *s.changed.Load() }

// notify wakes everyone waiting on Changed.
func (s *Store) notify() {
	next := make(chan struct{})
	close(*s.changed.Swap(&next))
}

func (s *Store) usable(ctx context.Context, op string) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return nil
}

// view runs fn in a read transaction, mapping a closed database to ErrClosed.
func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, bberrors.ErrDatabaseNotOpen) {
		return eventstore.ErrClosed
	}
	return err
}

// decoder returns an empty batchDecoder with room for n events; release it
// before the read transaction ends.
func (s *Store) decoder(n int) *batchDecoder {
	d, _ := s.decoders.Get().(*batchDecoder)
	if d == nil {
		d = &batchDecoder{}
	}
	d.views = slices.Grow(d.views, n)
	d.positions = slices.Grow(d.positions, n)
	return d
}

// release empties d (it must not keep pointers into the transaction's
// memory) and keeps it for the next read unless it grew very large.
func (s *Store) release(d *batchDecoder) {
	d.reset()
	if cap(d.views) <= maxPooledBatch {
		s.decoders.Put(d)
	}
}

// maxPooledBatch keeps a one-off huge read from pinning its scratch space.
const maxPooledBatch = 1 << 16

// ReadAll implements eventstore.Store. One read transaction serves the
// whole batch and is closed before ReadAll returns.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", eventstore.ErrInvalidArgument, limit)
	}
	if err := s.usable(ctx, "read log"); err != nil {
		return nil, err
	}
	head := eventstore.Position(s.head.Load())
	if from >= head {
		return nil, nil
	}
	n := int(min(uint64(limit), uint64(head-from)))
	var out []eventstore.RecordedEvent
	err := s.view(func(tx *bbolt.Tx) error {
		d := s.decoder(n)
		defer s.release(d)
		c := tx.Bucket(bucketLog).Cursor()
		var seek [8]byte
		binary.BigEndian.PutUint64(seek[:], uint64(from+1))
		for k, v := c.Seek(seek[:]); k != nil && d.len() < n; k, v = c.Next() {
			p := eventstore.Position(binary.BigEndian.Uint64(k))
			if p > head {
				break
			}
			if err := d.add(p, v); err != nil {
				return err
			}
		}
		out = d.events()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: read log after %d: %w", from, err)
	}
	return out, nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateReadStream(stream, dir, limit); err != nil {
		return nil, err
	}
	if err := s.usable(ctx, "read stream"); err != nil {
		return nil, err
	}
	head := eventstore.Position(s.head.Load())
	now := s.opts.now()
	var out []eventstore.RecordedEvent
	s.mem.mu.RLock() // see memIndex: held for the whole read transaction
	defer s.mem.mu.RUnlock()
	err := s.view(func(tx *bbolt.Tx) error {
		meta, err := streamMeta(tx, stream)
		if err != nil {
			return err
		}
		idx := streamIndex{stream: stream, prefix: streamPrefix(nil, stream), mem: &s.mem, disk: tx.Bucket(bucketStreams)}
		last, ok := idx.last(head)
		if !ok {
			return eventstore.ErrStreamNotFound
		}
		logB := tx.Bucket(bucketLog)
		d := s.decoder(min(limit, 64))
		defer s.release(d)
		// take adds version if retention keeps it; it reports whether to go on.
		take := func(version uint64) (bool, error) {
			p, ok := idx.position(version)
			if !ok {
				return false, fmt.Errorf("version %d of %d missing from the index", version, last)
			}
			raw := logB.Get(positionKey(nil, p))
			if raw == nil {
				return false, fmt.Errorf("version %d: position %d missing from the log", version, p)
			}
			at, err := recordTime(raw)
			if err != nil {
				return false, fmt.Errorf("%w at position %d", err, p)
			}
			if !meta.Retains(version, last, time.Unix(0, at), now) {
				// Forward, later events may be younger; backward, every
				// earlier one is older or further from the newest.
				return dir == eventstore.Forward, nil
			}
			if err := d.add(p, raw); err != nil {
				return false, err
			}
			return d.len() < limit, nil
		}
		if dir == eventstore.Forward {
			start := max(from, 1)
			if meta.MaxCount > 0 && last > meta.MaxCount {
				start = max(start, last-meta.MaxCount+1)
			}
			for v := start; v <= last; v++ {
				more, err := take(v)
				if err != nil {
					return err
				}
				if !more {
					break
				}
			}
		} else {
			start := from
			if start == 0 || start > last {
				start = last
			}
			for v := start; v >= 1; v-- {
				more, err := take(v)
				if err != nil {
					return err
				}
				if !more {
					break
				}
			}
		}
		out = d.events()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: read %q: %w", stream, err)
	}
	return out, nil
}

// streamIndex finds a stream's events through the in-memory and on-disk
// indexes. Versions are gap-free, so it works version by version.
type streamIndex struct {
	stream string
	prefix []byte
	mem    *memIndex
	disk   *bbolt.Bucket
	key    []byte
}

func (x *streamIndex) position(version uint64) (eventstore.Position, bool) {
	if p, ok := x.mem.position(x.stream, version); ok {
		return p, true
	}
	x.key = binary.BigEndian.AppendUint64(append(x.key[:0], x.prefix...), version)
	v := x.disk.Get(x.key)
	if len(v) != 8 {
		return 0, false
	}
	return eventstore.Position(binary.BigEndian.Uint64(v)), true
}

// last returns the newest version whose event is at or before head.
func (x *streamIndex) last(head eventstore.Position) (uint64, bool) {
	v, ok := x.mem.lastVersion(x.stream)
	if !ok {
		return lastOnDisk(x.disk.Cursor(), x.prefix)
	}
	// Entries reach memory just before the head moves past them.
	for ; v > 0; v-- {
		if p, ok := x.position(v); ok && p <= head {
			return v, true
		}
	}
	return 0, false
}

func isStreamKey(k, prefix []byte) bool {
	return len(k) == len(prefix)+8 && bytes.HasPrefix(k, prefix)
}

// lastOnDisk returns the newest version of the stream in the on-disk index.
func lastOnDisk(c *bbolt.Cursor, prefix []byte) (uint64, bool) {
	seek := append(append([]byte(nil), prefix...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	var k []byte
	if k, _ = c.Seek(seek); k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if k != nil && isStreamKey(k, prefix) {
		return binary.BigEndian.Uint64(k[len(prefix):]), true
	}
	return 0, false
}

// recordTime reads just a record's commit time, for retention checks.
func recordTime(raw []byte) (int64, error) {
	if len(raw) < recordHeaderSize || raw[0] != recordFormat {
		return 0, errCorruptRecord
	}
	return int64(binary.BigEndian.Uint64(raw[1:9])), nil
}

func streamMeta(tx *bbolt.Tx, stream string) (eventstore.StreamMetadata, error) {
	raw := tx.Bucket(bucketStreamMeta).Get([]byte(stream))
	if raw == nil {
		return eventstore.StreamMetadata{}, nil
	}
	m, err := decodeStreamMeta(raw)
	if err != nil {
		return m, fmt.Errorf("stream %q: %w", stream, err)
	}
	return m, nil
}

// StreamMetadata implements eventstore.Store.
func (s *Store) StreamMetadata(ctx context.Context, stream string) (eventstore.StreamMetadata, error) {
	if stream == "" {
		return eventstore.StreamMetadata{}, fmt.Errorf("%w: empty stream name", eventstore.ErrInvalidArgument)
	}
	if err := s.usable(ctx, "stream metadata"); err != nil {
		return eventstore.StreamMetadata{}, err
	}
	var m eventstore.StreamMetadata
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		m, err = streamMeta(tx, stream)
		return err
	})
	if err != nil {
		return eventstore.StreamMetadata{}, fmt.Errorf("bolt: metadata of %q: %w", stream, err)
	}
	return m, nil
}

// Subscribe implements eventstore.Store with eventstore.CatchUp: each batch
// is one short read transaction, and waiting holds none.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, handle func(ctx context.Context, events []eventstore.RecordedEvent) error) error {
	if handle == nil {
		return fmt.Errorf("%w: nil handler", eventstore.ErrInvalidArgument)
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return eventstore.CatchUp(ctx, s, from, subscribeBatch, handle)
}

// subscribeBatch is large enough to amortise a read transaction and small
// enough that a handler's batch stays a few MiB at most.
const subscribeBatch = 1024

// Close implements eventstore.Store. It refuses new calls, lets the writer
// commit and answer every append already queued, wakes subscribers (they
// return ErrClosed), then closes the file once running reads end. Closing
// again returns the first Close's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		close(s.quit)
		s.signal()
		<-s.writerDone
		s.notify()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("bolt: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}
