// Package memstore is an in-memory eventstore.Store: the same contract as the
// embedded store (it passes eventstore/storetest) without disk or fsync, so
// tests of projections, the audit trail and the transports run fast.
//
// It is not durable: everything is lost when the process ends. Positions are
// gap-free from 1, like the embedded store's. One mutex guards the log, which
// is plenty for tests; subscriptions use eventstore.CatchUp.
package memstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/wardline/wardline/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock that stamps RecordedAt and judges MaxAge
// (time.Now by default).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Store is an in-memory event store. Its zero value is not usable; call New.
type Store struct {
	now   func() time.Time
	epoch string

	mu      sync.RWMutex
	closed  bool
	log     []eventstore.RecordedEvent // log[p-1] is at position p
	streams map[string][]eventstore.Position
	ids     map[string]eventstore.Position
	meta    map[string]eventstore.StreamMetadata
	lastAt  time.Time     // RecordedAt never goes backwards, even if the clock does
	changed chan struct{} // closed and replaced on every commit and on Close
}

// New returns an empty store with a random epoch.
func New(opts ...Option) *Store {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	s := &Store{
		now:     time.Now,
		epoch:   "m" + hex.EncodeToString(b[:]),
		streams: map[string][]eventstore.Position{},
		ids:     map[string]eventstore.Position{},
		meta:    map[string]eventstore.StreamMetadata{},
		changed: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("memstore: append to %q: %w", stream, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	current := uint64(len(s.streams[stream]))
	if res, retry, err := s.retry(stream, expected, current, events); retry {
		return res, err
	}
	if !expected.Check(current) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: current}
	}
	at := s.now().UTC()
	if at.Before(s.lastAt) {
		at = s.lastAt
	}
	s.lastAt = at
	res := eventstore.AppendResult{Positions: make([]eventstore.Position, len(events))}
	for i, e := range events {
		p := eventstore.Position(len(s.log) + 1)
		s.log = append(s.log, eventstore.RecordedEvent{
			ID: e.ID, Stream: stream, Version: current + uint64(i) + 1, Position: p,
			Type: e.Type, SchemaVersion: e.SchemaVersion,
			Data: bytes.Clone(e.Data), Metadata: bytes.Clone(e.Metadata), RecordedAt: at,
		})
		s.streams[stream] = append(s.streams[stream], p)
		s.ids[e.ID] = p
		res.Positions[i] = p
	}
	res.Version = current + uint64(len(events))
	close(s.changed)
	s.changed = make(chan struct{})
	return res, nil
}

// retry reports whether events were appended before; if so it returns the
// original result, or why this is not a faithful retry.
func (s *Store) retry(stream string, expected eventstore.ExpectedVersion, current uint64, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	stored := 0
	for _, e := range events {
		if _, ok := s.ids[e.ID]; ok {
			stored++
		}
	}
	if stored == 0 {
		return eventstore.AppendResult{}, false, nil
	}
	wrong := &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: current}
	if stored != len(events) {
		return eventstore.AppendResult{}, true, wrong
	}
	first := s.log[s.ids[events[0].ID]-1]
	if stored != len(events) || first.Stream != stream {
		if first.Stream != stream && stored == len(events) {
			return eventstore.AppendResult{}, true, fmt.Errorf("%w: event %s is stored in stream %q", eventstore.ErrInvalidArgument, first.ID, first.Stream)
		}
		return eventstore.AppendResult{}, true, wrong
	}
	res := eventstore.AppendResult{Positions: make([]eventstore.Position, len(events))}
	for i, e := range events {
		r := s.log[s.ids[e.ID]-1]
		if r.Stream != stream || r.Version != first.Version+uint64(i) {
			return eventstore.AppendResult{}, true, wrong
		}
		res.Positions[i] = r.Position
	}
	res.Version = first.Version + uint64(len(events)) - 1
	if expected >= 0 && uint64(expected) != first.Version-1 {
		return eventstore.AppendResult{}, true, wrong
	}
	return res, true, nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateReadStream(stream, dir, limit); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: read %q: %w", stream, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	positions := s.streams[stream]
	if len(positions) == 0 {
		return nil, fmt.Errorf("%w: %q", eventstore.ErrStreamNotFound, stream)
	}
	meta, now, last := s.meta[stream], s.now(), uint64(len(positions))
	var out []eventstore.RecordedEvent
	add := func(v uint64) bool {
		e := s.log[positions[v-1]-1]
		if !meta.Retains(v, last, e.RecordedAt, now) {
			return dir == eventstore.Forward // forward: later ones may be kept; backward: all older are gone
		}
		out = append(out, clone(e))
		return len(out) < limit
	}
	if dir == eventstore.Forward {
		for v := max(from, 1); v <= last && add(v); v++ {
		}
	} else {
		start := from
		if start == 0 || start > last {
			start = last
		}
		for v := start; v >= 1 && add(v); v-- {
		}
	}
	return out, nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", eventstore.ErrInvalidArgument, limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: read log: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	if from >= eventstore.Position(len(s.log)) {
		return nil, nil
	}
	tail := s.log[from:]
	out := make([]eventstore.RecordedEvent, min(limit, len(tail)))
	for i := range out {
		out[i] = clone(tail[i])
	}
	return out, nil
}

func clone(e eventstore.RecordedEvent) eventstore.RecordedEvent {
	e.Data = bytes.Clone(e.Data)
	e.Metadata = bytes.Clone(e.Metadata)
	return e
}

// Changed implements eventstore.ChangeSource.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, handle func(ctx context.Context, events []eventstore.RecordedEvent) error) error {
	if handle == nil {
		return fmt.Errorf("%w: nil handler", eventstore.ErrInvalidArgument)
	}
	return eventstore.CatchUp(ctx, s, from, 0, handle)
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: head: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, eventstore.ErrClosed
	}
	return eventstore.Position(len(s.log)), nil
}

// SetStreamMetadata implements eventstore.Store.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, meta eventstore.StreamMetadata) error {
	if stream == "" {
		return fmt.Errorf("%w: empty stream name", eventstore.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: set metadata of %q: %w", stream, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.ErrClosed
	}
	s.meta[stream] = meta
	return nil
}

// StreamMetadata implements eventstore.Store.
func (s *Store) StreamMetadata(ctx context.Context, stream string) (eventstore.StreamMetadata, error) {
	if stream == "" {
		return eventstore.StreamMetadata{}, fmt.Errorf("%w: empty stream name", eventstore.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return eventstore.StreamMetadata{}, fmt.Errorf("memstore: metadata of %q: %w", stream, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventstore.StreamMetadata{}, eventstore.ErrClosed
	}
	return s.meta[stream], nil
}

// Epoch implements eventstore.Store.
func (s *Store) Epoch() string { return s.epoch }

// Close implements eventstore.Store. It wakes waiting subscribers, which
// then return ErrClosed. Closing twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.changed)
	}
	return nil
}
