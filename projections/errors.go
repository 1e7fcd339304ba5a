package projections

import (
	"errors"
	"fmt"

	"github.com/wardline/wardline/eventstore"
)

var (
	// ErrProjectionFailed is matched (errors.Is) by *FailedError.
	ErrProjectionFailed = errors.New("projections: projection failed")
	// ErrUnknownProjection is returned for a name no projection of the
	// runner has.
	ErrUnknownProjection = errors.New("projections: unknown projection")
	// ErrRebuildInProgress is returned by Rebuild while another rebuild of
	// the same projection runs.
	ErrRebuildInProgress = errors.New("projections: rebuild already in progress")
	// ErrStopped is returned by WaitFor once Run has returned, since nothing
	// will advance the projections any more.
	ErrStopped = errors.New("projections: runner stopped")
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("projections: runner closed")
	// ErrRunning is returned by Run while another Run of the same runner is
	// in progress.
	ErrRunning = errors.New("projections: runner already running")
	// ErrLocked is returned when another process holds the projections db
	// (a server is running on this data directory).
	ErrLocked = errors.New("projections: projections db is in use by another process")
	// ErrNewerFormat is returned for a projections db written by a newer
	// version of Wardline.
	ErrNewerFormat = errors.New("projections: projections db format is newer than this binary")
	// ErrInvalidConfig is returned by NewRunner for a config it cannot run.
	ErrInvalidConfig = errors.New("projections: invalid config")
)

// FailedError is why a projection was parked: the event at Position could not
// be applied (or decoded) even after retries. The projection keeps serving
// its state as of the event before; it resumes only after a restart or a
// successful Rebuild. errors.Is(err, ErrProjectionFailed) is true.
type FailedError struct {
	Name     string
	Position eventstore.Position
	Err      error
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("failed at position %d: %v", e.Position, e.Err)
}

// Unwrap returns the cause.
func (e *FailedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrProjectionFailed) true.
func (e *FailedError) Is(target error) bool { return target == ErrProjectionFailed }
