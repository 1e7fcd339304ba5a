package domain

import (
	"encoding/json"
	"errors"
	"time"
)

var (
	// ErrUnknownEventType is returned when decoding a type nobody registered.
	ErrUnknownEventType = errors.New("unknown event type")
	// ErrSchemaVersion is returned when decoding a stored schema version that
	// is not the current one (it needs an upcaster first).
	ErrSchemaVersion = errors.New("event schema version is not current")
)

// Stream names. One stream per consistency boundary: a room (membership and
// its message sequence), a DM conversation, a room's typing (retention-limited),
// a user's presence and sessions, a user's notifications, an alert, a user's
// authentication trail.
const (
	RoomStreamPrefix         = "room-"
	DMStreamPrefix           = "dm-"
	TypingStreamPrefix       = "typing-"
	PresenceStreamPrefix     = "presence-"
	NotificationStreamPrefix = "notify-"
	AlertStreamPrefix        = "alert-"
	AuthStreamPrefix         = "auth-"
	AccessStreamPrefix       = "access-"
)

// RoomStream is the stream of room id's membership and messages.
func RoomStream(roomID string) string { return RoomStreamPrefix + roomID }

// TypingStream is the retention-limited stream of typing in room id.
func TypingStream(roomID string) string { return TypingStreamPrefix + roomID }

// DMStream is the stream of the conversation between two users; the same for
// either order of the pair.
func DMStream(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return DMStreamPrefix + a + "~" + b
}

// PresenceStream holds a user's session starts and ends and online/offline edges.
func PresenceStream(userID string) string { return PresenceStreamPrefix + userID }

// NotificationStream holds the notifications issued to a user and their acks.
func NotificationStream(userID string) string { return NotificationStreamPrefix + userID }

// AlertStream holds one emergency alert's life.
func AlertStream(alertID string) string { return AlertStreamPrefix + alertID }

// AuthStream holds a user's authentication outcomes. Failures with no
// trustworthy user id go to AuthStream("anonymous").
func AuthStream(userID string) string { return AuthStreamPrefix + userID }

// AccessStream holds a user's PHI reads and denials, for the audit trail.
func AccessStream(userID string) string { return AccessStreamPrefix + userID }

// --- rooms ---

// RoomCreated: a room exists. Members are members from this event on; the
// creator is always among them.
type RoomCreated struct {
	RoomID    string   `json:"roomId"`
	Name      string   `json:"name"`
	Private   bool     `json:"private"`
	PHI       bool     `json:"phi"`
	CreatedBy string   `json:"createdBy"`
	Members   []string `json:"members"`
}

// MemberJoined: a user became a member, by joining or by being added.
type MemberJoined struct {
	RoomID  string `json:"roomId"`
	UserID  string `json:"userId"`
	AddedBy string `json:"addedBy,omitempty"` // empty when the user joined themself
}

// MemberLeft: a user's membership ended (all of their sessions).
type MemberLeft struct {
	RoomID    string `json:"roomId"`
	UserID    string `json:"userId"`
	RemovedBy string `json:"removedBy,omitempty"` // empty when the user left themself
}

// RoomAccessDenied: a user was refused an action on a room.
type RoomAccessDenied struct {
	RoomID string `json:"roomId"`
	UserID string `json:"userId"`
	Action string `json:"action"` // "join", "send", "history", ...
	Reason string `json:"reason"`
}

// --- messages ---

// MessagePosted: a message in a room, with its gap-free room sequence.
type MessagePosted struct {
	MessageID   string `json:"messageId"`
	RoomID      string `json:"roomId"`
	SenderID    string `json:"senderId"`
	Content     string `json:"content"`
	Seq         uint64 `json:"seq"`
	ClientMsgID string `json:"clientMsgId,omitempty"`
}

// DirectMessageSent: a message from one user to another.
type DirectMessageSent struct {
	MessageID   string `json:"messageId"`
	SenderID    string `json:"senderId"`
	ToUserID    string `json:"toUserId"`
	Content     string `json:"content"`
	ClientMsgID string `json:"clientMsgId,omitempty"`
}

