package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardline/wardline/eventstore"
)

const eventColumns = `position, stream, version, id, type, schema_version, data, metadata, recorded_at`

// ReadStream returns at most limit events of stream from version from
// (inclusive) in direction dir; Backward from 0 starts at the newest event.
// Events past the stream's retention are skipped. A stream with no events
// is eventstore.ErrStreamNotFound.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateReadStream(stream, dir, limit); err != nil {
		return nil, fmt.Errorf("postgres: read stream %q: %w", stream, err)
	}
	// Versions are bigint: beyond them, forward reads nothing and backward
	// starts at the newest event.
	from = min(from, math.MaxInt64)
	limit = min(limit, maxLimit)
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: read stream %q: %w", stream, err)
	}
	defer done()
	op := fmt.Sprintf("read stream %q", stream)

	var version, maxAgeUS, maxCount int64
	err = s.pool.QueryRow(octx, `SELECT version, max_age_us, max_count FROM streams WHERE stream = $1`, stream).
		Scan(&version, &maxAgeUS, &maxCount)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && version == 0) {
		return nil, fmt.Errorf("postgres: %s: %w", op, eventstore.ErrStreamNotFound)
	}
	if err != nil {
		return nil, s.wrapErr(ctx, op, err)
	}
	oldest := int64(1)
	if maxCount > 0 && version-maxCount+1 > oldest {
		oldest = version - maxCount + 1
	}
	// The age cut-off uses the database clock, the same clock that set
	// recorded_at, so node clock skew cannot expire events early. An event
	// exactly MaxAge old has expired, as in StreamMetadata.Retains.
	const ageFilter = `($3 = 0 OR recorded_at > clock_timestamp() - $3 * interval '1 microsecond')`
	var rows pgx.Rows
	if dir == eventstore.Forward {
		rows, err = s.pool.Query(octx, `SELECT `+eventColumns+` FROM events
			WHERE stream = $1 AND version >= $2 AND `+ageFilter+` ORDER BY version LIMIT $4`,
			stream, max(int64(from), oldest), maxAgeUS, limit)
	} else {
		upTo := int64(from)
		if from == 0 {
			upTo = math.MaxInt64
		}
		rows, err = s.pool.Query(octx, `SELECT `+eventColumns+` FROM events
			WHERE stream = $1 AND version >= $2 AND `+ageFilter+` AND version <= $5 ORDER BY version DESC LIMIT $4`,
			stream, oldest, maxAgeUS, limit, upTo)
	}
	if err != nil {
		return nil, s.wrapErr(ctx, op, err)
	}
	events, err := scanEvents(rows, limit)
	if err != nil {
		return nil, s.wrapErr(ctx, op, err)
	}
	return events, nil
}

// ReadAll returns at most limit events of the global log after position from.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("postgres: read all: %w: limit %d", eventstore.ErrInvalidArgument, limit)
	}
	if from > math.MaxInt64 {
		// Beyond any position this backend can assign.
		return nil, nil
	}
	limit = min(limit, maxLimit)
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: read all: %w", err)
	}
	defer done()
	rows, err := s.pool.Query(octx, `SELECT `+eventColumns+` FROM events WHERE position > $1 ORDER BY position LIMIT $2`, int64(from), limit)
	if err != nil {
		return nil, s.wrapErr(ctx, "read all", err)
	}
	events, err := scanEvents(rows, limit)
	if err != nil {
		return nil, s.wrapErr(ctx, "read all", err)
	}
	return events, nil
}

func scanEvents(rows pgx.Rows, capacity int) ([]eventstore.RecordedEvent, error) {
	defer rows.Close()
	events := make([]eventstore.RecordedEvent, 0, min(capacity, 64))
	for rows.Next() {
		var (
			e                 eventstore.RecordedEvent
			position, version int64
			schemaVersion     int32
		)
		if err := rows.Scan(&position, &e.Stream, &version, &e.ID, &e.Type, &schemaVersion, &e.Data, &e.Metadata, &e.RecordedAt); err != nil {
			return nil, err
		}
		e.Position = eventstore.Position(position)
		e.Version = uint64(version)
		e.SchemaVersion = int(schemaVersion)
		e.RecordedAt = e.RecordedAt.UTC()
		events = append(events, e)
	}
	return events, rows.Err()
}

// Subscribe delivers every event after from to handle in commit order:
// first the history, then live events as they commit on any node. Because
// positions are gap-free and become visible in order, following the log is
// a range read from the last delivered position: nothing is skipped or
// repeated. It returns ctx.Err() (wrapped) when ctx ends, handle's error as
// is, or a wrapped read error (eventstore.ErrClosed after Close); the caller
// resumes from the last position it handled.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, handle func(ctx context.Context, events []eventstore.RecordedEvent) error) error {
	if handle == nil {
		return fmt.Errorf("postgres: subscribe: %w: nil handler", eventstore.ErrInvalidArgument)
	}
	if s.isClosed() {
		return fmt.Errorf("postgres: subscribe: %w", eventstore.ErrClosed)
	}
	return eventstore.CatchUp(ctx, changeSource{s}, from, subscribeBatch, handle)
}

// changeSource adapts the store to eventstore.CatchUp without widening the
// Store's exported API.
type changeSource struct{ s *Store }

func (c changeSource) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	return c.s.ReadAll(ctx, from, limit)
}

// Changed is closed by the next local commit, NOTIFY from any node, poll
// tick or Close, whichever comes first.
func (c changeSource) Changed() <-chan struct{} { return c.s.wake.wait() }

// runPoller wakes every subscriber at the poll interval, so that a lost
// notification (the LISTEN connection was down) only delays delivery.
func (s *Store) runPoller() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.wake.broadcast()
		}
	}
}

// runListener owns the store's LISTEN connection. It reports the first
// LISTEN's outcome on ready, then keeps listening, reconnecting with
// backoff, until Close. Every notification (and every reconnect, since
// notifications may have been missed meanwhile) wakes all subscribers.
func (s *Store) runListener(cfg *pgx.ConnConfig, ready chan<- error) {
	defer s.wg.Done()
	backoff := 50 * time.Millisecond
	first := true
	for {
		err := s.listen(cfg, func() {
			if first {
				first = false
				ready <- nil
			} else {
				s.wake.broadcast()
			}
			backoff = 50 * time.Millisecond
		})
		if first {
			ready <- err
			return
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listen runs one LISTEN connection until it fails or the store closes.
func (s *Store) listen(cfg *pgx.ConnConfig, listening func()) error {
	conn, err := pgx.ConnectConfig(s.ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(ctx) // the connection is being abandoned either way
	}()
	if _, err := conn.Exec(s.ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	listening()
	for {
		if _, err := conn.WaitForNotification(s.ctx); err != nil {
			return err
		}
		s.wake.broadcast()
	}
}
