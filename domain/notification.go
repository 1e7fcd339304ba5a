package domain

import (
	"encoding/json"
	"time"
)

// notifiers are the roles that may issue notifications: backend services and
// admins, through the HTTP API.
func notifiers() []Role { return []Role{RoleService, RoleAdmin, RoleSuperAdmin} }

// Inbox is one user's notifications, folded from their NotificationStream
// with Apply. The zero value (or nil) is an empty inbox. It is not safe for
// concurrent use.
type Inbox struct {
	user    string
	items   map[string]*inboxItem
	order   []string // ids in issue order
	version uint64
}

type inboxItem struct {
	issued   NotificationIssued
	issuedAt time.Time
	acked    bool
}

// PendingNotification is a notification not yet acknowledged.
type PendingNotification struct {
	NotificationIssued
	IssuedAt time.Time // the envelope's time: the wire's createdAt
}

// Apply folds one event of the user's notification stream into in.
func (in *Inbox) Apply(env Envelope) {
	in.version++
	switch e := env.Event.(type) {
	case NotificationIssued:
		in.user = e.UserID
		if in.items == nil {
			in.items = make(map[string]*inboxItem)
		}
		if _, dup := in.items[e.NotificationID]; !dup {
			in.order = append(in.order, e.NotificationID)
		}
		in.items[e.NotificationID] = &inboxItem{issued: e, issuedAt: env.Time}
	case NotificationAcknowledged:
		in.user = e.UserID
		if it, ok := in.items[e.NotificationID]; ok {
			it.acked = true
		}
	}
}

// UserID returns the inbox's owner ("" before any event).
func (in *Inbox) UserID() string {
	if in == nil {
		return ""
	}
	return in.user
}

// Version returns how many events were applied; append with
// eventstore.Exact(Version()).
func (in *Inbox) Version() uint64 {
	if in == nil {
		return 0
	}
	return in.version
}

// Has reports whether notification id was issued to this user.
func (in *Inbox) Has(id string) bool {
	if in == nil {
		return false
	}
	_, ok := in.items[id]
	return ok
}

// Acknowledged reports whether notification id was acknowledged.
func (in *Inbox) Acknowledged(id string) bool {
	if in == nil {
		return false
	}
	it, ok := in.items[id]
	return ok && it.acked
}

// Unacknowledged returns every notification not yet acknowledged, in issue
// order, whether due or not.
func (in *Inbox) Unacknowledged() []PendingNotification {
	return in.pending(time.Time{}, false)
}

// Due returns the unacknowledged notifications to deliver at now: those with
// no DeliverAt or a DeliverAt not after now, in issue order. These are what a
// reconnecting session is sent again.
func (in *Inbox) Due(now time.Time) []PendingNotification {
	return in.pending(now, true)
}

func (in *Inbox) pending(now time.Time, dueOnly bool) []PendingNotification {
	out := []PendingNotification{}
	if in == nil {
		return out
	}
	for _, id := range in.order {
		it := in.items[id]
		if it.acked {
			continue
		}
		if dueOnly && !it.issued.DeliverAt.IsZero() && it.issued.DeliverAt.After(now) {
			continue
		}
		out = append(out, PendingNotification{NotificationIssued: it.issued, IssuedAt: it.issuedAt})
	}
	return out
}

// IssueNotification is POST /api/v1/notifications for one recipient (the
// caller expands a role or room audience to users and issues one each).
type IssueNotification struct {
	NotificationID string          // optional: a new id when empty; an existing one is ErrNotificationExists
	UserID         string          // recipient
	Kind           string          // "medication_reminder", "appointment_update", "monitoring_alert", ...
	Payload        json.RawMessage // optional JSON, at most Limits.MaxContentBytes
	DeliverAt      time.Time       // optional: not delivered before (reminders)
}

// Validate checks the command's shape, size included.
func (cmd IssueNotification) Validate(l Limits) error {
	l = l.WithDefaults()
	if cmd.NotificationID != "" && !validID(cmd.NotificationID) {
		return ErrInvalidID.Withf("notificationId %q", truncate(cmd.NotificationID))
	}
	if err := ValidateUserID(cmd.UserID); err != nil {
		return err
	}
	if !validID(cmd.Kind) {
		return ErrInvalidKind
	}
	if len(cmd.Payload) > l.MaxContentBytes {
		return ErrContentTooLarge.Withf("payload is %d bytes, limit %d", len(cmd.Payload), l.MaxContentBytes)
	}
	if len(cmd.Payload) > 0 && !json.Valid(cmd.Payload) {
		return ErrInvalidPayload
	}
	return nil
}

// Decide issues the notification. inbox is the recipient's. Only the roles
// service, admin and super_admin may issue. A DeliverAt in the past means
// "now".
func (cmd IssueNotification) Decide(c Context, inbox *Inbox) ([]Event, error) {
	if _, err := c.user(); err != nil {
		return nil, err
	}
	if err := cmd.Validate(c.Limits); err != nil {
		return nil, err
	}
	if !c.Actor.HasRole(notifiers()...) {
		return nil, ErrCannotNotify
	}
	if u := inbox.UserID(); u != "" && u != cmd.UserID {
		return nil, ErrWrongStateForCommand.Withf("inbox of %q given for %q", u, cmd.UserID)
	}
	id := cmd.NotificationID
	if id == "" {
		var err error
		if id, err = c.newID(); err != nil {
			return nil, err
		}
	} else if inbox.Has(id) {
		return nil, ErrNotificationExists.Withf("%q", id)
	}
	ev := NotificationIssued{NotificationID: id, UserID: cmd.UserID, Kind: cmd.Kind, DeliverAt: cmd.DeliverAt.UTC()}
	if cmd.DeliverAt.IsZero() {
		ev.DeliverAt = time.Time{}
	}
	if len(cmd.Payload) > 0 {
		ev.Payload = append(json.RawMessage(nil), cmd.Payload...)
	}
	return []Event{ev}, nil
}

// AcknowledgeNotification is notification:ack.
type AcknowledgeNotification struct {
	NotificationID string
}

// Validate checks the command's shape.
func (cmd AcknowledgeNotification) Validate(Limits) error {
	if !validID(cmd.NotificationID) {
		return ErrInvalidID.Withf("notificationId %q", truncate(cmd.NotificationID))
	}
	return nil
}

// Decide acknowledges for the actor, who must be the recipient (inbox is the
// recipient's). Acknowledging twice succeeds with no event.
func (cmd AcknowledgeNotification) Decide(c Context, inbox *Inbox) ([]Event, error) {
	user, err := c.user()
	if err != nil {
		return nil, err
	}
	if err := cmd.Validate(c.Limits); err != nil {
		return nil, err
	}
	if !inbox.Has(cmd.NotificationID) {
		return nil, ErrNotificationNotFound.Withf("%q", cmd.NotificationID)
	}
	if inbox.UserID() != user {
		return nil, ErrNotRecipient
	}
	if inbox.Acknowledged(cmd.NotificationID) {
		return nil, nil
	}
	return []Event{NotificationAcknowledged{NotificationID: cmd.NotificationID, UserID: user}}, nil
}
