package projections

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections/internal/fastdecode"
)

// retryMiddleware builds watermill's Retry middleware from the policy. One
// watermill message carries one batch for one projection; see applyWithRetry.
func retryMiddleware(cfg Config) middleware.Retry {
	return middleware.Retry{
		MaxRetries:      cfg.Retry.MaxRetries,
		InitialInterval: cfg.Retry.InitialInterval,
		MaxInterval:     cfg.Retry.MaxInterval,
		Multiplier:      2,
		ShouldRetry: func(p middleware.RetryParams) bool {
			var rp middleware.RecoveredPanicError
			if errors.As(p.Err, &rp) {
				return false
			}
			cfg.Logger.Warn("projections: apply failed; retrying", "attempt", p.RetryNum+1, "in", p.Delay, "err", p.Err)
			return true
		},
	}
}

// applyWithRetry applies batch to p through watermill's Recoverer and Retry
// middleware. Each attempt applies only what p has not applied yet (the
// events after p.Position()), so a retry never applies an event twice.
func (r *Runner) applyWithRetry(ctx context.Context, p Projection, batch []Applied) error {
	if len(batch) == 0 {
		return nil
	}
	h := func(msg *message.Message) ([]*message.Message, error) {
		pos := p.Position()
		rest := batch[sort.Search(len(batch), func(i int) bool { return batch[i].Position > pos }):]
		if len(rest) == 0 {
			return nil, nil
		}
		return nil, p.Apply(msg.Context(), rest)
	}
	msg := message.NewMessage("", nil)
	msg.SetContext(ctx)
	_, err := r.retry.Middleware(middleware.Recoverer(h))(msg)
	return err
}

// decodeBatch decodes into d (reusing its slices) the events that some slot
// folds (every event when all is set) and records, per event, which slots
// fold it.
func (r *Runner) decodeBatch(d *decoded, events []eventstore.RecordedEvent, masks map[string]uint64, allMask uint64, all bool) {
	d.events, d.masks, d.fails = d.events[:0], d.masks[:0], d.fails[:0]
	for i := range events {
		e := &events[i]
		mask := masks[e.Type] | allMask
		if mask == 0 && !all {
			continue
		}
		env, err := r.decode(e)
		if err != nil {
			if mask != 0 {
				d.fails = append(d.fails, decodeFailure{pos: e.Position, mask: mask, err: err})
			} else {
				r.cfg.Logger.Warn("projections: undecodable event skipped for OnApplied", "position", e.Position, "type", e.Type, "err", err)
			}
			continue
		}
		d.events = append(d.events, Applied{Position: e.Position, StreamVersion: e.Version, RecordedAt: e.RecordedAt, Envelope: env})
		d.masks = append(d.masks, mask)
	}
}

func (r *Runner) decode(e *eventstore.RecordedEvent) (domain.Envelope, error) {
	raw := domain.RawEvent{ID: e.ID, Stream: e.Stream, Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.Metadata}
	if !r.cfg.DisableFastDecode {
		if env, ok := fastdecode.Decode(raw); ok {
			return env, nil
		}
	}
	env, err := r.cfg.Decoder.Decode(raw)
	if err != nil {
		return domain.Envelope{}, fmt.Errorf("decode %s event %s: %w", e.Type, e.ID, err)
	}
	return env, nil
}

type decodeFailure struct {
	pos  eventstore.Position
	mask uint64
	err  error
}

// decoded is a batch after decoding: events[i] is folded by the slots in
// masks[i]; fails are the events some slot folds that would not decode.
type decoded struct {
	events []Applied
	masks  []uint64
	fails  []decodeFailure
}

