package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
)

// folder is a domain state folded from one stream.
type folder interface {
	Apply(env domain.Envelope)
}

// streamEntry is one stream's folded state as of version. mu serialises the
// decisions of this node on the stream, so that its own requests do not
// conflict with each other; other nodes' writes are caught up before each
// decision and show up as version conflicts at append.
type streamEntry struct {
	mu      sync.Mutex
	state   folder
	version uint64
	lastPos eventstore.Position
}

// service is the command side: load state, decide, append, answer.
type service struct {
	store     eventstore.Store
	decoder   projections.Decoder
	limits    domain.Limits
	nodeID    string
	now       func() time.Time
	cacheSize int

	mu      sync.Mutex
	streams map[string]*streamEntry
	// typingMeta remembers the typing streams whose retention this node
	// has set, so SetStreamMetadata runs once per stream and process.
	typingMeta   map[string]bool
	typingMaxAge time.Duration
}

func newService(cfg *Config) *service {
	return &service{
		store: cfg.Store, decoder: cfg.Decoder, limits: cfg.Limits, nodeID: cfg.NodeID,
		now: cfg.Now, cacheSize: DefaultStateCacheSize,
		streams: map[string]*streamEntry{}, typingMeta: map[string]bool{},
		typingMaxAge: cfg.TypingMaxAge,
	}
}

// decisionContext is what a decision may know: time, actor, ids, limits.
func (s *service) decisionContext(actor domain.Actor) domain.Context {
	return domain.Context{
		Now: s.now().UTC().Truncate(time.Millisecond), Actor: actor, NewID: domain.NewID,
		Limits: s.limits, NodeID: s.nodeID,
	}
}

// entry returns the cache entry of stream, creating it with mk. The cache
// is bounded crudely: when full, it is emptied; entries in use stay valid
// for their holders and a second entry for the same stream can only cause a
// version conflict, which is retried.
func (s *service) entry(stream string, mk func() folder) *streamEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.streams[stream]
	if !ok {
		if len(s.streams) >= s.cacheSize {
			clear(s.streams)
		}
		e = &streamEntry{state: mk()}
		s.streams[stream] = e
	}
	return e
}

// catchUp folds the events appended to stream after e's version.
func (s *service) catchUp(ctx context.Context, stream string, e *streamEntry) error {
	const page = 512
	for {
		evs, err := s.store.ReadStream(ctx, stream, e.version+1, eventstore.Forward, page)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gateway: read stream %q: %w", stream, err)
		}
		for _, r := range evs {
			env, err := s.decode(r)
			if err != nil {
				return err
			}
			e.state.Apply(env)
			e.version, e.lastPos = r.Version, r.Position
		}
		if len(evs) < page {
			return nil
		}
	}
}

func (s *service) decode(r eventstore.RecordedEvent) (domain.Envelope, error) {
	env, err := s.decoder.Decode(domain.RawEvent{
		ID: r.ID, Stream: r.Stream, Type: r.Type, SchemaVersion: r.SchemaVersion,
		Data: r.Data, Metadata: r.Metadata,
	})
	if err != nil {
		return domain.Envelope{}, fmt.Errorf("gateway: decode %s at %d: %w", r.Type, r.Position, err)
	}
	return env, nil
}

// appended says where a decision's events went.
type appended struct {
	// Positions of the appended events; empty when the decision changed
	// nothing.
	Positions []eventstore.Position
	// StreamPos is the position of the newest event of the decided stream
	// after the decision (what a reader must wait for to see it).
	StreamPos eventstore.Position
}

func (a appended) last() eventstore.Position {
	if len(a.Positions) == 0 {
		return 0
	}
	return a.Positions[len(a.Positions)-1]
}

// decideFunc decides on the stream's state and returns the events; they go
// to the decided stream (appended with its exact version) or, for typing
// and access events, to their own stream (appended unconditionally).
type decideFunc func(c domain.Context, state folder) ([]domain.Event, error)

