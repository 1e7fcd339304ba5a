package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
)

// Defaults of Config.
const (
	DefaultSnapshotEvery    = 250_000
	DefaultSnapshotInterval = 30 * time.Second
	DefaultPageSize         = 4096
	maxProjections          = 64 // slots are tracked in a uint64 bitmask
)

// Config configures a Runner (and RebuildOffline).
type Config struct {
	// Store is the event log to follow. Required.
	Store eventstore.Store
	// Path is the projections db file, e.g. <dataDir>/projections.db. Required.
	Path string
	// Decoder decodes stored events, upcasting old schema versions; the
	// binary wires migrations.Decode. Nil means domain.Decode (current
	// schema versions only).
	Decoder Decoder
	// DisableFastDecode turns off the reflection-free decoder for hot event
	// types at their current schema version, so that Decoder sees every
	// event. The fast path decodes exactly as encoding/json does; it exists
	// because decoding dominates rebuild time.
	DisableFastDecode bool
	// SnapshotEvery persists the read models after this many events since
	// the last save (default DefaultSnapshotEvery).
	SnapshotEvery uint64
	// SnapshotInterval persists changed read models at least this often
	// (default DefaultSnapshotInterval). Run and Close also persist on the
	// way out, so only a crash replays events: at most this much of the log.
	SnapshotInterval time.Duration
	// PageSize is how many events a rebuild reads per ReadAll (default
	// DefaultPageSize).
	PageSize int
	// Retry is how a failing Apply is retried before the projection is
	// parked as failed.
	Retry RetryPolicy
	// OnApplied, if set, is called after each batch the Runner applied, on
	// the Runner's goroutine, with every event of the batch decoded and in
	// log order (events of types no projection folds included), once the
	// projections show the batch. It must return quickly (hand off to a
	// queue) and must not retain nothing but the slice it is given. Across
	// a restart it may see events again (from the oldest checkpoint).
	OnApplied func(ctx context.Context, batch []Applied)
	// Logger receives warnings and errors (default: discard).
	Logger *slog.Logger
	// Now is the clock for rates and snapshot timing (default time.Now).
	Now func() time.Time
}

// RetryPolicy is the exponential backoff between attempts of a failing
// Apply. A panicking Apply is not retried: its state may be torn.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt. Zero
	// means the default, 5; a negative value means no retries.
	MaxRetries int
	// InitialInterval is the wait before the first retry (default 100ms);
	// each following wait doubles, up to MaxInterval (default 2s).
	InitialInterval time.Duration
	MaxInterval     time.Duration
}

