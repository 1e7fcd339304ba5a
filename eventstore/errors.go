package eventstore

import (
	"errors"
	"fmt"
)

var (
	// ErrWrongExpectedVersion is matched (errors.Is) by *WrongExpectedVersionError.
	ErrWrongExpectedVersion = errors.New("eventstore: wrong expected version")
	// ErrStreamNotFound is returned by reads of a stream that has no events.
	ErrStreamNotFound = errors.New("eventstore: stream not found")
	// ErrInvalidArgument is returned for malformed input (empty stream name,
	// empty event ID or type, no events, a non-positive limit).
	ErrInvalidArgument = errors.New("eventstore: invalid argument")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("eventstore: store closed")
	// ErrLocked is returned when another process owns the store.
	ErrLocked = errors.New("eventstore: store is locked by another process")
	// ErrNewerFormat is returned when the store was written by a newer
	// version of Wardline than this binary understands.
	ErrNewerFormat = errors.New("eventstore: store format is newer than this binary")
	// ErrForeignOffset is returned by ParseOffset for an offset of another store.
	ErrForeignOffset = errors.New("eventstore: offset belongs to another store")
	// ErrMalformedOffset is returned by ParseOffset for a string that is not an offset.
	ErrMalformedOffset = errors.New("eventstore: malformed offset")
)

// WrongExpectedVersionError reports a failed optimistic-concurrency check.
type WrongExpectedVersionError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   uint64 // the stream's version at the time of the append
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("eventstore: stream %q: expected version %s, actual %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) true.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

func (v ExpectedVersion) String() string {
	switch v {
	case AnyVersion:
		return "any"
	case NoStream:
		return "no stream"
	case StreamExists:
		return "stream exists"
	}
	return fmt.Sprintf("%d", int64(v))
}

// Check reports whether a stream at version current satisfies v.
func (v ExpectedVersion) Check(current uint64) bool {
	switch {
	case v == AnyVersion:
		return true
	case v == StreamExists:
		return current > 0
	case v >= 0:
		return uint64(v) == current
	}
	return false
}
