package gateway

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/rooms"
	"github.com/wardline/wardline/transport/native"
	"github.com/wardline/wardline/transport/socketio"
)

// push is one event from the log on its way to clients, encoded at most once
// per transport and shared by every recipient.
type push struct {
	event      string
	pos        eventstore.Position
	offset     string
	data       json.RawMessage
	recordedAt time.Time

	sioOnce sync.Once
	sio     socketio.Frame
	sioErr  error
	natOnce sync.Once
	nat     []byte
	natErr  error
}

func (p *push) socketIO() (socketio.Frame, error) {
	p.sioOnce.Do(func() { p.sio, p.sioErr = socketio.EncodeEvent(chatNamespace, p.event, p.data, p.offset) })
	return p.sio, p.sioErr
}

func (p *push) native() ([]byte, error) {
	p.natOnce.Do(func() { p.nat, p.natErr = native.EncodePush(p.event, p.data, p.offset) })
	return p.nat, p.natErr
}

// route is who receives a push: the sessions of users, except those of
// exclude (a typer does not see their own typing).
type route struct {
	push    *push
	users   []string // sorted, no repeats
	exclude string
	room    string // users are exactly this room's members (see roomTargets)
}

func (r route) reaches(user string) bool {
	if user == r.exclude {
		return false
	}
	_, ok := slices.BinarySearch(r.users, user)
	return ok
}

// hub routes applied events to the sessions that may see them.
type hub struct {
	rooms   *rooms.Model
	epoch   string
	metrics *metrics
	now     func() time.Time

	// fanMu serialises fan-out (OnApplied is called from the Runner's
	// goroutine only, but nothing here relies on it) and guards fanout,
	// the reused list of a batch's deliveries.
	fanMu  sync.Mutex
	fanout []delivery

	// mu makes registering a session and reading pos atomic with respect
	// to a batch: a batch is routed, put in the recent ring and its
	// recipients listed under mu, so a session registered before that sees
	// the batch live and one registered after gets a pos that includes it
	// and replays it (from the ring). The sends themselves happen after mu
	// is released, so connects and disconnects never wait for a fan-out.
	mu     sync.Mutex
	pos    eventstore.Position
	byUser map[string][]*session // a user has few sessions: a slice is smaller and faster to walk than a set
	recent recentRing
	// members caches rooms.Members as sorted user ids per room: the model
	// copies and sorts its member list on every call, which was half of
	// the hub's CPU per message. Entries are dropped when a batch holds an
	// event that changes the room's membership.
	members map[string][]string
	// roomTargets caches, per room, the registered sessions of its members,
	// what a room event fans out to: looking each member up in byUser was
	// ~5% of the server's CPU at 50k deliveries/s (hashing and comparing a
	// user id per member per message). Any register or unregister clears
	// it, and an entry is used only for the member list it was built from,
	// so it always equals the lookups it saves. At most maxRoomTargets
	// entries, so that clearing stays cheap.
	roomTargets map[string]roomTargets
}

// roomTargets is one room's entry in hub.roomTargets.
type roomTargets struct {
	users    []string // the member list the entry was built from
	sessions []*session
}

// maxRoomTargets bounds hub.roomTargets.
const maxRoomTargets = 1024

// delivery is one push for one session.
type delivery struct {
	push *push
	s    *session
}

func newHub(rm *rooms.Model, epoch string, m *metrics, now func() time.Time) *hub {
	return &hub{
		rooms: rm, epoch: epoch, metrics: m, now: now,
		byUser: map[string][]*session{}, members: map[string][]string{},
		roomTargets: map[string]roomTargets{},
		recent:      newRecentRing(recentMaxEntries, recentMaxBytes),
	}
}

// register adds s for live delivery and returns the hub's position: every
// event after it will be offered to s.
func (h *hub) register(s *session) eventstore.Position {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byUser[s.userID] = append(h.byUser[s.userID], s)
	clear(h.roomTargets)
	return h.pos
}

func (h *hub) unregister(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.byUser[s.userID]
	i := slices.Index(set, s)
	if i < 0 {
		return
	}
	clear(h.roomTargets)
	if len(set) == 1 {
		delete(h.byUser, s.userID)
		return
	}
	set[i] = set[len(set)-1]
	set[len(set)-1] = nil
	h.byUser[s.userID] = set[:len(set)-1]
}