func (c *Config) setDefaults() {
	if c.Decoder == nil {
		c.Decoder = DecoderFunc(domain.Decode)
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.PageSize <= 0 {
		c.PageSize = DefaultPageSize
	}
	switch {
	case c.Retry.MaxRetries == 0:
		c.Retry.MaxRetries = 5
	case c.Retry.MaxRetries < 0:
		c.Retry.MaxRetries = 0
	}
	if c.Retry.InitialInterval <= 0 {
		c.Retry.InitialInterval = 100 * time.Millisecond
	}
	if c.Retry.MaxInterval <= 0 {
		c.Retry.MaxInterval = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	switch {
	case c.Store == nil:
		return fmt.Errorf("%w: no store", ErrInvalidConfig)
	case c.Path == "":
		return fmt.Errorf("%w: no projections db path", ErrInvalidConfig)
	}
	return nil
}

// State is a projection's condition, as Status reports it.
type State int

// States of a projection. The zero value is invalid.
const (
	// StateCatchingUp: applying history towards the head seen at start.
	StateCatchingUp State = iota + 1
	// StateLive: caught up; applying events as they commit.
	StateLive
	// StateRebuilding: being rebuilt from position zero, beside the live
	// state (Rebuild) or in place (no usable snapshot at start).
	StateRebuilding
	// StateFailed: parked after an event could not be applied; see Err.
	StateFailed
)

func (s State) String() string {
	switch s {
	case StateCatchingUp:
		return "catching-up"
	case StateLive:
		return "live"
	case StateRebuilding:
		return "rebuilding"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText renders the state as String does (for JSON status output).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Status describes one projection.
type Status struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// Checkpoint is the position up to which the projection has seen the
	// log; Head is the log's newest position; Lag = Head - Checkpoint.
	Checkpoint eventstore.Position `json:"checkpoint"`
	Head       eventstore.Position `json:"head"`
	Lag        uint64              `json:"lag"`
	State      State               `json:"state"`
	// Err is the *FailedError that parked the projection, if it is parked;
	// Error is its text ("failed at position P: cause") for JSON output.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
	// Rate is the events per second the projection went through recently.
	Rate float64 `json:"eventsPerSecond"`
	// Rebuild is the progress of a rebuild beside the live state, if any.
	Rebuild *Progress `json:"rebuild,omitempty"`
}

// Runner follows the global log from the projections' checkpoints and
// applies it to them; see the package doc for the design.
//
// Its methods are safe for concurrent use. Run applies events on one
// goroutine; Status, WaitFor and the projections' query methods may be
// called from any goroutine meanwhile.
type Runner struct {
	cfg    Config
	db     *snapshotDB
	slots  []*slot
	byName map[string]*slot
	// masks maps an event type to the slots that fold it; allMask holds the
	// slots that fold every type.
	masks   map[string]uint64
	allMask uint64

	retry middleware.Retry

	// life ends at Close, stopping rebuilds in progress.
	life     context.Context
	endLife  context.CancelFunc
	rebuilds sync.WaitGroup

	// dispatchMu is held while a batch is applied or snapshots are saved,
	// and by a rebuild while it switches, so that the switch happens
	// between two batches.
	dispatchMu sync.Mutex
	sinceSave  uint64    // guarded by dispatchMu
	lastSave   time.Time // guarded by dispatchMu

	mu        sync.Mutex // guards what follows and the slots' fields marked so
	cursor    eventstore.Position
	startHead eventstore.Position
	notify    chan struct{} // closed and replaced when a checkpoint or state changes
	running   bool
	stopped   bool
	closed    bool
	cancelRun context.CancelFunc
	runDone   chan struct{}
}

type slot struct {
	p   Projection
	bit uint64
	// guarded by Runner.mu:
	checkpoint eventstore.Position
	inPlace    bool // started from zero with no usable snapshot
	live       bool
	failure    *FailedError
	torn       bool // failed by a panic: never persist this state
	dirty      bool
	rebuild    *Progress
	meter      meter
}

// NewRunner opens the projections db at cfg.Path and restores each
// projection from its snapshot, so that queries answer from the persisted
// state at once. A projection without a usable snapshot (none yet, another
// Version, another store's epoch, unreadable) starts empty from position
// zero and reports StateRebuilding until it has caught up.
func NewRunner(ctx context.Context, cfg Config, projs ...Projection) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(projs) == 0 || len(projs) > maxProjections {
		return nil, fmt.Errorf("%w: %d projections (want 1 to %d)", ErrInvalidConfig, len(projs), maxProjections)
	}
	r := &Runner{
		cfg:    cfg,
		byName: map[string]*slot{},
		masks:  map[string]uint64{},
		notify: make(chan struct{}),
		retry:  retryMiddleware(cfg),
	}
	for i, p := range projs {
		name := p.Name()
		if name == "" || r.byName[name] != nil {
			return nil, fmt.Errorf("%w: projection name %q is empty or repeated", ErrInvalidConfig, name)
		}
		s := &slot{p: p, bit: 1 << i}
		r.slots = append(r.slots, s)
		r.byName[name] = s
		types := p.EventTypes()
		if types == nil {
			r.allMask |= s.bit
		}
		for _, t := range types {
			r.masks[t] |= s.bit
		}
	}
	db, err := openDB(cfg.Path)
	if err != nil {
		return nil, err
	}
	r.db = db
	for _, s := range r.slots {
		if err := r.restore(ctx, s); err != nil {
			_ = db.close()
			return nil, err
		}
	}
	r.cursor = r.startPosition()
	r.life, r.endLife = context.WithCancel(context.Background())
	r.lastSave = cfg.Now()
	return r, nil
}

func (r *Runner) restore(ctx context.Context, s *slot) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("projections: restore %q: %w", s.p.Name(), err)
	}
	st, err := r.db.load(s.p.Name())
	if err != nil {
		return err
	}
	log := r.cfg.Logger.With("projection", s.p.Name())
	switch {
	case !st.found:
		s.inPlace = true
		return nil
	case st.epoch != r.cfg.Store.Epoch():
		log.Warn("projections: snapshot belongs to another store; rebuilding from zero", "snapshotEpoch", st.epoch, "storeEpoch", r.cfg.Store.Epoch())
		s.inPlace = true
		return nil
	case st.version != s.p.Version():
		log.Warn("projections: snapshot of another version; rebuilding from zero", "snapshotVersion", st.version, "version", s.p.Version())
		s.inPlace = true
		return nil
	}
	if err := s.p.UnmarshalSnapshot(st.snapshot); err != nil {
		log.Error("projections: unreadable snapshot; rebuilding from zero", "err", err)
		// The projection may hold part of the snapshot; start from a clean one.
		if err := s.p.Adopt(s.p.New()); err != nil {
			return fmt.Errorf("projections: reset %q: %w", s.p.Name(), err)
		}
		s.inPlace = true
		return nil
	}
	s.checkpoint = st.checkpoint
	return nil
}

