// Package presence is the presence read model: who is online and through
// which sessions, folded from the presence streams.
//
// A user is online while any of their sessions is open (SessionStarted to
// SessionEnded), and between a UserOnline and a UserOffline edge: the domain
// emits the edges with the first session's start and after the last one's
// end, so the two agree; keeping both means a user whose sessions ended
// still reads online until the offline edge is recorded (the grace that
// absorbs a reconnect). The gateway answers presence:query and
// admin:sessions from it. Reads are safe while the runner applies: a batch
// is applied under a write lock and queries return copies.
package presence

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/internal/jsonenc"
)

const (
	// Name is the projection's name.
	Name = "presence"
	// Version is the fold's version; bump it when Apply changes meaning.
	Version = 1
	// snapshotFormat is the layout of MarshalSnapshot's output.
	snapshotFormat = 1
)

var _ projections.Projection = (*Model)(nil)

// Session is an open session.
type Session struct {
	SessionID  string    `json:"sessionId"`
	UserID     string    `json:"userId"`
	Namespace  string    `json:"namespace"`
	Transport  string    `json:"transport"`
	NodeID     string    `json:"nodeId,omitempty"`
	ClientAddr string    `json:"clientAddr,omitempty"`
	StartedAt  time.Time `json:"startedAt"` // UTC, millisecond precision
}

// Model is the presence read model and its projection. The zero value is
// not usable; call New.
type Model struct {
	mu sync.RWMutex
	st *state
	// sizeHint is the last snapshot's length, to size the next one's
	// buffer.
	sizeHint atomic.Int64
}

type state struct {
	pos   eventstore.Position
	users map[string]*user // only users who are online or have a session
}

// user is one user's presence. It is kept small, as every connected user
// has one: a user has few sessions, so a slice (in no particular order;
// queries sort) serves better than a map, and each session is a compact
// record rather than a Session.
type user struct {
	online   bool // between UserOnline and UserOffline
	sessions []record
}

// record is an open session as the model keeps it: the user id is the
// user's key, the start is milliseconds since the Unix epoch (UTC,
// millisecond precision, as recorded), and the namespace, transport and
// node, shared by many sessions, are one interned value.
type record struct {
	id      string
	addr    string
	where   unique.Handle[origin]
	started int64
}

// origin is where a session runs: few distinct values across all sessions.
type origin struct {
	namespace, transport, node string
}

func newRecord(s Session) record {
	return record{
		id: s.SessionID, addr: s.ClientAddr, started: s.StartedAt.UnixMilli(),
		where: unique.Make(origin{namespace: s.Namespace, transport: s.Transport, node: s.NodeID}),
	}
}

func (r *record) session(userID string) Session {
	o := r.where.Value()
	return Session{
		SessionID: r.id, UserID: userID, Namespace: o.namespace, Transport: o.transport,
		NodeID: o.node, ClientAddr: r.addr, StartedAt: time.UnixMilli(r.started).UTC(),
	}
}

func (u *user) isOnline() bool { return u != nil && (u.online || len(u.sessions) > 0) }

// find returns the index of session id in u.sessions, or -1.
func (u *user) find(id string) int {
	for i := range u.sessions {
		if u.sessions[i].id == id {
			return i
		}
	}
	return -1
}

// put records r, replacing a session of the same id.
func (u *user) put(r record) {
	if i := u.find(r.id); i >= 0 {
		u.sessions[i] = r
		return
	}
	u.sessions = append(u.sessions, r)
}

// remove forgets session id; the order of the rest does not matter.
func (u *user) remove(id string) {
	i := u.find(id)
	if i < 0 {
		return
	}
	last := len(u.sessions) - 1
	u.sessions[i] = u.sessions[last]
	u.sessions[last] = record{}
	u.sessions = u.sessions[:last]
	if last == 0 {
		u.sessions = nil // release the backing array of a user now idle
	}
}

// New returns an empty model.
func New() *Model { return &Model{st: &state{users: map[string]*user{}}} }

// Online returns those of userIDs who are online, in the order given,
// without repeats.
func (m *Model) Online(userIDs []string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(userIDs))
	seen := make(map[string]struct{}, len(userIDs))
	for _, id := range userIDs {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		if m.st.users[id].isOnline() {
			out = append(out, id)
		}
	}
	return out
}

// IsOnline reports whether userID is online.
func (m *Model) IsOnline(userID string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.users[userID].isOnline()
}