// sessions returns the registered sessions matching keep.
func (h *hub) sessions(keep func(*session) bool) []*session {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*session
	for _, set := range h.byUser {
		for _, s := range set {
			if keep(s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// recentFor returns the pushes in (from, live] that reach user, from the
// ring, and false when the ring does not hold all of that window (it
// starts before the ring's oldest entry), so the log must be read.
func (h *hub) recentFor(user string, from, live eventstore.Position) ([]*push, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.recent.window(user, from, live)
}

// routeReplayed routes an event read back from the log for a replay.
func (h *hub) routeReplayed(a projections.Applied) (route, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.route(a)
}

// onApplied fans a batch out. It never blocks on a client.
func (h *hub) onApplied(_ context.Context, batch []projections.Applied) {
	h.fanMu.Lock()
	defer h.fanMu.Unlock()
	now := h.now()
	h.mu.Lock()
	h.forgetMembers(batch)
	out := h.fanout[:0]
	for _, a := range batch {
		fresh := a.Position > h.pos
		if fresh {
			h.pos = a.Position
		}
		r, ok := h.route(a)
		if fresh {
			// Even an event nobody sees moves the ring's coverage on.
			h.recent.add(a.Position, r, ok)
		}
		if !ok {
			continue
		}
		if r.room != "" {
			for _, s := range h.targetsOf(r.room, r.users) {
				if r.exclude == "" || s.userID != r.exclude {
					out = append(out, delivery{push: r.push, s: s})
				}
			}
		} else {
			for _, u := range r.users {
				if u == r.exclude {
					continue
				}
				for _, s := range h.byUser[u] {
					out = append(out, delivery{push: r.push, s: s})
				}
			}
		}
		h.metrics.deliveryDelay.Observe(now.Sub(a.RecordedAt).Seconds())
	}
	h.mu.Unlock()
	for i, d := range out {
		d.s.deliver(d.push)
		out[i] = delivery{} // the reused list must not keep sessions or pushes alive
	}
	if cap(out) > maxKeptFanout {
		out = nil // one huge batch does not pin its list for good
	}
	h.fanout = out[:0]
}

// maxKeptFanout bounds the delivery list kept between batches (16 bytes an
// entry).
const maxKeptFanout = 1 << 14

// targetsOf returns the registered sessions of users, the members of
// room, from roomTargets or looked up and cached there. Shared: callers
// must not modify it. Called with mu held.
func (h *hub) targetsOf(room string, users []string) []*session {
	if t, ok := h.roomTargets[room]; ok && len(t.users) == len(users) && (len(users) == 0 || &t.users[0] == &users[0]) {
		return t.sessions
	}
	var list []*session
	for _, u := range users {
		list = append(list, h.byUser[u]...)
	}
	if len(h.roomTargets) >= maxRoomTargets {
		clear(h.roomTargets)
	}
	h.roomTargets[room] = roomTargets{users: users, sessions: list}
	return list
}

// forgetMembers drops the cached member lists of the rooms whose
// membership batch changes, before anything in the batch is routed: routing
// reads the models as they are after the batch.
func (h *hub) forgetMembers(batch []projections.Applied) {
	for _, a := range batch {
		switch e := a.Envelope.Event.(type) {
		case domain.RoomCreated:
			delete(h.members, e.RoomID)
			delete(h.roomTargets, e.RoomID)
		case domain.MemberJoined:
			delete(h.members, e.RoomID)
			delete(h.roomTargets, e.RoomID)
		case domain.MemberLeft:
			delete(h.members, e.RoomID)
			delete(h.roomTargets, e.RoomID)
		}
	}
}

// route decides who sees an applied event, from the read models as they
// are after the batch: room events go to the room's members (and a leaver
// is told of their own leaving), presence edges to everyone sharing a room
// with the user, DMs to both parties. An event nobody may see is not
// routed (false), so it costs no encoding.
func (h *hub) route(a projections.Applied) (route, bool) {
	var r route
	switch e := a.Envelope.Event.(type) {
	case domain.MessagePosted:
		r.users, r.room = h.roomMembers(e.RoomID), e.RoomID
	case domain.MemberJoined:
		r.users, r.room = h.roomMembers(e.RoomID), e.RoomID
	case domain.MemberLeft:
		r.users = sortedUnique(append(slices.Clip(h.roomMembers(e.RoomID)), e.UserID))
	case domain.TypingStarted:
		r.users, r.exclude, r.room = h.roomMembers(e.RoomID), e.UserID, e.RoomID
	case domain.TypingStopped:
		r.users, r.exclude, r.room = h.roomMembers(e.RoomID), e.UserID, e.RoomID
	case domain.UserOnline:
		r.users, r.exclude = h.roommates(e.UserID), e.UserID
	case domain.UserOffline:
		r.users, r.exclude = h.roommates(e.UserID), e.UserID
	case domain.DirectMessageSent:
		r.users = sortedUnique([]string{e.SenderID, e.ToUserID})
	default:
		return route{}, false
	}
	if len(r.users) == 0 || len(r.users) == 1 && r.users[0] == r.exclude {
		return route{}, false
	}
	event, data, ok := pushOf(a.Envelope)
	if !ok {
		return route{}, false
	}
	r.push = &push{
		event: event, pos: a.Position, offset: eventstore.FormatOffset(h.epoch, a.Position),
		data: mustJSON(data), recordedAt: a.RecordedAt,
	}
	return r, true
}

// roomMembers returns the sorted user ids of roomID's members, shared:
// callers must not modify it.
func (h *hub) roomMembers(roomID string) []string {
	if ids, ok := h.members[roomID]; ok {
		return ids
	}
	ms, _ := h.rooms.Members(roomID)
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	h.members[roomID] = ids // Members is sorted by user id
	return ids
}

func (h *hub) roommates(user string) []string {
	var out []string
	for _, id := range h.rooms.RoomsOf(user) {
		out = append(out, h.roomMembers(id)...)
	}
	return sortedUnique(out)
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// pushedType reports whether events of type typ are ever pushed, so that a
// replay decodes only those.
func pushedType(typ string) bool {
	switch typ {
	case "MessagePosted", "DirectMessageSent", "MemberJoined", "MemberLeft",
		"TypingStarted", "TypingStopped", "UserOnline", "UserOffline":
		return true
	}
	return false
}

func appliedOf(r eventstore.RecordedEvent, env domain.Envelope) projections.Applied {
	return projections.Applied{Position: r.Position, StreamVersion: r.Version, RecordedAt: r.RecordedAt, Envelope: env}
}