// startPosition is where following the log must start so that no projection
// that is not parked misses an event. Caller holds r.mu or owns r.
func (r *Runner) startPosition() eventstore.Position {
	var from eventstore.Position
	first := true
	for _, s := range r.slots {
		if s.failure != nil {
			continue
		}
		if first || s.checkpoint < from {
			from, first = s.checkpoint, false
		}
	}
	if first {
		return r.cursor
	}
	return from
}

// Projection returns the registered projection called name, or nil.
func (r *Runner) Projection(name string) Projection {
	if s := r.byName[name]; s != nil {
		return s.p
	}
	return nil
}

// Run follows the log and applies it to the projections until ctx ends
// (then it returns nil) or the store is closed. It resubscribes after
// transient store errors, with backoff. It persists the read models on the
// way out. Only one Run may be active at a time.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrClosed
	case r.running:
		r.mu.Unlock()
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.running, r.stopped = true, false
	r.cancelRun = cancel
	r.runDone = make(chan struct{})
	r.mu.Unlock()

	err := r.run(ctx)

	r.dispatchMu.Lock()
	if perr := r.persistLocked(); perr != nil {
		err = errors.Join(err, perr)
	}
	r.dispatchMu.Unlock()

	r.mu.Lock()
	r.running, r.stopped = false, true
	r.wakeLocked()
	close(r.runDone)
	r.mu.Unlock()
	return err
}

func (r *Runner) run(ctx context.Context) error {
	head, err := r.cfg.Store.Head(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("projections: read head: %w", err)
	}
	r.mu.Lock()
	r.startHead = head
	r.cursor = r.startPosition()
	from := r.cursor
	for _, s := range r.slots {
		r.markLiveLocked(s)
	}
	r.wakeLocked()
	r.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { r.persistLoop(ctx) })
	defer wg.Wait()
	// History up to the head seen at start is read ahead page by page, which
	// is faster than the store's subscription for a long catch-up (after a
	// downtime or a version bump); then the subscription takes over.
	if head > from {
		hook := r.cfg.OnApplied != nil
		p := pipeline{
			store: r.cfg.Store, from: from, until: head, pageSize: r.cfg.PageSize,
			reuse: !hook, // OnApplied may keep a batch
			decode: func(d *decoded, page []eventstore.RecordedEvent) {
				r.decodeBatch(d, page, r.masks, r.allMask, hook)
			},
		}
		err := p.run(ctx, func(d *decoded, page []eventstore.RecordedEvent) error {
			return r.dispatch(ctx, d, page[len(page)-1].Position, uint64(len(page)))
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.cfg.Logger.Warn("projections: catch-up read failed; the subscription takes over", "err", err)
		}
	}
	return r.follow(ctx)
}

