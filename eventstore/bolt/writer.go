package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/wardline/wardline/eventstore"
)

// maxCachedStreams bounds the writer's cache of stream versions; past it the
// cache starts over (a miss costs one index lookup).
const maxCachedStreams = 1 << 17

// request is one Append or SetStreamMetadata waiting for the writer.
type request struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.EventData
	records  [][]byte                   // encoded by the caller; the writer patches time and version
	meta     *eventstore.StreamMetadata // set for SetStreamMetadata
	size     int

	res  eventstore.AppendResult
	err  error
	done chan struct{} // closed once res/err are final
}

// writerState belongs to the writer goroutine (and to load, before it starts).
type writerState struct {
	next     eventstore.Position // position of the next event
	lastAt   int64               // newest RecordedAt, Unix ns
	versions map[string]uint64   // stream → current version on disk, for streams not in memory
	failed   error               // set after a failed commit; the store then refuses appends
}

// Append implements eventstore.Store. The events are encoded here, in the
// caller's goroutine, then queued for the writer, which commits everything
// waiting in one transaction and one fsync (see the package doc).
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if len(stream) > MaxNameSize {
		return eventstore.AppendResult{}, fmt.Errorf("%w: stream name of %d bytes (max %d)", eventstore.ErrInvalidArgument, len(stream), MaxNameSize)
	}
	r := &request{ctx: ctx, stream: stream, expected: expected, events: events, records: make([][]byte, len(events))}
	total := 0
	for _, e := range events {
		if len(e.ID) > MaxNameSize || len(e.Type) > MaxNameSize {
			return eventstore.AppendResult{}, fmt.Errorf("%w: event %.64q: ID or type longer than %d bytes", eventstore.ErrInvalidArgument, e.ID, MaxNameSize)
		}
		if len(e.Data)+len(e.Metadata) > MaxEventSize {
			return eventstore.AppendResult{}, fmt.Errorf("%w: event %s is %d bytes (max %d)", eventstore.ErrInvalidArgument, e.ID, len(e.Data)+len(e.Metadata), MaxEventSize)
		}
		total += encodedSize(stream, e)
	}
	// One backing array for all records of the append.
	buf := make([]byte, 0, total)
	for i, e := range events {
		start := len(buf)
		buf = appendRecord(buf, stream, e)
		r.records[i] = buf[start:len(buf):len(buf)]
	}
	r.size = len(buf)
	if err := s.submit(ctx, r); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("bolt: append to %q: %w", stream, err)
	}
	return r.res, r.err
}

// SetStreamMetadata implements eventstore.Store. It is group-committed with
// the appends.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, meta eventstore.StreamMetadata) error {
	if stream == "" || len(stream) > MaxNameSize {
		return fmt.Errorf("%w: stream name of %d bytes", eventstore.ErrInvalidArgument, len(stream))
	}
	if meta.MaxAge < 0 {
		return fmt.Errorf("%w: negative MaxAge %s", eventstore.ErrInvalidArgument, meta.MaxAge)
	}
	r := &request{ctx: ctx, stream: stream, meta: &meta}
	if err := s.submit(ctx, r); err != nil {
		return fmt.Errorf("bolt: set metadata of %q: %w", stream, err)
	}
	return r.err
}

