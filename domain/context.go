package domain

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Context is what a decision may know besides the command and the state:
// who asks, when, how ids are made, and the configured limits. The caller
// fills it per request; decisions never read a clock or a random source.
type Context struct {
	// Now is the decision time; it becomes every envelope's Time (Wrap) and
	// is what alert escalation compares against.
	Now time.Time
	// Actor is the authenticated caller. An empty Actor.UserID is refused
	// with ErrUnauthenticated.
	Actor Actor
	// NewID makes ids for new messages, rooms, notifications, alerts and
	// envelopes. Production passes NewID; tests pass a counter.
	NewID func() string
	// Limits are the configured bounds; zero fields mean the defaults.
	Limits Limits
	// CorrelationID, CausationID and NodeID are copied into envelopes by Wrap.
	CorrelationID string
	CausationID   string
	NodeID        string
}

// NewID returns a new UUIDv7 string: time-ordered, so ids sort roughly by
// creation, which keeps index inserts cheap in every backend. It is the one
// function in this package that reads a clock and a random source; decisions
// never call it, they call Context.NewID, which production sets to NewID.
func NewID() string {
	// uuid.NewV7 fails only if the system's random source fails, which the
	// runtime already treats as fatal.
	return uuid.Must(uuid.NewV7()).String()
}

func (c Context) newID() (string, error) {
	if c.NewID == nil {
		return "", ErrNoIDGenerator
	}
	id := c.NewID()
	if id == "" {
		return "", ErrNoIDGenerator.Withf("it returned an empty id")
	}
	return id, nil
}

func (c Context) user() (string, error) {
	if c.Actor.UserID == "" {
		return "", ErrUnauthenticated
	}
	return c.Actor.UserID, nil
}

// Limits bounds what clients may send. The zero value means every default.
type Limits struct {
	// MaxContentBytes bounds a message's, DM's or alert's text and a
	// notification's payload, in bytes of UTF-8. Default 16 KiB.
	MaxContentBytes int
	// DefaultHistoryLimit is the number of messages a history read returns
	// when the client names none. Default 50.
	DefaultHistoryLimit int
	// MaxHistoryLimit is the largest history limit a client may ask for;
	// more is ErrInvalidLimit. Default 200.
	MaxHistoryLimit int
	// DefaultEscalateAfter is how long an alert may stay unacknowledged
	// before each escalation step when its raiser names no time. Default 2m.
	DefaultEscalateAfter time.Duration
	// MaxEscalationLevel is the highest escalation level. Default 3, the
	// length of the EscalationRoles ladder.
	MaxEscalationLevel int
}

// Default limits.
const (
	DefaultMaxContentBytes      = 16 << 10
	DefaultHistoryLimit         = 50
	DefaultMaxHistoryLimit      = 200
	DefaultEscalateAfter        = 2 * time.Minute
	DefaultMaxEscalationLevel   = 3
	maxNameBytes                = 200
	maxUserIDBytes              = 256
	maxClientMsgIDBytes         = 128
	maxReasonBytes              = 1024
	maxShortFieldBytes          = 128
	historyViaDefault           = "history:fetch"
	sessionEndReasonUnspecified = "unspecified"
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxContentBytes <= 0 {
		l.MaxContentBytes = DefaultMaxContentBytes
	}
	if l.DefaultHistoryLimit <= 0 {
		l.DefaultHistoryLimit = DefaultHistoryLimit
	}
	if l.MaxHistoryLimit <= 0 {
		l.MaxHistoryLimit = DefaultMaxHistoryLimit
	}
	if l.DefaultHistoryLimit > l.MaxHistoryLimit {
		l.DefaultHistoryLimit = l.MaxHistoryLimit
	}
	if l.DefaultEscalateAfter <= 0 {
		l.DefaultEscalateAfter = DefaultEscalateAfter
	}
	if l.MaxEscalationLevel <= 0 {
		l.MaxEscalationLevel = DefaultMaxEscalationLevel
	}
	return l
}

// StreamOf names the stream an event belongs to. Each decision returns events
// of one stream only, so a caller appends them in one atomic append to
// StreamOf(events[0]).
//
// AuthenticationFailed always goes to AuthStream("anonymous"): its Subject
// was not verified, so filing it under that user would let anyone write into
// another user's trail.
func StreamOf(ev Event) (string, error) {
	switch e := ev.(type) {
	case RoomCreated:
		return RoomStream(e.RoomID), nil
	case MemberJoined:
		return RoomStream(e.RoomID), nil
	case MemberLeft:
		return RoomStream(e.RoomID), nil
	case MessagePosted:
		return RoomStream(e.RoomID), nil
	case RoomAccessDenied:
		return AccessStream(e.UserID), nil
	case HistoryViewed:
		return AccessStream(e.UserID), nil
	case DirectMessageSent:
		return DMStream(e.SenderID, e.ToUserID), nil
	case TypingStarted:
		return TypingStream(e.RoomID), nil
	case TypingStopped:
		return TypingStream(e.RoomID), nil
	case SessionStarted:
		return PresenceStream(e.UserID), nil
	case SessionEnded:
		return PresenceStream(e.UserID), nil
	case UserOnline:
		return PresenceStream(e.UserID), nil
	case UserOffline:
		return PresenceStream(e.UserID), nil
	case NotificationIssued:
		return NotificationStream(e.UserID), nil
	case NotificationAcknowledged:
		return NotificationStream(e.UserID), nil
	case EmergencyAlertRaised:
		return AlertStream(e.AlertID), nil
	case EmergencyAlertAcknowledged:
		return AlertStream(e.AlertID), nil
	case EmergencyAlertEscalated:
		return AlertStream(e.AlertID), nil
	case AuthenticationSucceeded:
		return AuthStream(e.UserID), nil
	case AuthenticationFailed:
		return AuthStream("anonymous"), nil
	case TokenRefreshed:
		return AuthStream(e.UserID), nil
	case SessionRevoked:
		return AuthStream(e.UserID), nil
	case nil:
		return "", fmt.Errorf("domain: stream of a nil event")
	}
	return "", fmt.Errorf("domain: stream of %s: %w", ev.EventType(), ErrUnknownEventType)
}

// Wrap puts a decision's events into envelopes: a fresh id each, the stream
// from StreamOf, the registered type and schema version, the decision time,
// the actor and the correlation fields of c. Encode turns them into what the
// store appends.
func (c Context) Wrap(events []Event) ([]Envelope, error) {
	out := make([]Envelope, 0, len(events))
	for _, ev := range events {
		stream, err := StreamOf(ev)
		if err != nil {
			return nil, err
		}
		version, ok := CurrentSchemaVersion(ev.EventType())
		if !ok {
			return nil, fmt.Errorf("domain: wrap %s: %w", ev.EventType(), ErrUnknownEventType)
		}
		id, err := c.newID()
		if err != nil {
			return nil, fmt.Errorf("domain: wrap %s: %w", ev.EventType(), err)
		}
		out = append(out, Envelope{
			ID: id, Stream: stream, Type: ev.EventType(), SchemaVersion: version,
			Time: c.Now.UTC(), Actor: c.Actor, CorrelationID: c.CorrelationID,
			CausationID: c.CausationID, NodeID: c.NodeID, Event: ev,
		})
	}
	return out, nil
}
