package eventstore

import (
	"fmt"
	"time"
)

// ValidateAppend checks an Append's arguments the way every backend must,
// so that malformed input is ErrInvalidArgument everywhere and never
// reaches storage.
func ValidateAppend(stream string, expected ExpectedVersion, events []EventData) error {
	if stream == "" {
		return fmt.Errorf("%w: empty stream name", ErrInvalidArgument)
	}
	if expected < StreamExists {
		return fmt.Errorf("%w: expected version %d", ErrInvalidArgument, int64(expected))
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: append to %q with no events", ErrInvalidArgument, stream)
	}
	var seen map[string]struct{}
	if len(events) > 1 {
		seen = make(map[string]struct{}, len(events))
	}
	for i, e := range events {
		if e.ID == "" {
			return fmt.Errorf("%w: event %d of append to %q has no ID", ErrInvalidArgument, i, stream)
		}
		if e.Type == "" {
			return fmt.Errorf("%w: event %s has no type", ErrInvalidArgument, e.ID)
		}
		if seen != nil {
			if _, dup := seen[e.ID]; dup {
				return fmt.Errorf("%w: event ID %s appears twice in one append", ErrInvalidArgument, e.ID)
			}
			seen[e.ID] = struct{}{}
		}
	}
	return nil
}

// ValidateReadStream checks a ReadStream's arguments.
func ValidateReadStream(stream string, dir Direction, limit int) error {
	if stream == "" {
		return fmt.Errorf("%w: empty stream name", ErrInvalidArgument)
	}
	if dir != Forward && dir != Backward {
		return fmt.Errorf("%w: direction %d", ErrInvalidArgument, dir)
	}
	if limit <= 0 {
		return fmt.Errorf("%w: limit %d", ErrInvalidArgument, limit)
	}
	return nil
}

// Retains reports whether retention m keeps the event at version of a stream
// whose newest version is last, recorded at recordedAt, at time now.
func (m StreamMetadata) Retains(version, last uint64, recordedAt, now time.Time) bool {
	if m.MaxCount > 0 && last >= m.MaxCount && version <= last-m.MaxCount {
		return false
	}
	if m.MaxAge > 0 && now.Sub(recordedAt) >= m.MaxAge {
		return false
	}
	return true
}