// follow subscribes from the cursor and resubscribes after errors that are
// not the end of the store.
func (r *Runner) follow(ctx context.Context) error {
	const maxDelay = 5 * time.Second
	delay := 100 * time.Millisecond
	for {
		r.mu.Lock()
		from := r.cursor
		r.mu.Unlock()
		err := r.cfg.Store.Subscribe(ctx, from, r.handle)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, eventstore.ErrClosed) {
			return fmt.Errorf("projections: follow log from %d: %w", from, err)
		}
		r.mu.Lock()
		progressed := r.cursor != from
		r.mu.Unlock()
		if progressed {
			delay = 100 * time.Millisecond
		}
		r.cfg.Logger.Warn("projections: subscription ended; resubscribing", "from", from, "err", err, "after", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, maxDelay)
	}
}

// handle applies one batch of the subscription to every projection that is
// not parked, then publishes the new checkpoints and calls OnApplied.
func (r *Runner) handle(ctx context.Context, events []eventstore.RecordedEvent) error {
	if len(events) == 0 {
		return nil
	}
	b := &decoded{} // fresh each time: OnApplied may keep it
	r.decodeBatch(b, events, r.masks, r.allMask, r.cfg.OnApplied != nil)
	return r.dispatch(ctx, b, events[len(events)-1].Position, uint64(len(events)))
}

// dispatch applies a decoded batch, whose raw events end at last and number
// n, to every projection that is not parked, then publishes the new
// checkpoints, calls OnApplied and saves snapshots when due.
func (r *Runner) dispatch(ctx context.Context, b *decoded, last eventstore.Position, n uint64) error {
	r.dispatchMu.Lock()
	defer r.dispatchMu.Unlock()
	for _, s := range r.slots {
		r.mu.Lock()
		skip, from := s.failure != nil, s.checkpoint
		r.mu.Unlock()
		if skip {
			continue
		}
		if from < s.p.Position() {
			from = s.p.Position()
		}
		sub, stop := b.forSlot(s.bit, from)
		if err := r.applyWithRetry(ctx, s.p, sub); err != nil {
			if ctx.Err() != nil {
				r.advance(s, 0, 0)
				return fmt.Errorf("projections: apply %q: %w", s.p.Name(), ctx.Err())
			}
			r.park(s, sub, err)
			continue
		}
		if stop != nil {
			r.park(s, nil, stop)
			continue
		}
		r.advance(s, last, n)
	}

	r.mu.Lock()
	r.cursor = last
	r.wakeLocked()
	r.mu.Unlock()

	if r.cfg.OnApplied != nil {
		r.callOnApplied(ctx, b.events)
	}
	r.sinceSave += n
	if r.sinceSave >= r.cfg.SnapshotEvery || r.cfg.Now().Sub(r.lastSave) >= r.cfg.SnapshotInterval {
		if err := r.persistLocked(); err != nil {
			r.cfg.Logger.Error("projections: save snapshots", "err", err)
		}
	}
	return nil
}

