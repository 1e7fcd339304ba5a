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

	// mu is held for a whole OnApplied batch, so that registering a session
	// and reading pos is atomic with respect to fan-out: every event after
	// the position a session registers at reaches it (see session.after).
	mu     sync.Mutex
	pos    eventstore.Position
	byUser map[string]map[*session]struct{}
	all    map[*session]struct{}
}

func newHub(rm *rooms.Model, epoch string, m *metrics, now func() time.Time) *hub {
	return &hub{rooms: rm, epoch: epoch, metrics: m, now: now, byUser: map[string]map[*session]struct{}{}, all: map[*session]struct{}{}}
}

// register adds s for live delivery and returns the hub's position: every
// event after it will be offered to s.
func (h *hub) register(s *session) eventstore.Position {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.byUser[s.userID]
	if set == nil {
		set = map[*session]struct{}{}
		h.byUser[s.userID] = set
	}
	set[s] = struct{}{}
	h.all[s] = struct{}{}
	return h.pos
}

func (h *hub) unregister(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set := h.byUser[s.userID]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(h.byUser, s.userID)
		}
	}
	delete(h.all, s)
}

// sessions returns the registered sessions matching keep.
func (h *hub) sessions(keep func(*session) bool) []*session {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*session
	for s := range h.all {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// onApplied fans a batch out. It never blocks on a client.
func (h *hub) onApplied(_ context.Context, batch []projections.Applied) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	for _, a := range batch {
		if a.Position > h.pos {
			h.pos = a.Position
		}
		r, ok := h.route(a)
		if !ok {
			continue
		}
		for _, u := range r.users {
			if u == r.exclude {
				continue
			}
			for s := range h.byUser[u] {
				s.deliver(r.push)
			}
		}
		h.metrics.deliveryDelay.Observe(now.Sub(a.RecordedAt).Seconds())
	}
}

// route decides who sees an applied event, from the read models as they
// are after the batch: room events go to the room's members (and a leaver
// is told of their own leaving), presence edges to everyone sharing a room
// with the user, DMs to both parties.
func (h *hub) route(a projections.Applied) (route, bool) {
	event, data, ok := pushOf(a.Envelope)
	if !ok {
		return route{}, false
	}
	p := &push{
		event: event, pos: a.Position, offset: eventstore.FormatOffset(h.epoch, a.Position),
		data: mustJSON(data), recordedAt: a.RecordedAt,
	}
	r := route{push: p}
	switch e := a.Envelope.Event.(type) {
	case domain.MessagePosted:
		r.users = h.members(e.RoomID)
	case domain.MemberJoined:
		r.users = h.members(e.RoomID)
	case domain.MemberLeft:
		r.users = sortedUnique(append(h.members(e.RoomID), e.UserID))
	case domain.TypingStarted:
		r.users, r.exclude = h.members(e.RoomID), e.UserID
	case domain.TypingStopped:
		r.users, r.exclude = h.members(e.RoomID), e.UserID
	case domain.UserOnline:
		r.users, r.exclude = h.roommates(e.UserID), e.UserID
	case domain.UserOffline:
		r.users, r.exclude = h.roommates(e.UserID), e.UserID
	case domain.DirectMessageSent:
		r.users = sortedUnique([]string{e.SenderID, e.ToUserID})
	}
	return r, true
}

func (h *hub) members(roomID string) []string {
	ms, _ := h.rooms.Members(roomID)
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.UserID
	}
	return out // Members is sorted by user id
}

func (h *hub) roommates(user string) []string {
	var out []string
	for _, id := range h.rooms.RoomsOf(user) {
		out = append(out, h.members(id)...)
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
