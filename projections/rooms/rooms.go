// Package rooms is the rooms read model: every room's settings, members and
// latest messages, and each user's rooms, folded from the room streams.
//
// The gateway answers room:join (members, last 50 messages, offset),
// membership checks and presence audiences from it. It lives in memory and
// is kept current by a projections.Runner, which also persists it. Reads are
// safe while the runner applies: a batch is applied under a write lock, so a
// reader sees a batch entirely or not at all, and every query returns copies.
package rooms

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/internal/jsonenc"
)

const (
	// Name is the projection's name.
	Name = "rooms"
	// Version is the fold's version; bump it when Apply changes meaning.
	Version = 1
	// RecentLimit is how many of a room's newest messages the model keeps
	// (what room:join returns; older history is read from the room stream).
	RecentLimit = 50
	// snapshotFormat is the layout of MarshalSnapshot's output.
	snapshotFormat = 1
	// wireTime is the RFC 3339 form with milliseconds that clients see.
	wireTime = "2006-01-02T15:04:05.000Z07:00"
)

var _ projections.Projection = (*Model)(nil)

// Room describes a room.
type Room struct {
	ID        string
	Name      string
	Private   bool
	PHI       bool
	CreatedBy string
	CreatedAt time.Time // UTC, millisecond precision
	// Seq is the room's newest message sequence number (0: no message yet).
	Seq uint64
	// Position is the global position of the last event applied to the room.
	Position eventstore.Position
	// MemberCount is how many members the room has.
	MemberCount int
}

// Member is a room member.
type Member struct {
	UserID string `json:"userId"`
	// Roles are the member's roles when they joined by themselves (taken
	// from the joining actor); nil when they were added by someone else or
	// listed at creation, since the log does not say.
	Roles    []domain.Role `json:"roles,omitempty"`
	JoinedAt time.Time     `json:"joinedAt"` // UTC, millisecond precision
}

// MarshalJSON writes joinedAt as RFC 3339 UTC with milliseconds.
func (m Member) MarshalJSON() ([]byte, error) {
	type wire struct {
		UserID   string        `json:"userId"`
		Roles    []domain.Role `json:"roles,omitempty"`
		JoinedAt string        `json:"joinedAt"`
	}
	return json.Marshal(wire{m.UserID, m.Roles, m.JoinedAt.UTC().Format(wireTime)})
}

// Message is a room message, as message:new and history entries carry it.
type Message struct {
	MessageID   string
	RoomID      string
	SenderID    string
	Content     string
	Seq         uint64
	ClientMsgID string
	CreatedAt   time.Time // the envelope's time: UTC, millisecond precision
	// Position is the message event's global position (the offset of its
	// push); it is not part of the JSON payload.
	Position eventstore.Position
}

// wireMessage is the client payload: {messageId, roomId, senderId, content,
// seq, clientMsgId?, createdAt}.
type wireMessage struct {
	MessageID   string `json:"messageId"`
	RoomID      string `json:"roomId"`
	SenderID    string `json:"senderId"`
	Content     string `json:"content"`
	Seq         uint64 `json:"seq"`
	ClientMsgID string `json:"clientMsgId,omitempty"`
	CreatedAt   string `json:"createdAt"`
}

// MarshalJSON writes the client payload, createdAt as RFC 3339 UTC with
// milliseconds.
func (m Message) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireMessage{m.MessageID, m.RoomID, m.SenderID, m.Content, m.Seq, m.ClientMsgID, m.CreatedAt.UTC().Format(wireTime)})
}

// View is a consistent picture of one room: all taken under one read lock,
// so members and messages belong to the same moment.
type View struct {
	Room     Room
	Members  []Member  // sorted by user id
	Messages []Message // ascending by seq
}

// Model is the rooms read model and its projection. The zero value is not
// usable; call New.
type Model struct {
	mu sync.RWMutex
	st *state
	// sizeHint is the last snapshot's size, to allocate the next one at once.
	sizeHint atomic.Int64
}

// New returns an empty model.
func New() *Model { return &Model{st: newState()} }

type state struct {
	pos    eventstore.Position
	rooms  map[string]*room
	byUser map[string]map[string]struct{} // user -> the rooms they are a member of
}

func newState() *state {
	return &state{rooms: map[string]*room{}, byUser: map[string]map[string]struct{}{}}
}

type room struct {
	info    Room // MemberCount is filled on read
	members map[string]Member
	msgs    []Message // a ring of at most RecentLimit; oldest at start once full
	start   int
}