// advance records that s has seen the log up to pos (or, with pos 0, up to
// what its projection reports applied).
func (r *Runner) advance(s *slot, pos eventstore.Position, n uint64) {
	if p := s.p.Position(); p > pos {
		pos = p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if pos > s.checkpoint {
		s.checkpoint = pos
		s.dirty = true
	}
	if n > 0 {
		s.meter.add(r.cfg.Now(), n)
	}
	r.markLiveLocked(s)
}

func (r *Runner) markLiveLocked(s *slot) {
	if !s.live && s.failure == nil && s.checkpoint >= r.startHead {
		s.live, s.inPlace = true, false
	}
}

// park stops applying events to s: the event after its last applied one
// failed (or, for a decode failure, cause is already a *FailedError).
func (r *Runner) park(s *slot, batch []Applied, cause error) {
	r.advance(s, 0, 0)
	fe, ok := cause.(*FailedError)
	if ok {
		fe.Name = s.p.Name()
		r.cfg.Logger.Error("projections: projection failed; parked", "projection", fe.Name, "position", fe.Position, "err", fe.Err)
	} else {
		fe = r.failure(s.p, firstAfter(batch, s.p.Position()), cause)
	}
	var rp middleware.RecoveredPanicError
	torn := errors.As(cause, &rp)
	r.mu.Lock()
	s.failure, s.torn = fe, torn
	r.wakeLocked()
	r.mu.Unlock()
}

// failure describes (and logs) p's failure to apply the event at pos. A
// panic is reduced to its value; its stack goes to the log only.
func (r *Runner) failure(p Projection, pos eventstore.Position, err error) *FailedError {
	fe := &FailedError{Name: p.Name(), Position: pos, Err: err}
	var rp middleware.RecoveredPanicError
	if errors.As(err, &rp) {
		fe.Err = fmt.Errorf("panic: %v", rp.V)
		r.cfg.Logger.Error("projections: projection panicked; parked", "projection", fe.Name, "position", pos, "panic", rp.V, "stack", rp.Stacktrace)
		return fe
	}
	r.cfg.Logger.Error("projections: projection failed; parked", "projection", fe.Name, "position", pos, "err", err)
	return fe
}

func firstAfter(batch []Applied, pos eventstore.Position) eventstore.Position {
	for _, a := range batch {
		if a.Position > pos {
			return a.Position
		}
	}
	return pos + 1
}

func (r *Runner) callOnApplied(ctx context.Context, batch []Applied) {
	defer func() {
		if v := recover(); v != nil {
			r.cfg.Logger.Error("projections: OnApplied panicked", "panic", v)
		}
	}()
	r.cfg.OnApplied(ctx, batch)
}

func (r *Runner) wakeLocked() {
	close(r.notify)
	r.notify = make(chan struct{})
}

// persistLoop saves changed read models every SnapshotInterval, so a quiet
// log does not leave the last batches unsaved until the next event.
func (r *Runner) persistLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.dispatchMu.Lock()
			if r.cfg.Now().Sub(r.lastSave) >= r.cfg.SnapshotInterval {
				if err := r.persistLocked(); err != nil {
					r.cfg.Logger.Error("projections: save snapshots", "err", err)
				}
			}
			r.dispatchMu.Unlock()
		}
	}
}

// persistLocked saves every changed projection with its checkpoint in one
// transaction. Caller holds dispatchMu, so no Apply runs meanwhile and each
// snapshot matches its checkpoint exactly.
func (r *Runner) persistLocked() error {
	var dirty []*slot
	r.mu.Lock()
	for _, s := range r.slots {
		if s.dirty && !s.torn {
			dirty = append(dirty, s)
		}
	}
	r.mu.Unlock()
	err := r.saveSlots(dirty)
	r.sinceSave, r.lastSave = 0, r.cfg.Now()
	return err
}

func (r *Runner) saveSlots(slots []*slot) error {
	recs := make([]record, 0, len(slots))
	for _, s := range slots {
		data, err := s.p.MarshalSnapshot()
		if err != nil {
			return fmt.Errorf("projections: snapshot %q: %w", s.p.Name(), err)
		}
		r.mu.Lock()
		cp := s.checkpoint
		r.mu.Unlock()
		recs = append(recs, record{name: s.p.Name(), version: s.p.Version(), checkpoint: cp, snapshot: data})
	}
	if err := r.db.save(r.cfg.Store.Epoch(), recs); err != nil {
		return err
	}
	r.mu.Lock()
	for _, s := range slots {
		s.dirty = false
	}
	r.mu.Unlock()
	return nil
}