// execute runs decide on the current state of stream and appends its
// events, re-deciding after version conflicts. after, if set, runs under
// the stream's lock once the events are applied to the cached state (for a
// follow-up decision on the same state, like the history read of a join).
func (s *service) execute(ctx context.Context, actor domain.Actor, stream string, mk func() folder, decide decideFunc, after func(st folder) error) (appended, error) {
	e := s.entry(stream, mk)
	e.mu.Lock()
	defer e.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := s.catchUp(ctx, stream, e); err != nil {
			return appended{}, err
		}
		c := s.decisionContext(actor)
		events, err := decide(c, e.state)
		if err != nil {
			var denied *domain.AccessDeniedError
			if errors.As(err, &denied) {
				if _, aerr := s.appendAny(ctx, c, []domain.Event{denied.Denial}); aerr != nil {
					return appended{}, errors.Join(err, aerr)
				}
			}
			return appended{}, err
		}
		if len(events) == 0 {
			if after != nil {
				if err := after(e.state); err != nil {
					return appended{}, err
				}
			}
			return appended{StreamPos: e.lastPos}, nil
		}
		envs, err := c.Wrap(events)
		if err != nil {
			return appended{}, fmt.Errorf("gateway: wrap: %w", err)
		}
		if envs[0].Stream != stream {
			res, err := s.appendEnvelopes(ctx, envs[0].Stream, eventstore.AnyVersion, envs)
			if err != nil {
				return appended{}, err
			}
			return appended{Positions: res.Positions, StreamPos: e.lastPos}, nil
		}
		res, err := s.appendEnvelopes(ctx, stream, eventstore.Exact(e.version), envs)
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) && attempt < DefaultMaxRetries {
			continue
		}
		if err != nil {
			return appended{}, err
		}
		for i, env := range envs {
			e.state.Apply(env)
			e.lastPos = res.Positions[i]
		}
		e.version = res.Version
		if after != nil {
			if err := after(e.state); err != nil {
				return appended{}, err
			}
		}
		return appended{Positions: res.Positions, StreamPos: e.lastPos}, nil
	}
}

// appendAny appends events that carry no invariant (denials, audit and
// authentication records, typing) to their stream, whatever its version.
func (s *service) appendAny(ctx context.Context, c domain.Context, events []domain.Event) (eventstore.AppendResult, error) {
	envs, err := c.Wrap(events)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("gateway: wrap: %w", err)
	}
	return s.appendEnvelopes(ctx, envs[0].Stream, eventstore.AnyVersion, envs)
}

func (s *service) appendEnvelopes(ctx context.Context, stream string, expected eventstore.ExpectedVersion, envs []domain.Envelope) (eventstore.AppendResult, error) {
	data := make([]eventstore.EventData, len(envs))
	for i, env := range envs {
		raw, err := domain.Encode(env)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("gateway: encode %s: %w", env.Type, err)
		}
		data[i] = eventstore.EventData{ID: raw.ID, Type: raw.Type, SchemaVersion: raw.SchemaVersion, Data: raw.Data, Metadata: raw.Metadata}
	}
	res, err := s.store.Append(ctx, stream, expected, data)
	if err != nil {
		return res, fmt.Errorf("gateway: append to %q: %w", stream, err)
	}
	return res, nil
}

// positionOf finds the global position of the event at version of stream
// (the original of an idempotent retry).
func (s *service) positionOf(ctx context.Context, stream string, version uint64) (eventstore.Position, error) {
	evs, err := s.store.ReadStream(ctx, stream, version, eventstore.Forward, 1)
	if err != nil {
		return 0, fmt.Errorf("gateway: read %q at %d: %w", stream, version, err)
	}
	if len(evs) == 0 {
		return 0, fmt.Errorf("gateway: %q has no version %d", stream, version)
	}
	return evs[0].Position, nil
}

// ensureTypingRetention sets the typing stream's MaxAge once per process.
func (s *service) ensureTypingRetention(ctx context.Context, roomID string) error {
	stream := domain.TypingStream(roomID)
	s.mu.Lock()
	done := s.typingMeta[stream]
	s.mu.Unlock()
	if done {
		return nil
	}
	if err := s.store.SetStreamMetadata(ctx, stream, eventstore.StreamMetadata{MaxAge: s.typingMaxAge}); err != nil {
		return fmt.Errorf("gateway: set typing retention of %q: %w", stream, err)
	}
	s.mu.Lock()
	if len(s.typingMeta) >= s.cacheSize {
		clear(s.typingMeta)
	}
	s.typingMeta[stream] = true
	s.mu.Unlock()
	return nil
}

func newRoom() folder     { return &domain.Room{} }
func newConv() folder     { return &domain.Conversation{} }
func newPresence() folder { return &presenceState{} }