// --- typing ---

// TypingStarted: a user started typing in a room.
type TypingStarted struct {
	RoomID string `json:"roomId"`
	UserID string `json:"userId"`
}

// TypingStopped: a user stopped typing in a room.
type TypingStopped struct {
	RoomID string `json:"roomId"`
	UserID string `json:"userId"`
}

// --- presence and sessions ---

// SessionStarted: an authenticated connection began.
type SessionStarted struct {
	SessionID  string `json:"sessionId"`
	UserID     string `json:"userId"`
	Namespace  string `json:"namespace"`
	Transport  string `json:"transport"` // "socketio", "native"
	NodeID     string `json:"nodeId,omitempty"`
	ClientAddr string `json:"clientAddr,omitempty"`
}

// SessionEnded: a connection ended, for Reason.
type SessionEnded struct {
	SessionID string `json:"sessionId"`
	UserID    string `json:"userId"`
	Reason    string `json:"reason"`
}

// UserOnline: a user's first session started.
type UserOnline struct {
	UserID string `json:"userId"`
}

// UserOffline: a user's last session ended.
type UserOffline struct {
	UserID string `json:"userId"`
}

// --- notifications ---

// NotificationIssued: a notification for one user (a notification to a role
// or room is issued once per recipient).
type NotificationIssued struct {
	NotificationID string          `json:"notificationId"`
	UserID         string          `json:"userId"`
	Kind           string          `json:"kind"` // "medication_reminder", "appointment_update", "monitoring_alert", ...
	Payload        json.RawMessage `json:"payload,omitempty"`
	DeliverAt      time.Time       `json:"deliverAt,omitzero"`
}

// NotificationAcknowledged: the recipient acknowledged a notification.
type NotificationAcknowledged struct {
	NotificationID string `json:"notificationId"`
	UserID         string `json:"userId"`
}

// --- emergency alerts ---

// Severity of an emergency alert.
type Severity string

// Alert severities.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// EmergencyAlertRaised: an alert went out to its audience.
type EmergencyAlertRaised struct {
	AlertID       string        `json:"alertId"`
	Severity      Severity      `json:"severity"`
	Message       string        `json:"message"`
	Location      string        `json:"location,omitempty"`
	UserIDs       []string      `json:"userIds,omitempty"`
	Roles         []Role        `json:"roles,omitempty"`
	RoomID        string        `json:"roomId,omitempty"`
	EscalateAfter time.Duration `json:"escalateAfter,omitempty"`
}

// EmergencyAlertAcknowledged: a recipient acknowledged the alert.
type EmergencyAlertAcknowledged struct {
	AlertID string `json:"alertId"`
	UserID  string `json:"userId"`
}

// EmergencyAlertEscalated: nobody acknowledged in time, so the alert went to
// the next level.
type EmergencyAlertEscalated struct {
	AlertID string `json:"alertId"`
	Level   int    `json:"level"`
	Reason  string `json:"reason"`
}

// --- authentication ---

// AuthenticationSucceeded: a token was accepted at a handshake.
type AuthenticationSucceeded struct {
	UserID    string    `json:"userId"`
	SessionID string    `json:"sessionId"`
	Method    string    `json:"method"` // "bearer", "socketio-auth", "native-auth", "query", "cookie"
	ExpiresAt time.Time `json:"expiresAt"`
}

// AuthenticationFailed: a handshake was refused. Subject is the unverified
// `sub`, if any could be read, for investigation only.
type AuthenticationFailed struct {
	Code       string `json:"code"`
	Reason     string `json:"reason"`
	Subject    string `json:"subject,omitempty"`
	ClientAddr string `json:"clientAddr,omitempty"`
	Method     string `json:"method,omitempty"`
}

