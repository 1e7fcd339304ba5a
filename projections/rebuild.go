package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/wardline/wardline/eventstore"
)

// Rebuild builds the projection called name again from position zero,
// beside the live one: the live state keeps serving queries and following
// the log meanwhile. Once the new state has caught up with the log's head,
// Rebuild waits for the batch in flight, applies the few events the live
// state got meanwhile to the new one, and switches (Projection.Adopt) between
// two batches, so readers go from the old state to the new one in one step.
// The new state is saved with its checkpoint at once; a parked projection
// is live again after a successful rebuild.
//
// progress, if not nil, is called after each page. Rebuild blocks until the
// switch, ctx ends, or the rebuild fails (the live state is then untouched).
// It works whether or not Run is active. Errors: ErrUnknownProjection,
// ErrRebuildInProgress, ErrClosed, a *FailedError for an event the new state
// could not apply, or ctx's error.
func (r *Runner) Rebuild(ctx context.Context, name string, progress ProgressFunc) error {
	s := r.byName[name]
	if s == nil {
		return fmt.Errorf("%w: %q", ErrUnknownProjection, name)
	}
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrClosed
	case s.rebuild != nil:
		r.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrRebuildInProgress, name)
	}
	s.rebuild = &Progress{}
	r.rebuilds.Add(1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		s.rebuild = nil
		r.wakeLocked()
		r.mu.Unlock()
		r.rebuilds.Done()
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.life, cancel)()

	report := func(p Progress) {
		r.mu.Lock()
		*s.rebuild = p
		r.mu.Unlock()
		if progress != nil {
			progress(p)
		}
	}
	f := r.newFilling(s.p.New(), report)
	if err := f.run(ctx, 0); err != nil {
		return fmt.Errorf("projections: rebuild %q: %w", name, err)
	}

	r.dispatchMu.Lock()
	defer r.dispatchMu.Unlock()
	r.mu.Lock()
	target := r.cursor
	r.mu.Unlock()
	if f.pos < target {
		if err := f.run(ctx, target); err != nil {
			return fmt.Errorf("projections: rebuild %q: catch up to %d: %w", name, target, err)
		}
	}
	if err := s.p.Adopt(f.p); err != nil {
		return fmt.Errorf("projections: rebuild %q: switch: %w", name, err)
	}
	r.mu.Lock()
	s.checkpoint = f.pos
	s.failure, s.torn, s.inPlace, s.dirty = nil, false, false, true
	s.live = false
	r.markLiveLocked(s)
	r.wakeLocked()
	r.mu.Unlock()
	// Saved at once, so a crash now cannot bring the replaced state back.
	if err := r.saveSlots([]*slot{s}); err != nil {
		return fmt.Errorf("projections: rebuild %q: switched, but %w", name, err)
	}
	report(f.progress())
	return nil
}

// RebuildOffline builds p (empty, as New returns it) from position zero up
// to the log's head and saves it, with its checkpoint, in the projections
// db at cfg.Path, replacing what was stored for p.Name(). It is what
// `wardline projections rebuild NAME` runs on a data directory no server is
// using (the db is locked otherwise: ErrLocked). OnApplied, SnapshotEvery and
// SnapshotInterval are not used. It returns the final progress.
func RebuildOffline(ctx context.Context, cfg Config, p Projection, progress ProgressFunc) (Progress, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return Progress{}, err
	}
	if p.Position() != 0 {
		return Progress{}, fmt.Errorf("%w: projection %q is not empty (position %d)", ErrInvalidConfig, p.Name(), p.Position())
	}
	db, err := openDB(cfg.Path)
	if err != nil {
		return Progress{}, err
	}
	r := &Runner{cfg: cfg, db: db, retry: retryMiddleware(cfg)}
	f := r.newFilling(p, progress)
	if err := f.run(ctx, 0); err != nil {
		return f.progress(), errorsJoinClose(fmt.Errorf("projections: rebuild %q: %w", p.Name(), err), db)
	}
	data, err := p.MarshalSnapshot()
	if err != nil {
		return f.progress(), errorsJoinClose(fmt.Errorf("projections: rebuild %q: snapshot: %w", p.Name(), err), db)
	}
	rec := record{name: p.Name(), version: p.Version(), checkpoint: f.pos, snapshot: data}
	if err := db.save(cfg.Store.Epoch(), []record{rec}); err != nil {
		return f.progress(), errorsJoinClose(err, db)
	}
	if err := db.close(); err != nil {
		return f.progress(), fmt.Errorf("projections: close db: %w", err)
	}
	return f.progress(), nil
}

func errorsJoinClose(err error, db *snapshotDB) error {
	if cerr := db.close(); cerr != nil {
		return fmt.Errorf("%w (and closing the db: %v)", err, cerr)
	}
	return err
}

// filling reads the log page by page into one projection, for rebuilds.
type filling struct {
	r        *Runner
	p        Projection
	masks    map[string]uint64
	allMask  uint64
	pos      eventstore.Position // last position read
	events   uint64
	started  time.Time
	head     eventstore.Position
	headAt   time.Time
	progFunc ProgressFunc
}

func (r *Runner) newFilling(p Projection, progress ProgressFunc) *filling {
	f := &filling{r: r, p: p, masks: map[string]uint64{}, started: r.cfg.Now(), progFunc: progress}
	types := p.EventTypes()
	if types == nil {
		f.allMask = 1
	}
	for _, t := range types {
		f.masks[t] = 1
	}
	return f
}

// run applies the log after f.pos until the head (a short page) or, when
// until is not 0, up to until.
func (f *filling) run(ctx context.Context, until eventstore.Position) error {
	p := pipeline{
		store: f.r.cfg.Store, from: f.pos, until: until, pageSize: f.r.cfg.PageSize,
		reuse: true, // Apply does not keep its batch
		decode: func(d *decoded, page []eventstore.RecordedEvent) {
			f.r.decodeBatch(d, page, f.masks, f.allMask, false)
		},
	}
	return p.run(ctx, func(d *decoded, page []eventstore.RecordedEvent) error {
		sub, stop := d.forSlot(1, max(f.pos, f.p.Position()))
		if err := f.r.applyWithRetry(ctx, f.p, sub); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return f.r.failure(f.p, firstAfter(sub, f.p.Position()), err)
		}
		if stop != nil {
			stop.Name = f.p.Name()
			return stop
		}
		f.pos = page[len(page)-1].Position
		f.events += uint64(len(page))
		f.report(ctx)
		return nil
	})
}

func (f *filling) report(ctx context.Context) {
	if f.progFunc == nil {
		return
	}
	if now := f.r.cfg.Now(); f.headAt.IsZero() || now.Sub(f.headAt) >= time.Second {
		if h, err := f.r.cfg.Store.Head(ctx); err == nil {
			f.head, f.headAt = h, now
		}
	}
	f.progFunc(f.progress())
}

func (f *filling) progress() Progress {
	el := f.r.cfg.Now().Sub(f.started)
	p := Progress{Position: f.pos, Head: max(f.head, f.pos), Events: f.events, Elapsed: el}
	if el > 0 {
		p.Rate = float64(f.events) / el.Seconds()
	}
	return p
}