// SessionsOf returns userID's open sessions, oldest first.
func (m *Model) SessionsOf(userID string) []Session {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.users[userID].list(userID)
}

// AllSessions returns every open session, by user id, then oldest first.
func (m *Model) AllSessions() []Session {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := make([]string, 0, len(m.st.users))
	for id := range m.st.users {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []Session
	for _, id := range ids {
		out = append(out, m.st.users[id].list(id)...)
	}
	return out
}

func (u *user) list(userID string) []Session {
	if u == nil {
		return []Session{}
	}
	out := make([]Session, 0, len(u.sessions))
	for i := range u.sessions {
		out = append(out, u.sessions[i].session(userID))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.Before(out[j].StartedAt)
		}
		return out[i].SessionID < out[j].SessionID
	})
	return out
}

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Version implements projections.Projection.
func (m *Model) Version() int { return Version }

// EventTypes implements projections.Projection.
func (m *Model) EventTypes() []string {
	return []string{"SessionStarted", "SessionEnded", "UserOnline", "UserOffline"}
}

// Position implements projections.Projection.
func (m *Model) Position() eventstore.Position {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.pos
}

// Apply implements projections.Projection. It never fails.
func (m *Model) Apply(_ context.Context, batch []projections.Applied) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	for i := range batch {
		a := &batch[i]
		if a.Position <= st.pos {
			continue
		}
		st.apply(a)
		st.pos = a.Position
	}
	return nil
}

func (st *state) apply(a *projections.Applied) {
	switch e := a.Envelope.Event.(type) {
	case domain.SessionStarted:
		st.user(e.UserID).put(newRecord(Session{
			SessionID: e.SessionID, Namespace: e.Namespace, Transport: e.Transport,
			NodeID: e.NodeID, ClientAddr: e.ClientAddr, StartedAt: a.Envelope.Time,
		}))
	case domain.SessionEnded:
		if u := st.users[e.UserID]; u != nil {
			u.remove(e.SessionID)
			st.prune(e.UserID, u)
		}
	case domain.UserOnline:
		st.user(e.UserID).online = true
	case domain.UserOffline:
		if u := st.users[e.UserID]; u != nil {
			u.online = false
			st.prune(e.UserID, u)
		}
	}
}

func (st *state) user(id string) *user {
	u := st.users[id]
	if u == nil {
		u = &user{}
		st.users[id] = u
	}
	return u
}

// prune drops a user with nothing left, so that equal presence gives an
// equal state however it was reached.
func (st *state) prune(id string, u *user) {
	if !u.online && len(u.sessions) == 0 {
		delete(st.users, id)
	}
}

// Snapshot layout: users sorted by id, sessions by id.
type snapshot struct {
	Format   int                 `json:"format"`
	Position eventstore.Position `json:"position"`
	Users    []snapUser          `json:"users"`
}

type snapUser struct {
	UserID   string    `json:"userId"`
	Online   bool      `json:"online"`
	Sessions []Session `json:"sessions"`
}

// MarshalSnapshot implements projections.Projection. It writes the bytes
// json.Marshal would for snapshot, into one buffer sized from the last
// snapshot: with encoding/json a snapshot of 10,000 online users briefly
// held about four times its size (the structs, the doubling buffer and the
// copy), which showed in the RSS of a node full of idle connections.
func (m *Model) MarshalSnapshot() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := make([]string, 0, len(m.st.users))
	for id := range m.st.users {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	b := make([]byte, 0, m.st.sizeEstimate(m.sizeHint.Load()))
	b = append(b, `{"format":`...)
	b = jsonenc.Int(b, snapshotFormat)
	b = append(b, `,"position":`...)
	b = jsonenc.Uint(b, uint64(m.st.pos))
	b = append(b, `,"users":[`...)
	var order []int
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, order, err = m.st.users[id].appendSnapshot(b, id, order[:0]); err != nil {
			return nil, err
		}
	}
	b = append(b, "]}"...)
	m.sizeHint.Store(int64(len(b)))
	return b, nil
}

// sizeEstimate guesses the snapshot's size, so that it is written into one
// allocation: from the last snapshot's size if there was one, else from the
// contents.
func (st *state) sizeEstimate(last int64) int {
	if last > 0 {
		return int(last + last/8 + 4096)
	}
	n := 4096
	for id, u := range st.users {
		n += 64 + 2*len(id) + 192*len(u.sessions)
	}
	return n
}

