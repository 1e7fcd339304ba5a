package projections

import (
	"context"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
)

// Applied is one event of the global log as projections and OnApplied
// listeners see it: decoded, with its place in the log.
type Applied struct {
	// Position is the event's place in the global log.
	Position eventstore.Position
	// StreamVersion is the event's version in its stream, from 1.
	StreamVersion uint64
	// RecordedAt is when the store committed the event (UTC).
	RecordedAt time.Time
	// Envelope is the decoded event.
	Envelope domain.Envelope
}

// Projection is a read model that the Runner keeps up to date from the log.
//
// Ordering: Apply receives events in log order, positions strictly increasing
// within and across calls, and never an event at or below Position().
//
// Atomicity: an Apply that returns nil has applied every event of the batch.
// An Apply that fails must leave the events before the failing one applied
// (Position() reporting the last of them) and no trace of the failing one, so
// that the runner can retry the rest of the batch without applying anything
// twice. Readers must never observe a half-applied event; implementations
// publish the whole batch to readers at once (for example under a write lock).
//
// Concurrency: the runner calls Apply, Position, MarshalSnapshot and Adopt
// from one goroutine at a time for a given instance; query methods of the
// concrete type may be called concurrently with all of them.
//
// Determinism: MarshalSnapshot must return the same bytes for the same state,
// however that state was reached (live, across restarts, or rebuilt), which
// is what lets a rebuild be compared byte for byte with the live model.
type Projection interface {
	// Name identifies the projection (its key in the projections db and in
	// Status). It must be stable, non-empty and unique within a Runner.
	Name() string
	// Version is the version of the fold code. Bumping it tells the runner
	// that stored snapshots of other versions are no longer valid: the
	// projection is rebuilt from position zero.
	Version() int
	// EventTypes lists the event types Apply folds; the runner decodes and
	// delivers only these (nil means every type). Events of other types still
	// advance the runner's checkpoint.
	EventTypes() []string
	// Position is the position of the last event Apply folded (0 if none).
	Position() eventstore.Position
	// Apply folds a batch of events into the model. It must not keep batch
	// after it returns (the runner reuses it); the envelopes' contents may
	// be kept.
	Apply(ctx context.Context, batch []Applied) error
	// MarshalSnapshot returns the model's state, deterministically.
	MarshalSnapshot() ([]byte, error)
	// UnmarshalSnapshot replaces the model's state with a snapshot made by
	// MarshalSnapshot of the same Version.
	UnmarshalSnapshot(data []byte) error
	// New returns an empty projection of the same kind and version, which a
	// rebuild fills beside the live one.
	New() Projection
	// Adopt replaces this projection's state with other's (a value returned
	// by New, filled by a rebuild) in one step that readers observe
	// atomically. other must not be used afterwards.
	Adopt(other Projection) error
}

// Decoder turns a stored event into an envelope, upcasting older schema
// versions first. It is declared here, where it is consumed, so that this
// package does not depend on package migrations: the binary wires
// migrations.Decode in.
//
// Decode must be safe for concurrent use and must not retain r's byte slices
// (the store may reuse them once its Subscribe handler returns).
type Decoder interface {
	Decode(r domain.RawEvent) (domain.Envelope, error)
}

// DecoderFunc adapts a function to Decoder.
type DecoderFunc func(domain.RawEvent) (domain.Envelope, error)

// Decode calls f(r).
func (f DecoderFunc) Decode(r domain.RawEvent) (domain.Envelope, error) { return f(r) }

// Progress reports how far a rebuild has come, for a progress bar.
type Progress struct {
	// Position is the last position applied; Head is the log's head when the
	// rebuild last looked. Position/Head is the fraction done (positions of
	// some backends are not contiguous, so it is not a count of events).
	Position eventstore.Position
	Head     eventstore.Position
	// Events is how many events the rebuild has read so far.
	Events uint64
	// Rate is Events per second since the rebuild started.
	Rate float64
	// Elapsed is the time since the rebuild started.
	Elapsed time.Duration
}

// ProgressFunc receives rebuild progress. It is called from the rebuilding
// goroutine after each page of events, so it must be quick.
type ProgressFunc func(Progress)