// TokenRefreshed: a session's token was replaced before it expired.
type TokenRefreshed struct {
	UserID    string    `json:"userId"`
	SessionID string    `json:"sessionId"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// SessionRevoked: a session was ended by someone else or by expiry.
type SessionRevoked struct {
	SessionID string `json:"sessionId"`
	UserID    string `json:"userId"`
	By        string `json:"by,omitempty"`
	Reason    string `json:"reason"`
}

// --- PHI access ---

// HistoryViewed: a user was served a room's messages (a PHI read).
type HistoryViewed struct {
	RoomID  string `json:"roomId"`
	UserID  string `json:"userId"`
	FromSeq uint64 `json:"fromSeq"`
	ToSeq   uint64 `json:"toSeq"`
	Count   int    `json:"count"`
	Via     string `json:"via"` // "room:join", "history:fetch", "api"
}

func (RoomCreated) EventType() string                { return "RoomCreated" }
func (MemberJoined) EventType() string               { return "MemberJoined" }
func (MemberLeft) EventType() string                 { return "MemberLeft" }
func (RoomAccessDenied) EventType() string           { return "RoomAccessDenied" }
func (MessagePosted) EventType() string              { return "MessagePosted" }
func (DirectMessageSent) EventType() string          { return "DirectMessageSent" }
func (TypingStarted) EventType() string              { return "TypingStarted" }
func (TypingStopped) EventType() string              { return "TypingStopped" }
func (SessionStarted) EventType() string             { return "SessionStarted" }
func (SessionEnded) EventType() string               { return "SessionEnded" }
func (UserOnline) EventType() string                 { return "UserOnline" }
func (UserOffline) EventType() string                { return "UserOffline" }
func (NotificationIssued) EventType() string         { return "NotificationIssued" }
func (NotificationAcknowledged) EventType() string   { return "NotificationAcknowledged" }
func (EmergencyAlertRaised) EventType() string       { return "EmergencyAlertRaised" }
func (EmergencyAlertAcknowledged) EventType() string { return "EmergencyAlertAcknowledged" }
func (EmergencyAlertEscalated) EventType() string    { return "EmergencyAlertEscalated" }
func (AuthenticationSucceeded) EventType() string    { return "AuthenticationSucceeded" }
func (AuthenticationFailed) EventType() string       { return "AuthenticationFailed" }
func (TokenRefreshed) EventType() string             { return "TokenRefreshed" }
func (SessionRevoked) EventType() string             { return "SessionRevoked" }
func (HistoryViewed) EventType() string              { return "HistoryViewed" }

type registration struct {
	version int
	decode  func([]byte) (Event, error)
}

func reg[T Event](version int) registration {
	return registration{version: version, decode: func(b []byte) (Event, error) {
		var v T
		err := json.Unmarshal(b, &v)
		return v, err
	}}
}

// registry maps each stored type name to its current schema version and
// decoder. It is constant data: adding a schema version means bumping the
// number here and registering an upcaster in package migrations.
var registry = map[string]registration{
	"RoomCreated":                reg[RoomCreated](1),
	"MemberJoined":               reg[MemberJoined](1),
	"MemberLeft":                 reg[MemberLeft](1),
	"RoomAccessDenied":           reg[RoomAccessDenied](1),
	"MessagePosted":              reg[MessagePosted](2),
	"DirectMessageSent":          reg[DirectMessageSent](1),
	"TypingStarted":              reg[TypingStarted](1),
	"TypingStopped":              reg[TypingStopped](1),
	"SessionStarted":             reg[SessionStarted](1),
	"SessionEnded":               reg[SessionEnded](1),
	"UserOnline":                 reg[UserOnline](1),
	"UserOffline":                reg[UserOffline](1),
	"NotificationIssued":         reg[NotificationIssued](1),
	"NotificationAcknowledged":   reg[NotificationAcknowledged](1),
	"EmergencyAlertRaised":       reg[EmergencyAlertRaised](1),
	"EmergencyAlertAcknowledged": reg[EmergencyAlertAcknowledged](1),
	"EmergencyAlertEscalated":    reg[EmergencyAlertEscalated](1),
	"AuthenticationSucceeded":    reg[AuthenticationSucceeded](1),
	"AuthenticationFailed":       reg[AuthenticationFailed](1),
	"TokenRefreshed":             reg[TokenRefreshed](1),
	"SessionRevoked":             reg[SessionRevoked](1),
	"HistoryViewed":              reg[HistoryViewed](1),
}