// appendSnapshot appends u as a snapUser of userID, its sessions by id;
// order is scratch space for sorting them without touching u, which
// concurrent readers may be reading.
func (u *user) appendSnapshot(b []byte, userID string, order []int) ([]byte, []int, error) {
	b = append(b, `{"userId":`...)
	b = jsonenc.String(b, userID)
	b = append(b, `,"online":`...)
	b = jsonenc.Bool(b, u.online)
	b = append(b, `,"sessions":[`...)
	for i := range u.sessions {
		order = append(order, i)
	}
	if len(order) > 1 {
		sort.Slice(order, func(i, j int) bool { return u.sessions[order[i]].id < u.sessions[order[j]].id })
	}
	for k, i := range order {
		if k > 0 {
			b = append(b, ',')
		}
		s := u.sessions[i].session(userID)
		if y := s.StartedAt.Year(); y < 0 || y > 9999 {
			// What json.Marshal refuses too.
			return nil, order, fmt.Errorf("presence: marshal snapshot: session %q starts in year %d, outside [0,9999]", s.SessionID, y)
		}
		b = appendSession(b, &s)
	}
	return append(b, "]}"...), order, nil
}

// appendSession appends s as json.Marshal would.
func appendSession(b []byte, s *Session) []byte {
	b = append(b, `{"sessionId":`...)
	b = jsonenc.String(b, s.SessionID)
	b = append(b, `,"userId":`...)
	b = jsonenc.String(b, s.UserID)
	b = append(b, `,"namespace":`...)
	b = jsonenc.String(b, s.Namespace)
	b = append(b, `,"transport":`...)
	b = jsonenc.String(b, s.Transport)
	if s.NodeID != "" {
		b = append(b, `,"nodeId":`...)
		b = jsonenc.String(b, s.NodeID)
	}
	if s.ClientAddr != "" {
		b = append(b, `,"clientAddr":`...)
		b = jsonenc.String(b, s.ClientAddr)
	}
	b = append(b, `,"startedAt":`...)
	b = jsonenc.Time(b, s.StartedAt)
	return append(b, '}')
}

// UnmarshalSnapshot implements projections.Projection, refusing a snapshot
// whose invariants do not hold.
func (m *Model) UnmarshalSnapshot(data []byte) error {
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("presence: read snapshot: %w", err)
	}
	if snap.Format != snapshotFormat {
		return fmt.Errorf("presence: snapshot format %d, want %d", snap.Format, snapshotFormat)
	}
	st := &state{pos: snap.Position, users: make(map[string]*user, len(snap.Users))}
	for _, su := range snap.Users {
		if st.users[su.UserID] != nil {
			return fmt.Errorf("presence: snapshot lists user %q twice", su.UserID)
		}
		if !su.Online && len(su.Sessions) == 0 {
			return fmt.Errorf("presence: snapshot lists user %q with no presence", su.UserID)
		}
		u := &user{online: su.Online}
		if len(su.Sessions) > 0 {
			u.sessions = make([]record, 0, len(su.Sessions))
		}
		for _, s := range su.Sessions {
			if s.UserID != su.UserID {
				return fmt.Errorf("presence: snapshot files session %q of %q under %q", s.SessionID, s.UserID, su.UserID)
			}
			if u.find(s.SessionID) >= 0 {
				return fmt.Errorf("presence: snapshot lists session %q twice", s.SessionID)
			}
			if !s.StartedAt.Equal(s.StartedAt.Truncate(time.Millisecond)) {
				return fmt.Errorf("presence: snapshot gives session %q a start finer than a millisecond", s.SessionID)
			}
			u.sessions = append(u.sessions, newRecord(s))
		}
		st.users[su.UserID] = u
	}
	m.mu.Lock()
	m.st = st
	m.mu.Unlock()
	return nil
}

// New implements projections.Projection.
func (m *Model) New() projections.Projection { return New() }

// Adopt implements projections.Projection: readers switch from m's state to
// other's in one step.
func (m *Model) Adopt(other projections.Projection) error {
	o, ok := other.(*Model)
	if !ok {
		return fmt.Errorf("presence: adopt %T: not a presence model", other)
	}
	if o == m {
		return nil
	}
	o.mu.Lock()
	st := o.st
	o.st = &state{users: map[string]*user{}}
	o.mu.Unlock()
	m.mu.Lock()
	m.st = st
	m.mu.Unlock()
	return nil
}