// submit queues r and waits for its answer or for ctx to end. A request whose
// context ends first may still commit; the caller retries with the same IDs.
func (s *Store) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.done = make(chan struct{})
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return eventstore.ErrClosed
	}
	s.queue = append(s.queue, r)
	if len(s.queue) == pauseEnough {
		select {
		case s.enough <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	s.signal()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (the write may still commit)", ctx.Err())
	}
}

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the writer goroutine: it takes every queued request (up to the
// batch caps), commits them together, answers them, and repeats; it exits
// once Close has been called and the queue is empty.
func (s *Store) run() {
	defer close(s.writerDone)
	var batch []*request
	last := 0 // requests in the previous batch
	pace := pacer{interval: s.opts.commitInterval}
	var began time.Time // of the previous commit
	for range s.wake {
		for {
			if pace.interval > 0 && s.queued() > 0 {
				if d := pace.delay(time.Since(began)); d > 0 {
					pace.paused(s.pause(d))
				}
			}
			s.regroup(last)
			var closing bool
			batch, closing = s.take(batch[:0])
			last = len(batch)
			if len(batch) == 0 {
				if closing {
					return
				}
				break
			}
			began = time.Now()
			s.commit(batch)
			clear(batch) // drop references to answered requests
		}
	}
}

// pause waits d before the next batch (commit pacing), or until
// pauseEnough requests are queued, and reports whether requests arrived
// meanwhile. Close ends it at once; that is no verdict on pacing, so it
// reports true.
func (s *Store) pause(d time.Duration) (company bool) {
	select {
	case <-s.enough: // from before this pause
	default:
	}
	before := s.queued()
	if before >= pauseEnough {
		return true
	}
	if s.opts.pause != nil {
		s.opts.pause(d, s.quit)
	} else {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.enough:
			t.Stop()
		case <-s.quit:
			t.Stop()
			return true
		}
	}
	return s.queued() > before
}

// pauseEnough ends a paced pause early: with this many requests queued the
// commit's two fsyncs are shared widely enough, and waiting longer only adds
// latency (a connect storm's two appends per session paid the full interval
// twice). The submitter that queues this many signals the writer; nobody
// else wakes it during a pause.
const pauseEnough = 32

// regroup gives the callers just answered a moment to queue their next
// appends before the writer takes a batch. Without it, under steady load
// the batches alternate between "everyone who was waiting" and "the few
// who came back first", halving the group size: the callers are runnable
// but have not run yet. Yielding the processor a few times lets them run;
// it costs nothing when the queue is already as long as the last batch, and
// a lone writer (last <= 1) never waits.
func (s *Store) regroup(last int) {
	for i := 0; i < regroupYields && last > 1 && s.queued() < last; i++ {
		runtime.Gosched()
	}
}

// regroupYields bounds regroup's wait. A yield lasts until the other
// runnable goroutines of this processor had a turn: microseconds, against a
// commit of a millisecond or more.
const regroupYields = 8

func (s *Store) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// take moves queued requests into batch, within the batch caps (a single
// request over them still goes, alone).
func (s *Store) take(batch []*request) ([]*request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events, size, n := 0, 0, 0
	for _, r := range s.queue {
		if n > 0 && (events+len(r.events) > s.opts.maxBatchEvents || size+r.size > s.opts.maxBatchBytes) {
			break
		}
		events += len(r.events)
		size += r.size
		n++
	}
	batch = append(batch, s.queue[:n]...)
	rest := copy(s.queue, s.queue[n:])
	clear(s.queue[rest:])
	s.queue = s.queue[:rest]
	return batch, s.closing
}

// commit writes batch in one transaction. A request that fails its checks
// fails alone; if bbolt refuses a write midway (it should not: sizes are
// checked up front), the transaction is redone without that request.
func (s *Store) commit(batch []*request) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	if s.w.failed != nil {
		for _, r := range batch {
			r.err = s.w.failed
		}
		return
	}
	pending := batch
	for len(pending) > 0 {
		bad, err := s.tryCommit(pending)
		if err == nil {
			return
		}
		s.w.versions = nil // the cache may hold versions of the rolled-back transaction
		if bad == nil {
			s.opts.logger.Error("eventstore commit failed; refusing further appends", "path", s.path, "err", err)
			s.w.failed = fmt.Errorf("bolt: an earlier commit failed, reopen the store: %w", err)
			for _, r := range pending {
				r.res, r.err = eventstore.AppendResult{}, fmt.Errorf("bolt: commit: %w", err)
			}
			return
		}
		bad.res, bad.err = eventstore.AppendResult{}, err
		rest := pending[:0:0]
		for _, r := range pending {
			if r != bad {
				rest = append(rest, r)
			}
		}
		pending = rest
	}
}

