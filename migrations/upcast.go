package migrations

import (
	"errors"
	"fmt"
	"sync"

	"github.com/wardline/wardline/domain"
)

var (
	// ErrMissingUpcaster is matched by *MissingUpcasterError.
	ErrMissingUpcaster = errors.New("migrations: no upcaster for a stored schema version")
	// ErrNewerSchema is returned for an event stored with a schema version
	// newer than this binary's: it was written by a newer Wardline.
	ErrNewerSchema = errors.New("migrations: event schema version is newer than this binary")
	// ErrInvalidSchemaVersion is returned for a negative stored version.
	ErrInvalidSchemaVersion = errors.New("migrations: invalid stored schema version")
	// ErrUpcastFailed is matched by *UpcastError.
	ErrUpcastFailed = errors.New("migrations: upcast failed")
)

// MissingUpcasterError says which step of an upcast chain is not registered.
type MissingUpcasterError struct {
	Type    string
	From    int // the version no upcaster starts from
	Current int // the version the chain had to reach
}

func (e *MissingUpcasterError) Error() string {
	return fmt.Sprintf("migrations: no upcaster for %s v%d (current v%d)", e.Type, e.From, e.Current)
}

// Is makes errors.Is(err, ErrMissingUpcaster) true.
func (e *MissingUpcasterError) Is(target error) bool { return target == ErrMissingUpcaster }

// UpcastError is an upcaster's refusal of a stored payload.
type UpcastError struct {
	EventID string
	Type    string
	From    int
	Err     error
}

func (e *UpcastError) Error() string {
	return fmt.Sprintf("migrations: upcast %s %s v%d: %v", e.EventID, e.Type, e.From, e.Err)
}

// Unwrap returns the upcaster's error.
func (e *UpcastError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUpcastFailed) true.
func (e *UpcastError) Is(target error) bool { return target == ErrUpcastFailed }

// Upcaster turns one schema version's payload into the next version's. It
// must be pure and deterministic: it runs on every read of an old event.
type Upcaster func(data []byte) ([]byte, error)

type stepKey struct {
	typ  string
	from int
}

// Registry holds upcasters by event type and starting version.
//
// Register everything before the first Upcast; after that a Registry is only
// read and is safe for concurrent use.
type Registry struct {
	steps   map[stepKey]Upcaster
	current func(typ string) (int, bool)
}

// NewRegistry returns an empty registry that upcasts to the versions domain
// registers as current.
func NewRegistry() *Registry {
	return &Registry{steps: map[stepKey]Upcaster{}, current: domain.CurrentSchemaVersion}
}

// Register adds the upcaster from fromVersion to fromVersion+1 of eventType.
// A registration that can never be right (an unknown type, a version below 1
// or not below the current one, a nil function, a second upcaster for the
// same step) is a programming error and panics at startup.
func (r *Registry) Register(eventType string, fromVersion int, fn func(data []byte) ([]byte, error)) {
	current, ok := r.current(eventType)
	switch {
	case !ok:
		panic(fmt.Sprintf("migrations: register upcaster for unknown event type %q", eventType))
	case fn == nil:
		panic(fmt.Sprintf("migrations: register nil upcaster for %s v%d", eventType, fromVersion))
	case fromVersion < 1 || fromVersion >= current:
		panic(fmt.Sprintf("migrations: register upcaster for %s from v%d: versions run from 1 to current v%d", eventType, fromVersion, current))
	}
	k := stepKey{eventType, fromVersion}
	if _, dup := r.steps[k]; dup {
		panic(fmt.Sprintf("migrations: second upcaster for %s v%d", eventType, fromVersion))
	}
	r.steps[k] = fn
}

// Upcast returns raw at the current schema version of its type, chaining
// upcasters one version at a time. An event already current is returned as
// is. raw is never modified.
func (r *Registry) Upcast(raw domain.RawEvent) (domain.RawEvent, error) {
	current, ok := r.current(raw.Type)
	if !ok {
		return domain.RawEvent{}, fmt.Errorf("migrations: upcast %s: %w: %q", raw.ID, domain.ErrUnknownEventType, raw.Type)
	}
	v := raw.SchemaVersion
	if v == 0 {
		v = 1
	}
	if v == current {
		raw.SchemaVersion = v
		return raw, nil
	}
	if v < 0 {
		return domain.RawEvent{}, fmt.Errorf("migrations: upcast %s %s: %w: v%d", raw.ID, raw.Type, ErrInvalidSchemaVersion, raw.SchemaVersion)
	}
	if v > current {
		return domain.RawEvent{}, fmt.Errorf("migrations: upcast %s %s: %w: stored v%d, current v%d", raw.ID, raw.Type, ErrNewerSchema, raw.SchemaVersion, current)
	}
	data := raw.Data
	for ; v < current; v++ {
		fn, ok := r.steps[stepKey{raw.Type, v}]
		if !ok {
			return domain.RawEvent{}, &MissingUpcasterError{Type: raw.Type, From: v, Current: current}
		}
		next, err := fn(data)
		if err != nil {
			return domain.RawEvent{}, &UpcastError{EventID: raw.ID, Type: raw.Type, From: v, Err: err}
		}
		data = next
	}
	raw.Data, raw.SchemaVersion = data, current
	return raw, nil
}

// Decode upcasts raw and decodes it into an envelope.
func (r *Registry) Decode(raw domain.RawEvent) (domain.Envelope, error) {
	up, err := r.Upcast(raw)
	if err != nil {
		return domain.Envelope{}, err
	}
	return domain.Decode(up)
}

// defaultRegistry is built once, on first use, and never changed after:
// constant data, like domain's type registry.
var defaultRegistry = sync.OnceValue(Default)

// Decode reads any stored event, of any known schema version, with the
// Default upcasters: what projections, the audit trail and the gateway call
// for every event they load.
func Decode(raw domain.RawEvent) (domain.Envelope, error) {
	return defaultRegistry().Decode(raw)
}

// Upcast brings raw to its current schema version with the Default upcasters.
func Upcast(raw domain.RawEvent) (domain.RawEvent, error) {
	return defaultRegistry().Upcast(raw)
}