// forSlot returns the events after from that the slot with bit folds, up to
// (not including) the first of them that failed to decode, which it returns
// as the *FailedError that parks the slot.
func (d *decoded) forSlot(bit uint64, from eventstore.Position) ([]Applied, *FailedError) {
	var stop *FailedError
	for _, f := range d.fails {
		if f.mask&bit != 0 && f.pos > from {
			stop = &FailedError{Position: f.pos, Err: f.err}
			break
		}
	}
	start := sort.Search(len(d.events), func(i int) bool { return d.events[i].Position > from })
	end := len(d.events)
	if stop != nil {
		end = sort.Search(len(d.events), func(i int) bool { return d.events[i].Position >= stop.Position })
	}
	if start >= end {
		return nil, stop
	}
	every := true
	for _, m := range d.masks[start:end] {
		if m&bit == 0 {
			every = false
			break
		}
	}
	if every {
		return d.events[start:end], stop
	}
	out := make([]Applied, 0, end-start)
	for i := start; i < end; i++ {
		if d.masks[i]&bit != 0 {
			out = append(out, d.events[i])
		}
	}
	return out, stop
}

// pipeline reads the log after from in pages and decodes them on several
// goroutines while the caller applies earlier pages in order: on two cores
// this overlaps the store's reads and the decoding (the bulk of the CPU)
// with folding. It stops after a short page (the head) or, when until is
// not 0, once it has passed until (pages are cut there).
type pipeline struct {
	store    eventstore.Store
	from     eventstore.Position
	until    eventstore.Position
	pageSize int
	// decode fills d from page; it runs on several goroutines at once.
	decode func(d *decoded, page []eventstore.RecordedEvent)
	// reuse lets a decoded buffer be used again once apply has returned.
	reuse bool
}

type pageJob struct {
	page    []eventstore.RecordedEvent
	d       *decoded
	last    bool
	err     error
	decoded chan struct{} // closed once d is filled
}

// run calls apply with each page and its decoded events, in log order. It
// returns nil after the last page, else apply's error, the store's or
// ctx's. Every goroutine it starts has ended when it returns.
func (p *pipeline) run(ctx context.Context, apply func(d *decoded, page []eventstore.RecordedEvent) error) error {
	workers := min(max(runtime.GOMAXPROCS(0), 1), 4)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	work := make(chan *pageJob, workers)
	ordered := make(chan *pageJob, workers+1) // bounds the pages in flight
	free := make(chan *decoded, workers+2)
	for range workers {
		wg.Go(func() {
			for job := range work {
				p.decode(job.d, job.page)
				close(job.decoded)
			}
		})
	}
	wg.Go(func() {
		defer close(ordered)
		defer close(work)
		pos := p.from
		for {
			job := &pageJob{decoded: make(chan struct{})}
			page, err := p.store.ReadAll(ctx, pos, p.pageSize)
			if err != nil {
				job.err, job.last = fmt.Errorf("read log after %d: %w", pos, err), true
				close(job.decoded)
			} else {
				job.page, job.last = p.cut(page)
				if len(job.page) > 0 {
					pos = job.page[len(job.page)-1].Position
				}
				select {
				case job.d = <-free:
				default:
					job.d = &decoded{}
				}
			}
			select {
			case ordered <- job:
			case <-ctx.Done():
				return
			}
			if job.err == nil {
				select {
				case work <- job:
				case <-ctx.Done():
					return
				}
			}
			if job.last {
				return
			}
		}
	})
	for job := range ordered {
		select {
		case <-job.decoded:
		case <-ctx.Done():
			return ctx.Err()
		}
		if job.err != nil {
			return job.err
		}
		if len(job.page) > 0 {
			if err := apply(job.d, job.page); err != nil {
				return err
			}
		}
		if p.reuse {
			select {
			case free <- job.d:
			default:
			}
		}
		if job.last {
			return nil
		}
	}
	return ctx.Err()
}

// cut trims a page to p.until and tells whether it is the last one.
func (p *pipeline) cut(page []eventstore.RecordedEvent) ([]eventstore.RecordedEvent, bool) {
	last := len(page) < p.pageSize
	if p.until == 0 {
		return page, last
	}
	n := len(page)
	for n > 0 && page[n-1].Position > p.until {
		n--
	}
	return page[:n], last || n < len(page) || n > 0 && page[n-1].Position >= p.until
}
