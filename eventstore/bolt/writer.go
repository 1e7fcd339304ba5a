package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

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
	versions map[string]uint64   // stream → current version, as committed
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
	for range s.wake {
		for {
			var closing bool
			batch, closing = s.take(batch[:0])
			if len(batch) == 0 {
				if closing {
					return
				}
				break
			}
			s.commit(batch)
			clear(batch) // drop references to answered requests
		}
	}
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
// head and wakes subscribers. It returns the request whose write bbolt
// refused, or nil with the error of a failed commit.
func (s *Store) tryCommit(requests []*request) (*request, error) {
	tx, err := s.db.Begin(true)
	if err != nil {
		return nil, err
	}
	t := writeTx{
		tx:      tx,
		log:     tx.Bucket(bucketLog),
		streams: tx.Bucket(bucketStreams),
		ids:     tx.Bucket(bucketIDs),
		meta:    tx.Bucket(bucketStreamMeta),
		next:    s.w.next,
	}
	// Sequential keys: fill pages completely instead of splitting in half.
	t.log.FillPercent = 1.0
	// UUIDv7 IDs arrive nearly in order.
	t.ids.FillPercent = 0.9
	at := s.opts.now().UnixNano()
	if at < s.w.lastAt {
		at = s.w.lastAt
	}
	if s.w.versions == nil {
		s.w.versions = make(map[string]uint64)
	}
	staged := make(map[string]uint64) // versions written by this transaction
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
			continue
		}
		current, ok := staged[r.stream]
		if !ok {
			current = s.version(&t, r.stream)
		}
		res, wrote, err := t.append(r, current, at)
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
		if wrote {
			staged[r.stream] = res.Version
		}
	}
	if t.next == s.w.next {
		// Nothing appended (only refusals, retries or metadata): still
		// commit metadata, but skip the fsync if there is nothing at all.
		if len(staged) == 0 && !hasMeta(requests) {
			return nil, tx.Rollback()
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if len(s.w.versions) > maxCachedStreams {
		s.w.versions = make(map[string]uint64)
	}
	for stream, v := range staged {
		s.w.versions[stream] = v
	}
	if t.next != s.w.next {
		s.w.next = t.next
		s.w.lastAt = at
		s.head.Store(uint64(t.next - 1))
		s.notify()
	}
	return nil, nil
}

func hasMeta(requests []*request) bool {
	for _, r := range requests {
		if r.meta != nil && r.err == nil {
			return true
		}
	}
	return false
}

// version returns the committed current version of stream.
func (s *Store) version(t *writeTx, stream string) uint64 {
	if v, ok := s.w.versions[stream]; ok {
		return v
	}
	v, _ := lastVisible(t.streams.Cursor(), streamPrefix(nil, stream), eventstore.Position(1<<64-1))
	s.w.versions[stream] = v
	return v
}

// writeError marks a failure of bbolt itself, as opposed to a refused request.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }

// writeTx is the writer's view of one group-commit transaction.
type writeTx struct {
	tx                      *bbolt.Tx
	log, streams, ids, meta *bbolt.Bucket
	next                    eventstore.Position
}

// append checks r against the stream's current version and the ids index,
// then writes it. wrote is false for an idempotent retry.
func (t *writeTx) append(r *request, current uint64, at int64) (res eventstore.AppendResult, wrote bool, err error) {
	stored := 0
	for _, e := range r.events {
		if t.ids.Get([]byte(e.ID)) != nil {
			stored++
		}
	}
	if stored > 0 {
		res, err := t.retry(r, current, stored)
		return res, false, err
	}
	if !r.expected.Check(current) {
		return res, false, &eventstore.WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: current}
	}
	n := len(r.events)
	// Keys must stay valid until the commit: carve them from one array.
	keys := make([]byte, 0, n*8+n*(uvarintLen(uint64(len(r.stream)))+len(r.stream)+8))
	res.Positions = make([]eventstore.Position, n)
	for i, rec := range r.records {
		p := t.next
		t.next++
		version := current + uint64(i) + 1
		patchRecord(rec, at, version)
		start := len(keys)
		keys = positionKey(keys, p)
		pk := keys[start:len(keys):len(keys)]
		start = len(keys)
		keys = streamKey(keys, r.stream, version)
		sk := keys[start:len(keys):len(keys)]
		if err := t.log.Put(pk, rec); err != nil {
			return res, false, writeError{fmt.Errorf("bolt: write event %s: %w", r.events[i].ID, err)}
		}
		if err := t.ids.Put(recordID(rec), pk); err != nil {
			return res, false, writeError{fmt.Errorf("bolt: index event %s: %w", r.events[i].ID, err)}
		}
		if err := t.streams.Put(sk, pk); err != nil {
			return res, false, writeError{fmt.Errorf("bolt: index event %s: %w", r.events[i].ID, err)}
		}
		res.Positions[i] = p
	}
	res.Version = current + uint64(n)
	return res, true, nil
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
		pk := t.ids.Get([]byte(e.ID))
		rec, err := decodeRecord(t.log.Get(pk))
		if err != nil {
			return eventstore.AppendResult{}, writeError{fmt.Errorf("bolt: event %s: %w", e.ID, err)}
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
		res.Positions[i] = eventstore.Position(binary.BigEndian.Uint64(pk))
	}
	if r.expected >= 0 && uint64(r.expected) != first-1 {
		return eventstore.AppendResult{}, wrong
	}
	res.Version = first + uint64(len(r.events)) - 1
	return res, nil
}
