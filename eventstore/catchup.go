package eventstore

import (
	"context"
	"fmt"
)

// DefaultCatchUpBatch is the batch size CatchUp uses when given 0.
const DefaultCatchUpBatch = 512

// ChangeSource is what CatchUp needs from a backend: a reader of the global
// log and a commit notification.
type ChangeSource interface {
	// ReadAll reads the global log as Store.ReadAll does. After the store is
	// closed it returns ErrClosed.
	ReadAll(ctx context.Context, from Position, limit int) ([]RecordedEvent, error)
	// Changed returns a channel that is closed once events committed after
	// the call are visible to ReadAll, or when the store closes. A backend
	// typically closes and replaces one channel on every commit.
	Changed() <-chan struct{}
}

// CatchUp implements Store.Subscribe on top of a ChangeSource, so backends
// share one subscription loop: it reads the log after from in batches of at
// most batch events (0 means DefaultCatchUpBatch) and hands each batch to
// handle; once it has caught up it waits for the next commit.
//
// It never skips an event because it takes the change channel before each
// read: a commit that lands after the read closes that channel (or a later
// one whose events the next read sees). It holds no backend resource while
// waiting. It returns ctx.Err() (wrapped) when ctx ends, handle's error as
// is, or ReadAll's error (ErrClosed once the store is closed).
func CatchUp(ctx context.Context, src ChangeSource, from Position, batch int, handle func(ctx context.Context, events []RecordedEvent) error) error {
	if batch <= 0 {
		batch = DefaultCatchUpBatch
	}
	if handle == nil {
		return fmt.Errorf("%w: nil handler", ErrInvalidArgument)
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("eventstore: subscription from %d: %w", from, err)
		}
		changed := src.Changed()
		events, err := src.ReadAll(ctx, from, batch)
		if err != nil {
			return err
		}
		if len(events) > 0 {
			if err := handle(ctx, events); err != nil {
				return err
			}
			from = events[len(events)-1].Position
			if len(events) == batch {
				continue // more history is likely waiting; don't sleep
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("eventstore: subscription from %d: %w", from, ctx.Err())
		case <-changed:
		}
	}
}