// tryCommit applies and commits requests. On success it publishes the new
// index entries and head and wakes subscribers. It returns the request whose
// write bbolt refused, or nil with the error of a failed commit.
func (s *Store) tryCommit(requests []*request) (*request, error) {
	began := time.Now()
	tx, err := s.db.Begin(true)
	if err != nil {
		return nil, err
	}
	t := writeTx{
		tx:     tx,
		log:    tx.Bucket(bucketLog),
		ids:    tx.Bucket(bucketIDs),
		meta:   tx.Bucket(bucketStreamMeta),
		mem:    &s.mem,
		staged: newGeneration(0),
		next:   s.w.next,
	}
	// Sequential keys: fill pages completely instead of splitting in half.
	t.log.FillPercent = 1.0
	at := s.opts.now().UnixNano()
	if at < s.w.lastAt {
		at = s.w.lastAt
	}
	if s.w.versions == nil {
		s.w.versions = make(map[string]uint64)
	}
	wroteMeta := false
	for _, r := range requests {
		r.res, r.err = eventstore.AppendResult{}, nil
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("bolt: %q: %w (not committed)", r.stream, err)
			continue
		}
		if r.meta != nil {
			if err := t.meta.Put([]byte(r.stream), encodeStreamMeta(*r.meta)); err != nil {
				_ = tx.Rollback()
				return r, fmt.Errorf("bolt: set metadata of %q: %w", r.stream, err)
			}
			wroteMeta = true
			continue
		}
		res, err := t.append(r, s.version(&t, r.stream), at)
		if err != nil {
			var fatal writeError
			if errors.As(err, &fatal) {
				_ = tx.Rollback()
				return r, fatal.err
			}
			r.err = err
			continue
		}
		r.res = res
	}
	appended := t.next != s.w.next
	if !appended && !wroteMeta {
		return nil, tx.Rollback() // only refusals and retries: nothing to sync
	}
	// A generation of index entries being flushed gets a chunk of its
	// entries written with this commit (flush.go).
	plan := s.mem.startFlush(s.opts.indexFlushEvents)
	var flushedTo flushCursor
	flushed := false
	if plan != nil {
		flushedTo, flushed, err = plan.write(tx, flushChunk(s.opts.flushChunk, int(t.next-s.w.next)))
		if err != nil {
			_ = tx.Rollback()
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	st := tx.Stats()
	s.stats.pages.Add(uint64(st.GetWrite()))
	if len(s.w.versions) > maxCachedStreams {
		s.w.versions = make(map[string]uint64)
	}
	if plan != nil {
		plan.at = flushedTo
	}
	if flushed {
		// The streams whose entries leave memory keep their version in
		// the cache. The ones still in memory (this transaction's among
		// them, published below) are found there first: caching them
		// too held every recently written stream twice.
		for stream, tl := range plan.g.streams {
			if _, ok := s.mem.active.streams[stream]; !ok {
				s.w.versions[stream] = tl.last()
			}
		}
		s.mem.endFlush()
	}
	s.stats.commits.Add(1)
	s.stats.commitNanos.Add(int64(time.Since(began)))
	if appended {
		s.mem.publish(t.staged)
		s.stats.events.Add(uint64(t.next - s.w.next))
		s.w.next = t.next
		s.w.lastAt = at
		s.head.Store(uint64(t.next - 1))
		s.notify()
	}
	return nil, nil
}

// version returns the current version of stream as of the requests before
// in this transaction.
func (s *Store) version(t *writeTx, stream string) uint64 {
	if tl := t.staged.streams[stream]; tl != nil {
		return tl.last()
	}
	if v, ok := s.mem.lastVersion(stream); ok {
		return v
	}
	if v, ok := s.w.versions[stream]; ok {
		return v
	}
	// Not cached: once this transaction commits, the stream's entries are
	// in memory until they are flushed, and the cache then gets its
	// version.
	v, _ := lastOnDisk(t.tx.Bucket(bucketStreams).Cursor(), streamPrefix(nil, stream))
	return v
}

// writeError marks a failure of bbolt itself, as opposed to a refused request.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }

// writeTx is the writer's view of one group-commit transaction.
type writeTx struct {
	tx             *bbolt.Tx
	log, ids, meta *bbolt.Bucket
	mem            *memIndex
	staged         *generation // index entries of this transaction
	next           eventstore.Position
}

// idPosition finds a stored event ID: in this transaction, in memory, or on disk.
func (t *writeTx) idPosition(id string) (eventstore.Position, bool) {
	if p, ok := t.staged.id(id); ok {
		return p, true
	}
	if p, ok := t.mem.id(id); ok {
		return p, true
	}
	if v := t.ids.Get([]byte(id)); v != nil {
		return eventstore.Position(binary.BigEndian.Uint64(v)), true
	}
	return 0, false
}

// append checks r against the stream's current version and the stored IDs,
// then writes its records. An idempotent retry writes nothing.
func (t *writeTx) append(r *request, current uint64, at int64) (res eventstore.AppendResult, err error) {
	stored := 0
	for _, e := range r.events {
		if _, ok := t.idPosition(e.ID); ok {
			stored++
		}
	}
	if stored > 0 {
		return t.retry(r, current, stored)
	}
	if !r.expected.Check(current) {
		return res, &eventstore.WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: current}
	}
	n := len(r.events)
	keys := make([]byte, 0, n*8) // keys must stay valid until the commit
	res.Positions = make([]eventstore.Position, n)
	ids := make([]string, n)
	for i, rec := range r.records {
		p := t.next
		t.next++
		patchRecord(rec, at, current+uint64(i)+1)
		start := len(keys)
		keys = positionKey(keys, p)
		if err := t.log.Put(keys[start:len(keys):len(keys)], rec); err != nil {
			return res, writeError{fmt.Errorf("bolt: write event %s: %w", r.events[i].ID, err)}
		}
		res.Positions[i] = p
		ids[i] = r.events[i].ID
	}
	t.staged.add(r.stream, current+1, ids, res.Positions)
	res.Version = current + uint64(n)
	return res, nil
}

