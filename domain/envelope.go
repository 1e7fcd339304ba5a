package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// Role is a claim in a user's token.
type Role string

// The roles Wardline knows. Unknown roles in a token are kept but grant nothing.
const (
	RoleNurse             Role = "nurse"
	RolePhysician         Role = "physician"
	RoleStaff             Role = "staff"
	RoleAdmin             Role = "admin"
	RoleSuperAdmin        Role = "super_admin"
	RoleComplianceOfficer Role = "compliance_officer"
	RoleService           Role = "service"
)

// Actor is who caused an event.
type Actor struct {
	UserID     string `json:"userId,omitempty"`
	Roles      []Role `json:"roles,omitempty"`
	SessionID  string `json:"sessionId,omitempty"`
	ClientAddr string `json:"clientAddr,omitempty"`
}

// HasRole reports whether the actor holds any of roles.
func (a Actor) HasRole(roles ...Role) bool {
	for _, have := range a.Roles {
		for _, want := range roles {
			if have == want {
				return true
			}
		}
	}
	return false
}

// Event is the payload of an event: one of the types in events.go.
type Event interface {
	// EventType is the stored type name, past tense ("MessagePosted").
	EventType() string
}

// Envelope is an event with everything the log records about it.
type Envelope struct {
	ID            string // UUIDv7
	Stream        string
	Type          string
	SchemaVersion int
	Time          time.Time // when the decision was made, UTC
	Actor         Actor
	CorrelationID string
	CausationID   string
	NodeID        string
	Event         Event
}

// Metadata is the stored form of an envelope's fields other than the payload.
type Metadata struct {
	Time          time.Time `json:"time"`
	Actor         Actor     `json:"actor"`
	CorrelationID string    `json:"correlationId,omitempty"`
	CausationID   string    `json:"causationId,omitempty"`
	NodeID        string    `json:"nodeId,omitempty"`
}

// RawEvent is an event as bytes, the form the event store keeps.
type RawEvent struct {
	ID            string
	Stream        string
	Type          string
	SchemaVersion int
	Data          []byte
	Metadata      []byte
}

// Encode turns an envelope into its stored form. Type and SchemaVersion are
// taken from the payload's registration, so they can never disagree with it.
func Encode(e Envelope) (RawEvent, error) {
	if e.Event == nil {
		return RawEvent{}, fmt.Errorf("domain: encode %s: no payload", e.ID)
	}
	typ := e.Event.EventType()
	reg, ok := registry[typ]
	if !ok {
		return RawEvent{}, fmt.Errorf("domain: encode: %w: %q", ErrUnknownEventType, typ)
	}
	data, err := json.Marshal(e.Event)
	if err != nil {
		return RawEvent{}, fmt.Errorf("domain: encode %s data: %w", typ, err)
	}
	meta, err := json.Marshal(Metadata{
		Time: e.Time.UTC(), Actor: e.Actor, CorrelationID: e.CorrelationID,
		CausationID: e.CausationID, NodeID: e.NodeID,
	})
	if err != nil {
		return RawEvent{}, fmt.Errorf("domain: encode %s metadata: %w", typ, err)
	}
	return RawEvent{ID: e.ID, Stream: e.Stream, Type: typ, SchemaVersion: reg.version, Data: data, Metadata: meta}, nil
}

// Decode turns a stored event of the current schema version back into an
// envelope. Older versions must be upcast first (package migrations); a
// version other than the current one is ErrSchemaVersion.
func Decode(r RawEvent) (Envelope, error) {
	reg, ok := registry[r.Type]
	if !ok {
		return Envelope{}, fmt.Errorf("domain: decode %s: %w: %q", r.ID, ErrUnknownEventType, r.Type)
	}
	if r.SchemaVersion != reg.version {
		return Envelope{}, fmt.Errorf("domain: decode %s %s: %w: stored v%d, current v%d", r.ID, r.Type, ErrSchemaVersion, r.SchemaVersion, reg.version)
	}
	ev, err := reg.decode(r.Data)
	if err != nil {
		return Envelope{}, fmt.Errorf("domain: decode %s %s data: %w", r.ID, r.Type, err)
	}
	var m Metadata
	if len(r.Metadata) > 0 {
		if err := json.Unmarshal(r.Metadata, &m); err != nil {
			return Envelope{}, fmt.Errorf("domain: decode %s %s metadata: %w", r.ID, r.Type, err)
		}
	}
	return Envelope{
		ID: r.ID, Stream: r.Stream, Type: r.Type, SchemaVersion: r.SchemaVersion,
		Time: m.Time, Actor: m.Actor, CorrelationID: m.CorrelationID, CausationID: m.CausationID,
		NodeID: m.NodeID, Event: ev,
	}, nil
}

// CurrentSchemaVersion returns the schema version events of type typ are
// written with, and false for an unknown type.
func CurrentSchemaVersion(typ string) (int, bool) {
	reg, ok := registry[typ]
	return reg.version, ok
}

// EventTypes lists every registered event type name.
func EventTypes() []string {
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	return out
}
