package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardline/wardline/eventstore"
)

// gatherWait bounds how long the writer holds a batch open for appends it
// expects (see runWriter): small against a commit's fsync (~2 ms here).
const gatherWait = 200 * time.Microsecond

// appendReq is one Append waiting for the writer goroutine.
type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.EventData
	done     chan appendResp // buffered: the writer never blocks on it
}

type appendResp struct {
	res eventstore.AppendResult
	err error
}

// Append adds events to the end of stream if expected holds. It returns
// once the transaction carrying them has committed (synchronous_commit
// decides what "durable" means on the server; keep it on).
//
// Re-appending events whose IDs are already stored, at the same place in
// the same stream, returns the original result and writes nothing. Stored
// IDs anywhere else (partly, at another version, in another stream) are a
// *WrongExpectedVersionError.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := validateAppend(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w", stream, err)
	}
	if s.isClosed() {
		return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w", stream, eventstore.ErrClosed)
	}
	req := &appendReq{ctx: ctx, stream: stream, expected: expected, events: events, done: make(chan appendResp, 1)}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w", stream, ctx.Err())
	case <-s.writerDone:
		return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w", stream, eventstore.ErrClosed)
	}
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		// The batch may still commit; the caller retries with the same IDs.
		return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w", stream, ctx.Err())
	case <-s.writerDone:
		select {
		case r := <-req.done:
			return r.res, r.err
		default:
			return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w", stream, eventstore.ErrClosed)
		}
	}
}

func validateAppend(stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) error {
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return err
	}
	for i, e := range events {
		if e.SchemaVersion < math.MinInt32 || e.SchemaVersion > math.MaxInt32 {
			return fmt.Errorf("%w: event %d: schema version out of range", eventstore.ErrInvalidArgument, i)
		}
	}
	return nil
}

// runWriter is the group-commit loop: it takes the first waiting append,
// then every append already queued behind it, and commits them together.
// While one transaction commits, the next batch gathers.
//
// Writers that were just acknowledged come back a few microseconds apart,
// so a batch taken the instant the previous commit ends would hold only the
// fastest of them, and the rest would wait a whole commit. When the previous
// batch had several appends, the writer therefore waits up to gatherWait for
// as many again. A lone writer never waits (its previous batch was 1).
func (s *Store) runWriter() {
	defer s.wg.Done()
	defer close(s.writerDone)
	timer := time.NewTimer(0)
	<-timer.C
	prev := 0
	for {
		select {
		case <-s.closing:
			s.drainQueue()
			return
		case req := <-s.reqs:
			batch := []*appendReq{req}
			n := len(req.events)
			waiting := false
		gather:
			for n < s.cfg.maxBatchEvents {
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
					n += len(r.events)
					continue
				default:
				}
				if len(batch) >= prev {
					break
				}
				if !waiting {
					waiting = true
					timer.Reset(gatherWait)
				}
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
					n += len(r.events)
				case <-timer.C:
					waiting = false
					break gather
				case <-s.closing:
					break gather
				}
			}
			if waiting {
				timer.Stop() // Go 1.23 timers: no stale tick to drain
			}
			prev = len(batch)
			s.commitBatch(batch)
		}
	}
}

func (s *Store) drainQueue() {
	for {
		select {
		case r := <-s.reqs:
			r.done <- appendResp{err: fmt.Errorf("postgres: append to %q: %w", r.stream, eventstore.ErrClosed)}
		default:
			return
		}
	}
}

func (s *Store) commitBatch(batch []*appendReq) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- appendResp{err: fmt.Errorf("postgres: append to %q: %w", r.stream, err)}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	resps, wrote, err := s.commitTx(live)
	if err != nil {
		for _, r := range live {
			r.done <- appendResp{err: s.wrapErr(r.ctx, "append to "+strconv.Quote(r.stream), err)}
		}
		return
	}
	if wrote {
		s.wake.broadcast()
	}
	for i, r := range live {
		r.done <- resps[i]
	}
}

// placed is where an event ID is stored (or will be, by this batch).
type placed struct {
	stream   string
	version  uint64
	position eventstore.Position
}

