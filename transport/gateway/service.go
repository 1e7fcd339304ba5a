package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
//
// Requests that arrive while a decision on the stream waits for its append
// queue in waiting; whoever finds the stream idle becomes its leader and
// decides everything queued, in arrival order, appending the events of
// consecutive decisions in one append (see service.execute).
type streamEntry struct {
	mu      sync.Mutex
	state   folder
	version uint64
	lastPos eventstore.Position

	qmu     sync.Mutex
	waiting []*decision
	leading bool
}

// decision is one request's decide (and after) waiting for its stream.
type decision struct {
	ctx    context.Context
	actor  domain.Actor
	decide decideFunc
	after  func(st folder) error
	done   chan decisionResult // buffered: the leader never blocks on it
}

type decisionResult struct {
	res appended
	err error
}

// service is the command side: load state, decide, append, answer.
type service struct {
	store     eventstore.Store
	decoder   projections.Decoder
	limits    domain.Limits
	nodeID    string
	now       func() time.Time
	cacheSize int

	// states caches the folded states of rooms and conversations;
	// presence those of users' presence streams, which are decided on
	// only when a session starts or ends and reload from their last few
	// events (presenceState.rebasesAt), so that the users of idle
	// connections need not all keep theirs.
	states, presence *stateCache

	mu sync.Mutex
	// typingMeta remembers the typing streams whose retention this node
	// has set, so SetStreamMetadata runs once per stream and process.
	typingMeta   map[string]bool
	typingMaxAge time.Duration

	// spawn runs a stream's leader on a goroutine the gateway owns; false
	// once the gateway is shutting down.
	spawn func(func()) bool
}

func newService(cfg *Config) *service {
	return &service{
		store: cfg.Store, decoder: cfg.Decoder, limits: cfg.Limits, nodeID: cfg.NodeID,
		now: cfg.Now, cacheSize: DefaultStateCacheSize,
		states: newStateCache(DefaultStateCacheSize), presence: newStateCache(DefaultPresenceCacheSize), typingMeta: map[string]bool{},
		typingMaxAge: cfg.TypingMaxAge,
		spawn:        func(func()) bool { return false },
	}
}

// decisionContext is what a decision may know: time, actor, ids, limits.
func (s *service) decisionContext(actor domain.Actor) domain.Context {
	return domain.Context{
		Now: s.now().UTC().Truncate(time.Millisecond), Actor: actor, NewID: domain.NewID,
		Limits: s.limits, NodeID: s.nodeID,
	}
}

// cacheFor returns the cache that holds stream's state.
func (s *service) cacheFor(stream string) *stateCache {
	if strings.HasPrefix(stream, domain.PresenceStreamPrefix) {
		return s.presence
	}
	return s.states
}

// rebaser is a folded state whose value after some events does not depend
// on the events before them. A fresh entry of such a state is loaded from
// the newest of those events, read backwards, rather than from the stream's
// first event: reloading a long stream whose state was evicted costs what
// its recent tail does.
type rebaser interface {
	folder
	// rebasesAt reports whether the state after an event of type typ is
	// the same whatever events preceded it.
	rebasesAt(typ string) bool
}