// Close stops Run and any rebuild in progress, waits for them, saves the
// read models and closes the projections db. The projections' query
// methods keep answering from memory afterwards.
func (r *Runner) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	running, cancel, done := r.running, r.cancelRun, r.runDone
	r.endLife()
	r.wakeLocked()
	r.mu.Unlock()
	if running {
		cancel()
		<-done
	}
	r.rebuilds.Wait()
	r.dispatchMu.Lock()
	err := r.persistLocked()
	r.dispatchMu.Unlock()
	return errors.Join(err, r.db.close())
}

// Status reports every projection, in registration order.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	head, err := r.cfg.Store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("projections: status: read head: %w", err)
	}
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.slots))
	for _, s := range r.slots {
		st := Status{
			Name: s.p.Name(), Version: s.p.Version(), Checkpoint: s.checkpoint, Head: head,
			Rate: s.meter.value(now),
		}
		if head > s.checkpoint {
			st.Lag = uint64(head - s.checkpoint)
		}
		if s.failure != nil {
			st.Err, st.Error = s.failure, s.failure.Error()
		}
		switch {
		case s.rebuild != nil:
			p := *s.rebuild
			st.Rebuild = &p
			st.State = StateRebuilding
		case s.failure != nil:
			st.State = StateFailed
		case s.inPlace:
			st.State = StateRebuilding
		case s.live:
			st.State = StateLive
		default:
			st.State = StateCatchingUp
		}
		out = append(out, st)
	}
	return out, nil
}

// WaitFor blocks until the named projections (all of them when none is
// named) have applied the log up to pos, which is how a caller that just
// appended answers only once its own write is visible. It returns a
// *FailedError (errors.Is ErrProjectionFailed) if one of them is parked
// short of pos, ErrStopped once Run has returned short of pos, ErrClosed
// after Close, ErrUnknownProjection for an unknown name, or ctx's error.
func (r *Runner) WaitFor(ctx context.Context, pos eventstore.Position, names ...string) error {
	slots := r.slots
	if len(names) > 0 {
		slots = make([]*slot, 0, len(names))
		for _, n := range names {
			s := r.byName[n]
			if s == nil {
				return fmt.Errorf("%w: %q", ErrUnknownProjection, n)
			}
			slots = append(slots, s)
		}
	}
	for {
		r.mu.Lock()
		done, err := true, error(nil)
		for _, s := range slots {
			if s.checkpoint >= pos {
				continue
			}
			done = false
			if s.failure != nil {
				err = s.failure
				break
			}
		}
		switch {
		case done:
		case err != nil:
		case r.closed:
			err = ErrClosed
		case r.stopped:
			err = ErrStopped
		}
		wake := r.notify
		r.mu.Unlock()
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("projections: wait for position %d: %w", pos, ctx.Err())
		case <-wake:
		}
	}
}

// meter measures events per second over windows of about a second.
type meter struct {
	winStart time.Time
	n        uint64
	rate     float64
	last     time.Time
}

func (m *meter) add(now time.Time, n uint64) {
	if m.winStart.IsZero() {
		m.winStart = now
	}
	m.n += n
	m.last = now
	if el := now.Sub(m.winStart); el >= time.Second {
		m.rate = float64(m.n) / el.Seconds()
		m.n, m.winStart = 0, now
	}
}

func (m *meter) value(now time.Time) float64 {
	switch {
	case m.last.IsZero() || now.Sub(m.last) > 2*time.Second:
		return 0
	case m.rate > 0:
		return m.rate
	}
	if el := now.Sub(m.winStart); el > 0 {
		return float64(m.n) / el.Seconds()
	}
	return 0
}
