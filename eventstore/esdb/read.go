package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/wardline/wardline/eventstore"
)

// ReadStream returns at most limit events of stream from version from
// (inclusive) in direction dir; Backward from 0 starts at the newest event.
// KurrentDB applies the stream's retention itself.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateReadStream(stream, dir, limit); err != nil {
		return nil, fmt.Errorf("esdb: read stream %q: %w", stream, err)
	}
	if err := validateStream(stream); err != nil {
		return nil, fmt.Errorf("esdb: read stream: %w", err)
	}
	start, kdir, err := readStart(from, dir)
	if err != nil {
		return nil, fmt.Errorf("esdb: read stream %q: %w", stream, err)
	}
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("esdb: read stream %q: %w", stream, err)
	}
	defer done()
	op := fmt.Sprintf("read stream %q", stream)
	limit = min(limit, maxLimit)
	rs, err := s.client.ReadStream(octx, s.ns+stream, kurrentdb.ReadStreamOptions{Direction: kdir, From: start}, uint64(limit))
	if err != nil {
		return nil, s.wrapErr(ctx, op, err)
	}
	defer rs.Close()
	var out []eventstore.RecordedEvent
	for len(out) < limit {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, s.wrapErr(ctx, op, err)
		}
		e, err := toRecorded(ev.Event, stream)
		if err != nil {
			return nil, fmt.Errorf("esdb: %s: %w", op, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// ReadAll returns at most limit of the store's events in $all after
// position from, skipping the server's system events.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("esdb: read all: %w: limit %d", eventstore.ErrInvalidArgument, limit)
	}
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("esdb: read all: %w", err)
	}
	defer done()
	out, _, err := s.scanAll(octx, from, min(limit, maxLimit))
	if err != nil {
		return nil, s.wrapErr(ctx, "read all", err)
	}
	return out, nil
}

// scanAll reads $all forward after from, page by page, until it has limit
// store events or reaches the end. It also returns the position of the
// last record it read, of any stream: a valid place to continue from.
//
// Reading $all must start at a record boundary, which every Position this
// store hands out is. A position that is not one (a caller's arithmetic,
// such as p-1) makes the server refuse the read; then the scan starts over
// from the beginning of $all and skips up to from, which is slow but exact.
func (s *Store) scanAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.RecordedEvent, kurrentdb.AllPosition, error) {
	var out []eventstore.RecordedEvent
	var cursor kurrentdb.AllPosition = allPosition(from)
	after := from
	first := true
	for len(out) < limit {
		n, err := s.readAllPage(ctx, cursor, func(ev *kurrentdb.RecordedEvent) (bool, error) {
			cursor = ev.Position
			p := positionOf(ev.Position)
			if p <= after {
				return true, nil // reads from a position include it
			}
			after = p
			if stream, ok := s.userStream(ev); ok {
				e, err := toRecorded(ev, stream)
				if err != nil {
					return false, err
				}
				out = append(out, e)
			}
			return len(out) < limit, nil
		})
		if err != nil && first && from != 0 && ctx.Err() == nil && !s.isClosed() && !isNotFound(err) {
			cursor = kurrentdb.Start{}
			first = false
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		first = false
		if n < allPage {
			break // the end of $all
		}
	}
	return out, cursor, nil
}

func isNotFound(err error) bool {
	code, ok := errorCode(err)
	return ok && sentinelFor(code) == eventstore.ErrStreamNotFound
}

// readAllPage reads up to allPage records of $all forward from position
// from (inclusive) and hands each to visit until visit says stop. It
// returns how many records it read.
func (s *Store) readAllPage(ctx context.Context, from kurrentdb.AllPosition, visit func(*kurrentdb.RecordedEvent) (bool, error)) (int, error) {
	rs, err := s.client.ReadAll(ctx, kurrentdb.ReadAllOptions{Direction: kurrentdb.Forwards, From: from}, allPage)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	n := 0
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
		more, err := visit(ev.Event)
		if err != nil || !more {
			// Stopped early: report a full page so the caller does not
			// take this for the end of $all.
			return allPage, err
		}
	}
}