// catchUp folds the events appended to stream after e's version.
func (s *service) catchUp(ctx context.Context, stream string, e *streamEntry) error {
	if rb, ok := e.state.(rebaser); ok && e.version == 0 {
		return s.loadTail(ctx, stream, e, rb)
	}
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

// loadTail folds into the fresh entry e the events of stream from the
// newest one at which its state rebases (or from the first, if none does),
// reading backwards in pages that grow from a few events.
func (s *service) loadTail(ctx context.Context, stream string, e *streamEntry, rb rebaser) error {
	const firstPage, maxPage = 8, 512
	var tail []eventstore.RecordedEvent // newest first
	from, page := uint64(0), firstPage  // Backward from 0: the newest event
read:
	for {
		evs, err := s.store.ReadStream(ctx, stream, from, eventstore.Backward, page)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gateway: read stream %q: %w", stream, err)
		}
		for _, r := range evs {
			tail = append(tail, r)
			if rb.rebasesAt(r.Type) {
				break read
			}
		}
		if len(evs) < page || evs[len(evs)-1].Version <= 1 {
			break
		}
		from, page = evs[len(evs)-1].Version-1, min(page*4, maxPage)
	}
	for i := len(tail) - 1; i >= 0; i-- {
		env, err := s.decode(tail[i])
		if err != nil {
			return err
		}
		e.state.Apply(env)
	}
	if len(tail) > 0 {
		e.version, e.lastPos = tail[0].Version, tail[0].Position
	}
	return nil
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
//
// Decisions on one stream are taken one at a time in arrival order, but do
// not wait for each other's appends: while one batch is being appended, new
// requests queue, and the next batch decides them all on the state the
// previous ones left and appends their events together (one commit, one
// fsync), so a busy room is not limited to one message per commit.
func (s *service) execute(ctx context.Context, actor domain.Actor, stream string, mk func() folder, decide decideFunc, after func(st folder) error) (appended, error) {
	return s.enqueue(ctx, actor, stream, mk, decide, after, false)()
}

// submit queues the decision like execute but does not wait for it: the
// stream's leader runs on a goroutine of its own when none is running, and
// the returned function waits for the outcome. Decisions submitted one
// after another on a stream are decided in that order, which is what lets
// a connection pipeline its message:send requests.
func (s *service) submit(ctx context.Context, actor domain.Actor, stream string, mk func() folder, decide decideFunc) func() (appended, error) {
	return s.enqueue(ctx, actor, stream, mk, decide, nil, true)
}

func (s *service) enqueue(ctx context.Context, actor domain.Actor, stream string, mk func() folder, decide decideFunc, after func(st folder) error, async bool) func() (appended, error) {
	d := &decision{ctx: ctx, actor: actor, decide: decide, after: after, done: make(chan decisionResult, 1)}
	e, lead := s.cacheFor(stream).enqueue(stream, mk, d)
	if lead && !(async && s.spawn(func() { s.lead(stream, mk, e, nil) })) {
		// Synchronous, or the gateway is shutting down and owns no more
		// goroutines: the caller leads.
		s.lead(stream, mk, e, d)
	}
	return d.wait
}

func (d *decision) wait() (appended, error) {
	select {
	case r := <-d.done:
		return r.res, r.err
	case <-d.ctx.Done():
		// The leader may still append it; like a request whose
		// connection dropped mid-append, it is then in the log unanswered
		// (a retry with the same clientMsgId finds it).
		return appended{}, d.ctx.Err()
	}
}

// maxBatch bounds the decisions appended together, and so one append's size
// and the wait of the last of them.
const maxBatch = 256

// appendTimeout bounds the reads and the append of a batch, which no single
// request's context may cancel.
const appendTimeout = 30 * time.Second

// lead decides the waiting decisions of e batch after batch until none is
// left. It runs on the goroutine of the request that found the stream idle:
// a goroutine of its own for a submitted decision, the caller's for own, a
// synchronous one. A caller leads only until its own decision is answered
// (the first batch holds it) and then hands what is left to a goroutine
// of the gateway, or a busy room would keep it from ever answering.
func (s *service) lead(stream string, mk func() folder, e *streamEntry, own *decision) {
	for {
		e.qmu.Lock()
		batch := e.waiting
		if len(batch) > maxBatch {
			batch = batch[:maxBatch:maxBatch]
			e.waiting = e.waiting[maxBatch:]
		} else {
			e.waiting = nil
		}
		if len(batch) == 0 {
			e.leading = false
			e.qmu.Unlock()
			s.cacheFor(stream).settle(stream, e)
			return
		}
		e.qmu.Unlock()
		e.mu.Lock()
		s.decideBatch(stream, mk, e, batch)
		e.mu.Unlock()
		if own != nil {
			e.qmu.Lock()
			more := len(e.waiting) > 0
			if !more {
				e.leading = false
			}
			e.qmu.Unlock()
			if !more {
				s.cacheFor(stream).settle(stream, e)
				return
			}
			if s.spawn(func() { s.lead(stream, mk, e, nil) }) {
				return
			}
		}
	}
}

// pendingDecision is a decided request whose events await the batch append.
type pendingDecision struct {
	d    *decision
	envs []domain.Envelope
}

// decideBatch decides batch in order. Events for the stream itself are
// applied to the cached state at once, so that each decision sees the ones
// before it, and appended together with the stream's expected version. A
// decision that needs the durable state (an error, no events, an after
// hook, events for another stream) has the events before it appended first
// and is then decided again on that state. When an append fails the
// speculative state is dropped and reloaded; after a version conflict (a
// write of another node) the pending decisions are decided again.
func (s *service) decideBatch(stream string, mk func() folder, e *streamEntry, batch []*decision) {
	var pending []pendingDecision
	conflicts := 0
	caughtUp := false
	// flush appends the pending events; false means a version conflict
	// sent the pending decisions back to be decided again.
	flush := func() bool {
		if len(pending) == 0 {
			return true
		}
		var envs []domain.Envelope
		for _, p := range pending {
			envs = append(envs, p.envs...)
		}
		// The append serves every pending request, so no single
		// requester's cancellation may abort it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(pending[0].d.ctx), appendTimeout)
		res, err := s.appendEnvelopes(ctx, stream, eventstore.Exact(e.version), envs)
		cancel()
		if err != nil {
			s.reset(e, mk)
			caughtUp = false
			if errors.Is(err, eventstore.ErrWrongExpectedVersion) && conflicts < DefaultMaxRetries {
				conflicts++
				again := make([]*decision, 0, len(pending)+len(batch))
				for _, p := range pending {
					again = append(again, p.d)
				}
				batch = append(again, batch...)
				pending = pending[:0]
				return false
			}
			for _, p := range pending {
				p.d.done <- decisionResult{err: err}
			}
			pending = pending[:0]
			return true
		}
		e.version = res.Version
		e.lastPos = res.Positions[len(res.Positions)-1]
		i := 0
		for _, p := range pending {
			n := len(p.envs)
			p.d.done <- decisionResult{res: appended{Positions: res.Positions[i : i+n], StreamPos: res.Positions[i+n-1]}}
			i += n
		}
		pending = pending[:0]
		return true
	}
	for {
		if len(batch) == 0 {
			if flush() {
				return
			}
			continue
		}
		d := batch[0]
		if err := d.ctx.Err(); err != nil {
			d.done <- decisionResult{err: err}
			batch = batch[1:]
			continue
		}
		if !caughtUp {
			// The reads serve the whole batch: one requester's
			// cancellation must not fail the others.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), appendTimeout)
			err := s.catchUp(ctx, stream, e)
			cancel()
			if err != nil {
				s.reset(e, mk)
				for _, p := range pending {
					p.d.done <- decisionResult{err: err}
				}
				for _, d := range batch {
					d.done <- decisionResult{err: err}
				}
				return
			}
			caughtUp = true
		}
		c := s.decisionContext(d.actor)
		envs, err := decideEnvelopes(c, d, e.state)
		if err == nil && len(envs) > 0 && envs[0].Stream == stream && d.after == nil {
			for _, env := range envs {
				e.state.Apply(env)
			}
			pending = append(pending, pendingDecision{d: d, envs: envs})
			batch = batch[1:]
			continue
		}
		if len(pending) > 0 {
			flush() // then d is decided again, on the durable state
			continue
		}
		d.done <- s.finish(stream, e, d, c, envs, err)
		batch = batch[1:]
	}
}

// decideEnvelopes runs d's decide and wraps its events.
func decideEnvelopes(c domain.Context, d *decision, state folder) ([]domain.Envelope, error) {
	events, err := d.decide(c, state)
	if err != nil || len(events) == 0 {
		return nil, err
	}
	envs, err := c.Wrap(events)
	if err != nil {
		return nil, fmt.Errorf("gateway: wrap: %w", err)
	}
	return envs, nil
}

// finish completes a decision taken on the durable state: an error (with
// the access denial it may carry), nothing to append, events for another
// stream, or events for the stream followed by the after hook, deciding
// again after version conflicts.
func (s *service) finish(stream string, e *streamEntry, d *decision, c domain.Context, envs []domain.Envelope, err error) decisionResult {
	for attempt := 1; ; attempt++ {
		if err != nil {
			var denied *domain.AccessDeniedError
			if errors.As(err, &denied) {
				if _, aerr := s.appendAny(d.ctx, c, []domain.Event{denied.Denial}); aerr != nil {
					return decisionResult{err: errors.Join(err, aerr)}
				}
			}
			return decisionResult{err: err}
		}
		if len(envs) == 0 {
			if d.after != nil {
				if err := d.after(e.state); err != nil {
					return decisionResult{err: err}
				}
			}
			return decisionResult{res: appended{StreamPos: e.lastPos}}
		}
		if envs[0].Stream != stream {
			res, err := s.appendEnvelopes(d.ctx, envs[0].Stream, eventstore.AnyVersion, envs)
			if err != nil {
				return decisionResult{err: err}
			}
			return decisionResult{res: appended{Positions: res.Positions, StreamPos: e.lastPos}}
		}
		res, aerr := s.appendEnvelopes(d.ctx, stream, eventstore.Exact(e.version), envs)
		if errors.Is(aerr, eventstore.ErrWrongExpectedVersion) && attempt < DefaultMaxRetries {
			if cerr := s.catchUp(d.ctx, stream, e); cerr != nil {
				return decisionResult{err: cerr}
			}
			c = s.decisionContext(d.actor)
			envs, err = decideEnvelopes(c, d, e.state)
			continue
		}
		if aerr != nil {
			return decisionResult{err: aerr}
		}
		for i, env := range envs {
			e.state.Apply(env)
			e.lastPos = res.Positions[i]
		}
		e.version = res.Version
		if d.after != nil {
			if err := d.after(e.state); err != nil {
				return decisionResult{err: err}
			}
		}
		return decisionResult{res: appended{Positions: res.Positions, StreamPos: e.lastPos}}
	}
}

// reset drops e's state, which may hold events that were never appended,
// so the next decision reloads it from the store.
func (s *service) reset(e *streamEntry, mk func() folder) {
	e.state, e.version, e.lastPos = mk(), 0, 0
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
