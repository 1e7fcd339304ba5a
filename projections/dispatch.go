package projections

import (
	"context"
	"errors"
	"fmt"
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

// readAhead calls fn with successive pages of the log after from, reading
// the next page on another goroutine while fn works on the current one (on
// two cores that overlaps the store's read with decoding and folding). It
// returns nil after a short page (the head) or, when until is not 0, once
// it has passed until (pages are cut there); otherwise fn's error, the
// store's, or ctx's. The reading goroutine has ended when it returns.
func readAhead(ctx context.Context, store eventstore.Store, from, until eventstore.Position, pageSize int, fn func(page []eventstore.RecordedEvent) error) error {
	type result struct {
		page []eventstore.RecordedEvent
		last bool
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan result, 2)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() {
		defer close(pages)
		pos := from
		for {
			page, err := store.ReadAll(ctx, pos, pageSize)
			var res result
			if err != nil {
				res = result{err: fmt.Errorf("read log after %d: %w", pos, err), last: true}
			} else {
				res = result{page: page, last: len(page) < pageSize}
				if until > 0 {
					n := len(page)
					for n > 0 && page[n-1].Position > until {
						n--
					}
					res.page = page[:n]
					res.last = res.last || n < len(page) || n > 0 && page[n-1].Position >= until
				}
				if len(res.page) > 0 {
					pos = res.page[len(res.page)-1].Position
				}
			}
			select {
			case pages <- res:
			case <-ctx.Done():
				return
			}
			if res.last {
				return
			}
		}
	})
	for res := range pages {
		if res.err != nil {
			return res.err
		}
		if len(res.page) > 0 {
			if err := fn(res.page); err != nil {
				return err
			}
		}
		if res.last {
			return nil
		}
	}
	return ctx.Err()
}