// retry decides an append some of whose IDs are already stored: the same
// events at consecutive versions of the same stream, appended where expected
// allows, are a retry answered with the original result; anything else is
// refused (see eventstore/storetest for the rule).
func (t *writeTx) retry(r *request, current uint64, stored int) (eventstore.AppendResult, error) {
	wrong := &eventstore.WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: current}
	if stored != len(r.events) {
		return eventstore.AppendResult{}, wrong
	}
	res := eventstore.AppendResult{Positions: make([]eventstore.Position, len(r.events))}
	var first uint64
	for i, e := range r.events {
		p, _ := t.idPosition(e.ID)
		rec, err := decodeRecord(t.log.Get(positionKey(nil, p)))
		if err != nil {
			return eventstore.AppendResult{}, writeError{fmt.Errorf("bolt: event %s at %d: %w", e.ID, p, err)}
		}
		if string(rec.stream) != r.stream {
			if i == 0 {
				return eventstore.AppendResult{}, fmt.Errorf("%w: event %s is already stored in stream %q", eventstore.ErrInvalidArgument, e.ID, rec.stream)
			}
			return eventstore.AppendResult{}, wrong
		}
		if i == 0 {
			first = rec.version
		} else if rec.version != first+uint64(i) {
			return eventstore.AppendResult{}, wrong
		}
		res.Positions[i] = p
	}
	if r.expected >= 0 && uint64(r.expected) != first-1 {
		return eventstore.AppendResult{}, wrong
	}
	res.Version = first + uint64(len(r.events)) - 1
	return res, nil
}
