package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/wardline/wardline/eventstore"
)

// locateScan bounds how far back an idempotent retry's events are searched
// for when the server does not say where they are.
const locateScan = 100_000

// Append adds events to the end of stream if expected holds, in one
// KurrentDB append (atomic, durable when the server acknowledges it).
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := validateAppend(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("esdb: append to %q: %w", stream, err)
	}
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("esdb: append to %q: %w", stream, err)
	}
	defer done()
	state, _ := streamState(expected) // validated above
	data := make([]kurrentdb.EventData, len(events))
	for i, e := range events {
		data[i] = toEventData(e)
	}
	name := s.ns + stream
	op := fmt.Sprintf("append to %q", stream)
	wr, err := s.client.AppendToStream(octx, name, kurrentdb.AppendToStreamOptions{StreamState: state}, data...)
	if err != nil {
		if code, ok := errorCode(err); ok && sentinelFor(code) == eventstore.ErrWrongExpectedVersion {
			return eventstore.AppendResult{}, s.wrongVersion(octx, stream, expected, err)
		}
		return eventstore.AppendResult{}, s.wrapErr(ctx, op, err)
	}
	res, err := s.locate(octx, name, events, wr.NextExpectedVersion)
	if err != nil {
		return eventstore.AppendResult{}, s.wrapErr(ctx, op+": appended, reading positions back", err)
	}
	return res, nil
}

// wrongVersion builds the contract's *WrongExpectedVersionError, with the
// actual version from the server's answer or, failing that, a fresh read.
func (s *Store) wrongVersion(ctx context.Context, stream string, expected eventstore.ExpectedVersion, cause error) error {
	actual, ok := parseWrongVersion(cause.Error())
	var conflict *kurrentdb.StreamRevisionConflictError
	if !ok && errors.As(cause, &conflict) {
		actual, ok = actualVersion(conflict.ActualRevision)
	}
	if !ok {
		v, err := s.currentVersion(ctx, s.ns+stream)
		if err != nil {
			return fmt.Errorf("esdb: append to %q: %w (actual version unknown: %v)", stream, eventstore.ErrWrongExpectedVersion, err)
		}
		actual = v
	}
	return fmt.Errorf("esdb: append to %q: %w", stream,
		&eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual})
}

// currentVersion is the version of a stream's newest event (0 if none).
func (s *Store) currentVersion(ctx context.Context, name string) (uint64, error) {
	rs, err := s.client.ReadStream(ctx, name, kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, 1)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return 0, nil
	}
	if code, ok := errorCode(err); ok && sentinelFor(code) == eventstore.ErrStreamNotFound {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return versionOf(ev.OriginalEvent().EventNumber), nil
}

// locate finds the appended events in the stream and reports their
// versions and positions. The server names the last event's revision;
// when that does not hold them (an idempotent retry after later appends)
// the stream is searched backwards for the first of them.
func (s *Store) locate(ctx context.Context, name string, events []eventstore.EventData, lastRevision uint64) (eventstore.AppendResult, error) {
	n := uint64(len(events))
	if lastRevision+1 >= n {
		res, ok, err := s.matchAt(ctx, name, events, lastRevision+1-n)
		if err != nil || ok {
			return res, err
		}
	}
	first, err := s.findEvent(ctx, name, events[0].ID)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	res, ok, err := s.matchAt(ctx, name, events, first)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if !ok {
		return eventstore.AppendResult{}, fmt.Errorf("events not found in %q after the server acknowledged them", name)
	}
	return res, nil
}

// matchAt reports whether events are stored in order from revision first.
func (s *Store) matchAt(ctx context.Context, name string, events []eventstore.EventData, first uint64) (eventstore.AppendResult, bool, error) {
	rs, err := s.client.ReadStream(ctx, name, kurrentdb.ReadStreamOptions{Direction: kurrentdb.Forwards, From: kurrentdb.Revision(first)}, uint64(len(events)))
	if err != nil {
		return eventstore.AppendResult{}, false, err
	}
	defer rs.Close()
	res := eventstore.AppendResult{Positions: make([]eventstore.Position, 0, len(events))}
	for _, want := range events {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return eventstore.AppendResult{}, false, nil
		}
		if err != nil {
			return eventstore.AppendResult{}, false, err
		}
		got, err := toRecorded(ev.Event, name)
		if err != nil {
			return eventstore.AppendResult{}, false, err
		}
		if got.ID != want.ID {
			return eventstore.AppendResult{}, false, nil
		}
		res.Positions = append(res.Positions, got.Position)
		res.Version = got.Version
	}
	return res, true, nil
}

// findEvent returns the revision of the newest event with the given ID,
// searching at most locateScan events back from the end.
func (s *Store) findEvent(ctx context.Context, name, id string) (uint64, error) {
	rs, err := s.client.ReadStream(ctx, name, kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, locateScan)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("event %s not found in the newest %d events of %q", id, locateScan, name)
		}
		if err != nil {
			return 0, err
		}
		got, err := toRecorded(ev.Event, name)
		if err != nil {
			return 0, err
		}
		if got.ID == id {
			return ev.Event.EventNumber, nil
		}
	}
}