// Head returns the position of the store's newest event (0 if none),
// reading $all backwards past the server's own events.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("esdb: head: %w", err)
	}
	defer done()
	var from kurrentdb.AllPosition = kurrentdb.End{}
	before := uint64(math.MaxUint64)
	for {
		rs, err := s.client.ReadAll(octx, kurrentdb.ReadAllOptions{Direction: kurrentdb.Backwards, From: from}, allPage)
		if err != nil {
			return 0, s.wrapErr(ctx, "head", err)
		}
		n := 0
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return 0, s.wrapErr(ctx, "head", err)
			}
			n++
			if ev.Event == nil || ev.Event.Position.Commit >= before {
				continue // the page's starting record, already seen
			}
			before = ev.Event.Position.Commit
			if _, ok := s.userStream(ev.Event); ok {
				rs.Close()
				return positionOf(ev.Event.Position), nil
			}
		}
		rs.Close()
		if n < allPage {
			return 0, nil
		}
		from = kurrentdb.Position{Commit: before, Prepare: before}
	}
}

// Subscribe delivers every store event after from to handle, in commit
// order: the history through paged $all reads, then live events through a
// KurrentDB subscription to $all from the last record read. Events that arrive together are handed over together, up to
// subscribeBatch. It returns ctx.Err() (wrapped) when ctx ends, handle's
// error as is, eventstore.ErrClosed after Close, or the wrapped reason the
// server dropped the subscription; the caller resumes from the last
// position it handled.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, handle func(ctx context.Context, events []eventstore.RecordedEvent) error) error {
	if handle == nil {
		return fmt.Errorf("esdb: subscribe: %w: nil handler", eventstore.ErrInvalidArgument)
	}
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return fmt.Errorf("esdb: subscribe: %w", err)
	}
	defer done()
	// Catch up with paged reads, then subscribe from the last record read:
	// a valid $all position even when from is not one.
	after := from
	var cursor kurrentdb.AllPosition = allPosition(from)
	for {
		events, next, err := s.scanAll(octx, after, subscribeBatch)
		if err != nil {
			return s.subscribeErr(ctx, err)
		}
		if next != nil {
			cursor = next
		}
		if len(events) == 0 {
			break
		}
		if err := handle(ctx, events); err != nil {
			return err
		}
		after = events[len(events)-1].Position
		if len(events) < subscribeBatch {
			break
		}
	}
	filter := kurrentdb.ExcludeSystemEventsFilter()
	if s.ns != "" {
		filter = &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{s.ns}}
	}
	sub, err := s.client.SubscribeToAll(octx, kurrentdb.SubscribeToAllOptions{From: cursor, Filter: filter})
	if err != nil {
		return s.subscribeErr(ctx, err)
	}

	// The pump owns the blocking Recv; it ends when the subscription is
	// closed (below) or dropped.
	recv := make(chan *kurrentdb.SubscriptionEvent)
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		for {
			e := sub.Recv()
			select {
			case recv <- e:
			case <-octx.Done():
				return
			}
			if e.SubscriptionDropped != nil {
				return
			}
		}
	}()
	defer func() {
		done()
		_ = sub.Close() // always nil
		<-pumped
	}()

	batch := make([]eventstore.RecordedEvent, 0, subscribeBatch)
	for {
		var e *kurrentdb.SubscriptionEvent
		if len(batch) == 0 {
			select {
			case e = <-recv:
			case <-octx.Done():
				return s.subscribeErr(ctx, octx.Err())
			}
		} else {
			select {
			case e = <-recv:
			default:
				// Nothing more is waiting: hand over what we have.
				if err := handle(ctx, batch); err != nil {
					return err
				}
				batch = batch[:0]
				continue
			}
		}
		switch {
		case e.SubscriptionDropped != nil:
			if len(batch) > 0 {
				if err := handle(ctx, batch); err != nil {
					return err
				}
			}
			return s.subscribeErr(ctx, e.SubscriptionDropped.Error)
		case e.EventAppeared != nil:
			ev := e.EventAppeared.Event
			if ev == nil || positionOf(ev.Position) <= after {
				continue
			}
			after = positionOf(ev.Position)
			stream, ok := s.userStream(ev)
			if !ok {
				continue
			}
			rec, err := toRecorded(ev, stream)
			if err != nil {
				return fmt.Errorf("esdb: subscribe: %w", err)
			}
			batch = append(batch, rec)
			if len(batch) == subscribeBatch {
				if err := handle(ctx, batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
	}
}

func (s *Store) subscribeErr(ctx context.Context, err error) error {
	if err == nil {
		err = errors.New("subscription dropped")
	}
	return s.wrapErr(ctx, "subscribe", err)
}
