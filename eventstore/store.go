// Package eventstore holds the event log: the one source of truth in Wardline.
//
// Every command the gateway accepts becomes events appended here; projections,
// the audit trail and the WebSocket hub all read from here. The package defines
// the Store contract that every backend (embedded bbolt, PostgreSQL,
// EventStoreDB) satisfies, and the contract test suite (eventstore/storetest)
// that proves it.
//
// Terms:
//   - A stream is a named, ordered sequence of events ("room-icu-1"). Stream
//     versions start at 1 for the first event; version 0 means "no events".
//   - The global log orders every event of every stream totally. A Position
//     identifies an event in it; positions increase in commit order. The
//     embedded and PostgreSQL backends assign gap-free positions starting at 1;
//     EventStoreDB positions are increasing but not contiguous. Position 0 is
//     "before the first event", so reading or subscribing from 0 starts at the
//     beginning.
//   - Clients see positions only as opaque offsets (FormatOffset), which carry
//     the store's epoch so that an offset from another store is refused.
package eventstore

import (
	"context"
	"time"
)

// Position is an event's place in the global log. Reads and subscriptions
// "from" a position return the events strictly after it.
type Position uint64

// ExpectedVersion is the optimistic-concurrency condition of an append.
// Values >= 0 name the exact current version of the stream (0 = the stream
// has no events, the same as NoStream); the negative values are sentinels.
type ExpectedVersion int64

const (
	// AnyVersion appends whatever the stream's current version is.
	AnyVersion ExpectedVersion = -1
	// NoStream requires that the stream has no events yet.
	NoStream ExpectedVersion = 0
	// StreamExists requires that the stream has at least one event.
	StreamExists ExpectedVersion = -2
)

// Exact returns the condition "the stream's current version is v".
func Exact(v uint64) ExpectedVersion { return ExpectedVersion(v) }

// EventData is an event to append. The store treats Data and Metadata as
// opaque bytes (Wardline writes JSON); it never interprets them.
type EventData struct {
	// ID is unique across the store (Wardline uses UUIDv7 strings). It makes
	// appends idempotent: re-appending the same IDs at the same place is a
	// no-op that returns the original result.
	ID string
	// Type names the event ("MessagePosted").
	Type string
	// SchemaVersion is the version of Data's schema, for upcasting on read.
	SchemaVersion int
	Data          []byte
	Metadata      []byte
}

// RecordedEvent is an event as stored, with its place in its stream and in
// the global log.
type RecordedEvent struct {
	ID            string
	Stream        string
	Version       uint64 // the event's version in its stream, from 1
	Position      Position
	Type          string
	SchemaVersion int
	Data          []byte
	Metadata      []byte
	RecordedAt    time.Time // set by the store at commit, UTC
}

// AppendResult describes a successful append.
type AppendResult struct {
	// Version is the stream's version after the append (the last event's version).
	Version uint64
	// Positions holds the global position of each appended event, in order.
	Positions []Position
}

// LastPosition is the position of the last appended event, or 0 if none.
func (r AppendResult) LastPosition() Position {
	if len(r.Positions) == 0 {
		return 0
	}
	return r.Positions[len(r.Positions)-1]
}

// Direction of a stream read.
type Direction int

const (
	// Forward reads from the given version towards the newest.
	Forward Direction = iota + 1
	// Backward reads from the given version towards the oldest.
	Backward
)

// StreamMetadata sets retention for a stream. Events past retention are no
// longer returned by stream reads; they may still appear in the global log
// until the backend removes them. A zero field means "no limit".
type StreamMetadata struct {
	MaxAge   time.Duration
	MaxCount uint64
}

// Store is the event log contract that every backend satisfies and the
// storetest suite checks.
//
// Concurrency: every method is safe for concurrent use.
// Atomicity: an append commits all of its events or none.
// Durability: Append returns only after its events are durable (synced);
// a crash after Append returned loses none of them.
// Ordering: positions increase in commit order; a reader or subscriber that
// has seen position p never later sees an event at a position <= p.
// Context: a cancelled context aborts a blocking call with ctx.Err(), wrapped;
// an append whose context ends while it waits for the commit may or may not
// have been committed (the caller retries with the same event IDs).
//
// Errors: ErrWrongExpectedVersion (as *WrongExpectedVersionError) on a failed
// concurrency check, ErrStreamNotFound for reads of a stream with no events,
// ErrInvalidArgument for malformed input, ErrClosed after Close.
type Store interface {
	// Append adds events to the end of stream if expected holds.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events []EventData) (AppendResult, error)
	// ReadStream returns at most limit events of stream, starting at version
	// from (inclusive) in the given direction. Backward with from == 0 starts
	// at the newest event. Events past the stream's retention are skipped.
	ReadStream(ctx context.Context, stream string, from uint64, dir Direction, limit int) ([]RecordedEvent, error)
	// ReadAll returns at most limit events of the global log after position from.
	ReadAll(ctx context.Context, from Position, limit int) ([]RecordedEvent, error)
	// Subscribe delivers every event after position from to handle, in commit
	// order, in batches: first the history (catch-up), then live events as
	// they commit. It never skips or repeats an event. It blocks until ctx
	// ends (returning ctx.Err()) or handle returns an error (returned as is).
	// handle must not retain the slice after it returns.
	Subscribe(ctx context.Context, from Position, handle func(ctx context.Context, events []RecordedEvent) error) error
	// Head returns the position of the newest committed event (0 if empty).
	Head(ctx context.Context) (Position, error)
	// SetStreamMetadata sets stream's retention.
	SetStreamMetadata(ctx context.Context, stream string, meta StreamMetadata) error
	// StreamMetadata returns stream's retention (zero value if never set).
	StreamMetadata(ctx context.Context, stream string) (StreamMetadata, error)
	// Epoch identifies this store's log: it is created with the store and
	// never changes, so offsets from another (or a wiped) store are refused.
	Epoch() string
	// Close releases the store. Blocked calls return ErrClosed.
	Close() error
}
