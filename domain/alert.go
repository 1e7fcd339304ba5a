package domain

import (
	"fmt"
	"time"
)

// alertRaisers are the roles that may raise and escalate alerts: monitoring
// services (and the escalation timer, which acts as a service) and admins.
func alertRaisers() []Role { return []Role{RoleService, RoleAdmin, RoleSuperAdmin} }

// EscalationRoles returns the roles an alert at level reaches besides its
// own audience: each level adds one rung of the ladder physician → admin →
// super_admin, so an unanswered alert climbs towards someone who must act.
// Level 0 adds none.
func EscalationRoles(level int) []Role {
	ladder := []Role{RolePhysician, RoleAdmin, RoleSuperAdmin}
	if level <= 0 {
		return []Role{}
	}
	if level > len(ladder) {
		level = len(ladder)
	}
	return ladder[:level]
}

// Alert is one emergency alert's state, folded from its AlertStream with
// Apply. The zero value (or nil) is an alert that was never raised. It is not
// safe for concurrent use.
type Alert struct {
	raised     EmergencyAlertRaised
	raisedAt   time.Time
	lastChange time.Time // raise or latest escalation: escalation timers run from here
	level      int
	acks       []Acknowledgement
	version    uint64
}

// Acknowledgement is who acknowledged an alert, and when.
type Acknowledgement struct {
	UserID string
	At     time.Time
}

// Apply folds one event of the alert's stream into a.
func (a *Alert) Apply(env Envelope) {
	a.version++
	switch e := env.Event.(type) {
	case EmergencyAlertRaised:
		a.raised = e
		a.raisedAt, a.lastChange = env.Time, env.Time
	case EmergencyAlertAcknowledged:
		if !a.AcknowledgedBy(e.UserID) {
			a.acks = append(a.acks, Acknowledgement{UserID: e.UserID, At: env.Time})
		}
	case EmergencyAlertEscalated:
		a.level = e.Level
		a.lastChange = env.Time
	}
}

// Exists reports whether the alert was raised.
func (a *Alert) Exists() bool { return a != nil && a.raised.AlertID != "" }

// ID returns the alert id.
func (a *Alert) ID() string {
	if a == nil {
		return ""
	}
	return a.raised.AlertID
}

// Raised returns the alert as raised (severity, message, audience, ...).
func (a *Alert) Raised() EmergencyAlertRaised {
	if a == nil {
		return EmergencyAlertRaised{}
	}
	return a.raised
}

// RaisedAt returns when the alert was raised.
func (a *Alert) RaisedAt() time.Time {
	if a == nil {
		return time.Time{}
	}
	return a.raisedAt
}

// Level returns the escalation level (0 before any escalation).
func (a *Alert) Level() int {
	if a == nil {
		return 0
	}
	return a.level
}

// Acknowledged reports whether anyone acknowledged the alert.
func (a *Alert) Acknowledged() bool { return a != nil && len(a.acks) > 0 }

// AcknowledgedBy reports whether user acknowledged the alert.
func (a *Alert) AcknowledgedBy(user string) bool {
	if a == nil {
		return false
	}
	for _, ack := range a.acks {
		if ack.UserID == user {
			return true
		}
	}
	return false
}

// Acknowledgements returns who acknowledged, in order (GET /api/v1/alerts/{id}).
func (a *Alert) Acknowledgements() []Acknowledgement {
	if a == nil {
		return []Acknowledgement{}
	}
	return append([]Acknowledgement{}, a.acks...)
}

// Version returns how many events were applied; append with
// eventstore.Exact(Version()) so two escalation timers cannot both escalate.
func (a *Alert) Version() uint64 {
	if a == nil {
		return 0
	}
	return a.version
}

