package migrations

import (
	"context"
	"errors"
	"fmt"
)

var (
	// ErrNewerFormat is returned by Plan when the store's format marker is
	// newer than every step this binary knows: a newer Wardline wrote it.
	ErrNewerFormat = errors.New("migrations: store format is newer than this binary")
	// ErrDowngrade is returned by Plan for a target below the current format.
	ErrDowngrade = errors.New("migrations: store formats are never downgraded")
	// ErrBadSteps is returned when a backend's steps are not numbered 1, 2, 3, ...
	ErrBadSteps = errors.New("migrations: format steps must be numbered 1, 2, 3, ... in order")
)

// Step is one change of a store backend's on-disk format.
type Step struct {
	// Version is the format version the store has after the step.
	Version int
	// Description says what the step does, for `wardline migrate` output.
	Description string
	// Apply makes the change and records Version as the store's format
	// marker, atomically; it must stop when ctx ends.
	Apply func(ctx context.Context) error
}

// Steps is a backend's complete list of format steps, oldest first. Format 0
// is an empty store, before step 1.
type Steps []Step

// Latest returns the newest format version the steps reach (0 for none).
func (s Steps) Latest() int { return len(s) }

func (s Steps) check() error {
	for i, st := range s {
		if st.Version != i+1 {
			return fmt.Errorf("%w: step %d has version %d", ErrBadSteps, i+1, st.Version)
		}
		if st.Apply == nil {
			return fmt.Errorf("%w: step %d has no Apply", ErrBadSteps, st.Version)
		}
	}
	return nil
}

// Plan returns the steps that take a store from format current to target, in
// order; none when it is already there.
func (s Steps) Plan(current, target int) ([]Step, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	switch {
	case current < 0 || target < 0:
		return nil, fmt.Errorf("migrations: plan from %d to %d: %w: negative format", current, target, ErrBadSteps)
	case current > s.Latest():
		return nil, fmt.Errorf("migrations: store format %d, this binary knows up to %d: %w", current, s.Latest(), ErrNewerFormat)
	case target > s.Latest():
		return nil, fmt.Errorf("migrations: target format %d, this binary knows up to %d: %w", target, s.Latest(), ErrNewerFormat)
	case target < current:
		return nil, fmt.Errorf("migrations: store format %d, target %d: %w", current, target, ErrDowngrade)
	}
	return append([]Step(nil), s[current:target]...), nil
}

// Run applies plan in order, calling before (if not nil) ahead of each step
// so the caller can report progress. It stops at the first failure; since
// every step records its own version, running the new plan later resumes
// there.
func Run(ctx context.Context, plan []Step, before func(Step)) error {
	for _, st := range plan {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("migrations: before format %d: %w", st.Version, err)
		}
		if before != nil {
			before(st)
		}
		if err := st.Apply(ctx); err != nil {
			return fmt.Errorf("migrations: format %d (%s): %w", st.Version, st.Description, err)
		}
	}
	return nil
}