// Room returns the room called id.
func (m *Model) Room(id string) (Room, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.st.rooms[id]
	if r == nil {
		return Room{}, false
	}
	return r.summary(), true
}

func (r *room) summary() Room {
	out := r.info
	out.MemberCount = len(r.members)
	return out
}

// IsMember reports whether userID is a member of room roomID.
func (m *Model) IsMember(roomID, userID string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.st.rooms[roomID]
	if r == nil {
		return false
	}
	_, ok := r.members[userID]
	return ok
}

// RoomsOf returns the ids of the rooms userID is a member of, sorted.
func (m *Model) RoomsOf(userID string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	set := m.st.byUser[userID]
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Members returns room roomID's members sorted by user id, and false if
// there is no such room.
func (m *Model) Members(roomID string) ([]Member, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.st.rooms[roomID]
	if r == nil {
		return nil, false
	}
	return r.memberList(), true
}

func (r *room) memberList() []Member {
	out := make([]Member, 0, len(r.members))
	for _, mb := range r.members {
		mb.Roles = slices.Clone(mb.Roles)
		out = append(out, mb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

// RecentMessages returns room roomID's newest n messages (at most
// RecentLimit; n <= 0 means RecentLimit), ascending by seq, and false if
// there is no such room.
func (m *Model) RecentMessages(roomID string, n int) ([]Message, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.st.rooms[roomID]
	if r == nil {
		return nil, false
	}
	return r.recent(n), true
}

func (r *room) recent(n int) []Message {
	if n <= 0 || n > RecentLimit {
		n = RecentLimit
	}
	n = min(n, len(r.msgs))
	out := make([]Message, 0, n)
	for i := len(r.msgs) - n; i < len(r.msgs); i++ {
		out = append(out, r.msgs[(r.start+i)%len(r.msgs)])
	}
	return out
}

// View returns room roomID with its members and newest n messages, all of
// the same moment, and false if there is no such room.
func (m *Model) View(roomID string, n int) (View, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.st.rooms[roomID]
	if r == nil {
		return View{}, false
	}
	return View{Room: r.summary(), Members: r.memberList(), Messages: r.recent(n)}, true
}

// Len returns the number of rooms.
func (m *Model) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.st.rooms)
}

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Version implements projections.Projection.
func (m *Model) Version() int { return Version }

// EventTypes implements projections.Projection.
func (m *Model) EventTypes() []string {
	return []string{"RoomCreated", "MemberJoined", "MemberLeft", "MessagePosted"}
}

// Position implements projections.Projection.
func (m *Model) Position() eventstore.Position {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.pos
}

// Apply implements projections.Projection. It never fails: events are
// facts. Events about a room the model does not know (which the domain
// never emits) and a second RoomCreated for a known id are ignored, the
// same way in every replay.
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
	env := &a.Envelope
	at := env.Time.UTC().Truncate(time.Millisecond)
	var r *room
	switch e := env.Event.(type) {
	case domain.RoomCreated:
		if st.rooms[e.RoomID] != nil {
			return
		}
		r = &room{
			info: Room{
				ID: e.RoomID, Name: e.Name, Private: e.Private, PHI: e.PHI,
				CreatedBy: e.CreatedBy, CreatedAt: at,
			},
			members: make(map[string]Member, len(e.Members)+1),
		}
		st.rooms[e.RoomID] = r
		var creatorRoles []domain.Role
		if env.Actor.UserID == e.CreatedBy {
			creatorRoles = env.Actor.Roles
		}
		st.join(r, e.CreatedBy, creatorRoles, at)
		for _, u := range e.Members {
			st.join(r, u, nil, at)
		}
	case domain.MemberJoined:
		if r = st.rooms[e.RoomID]; r == nil {
			return
		}
		var roles []domain.Role
		if e.AddedBy == "" && env.Actor.UserID == e.UserID {
			roles = env.Actor.Roles
		}
		st.join(r, e.UserID, roles, at)
	case domain.MemberLeft:
		if r = st.rooms[e.RoomID]; r == nil {
			return
		}
		delete(r.members, e.UserID)
		if set := st.byUser[e.UserID]; set != nil {
			delete(set, e.RoomID)
			if len(set) == 0 {
				delete(st.byUser, e.UserID)
			}
		}
	case domain.MessagePosted:
		if r = st.rooms[e.RoomID]; r == nil {
			return
		}
		r.push(Message{
			MessageID: e.MessageID, RoomID: e.RoomID, SenderID: e.SenderID, Content: e.Content,
			Seq: e.Seq, ClientMsgID: e.ClientMsgID, CreatedAt: at, Position: a.Position,
		})
		r.info.Seq = max(r.info.Seq, e.Seq)
	default:
		return
	}
	r.info.Position = a.Position
}

// join adds a member; joining again changes nothing (the domain emits no
// event for it, and a replay must agree with the original either way).
func (st *state) join(r *room, user string, roles []domain.Role, at time.Time) {
	if user == "" {
		return
	}
	if _, ok := r.members[user]; ok {
		return
	}
	r.members[user] = Member{UserID: user, Roles: roles, JoinedAt: at}
	set := st.byUser[user]
	if set == nil {
		set = map[string]struct{}{}
		st.byUser[user] = set
	}
	set[r.info.ID] = struct{}{}
}

func (r *room) push(msg Message) {
	if len(r.msgs) < RecentLimit {
		if len(r.msgs) == cap(r.msgs) {
			// Grow towards RecentLimit, never past it.
			grown := make([]Message, len(r.msgs), min(max(2*cap(r.msgs), 4), RecentLimit))
			copy(grown, r.msgs)
			r.msgs = grown
		}
		r.msgs = append(r.msgs, msg)
		return
	}
	r.msgs[r.start] = msg
	r.start = (r.start + 1) % RecentLimit
}

// Snapshot layout, as UnmarshalSnapshot reads it with encoding/json and
// MarshalSnapshot writes it. Rooms are sorted by id, members by user id,
// messages ascending, so equal states give equal bytes.
type snapshot struct {
	Format   int                 `json:"format"`
	Position eventstore.Position `json:"position"`
	Rooms    []snapRoom          `json:"rooms"`
}

type snapRoom struct {
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	Private   bool                `json:"private"`
	PHI       bool                `json:"phi"`
	CreatedBy string              `json:"createdBy"`
	CreatedAt time.Time           `json:"createdAt"`
	Seq       uint64              `json:"seq"`
	Position  eventstore.Position `json:"position"`
	Members   []snapMember        `json:"members"`
	Messages  []snapMessage       `json:"messages"`
}

type snapMember struct {
	UserID   string        `json:"userId"`
	Roles    []domain.Role `json:"roles,omitempty"`
	JoinedAt time.Time     `json:"joinedAt"`
}

type snapMessage struct {
	MessageID   string              `json:"messageId"`
	SenderID    string              `json:"senderId"`
	Content     string              `json:"content"`
	Seq         uint64              `json:"seq"`
	ClientMsgID string              `json:"clientMsgId,omitempty"`
	CreatedAt   time.Time           `json:"createdAt"`
	Position    eventstore.Position `json:"position"`
}

// MarshalSnapshot implements projections.Projection. It writes exactly what
// json.Marshal would for the snapshot structs, with a reflection-free
// encoder: saving a snapshot holds up the runner.
func (m *Model) MarshalSnapshot() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := make([]string, 0, len(m.st.rooms))
	for id := range m.st.rooms {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	b := make([]byte, 0, m.st.sizeEstimate(m.sizeHint.Load()))
	b = append(b, `{"format":`...)
	b = jsonenc.Int(b, snapshotFormat)
	b = append(b, `,"position":`...)
	b = jsonenc.Uint(b, uint64(m.st.pos))
	b = append(b, `,"rooms":[`...)
	users := make([]string, 0, 16)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b, users = m.st.rooms[id].appendSnapshot(b, users[:0])
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
	for _, r := range st.rooms {
		n += 256 + len(r.info.Name) + 96*len(r.members)
		for i := range r.msgs {
			msg := &r.msgs[i]
			n += 192 + len(msg.MessageID) + len(msg.SenderID) + len(msg.ClientMsgID) + len(msg.Content)*9/8
		}
	}
	return n
}

// appendSnapshot appends r as json.Marshal writes a snapRoom; users is
// scratch space for sorting member ids.
func (r *room) appendSnapshot(b []byte, users []string) ([]byte, []string) {
	info := &r.info
	b = append(b, `{"id":`...)
	b = jsonenc.String(b, info.ID)
	b = append(b, `,"name":`...)
	b = jsonenc.String(b, info.Name)
	b = append(b, `,"private":`...)
	b = jsonenc.Bool(b, info.Private)
	b = append(b, `,"phi":`...)
	b = jsonenc.Bool(b, info.PHI)
	b = append(b, `,"createdBy":`...)
	b = jsonenc.String(b, info.CreatedBy)
	b = append(b, `,"createdAt":`...)
	b = jsonenc.Time(b, info.CreatedAt)
	b = append(b, `,"seq":`...)
	b = jsonenc.Uint(b, info.Seq)
	b = append(b, `,"position":`...)
	b = jsonenc.Uint(b, uint64(info.Position))
	b = append(b, `,"members":[`...)
	for u := range r.members {
		users = append(users, u)
	}
	sort.Strings(users)
	for i, u := range users {
		mb := r.members[u]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"userId":`...)
		b = jsonenc.String(b, mb.UserID)
		if len(mb.Roles) > 0 {
			b = append(b, `,"roles":[`...)
			for j, role := range mb.Roles {
				if j > 0 {
					b = append(b, ',')
				}
				b = jsonenc.String(b, string(role))
			}
			b = append(b, ']')
		}
		b = append(b, `,"joinedAt":`...)
		b = jsonenc.Time(b, mb.JoinedAt)
		b = append(b, '}')
	}
	b = append(b, `],"messages":[`...)
	for i := range r.msgs {
		msg := &r.msgs[(r.start+i)%len(r.msgs)]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"messageId":`...)
		b = jsonenc.String(b, msg.MessageID)
		b = append(b, `,"senderId":`...)
		b = jsonenc.String(b, msg.SenderID)
		b = append(b, `,"content":`...)
		b = jsonenc.String(b, msg.Content)
		b = append(b, `,"seq":`...)
		b = jsonenc.Uint(b, msg.Seq)
		if msg.ClientMsgID != "" {
			b = append(b, `,"clientMsgId":`...)
			b = jsonenc.String(b, msg.ClientMsgID)
		}
		b = append(b, `,"createdAt":`...)
		b = jsonenc.Time(b, msg.CreatedAt)
		b = append(b, `,"position":`...)
		b = jsonenc.Uint(b, uint64(msg.Position))
		b = append(b, '}')
	}
	return append(b, "]}"...), users
}

// UnmarshalSnapshot implements projections.Projection. It checks the
// snapshot's invariants, so that a damaged one is refused rather than
// served.
func (m *Model) UnmarshalSnapshot(data []byte) error {
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("rooms: read snapshot: %w", err)
	}
	if snap.Format != snapshotFormat {
		return fmt.Errorf("rooms: snapshot format %d, want %d", snap.Format, snapshotFormat)
	}
	st := newState()
	st.pos = snap.Position
	for _, sr := range snap.Rooms {
		if sr.ID == "" || st.rooms[sr.ID] != nil {
			return fmt.Errorf("rooms: snapshot: empty or repeated room id %q", sr.ID)
		}
		if len(sr.Messages) > RecentLimit {
			return fmt.Errorf("rooms: snapshot: room %q has %d messages, more than %d", sr.ID, len(sr.Messages), RecentLimit)
		}
		if sr.Position > snap.Position {
			return fmt.Errorf("rooms: snapshot: room %q at position %d, after the snapshot's %d", sr.ID, sr.Position, snap.Position)
		}
		r := &room{
			info: Room{
				ID: sr.ID, Name: sr.Name, Private: sr.Private, PHI: sr.PHI, CreatedBy: sr.CreatedBy,
				CreatedAt: sr.CreatedAt.UTC(), Seq: sr.Seq, Position: sr.Position,
			},
			members: make(map[string]Member, len(sr.Members)),
			msgs:    make([]Message, 0, len(sr.Messages)),
		}
		st.rooms[sr.ID] = r
		for _, mb := range sr.Members {
			if mb.UserID == "" {
				return fmt.Errorf("rooms: snapshot: room %q has a member without id", sr.ID)
			}
			if _, dup := r.members[mb.UserID]; dup {
				return fmt.Errorf("rooms: snapshot: room %q lists member %q twice", sr.ID, mb.UserID)
			}
			st.join(r, mb.UserID, mb.Roles, mb.JoinedAt.UTC())
		}
		for _, sm := range sr.Messages {
			r.push(Message{
				MessageID: sm.MessageID, RoomID: sr.ID, SenderID: sm.SenderID, Content: sm.Content, Seq: sm.Seq,
				ClientMsgID: sm.ClientMsgID, CreatedAt: sm.CreatedAt.UTC(), Position: sm.Position,
			})
		}
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
		return fmt.Errorf("rooms: adopt %T: not a rooms model", other)
	}
	if o == m {
		return nil
	}
	o.mu.Lock()
	st := o.st
	o.st = newState()
	o.mu.Unlock()
	m.mu.Lock()
	m.st = st
	m.mu.Unlock()
	return nil
}

// String describes the model briefly, for logs.
func (m *Model) String() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return fmt.Sprintf("rooms(%d rooms, position %d)", len(m.st.rooms), m.st.pos)
}