// AudienceRoles returns the raised roles plus the escalation roles of the
// current level, without duplicates: the roles to deliver the alert to.
func (a *Alert) AudienceRoles() []Role {
	out := []Role{}
	seen := map[Role]bool{}
	for _, r := range append(append([]Role{}, a.Raised().Roles...), EscalationRoles(a.Level())...) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// InAudience reports whether actor is among the alert's recipients: listed by
// id, holding one of AudienceRoles, or a member of its room (room must be the
// state of Raised().RoomID; nil when the alert has none).
func (a *Alert) InAudience(actor Actor, room *Room) bool {
	if !a.Exists() || actor.UserID == "" {
		return false
	}
	for _, u := range a.raised.UserIDs {
		if u == actor.UserID {
			return true
		}
	}
	if actor.HasRole(a.AudienceRoles()...) {
		return true
	}
	return a.raised.RoomID != "" && room.ID() == a.raised.RoomID && room.IsMember(actor.UserID)
}

// NextEscalation returns when the alert is due to escalate, and false when it
// never will (acknowledged, or at the highest level of l).
func (a *Alert) NextEscalation(l Limits) (time.Time, bool) {
	l = l.WithDefaults()
	if !a.Exists() || a.Acknowledged() || a.level >= l.MaxEscalationLevel {
		return time.Time{}, false
	}
	return a.lastChange.Add(a.raised.EscalateAfter), true
}

// RaiseAlert is POST /api/v1/alerts.
type RaiseAlert struct {
	AlertID       string // optional: a new id when empty; an existing one is ErrAlertExists
	Severity      Severity
	Message       string
	Location      string
	UserIDs       []string
	Roles         []Role
	RoomID        string
	EscalateAfter time.Duration // 0 means Limits.DefaultEscalateAfter
}

// Validate checks the command's shape, size included.
func (cmd RaiseAlert) Validate(l Limits) error {
	l = l.WithDefaults()
	if cmd.AlertID != "" && !validID(cmd.AlertID) {
		return ErrInvalidID.Withf("alertId %q", truncate(cmd.AlertID))
	}
	switch cmd.Severity {
	case SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
	default:
		return ErrInvalidSeverity
	}
	if err := validateContent(cmd.Message, l.MaxContentBytes); err != nil {
		return err
	}
	if err := validateText("location", cmd.Location, maxReasonBytes); err != nil {
		return err
	}
	for _, u := range cmd.UserIDs {
		if err := ValidateUserID(u); err != nil {
			return err
		}
	}
	for _, r := range cmd.Roles {
		if !knownRole(r) {
			return ErrInvalidRole.Withf("%q", truncate(string(r)))
		}
	}
	if cmd.RoomID != "" {
		if err := validateRoomID(cmd.RoomID); err != nil {
			return err
		}
	}
	if len(cmd.UserIDs) == 0 && len(cmd.Roles) == 0 && cmd.RoomID == "" {
		return ErrNoAudience
	}
	if cmd.EscalateAfter < 0 {
		return ErrInvalidDuration.Withf("escalateAfter %s", cmd.EscalateAfter)
	}
	return nil
}

// Decide raises the alert; roles service, admin and super_admin only.
// Whether RoomID names an existing room is for the caller to check (it holds
// the room state); the alert itself needs none.
func (cmd RaiseAlert) Decide(c Context, alert *Alert) ([]Event, error) {
	if _, err := c.user(); err != nil {
		return nil, err
	}
	if err := cmd.Validate(c.Limits); err != nil {
		return nil, err
	}
	if !c.Actor.HasRole(alertRaisers()...) {
		return nil, ErrCannotRaiseAlert
	}
	id := cmd.AlertID
	if id == "" {
		if alert.Exists() {
			return nil, ErrWrongStateForCommand.Withf("existing alert %q given for a new id", alert.ID())
		}
		var err error
		if id, err = c.newID(); err != nil {
			return nil, err
		}
	} else if alert.Exists() {
		if alert.ID() != id {
			return nil, ErrWrongStateForCommand.Withf("alert %q given for %q", alert.ID(), id)
		}
		return nil, ErrAlertExists.Withf("%q", id)
	}
	after := cmd.EscalateAfter
	if after == 0 {
		after = c.Limits.WithDefaults().DefaultEscalateAfter
	}
	return []Event{EmergencyAlertRaised{
		AlertID: id, Severity: cmd.Severity, Message: cmd.Message, Location: cmd.Location,
		UserIDs: append([]string(nil), cmd.UserIDs...), Roles: append([]Role(nil), cmd.Roles...),
		RoomID: cmd.RoomID, EscalateAfter: after,
	}}, nil
}

// AcknowledgeAlert is emergency:ack.
type AcknowledgeAlert struct {
	AlertID string
}

// Validate checks the command's shape.
func (cmd AcknowledgeAlert) Validate(Limits) error {
	if !validID(cmd.AlertID) {
		return ErrInvalidID.Withf("alertId %q", truncate(cmd.AlertID))
	}
	return nil
}

// Decide records the actor's acknowledgement. Only the alert's audience may
// acknowledge (see InAudience; pass the state of the alert's room, or nil if
// it has none). Every recipient's acknowledgement is recorded, once each; a
// second one by the same user succeeds with no event.
func (cmd AcknowledgeAlert) Decide(c Context, alert *Alert, room *Room) ([]Event, error) {
	user, err := c.user()
	if err != nil {
		return nil, err
	}
	if err := cmd.Validate(c.Limits); err != nil {
		return nil, err
	}
	if !alert.Exists() {
		return nil, ErrAlertNotFound.Withf("%q", cmd.AlertID)
	}
	if alert.ID() != cmd.AlertID {
		return nil, ErrWrongStateForCommand.Withf("alert %q given for %q", alert.ID(), cmd.AlertID)
	}
	if !alert.InAudience(c.Actor, room) {
		return nil, ErrNotInAudience
	}
	if alert.AcknowledgedBy(user) {
		return nil, nil
	}
	return []Event{EmergencyAlertAcknowledged{AlertID: cmd.AlertID, UserID: user}}, nil
}

// EscalateAlert moves an unacknowledged alert one level up the
// EscalationRoles ladder. The escalation timer sends it as a service.
type EscalateAlert struct {
	AlertID string
	Reason  string // default "unacknowledged for <EscalateAfter>"
}

// Validate checks the command's shape.
func (cmd EscalateAlert) Validate(Limits) error {
	if !validID(cmd.AlertID) {
		return ErrInvalidID.Withf("alertId %q", truncate(cmd.AlertID))
	}
	return validateText("reason", cmd.Reason, maxReasonBytes)
}

// Decide escalates if the alert is unacknowledged, below the highest level,
// and due (Context.Now at or after NextEscalation). Deciding on time here,
// not only in the timer, means a late or duplicate timer on another node
// cannot escalate twice in one period.
func (cmd EscalateAlert) Decide(c Context, alert *Alert) ([]Event, error) {
	if _, err := c.user(); err != nil {
		return nil, err
	}
	if err := cmd.Validate(c.Limits); err != nil {
		return nil, err
	}
	if !alert.Exists() {
		return nil, ErrAlertNotFound.Withf("%q", cmd.AlertID)
	}
	if alert.ID() != cmd.AlertID {
		return nil, ErrWrongStateForCommand.Withf("alert %q given for %q", alert.ID(), cmd.AlertID)
	}
	if !c.Actor.HasRole(alertRaisers()...) {
		return nil, ErrCannotRaiseAlert
	}
	if alert.Acknowledged() {
		return nil, ErrAlertAcknowledged
	}
	l := c.Limits.WithDefaults()
	if alert.Level() >= l.MaxEscalationLevel {
		return nil, ErrEscalationExhausted.Withf("level %d", alert.Level())
	}
	due, _ := alert.NextEscalation(l)
	if c.Now.Before(due) {
		return nil, ErrEscalationNotDue.Withf("due at %s", due.UTC().Format(time.RFC3339))
	}
	reason := cmd.Reason
	if reason == "" {
		reason = fmt.Sprintf("unacknowledged for %s", alert.Raised().EscalateAfter)
	}
	return []Event{EmergencyAlertEscalated{AlertID: cmd.AlertID, Level: alert.Level() + 1, Reason: reason}}, nil
}
