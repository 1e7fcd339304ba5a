package domain

import (
	"sort"
	"time"
)

// Presence is one user's sessions and online state, folded from their
// PresenceStream with Apply. A user is online from their first session's
// start to their last session's end, whatever the nodes: UserOnline and
// UserOffline are edges, never repeated. The zero value (or nil) is a user
// with no sessions. It is not safe for concurrent use.
type Presence struct {
	user     string
	sessions map[string]SessionInfo
	online   bool
	version  uint64
}

// SessionInfo describes an open session.
type SessionInfo struct {
	SessionID  string
	Namespace  string
	Transport  string
	NodeID     string // the node holding the connection; survivors end a dead node's sessions
	ClientAddr string
	StartedAt  time.Time
}

// Apply folds one event of the user's presence stream into p.
func (p *Presence) Apply(env Envelope) {
	p.version++
	switch e := env.Event.(type) {
	case SessionStarted:
		p.user = e.UserID
		if p.sessions == nil {
			p.sessions = make(map[string]SessionInfo)
		}
		p.sessions[e.SessionID] = SessionInfo{
			SessionID: e.SessionID, Namespace: e.Namespace, Transport: e.Transport,
			NodeID: e.NodeID, ClientAddr: e.ClientAddr, StartedAt: env.Time,
		}
	case SessionEnded:
		p.user = e.UserID
		delete(p.sessions, e.SessionID)
	case UserOnline:
		p.user = e.UserID
		p.online = true
	case UserOffline:
		p.user = e.UserID
		p.online = false
	}
}

// UserID returns whose presence this is ("" before any event).
func (p *Presence) UserID() string {
	if p == nil {
		return ""
	}
	return p.user
}

// Online reports whether the user has a session.
func (p *Presence) Online() bool { return p != nil && p.online }

// Sessions returns the open sessions, oldest first.
func (p *Presence) Sessions() []SessionInfo {
	if p == nil {
		return []SessionInfo{}
	}
	out := make([]SessionInfo, 0, len(p.sessions))
	for _, s := range p.sessions {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.Before(out[j].StartedAt)
		}
		return out[i].SessionID < out[j].SessionID
	})
	return out
}

// HasSession reports whether sessionID is open.
func (p *Presence) HasSession(sessionID string) bool {
	if p == nil {
		return false
	}
	_, ok := p.sessions[sessionID]
	return ok
}

// Version returns how many events were applied; append with
// eventstore.Exact(Version()) so two nodes cannot both emit UserOnline.
func (p *Presence) Version() uint64 {
	if p == nil {
		return 0
	}
	return p.version
}

func (p *Presence) owner(user string) error {
	if p != nil && p.user != "" && p.user != user {
		return ErrWrongStateForCommand.Withf("presence of %q given for %q", p.user, user)
	}
	return nil
}

// StartSession records an authenticated connection of the actor.
type StartSession struct {
	SessionID  string
	Namespace  string // "/chat", "/notifications", "/admin"
	Transport  string // "socketio", "native"
	NodeID     string // default Context.NodeID
	ClientAddr string
}

// Validate checks the command's shape.
func (cmd StartSession) Validate(Limits) error {
	if !printable(cmd.SessionID, maxShortFieldBytes) {
		return ErrInvalidSession
	}
	if cmd.Namespace == "" || cmd.Transport == "" {
		return ErrMissingField.Withf("namespace and transport are required")
	}
	for _, f := range []struct{ name, v string }{
		{"namespace", cmd.Namespace}, {"transport", cmd.Transport}, {"nodeId", cmd.NodeID}, {"clientAddr", cmd.ClientAddr},
	} {
		if err := validateText(f.name, f.v, maxShortFieldBytes); err != nil {
			return err
		}
	}
	return nil
}

// Decide opens the session: SessionStarted, and UserOnline first if it is the
// user's first session. Starting an open session again is a no-op.
func (cmd StartSession) Decide(c Context, p *Presence) ([]Event, error) {
	user, err := c.user()
	if err != nil {
		return nil, err
	}
	if err := cmd.Validate(c.Limits); err != nil {
		return nil, err
	}
	if err := p.owner(user); err != nil {
		return nil, err
	}
	if p.HasSession(cmd.SessionID) {
		return nil, nil
	}
	node := cmd.NodeID
	if node == "" {
		node = c.NodeID
	}
	events := []Event{SessionStarted{
		SessionID: cmd.SessionID, UserID: user, Namespace: cmd.Namespace, Transport: cmd.Transport,
		NodeID: node, ClientAddr: cmd.ClientAddr,
	}}
	if !p.Online() {
		events = append(events, UserOnline{UserID: user})
	}
	return events, nil
}

// EndSession records the end of a session: by its user (disconnect,
// logout), or by an admin (kick) or the service role (token expiry, a
// node's death noticed by another node).
type EndSession struct {
	UserID    string // the session's user
	SessionID string
	Reason    string // "disconnect", "token expired", "kicked", "node lost", ...
}

// Validate checks the command's shape.
func (cmd EndSession) Validate(Limits) error {
	if err := ValidateUserID(cmd.UserID); err != nil {
		return err
	}
	if !printable(cmd.SessionID, maxShortFieldBytes) {
		return ErrInvalidSession
	}
	return validateText("reason", cmd.Reason, maxReasonBytes)
}

// Decide closes the session: SessionEnded, then UserOffline if it was the
// user's last. Ending a session that is not open is a no-op, because the
// node that held it and a node cleaning up after it may both try.
func (cmd EndSession) Decide(c Context, p *Presence) ([]Event, error) {
	actor, err := c.user()
	if err != nil {
		return nil, err
	}
	if err := cmd.Validate(c.Limits); err != nil {
		return nil, err
	}
	if actor != cmd.UserID && !c.Actor.HasRole(RoleAdmin, RoleSuperAdmin, RoleService) {
		return nil, ErrCannotEndSession
	}
	if err := p.owner(cmd.UserID); err != nil {
		return nil, err
	}
	if !p.HasSession(cmd.SessionID) {
		return nil, nil
	}
	reason := cmd.Reason
	if reason == "" {
		reason = sessionEndReasonUnspecified
	}
	events := []Event{SessionEnded{SessionID: cmd.SessionID, UserID: cmd.UserID, Reason: reason}}
	if len(p.sessions) == 1 && p.Online() {
		events = append(events, UserOffline{UserID: cmd.UserID})
	}
	return events, nil
}