// commitTx runs one transaction for the batch. Its first statement locks
// the counter row, so everything after it sees the latest committed state
// and no other appender, on any node, can interleave. Each request is
// decided in Go against that state; a failed check fails that request only.
func (s *Store) commitTx(reqs []*appendReq) (resps []appendResp, wrote bool, err error) {
	ctx := s.ctx
	// BEGIN and COMMIT travel in the pipelines with the statements: two
	// round trips per transaction instead of four, while the lock is held.
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	// pgxpool destroys a released connection still inside a transaction, so
	// a failed ROLLBACK cannot leak an open transaction into the pool.
	defer conn.Release()
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = conn.Exec(rctx, "ROLLBACK") // the original error is what the caller needs
		}
	}()

	var streams, ids []string
	seenStream := map[string]bool{}
	for _, r := range reqs {
		if !seenStream[r.stream] {
			seenStream[r.stream] = true
			streams = append(streams, r.stream)
		}
		for _, e := range r.events {
			ids = append(ids, e.ID)
		}
	}

	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT head, clock_timestamp() FROM store_meta FOR UPDATE`)
	b.Queue(`SELECT stream, version FROM streams WHERE stream = ANY($1)`, streams)
	b.Queue(`SELECT id, stream, version, position FROM events WHERE id = ANY($1)`, ids)
	br := conn.SendBatch(ctx, b)
	var head int64
	var now time.Time
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, false, fmt.Errorf("begin: %w", err)
	}
	if err := br.QueryRow().Scan(&head, &now); err != nil {
		br.Close()
		return nil, false, fmt.Errorf("lock counter: %w", err)
	}
	current := make(map[string]uint64, len(streams))
	rows, _ := br.Query()
	var name string
	var version, position int64
	_, err = pgx.ForEachRow(rows, []any{&name, &version}, func() error {
		current[name] = uint64(version)
		return nil
	})
	if err != nil {
		br.Close()
		return nil, false, fmt.Errorf("read stream versions: %w", err)
	}
	known := make(map[string]placed)
	var id string
	rows, _ = br.Query()
	_, err = pgx.ForEachRow(rows, []any{&id, &name, &version, &position}, func() error {
		known[id] = placed{stream: name, version: uint64(version), position: eventstore.Position(position)}
		return nil
	})
	if err != nil {
		br.Close()
		return nil, false, fmt.Errorf("read event ids: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, false, err
	}

	now = now.UTC()
	next := uint64(head)
	var ins insertRows
	touched := map[string]uint64{}
	resps = make([]appendResp, len(reqs))
	for i, r := range reqs {
		res, err := decide(r, current[r.stream], known)
		if err != nil || res != nil {
			if res != nil {
				resps[i] = appendResp{res: *res}
			} else {
				resps[i] = appendResp{err: fmt.Errorf("postgres: append to %q: %w", r.stream, err)}
			}
			continue
		}
		v := current[r.stream]
		out := eventstore.AppendResult{Positions: make([]eventstore.Position, len(r.events))}
		for j, e := range r.events {
			next++
			v++
			ins.add(next, r.stream, v, e)
			known[e.ID] = placed{stream: r.stream, version: v, position: eventstore.Position(next)}
			out.Positions[j] = eventstore.Position(next)
		}
		out.Version = v
		current[r.stream] = v
		touched[r.stream] = v
		resps[i] = appendResp{res: out}
	}
	if len(ins.position) == 0 {
		_, err := conn.Exec(ctx, "ROLLBACK")
		return resps, false, err
	}
	if next > math.MaxInt64 {
		return nil, false, errors.New("position counter overflow")
	}

	tstreams := make([]string, 0, len(touched))
	tversions := make([]int64, 0, len(touched))
	for st, v := range touched {
		tstreams = append(tstreams, st)
		tversions = append(tversions, int64(v))
	}
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO events (position, stream, version, id, type, schema_version, data, metadata, recorded_at)
		SELECT u.*, $9::timestamptz FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $7::bytea[], $8::bytea[]) AS u`,
		ins.position, ins.stream, ins.version, ins.id, ins.typ, ins.schemaVersion, ins.data, ins.metadata, now)
	b.Queue(`INSERT INTO streams (stream, version) SELECT * FROM unnest($1::text[], $2::bigint[])
		ON CONFLICT (stream) DO UPDATE SET version = EXCLUDED.version`, tstreams, tversions)
	b.Queue(`UPDATE store_meta SET head = $1`, int64(next))
	// Delivered to every LISTENer only when the transaction commits.
	b.Queue(`SELECT pg_notify($1, $2)`, s.channel, strconv.FormatUint(next, 10))
	b.Queue(`COMMIT`)
	br = conn.SendBatch(ctx, b)
	for range b.Len() - 1 {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, false, fmt.Errorf("insert events: %w", err)
		}
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		return nil, false, fmt.Errorf("commit: server answered %q", tag.String())
	}
	return resps, true, nil
}

// decide checks one request against the locked state. It returns the
// original result for an idempotent retry, an error for a refused request,
// or (nil, nil) when the events are to be written.
func decide(r *appendReq, current uint64, known map[string]placed) (*eventstore.AppendResult, error) {
	found := 0
	for _, e := range r.events {
		if _, ok := known[e.ID]; ok {
			found++
		}
	}
	if found == 0 {
		if !r.expected.Check(current) {
			return nil, &eventstore.WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: current}
		}
		return nil, nil
	}
	// Not a retry of one earlier append: a conflict with what is stored.
	if found < len(r.events) {
		return nil, &eventstore.WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: current}
	}
	first := known[r.events[0].ID]
	res := eventstore.AppendResult{Positions: make([]eventstore.Position, len(r.events))}
	for j, e := range r.events {
		p := known[e.ID]
		if p.stream != r.stream || p.version != first.version+uint64(j) {
			return nil, &eventstore.WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: current}
		}
		res.Positions[j] = p.position
	}
	// The same events at another place is a different append, not a retry.
	if r.expected >= 0 && uint64(r.expected) != first.version-1 {
		return nil, &eventstore.WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: current}
	}
	res.Version = first.version + uint64(len(r.events)) - 1
	return &res, nil
}

// insertRows holds a batch's events column by column, for unnest.
type insertRows struct {
	position      []int64
	stream        []string
	version       []int64
	id            []string
	typ           []string
	schemaVersion []int32
	data          [][]byte
	metadata      [][]byte
}

func (r *insertRows) add(pos uint64, stream string, version uint64, e eventstore.EventData) {
	r.position = append(r.position, int64(pos))
	r.stream = append(r.stream, stream)
	r.version = append(r.version, int64(version))
	r.id = append(r.id, e.ID)
	r.typ = append(r.typ, e.Type)
	r.schemaVersion = append(r.schemaVersion, int32(e.SchemaVersion))
	r.data = append(r.data, e.Data)
	r.metadata = append(r.metadata, e.Metadata)
}
