package domain

import (
	"hash/fnv"
	"sort"
)

// Room actions, as recorded in RoomAccessDenied.Action.
const (
	ActionJoin      = "join"
	ActionAddMember = "add_member"
	ActionSend      = "send"
	ActionTyping    = "typing"
	ActionHistory   = "history"
)

// Reasons recorded in RoomAccessDenied.Reason: stable tokens, so audit
// queries can group by them.
const (
	ReasonNotMember       = "not_member"
	ReasonPrivateRoom     = "private_room"
	ReasonLeftPrivateRoom = "left_private_room"
)

// roomCreators are the roles that may create rooms (DESIGN.md "Rooms and
// membership").
func roomCreators() []Role {
	return []Role{RoleNurse, RolePhysician, RoleStaff, RoleAdmin, RoleSuperAdmin}
}

// Room is one room's state, folded from its stream (RoomStream) with Apply.
// The zero value is a room that does not exist yet; a nil *Room reads the
// same. Room is not safe for concurrent use.
type Room struct {
	id, name, createdBy string
	private, phi        bool
	members             map[string]struct{}
	left                map[string]struct{} // left a private room; must be added back
	seq                 uint64
	version             uint64
	sent                map[sentKey]sentMessage
}

// sentKey identifies a client's retry: the same clientMsgId from another
// sender is another message.
type sentKey struct{ sender, clientMsgID string }

type sentMessage struct {
	messageID string
	seq       uint64
	eventID   string
	version   uint64
	digest    uint64 // of the content, to tell a retry from a reused id
}

func (m sentMessage) result() MessageResult {
	return MessageResult{MessageID: m.messageID, Seq: m.seq, Duplicate: true, EventID: m.eventID, StreamVersion: m.version}
}

func contentDigest(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s)) // never fails
	return h.Sum64()
}

// MessageResult is what a send answers: the message id and room sequence
// (zero for DMs). Duplicate is true when the command was a retry of an
// accepted clientMsgId; then EventID and StreamVersion locate the original
// event in its stream, so the caller can answer with its offset.
type MessageResult struct {
	MessageID     string
	Seq           uint64
	Duplicate     bool
	EventID       string
	StreamVersion uint64
}

// Apply folds one event of the room's stream into r. Every event counts
// towards Version, so apply all of the stream's events, in order, and only
// them. Events are facts: Apply never refuses one.
func (r *Room) Apply(env Envelope) {
	r.version++
	switch e := env.Event.(type) {
	case RoomCreated:
		r.id, r.name, r.createdBy = e.RoomID, e.Name, e.CreatedBy
		r.private, r.phi = e.Private, e.PHI
		r.addMember(e.CreatedBy)
		for _, m := range e.Members {
			r.addMember(m)
		}
	case MemberJoined:
		r.addMember(e.UserID)
		delete(r.left, e.UserID)
	case MemberLeft:
		delete(r.members, e.UserID)
		if r.private {
			if r.left == nil {
				r.left = make(map[string]struct{})
			}
			r.left[e.UserID] = struct{}{}
		}
	case MessagePosted:
		r.seq = e.Seq
		if e.ClientMsgID != "" {
			if r.sent == nil {
				r.sent = make(map[sentKey]sentMessage)
			}
			r.sent[sentKey{e.SenderID, e.ClientMsgID}] = sentMessage{
				messageID: e.MessageID, seq: e.Seq, eventID: env.ID, version: r.version,
				digest: contentDigest(e.Content),
			}
		}
	}
}

func (r *Room) addMember(u string) {
	if u == "" {
		return
	}
	if r.members == nil {
		r.members = make(map[string]struct{})
	}
	r.members[u] = struct{}{}
}

// Exists reports whether the room was created.
func (r *Room) Exists() bool { return r != nil && r.id != "" }

// ID returns the room id ("" before RoomCreated).
func (r *Room) ID() string {
	if r == nil {
		return ""
	}
	return r.id
}

// Name returns the room's display name.
func (r *Room) Name() string {
	if r == nil {
		return ""
	}
	return r.name
}

// Private reports whether only members may join.
func (r *Room) Private() bool { return r != nil && r.private }

// PHI reports whether the room's messages are protected health information.
func (r *Room) PHI() bool { return r != nil && r.phi }

// CreatedBy returns the creator's user id.
func (r *Room) CreatedBy() string {
	if r == nil {
		return ""
	}
	return r.createdBy
}

// IsMember reports whether user is a member now.
func (r *Room) IsMember(user string) bool {
	if r == nil {
		return false
	}
	_, ok := r.members[user]
	return ok
}

// HasLeft reports whether user left this private room and has not been
// added back.
func (r *Room) HasLeft(user string) bool {
	if r == nil {
		return false
	}
	_, ok := r.left[user]
	return ok
}

// Members returns the member ids, sorted.
func (r *Room) Members() []string {
	if r == nil {
		return []string{}
	}
	out := make([]string, 0, len(r.members))
	for m := range r.members {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Seq returns the sequence of the newest message (0 when none).
func (r *Room) Seq() uint64 {
	if r == nil {
		return 0
	}
	return r.seq
}

// Version returns how many events were applied: the stream version when the
// whole stream was applied. Append a decision's events with
// eventstore.Exact(Version()) so that a concurrent decision (two messages
// claiming the same seq) fails and is decided again on fresh state.
func (r *Room) Version() uint64 {
	if r == nil {
		return 0
	}
	return r.version
}

// Sent returns the result of the message sender posted with clientMsgID, if any.
func (r *Room) Sent(sender, clientMsgID string) (MessageResult, bool) {
	if r == nil || clientMsgID == "" {
		return MessageResult{}, false
	}
	m, ok := r.sent[sentKey{sender, clientMsgID}]
	if !ok {
		return MessageResult{}, false
	}
	return m.result(), true
}

// find checks that r is the existing room id.
func (r *Room) find(id string) error {
	if !r.Exists() {
		return ErrRoomNotFound.Withf("%q", id)
	}
	if r.id != id {
		return ErrWrongStateForCommand.Withf("room %q given for %q", r.id, id)
	}
	return nil
}

// requireMember refuses a non-member with an audited denial.
func (r *Room) requireMember(user, action string) error {
	if r.IsMember(user) {
		return nil
	}
	return deny(r.id, user, action, ReasonNotMember, ErrNotMember)
}

func deny(roomID, user, action, reason string, rule *Error) error {
	return &AccessDeniedError{
		Denial: RoomAccessDenied{RoomID: roomID, UserID: user, Action: action, Reason: reason},
		Err:    rule,
	}
}

// CreateRoom is room:create. The creator is always a member; Members are
// members at once.
type CreateRoom struct {
	RoomID  string   // optional: a new id (Context.NewID) when empty
	Name    string   // required
	Private *bool    // default true
	PHI     *bool    // default true: rooms on a care team's system carry PHI unless told otherwise
	Members []string // user ids; duplicates and the creator are folded in
}

// Validate checks the command's shape.
func (cmd CreateRoom) Validate(Limits) error {
	if cmd.RoomID != "" {
		if err := validateRoomID(cmd.RoomID); err != nil {
			return err
		}
	}
	if cmd.Name == "" {
		return ErrInvalidName.Withf("name is required")
	}
	if err := validateText("name", cmd.Name, maxNameBytes); err != nil {
		return ErrInvalidName
	}
	for _, m := range cmd.Members {
		if err := ValidateUserID(m); err != nil {
			return err
		}
	}
	return nil
}

// Decide creates the room. room is the state of cmd.RoomID (empty when the
// id is new or not given). Permission is checked before the duplicate id, so
// a user who may not create rooms cannot probe which ids exist.
//
// Append the events with eventstore.NoStream: a WrongExpectedVersion there
// is a concurrent create of the same id, which the caller reports as
// ErrRoomExists.
func (cmd CreateRoom) Decide(c Context, room *Room) ([]Event, error) {
	user, err := c.user()
	if err != nil {
		return nil, err
	}
	if err := cmd.Validate(c.Limits); err != nil {
		return nil, err
	}
	if !c.Actor.HasRole(roomCreators()...) {
		return nil, ErrCannotCreateRoom
	}
	id := cmd.RoomID
	if id == "" {
		if room.Exists() {
			return nil, ErrWrongStateForCommand.Withf("existing room %q given for a new id", room.ID())
		}
		if id, err = c.newID(); err != nil {
			return nil, err
		}
		if !validID(id) {
			return nil, ErrNoIDGenerator.Withf("generated room id %q is malformed", truncate(id))
		}
	} else if room.Exists() {
		if room.ID() != id {
			return nil, ErrWrongStateForCommand.Withf("room %q given for %q", room.ID(), id)
		}
		return nil, ErrRoomExists.Withf("%q", id)
	}
	members := []string{user}
	seen := map[string]bool{user: true}
	for _, m := range cmd.Members {
		if !seen[m] {
			seen[m] = true
			members = append(members, m)
		}
	}
	private, phi := true, true
	if cmd.Private != nil {
		private = *cmd.Private
	}
	if cmd.PHI != nil {
		phi = *cmd.PHI
	}
	return []Event{RoomCreated{
		RoomID: id, Name: cmd.Name, Private: private, PHI: phi, CreatedBy: user, Members: members,
	}}, nil
}

// JoinRoom is room:join. A public room takes anyone; a private room only its
// members (listed at creation or added by a member) — admins included, for
// minimum necessary access. Joining again succeeds with no event.
type JoinRoom struct {
	RoomID string
}

// Validate checks the command's shape.
func (cmd JoinRoom) Validate(Limits) error { return validateRoomID(cmd.RoomID) }

// Decide joins the actor to the room. A refusal is an *AccessDeniedError.
func (cmd JoinRoom) Decide(c Context, room *Room) ([]Event, error) {
	user, err := beginRoomCommand(c, cmd, room, cmd.RoomID)
	if err != nil {
		return nil, err
	}
	if room.IsMember(user) {
		return nil, nil
	}
	if room.Private() {
		if room.HasLeft(user) {
			return nil, deny(room.ID(), user, ActionJoin, ReasonLeftPrivateRoom, ErrLeftPrivateRoom)
		}
		return nil, deny(room.ID(), user, ActionJoin, ReasonPrivateRoom, ErrPrivateRoom)
	}
	return []Event{MemberJoined{RoomID: room.ID(), UserID: user}}, nil
}

// AddMember lets a member add a user (the way back into a private room after
// leaving it). Adding a member is a no-op.
type AddMember struct {
	RoomID string
	UserID string
}

// Validate checks the command's shape.
func (cmd AddMember) Validate(Limits) error {
	if err := validateRoomID(cmd.RoomID); err != nil {
		return err
	}
	return ValidateUserID(cmd.UserID)
}

// Decide adds cmd.UserID. Only members may add; a refusal is an
// *AccessDeniedError.
func (cmd AddMember) Decide(c Context, room *Room) ([]Event, error) {
	actor, err := beginRoomCommand(c, cmd, room, cmd.RoomID)
	if err != nil {
		return nil, err
	}
	if err := room.requireMember(actor, ActionAddMember); err != nil {
		return nil, err
	}
	if room.IsMember(cmd.UserID) {
		return nil, nil
	}
	return []Event{MemberJoined{RoomID: room.ID(), UserID: cmd.UserID, AddedBy: actor}}, nil
}

// LeaveRoom is room:leave: membership ends for all the user's sessions.
// Leaving a room one is not a member of succeeds with no event, like joining
// twice: a retried leave must not fail. The creator may leave too; "the
// creator is always a member" holds at creation.
type LeaveRoom struct {
	RoomID string
}

// Validate checks the command's shape.
func (cmd LeaveRoom) Validate(Limits) error { return validateRoomID(cmd.RoomID) }

// Decide ends the actor's membership.
func (cmd LeaveRoom) Decide(c Context, room *Room) ([]Event, error) {
	user, err := beginRoomCommand(c, cmd, room, cmd.RoomID)
	if err != nil {
		return nil, err
	}
	if !room.IsMember(user) {
		return nil, nil
	}
	return []Event{MemberLeft{RoomID: room.ID(), UserID: user}}, nil
}

// PostMessage is message:send (and POST /api/v1/rooms/{id}/messages).
type PostMessage struct {
	RoomID      string
	Content     string
	ClientMsgID string // optional; a retry with the same id from the same sender appends nothing
}

// Validate checks the command's shape, size included.
func (cmd PostMessage) Validate(l Limits) error {
	l = l.WithDefaults()
	if err := validateRoomID(cmd.RoomID); err != nil {
		return err
	}
	if err := validateContent(cmd.Content, l.MaxContentBytes); err != nil {
		return err
	}
	return validateClientMsgID(cmd.ClientMsgID)
}

// Decide posts the message with the next gap-free seq. Membership is all it
// needs; the role service may post to any room (devices and backends post
// into care rooms; writing reveals nothing). A retry of an accepted
// clientMsgId returns the original result (Duplicate) and no events, and is
// answered before the membership check since it reveals nothing new; the
// same clientMsgId with other content is ErrClientMsgIDReused.
func (cmd PostMessage) Decide(c Context, room *Room) (MessageResult, []Event, error) {
	user, err := beginRoomCommand(c, cmd, room, cmd.RoomID)
	if err != nil {
		return MessageResult{}, nil, err
	}
	if cmd.ClientMsgID != "" {
		if m, ok := room.sent[sentKey{user, cmd.ClientMsgID}]; ok {
			if m.digest != contentDigest(cmd.Content) {
				return MessageResult{}, nil, ErrClientMsgIDReused.Withf("%q", truncate(cmd.ClientMsgID))
			}
			return m.result(), nil, nil
		}
	}
	if !c.Actor.HasRole(RoleService) {
		if err := room.requireMember(user, ActionSend); err != nil {
			return MessageResult{}, nil, err
		}
	}
	id, err := c.newID()
	if err != nil {
		return MessageResult{}, nil, err
	}
	ev := MessagePosted{
		MessageID: id, RoomID: room.ID(), SenderID: user, Content: cmd.Content,
		Seq: room.Seq() + 1, ClientMsgID: cmd.ClientMsgID,
	}
	return MessageResult{MessageID: id, Seq: ev.Seq}, []Event{ev}, nil
}

// StartTyping is typing:start. Its events go to TypingStream, not the room's.
type StartTyping struct {
	RoomID string
}

// Validate checks the command's shape.
func (cmd StartTyping) Validate(Limits) error { return validateRoomID(cmd.RoomID) }

// Decide says the actor is typing; members only.
func (cmd StartTyping) Decide(c Context, room *Room) ([]Event, error) {
	user, err := typingCheck(c, room, cmd.RoomID)
	if err != nil {
		return nil, err
	}
	return []Event{TypingStarted{RoomID: room.ID(), UserID: user}}, nil
}

// StopTyping is typing:stop.
type StopTyping struct {
	RoomID string
}

// Validate checks the command's shape.
func (cmd StopTyping) Validate(Limits) error { return validateRoomID(cmd.RoomID) }

// Decide says the actor stopped typing; members only.
func (cmd StopTyping) Decide(c Context, room *Room) ([]Event, error) {
	user, err := typingCheck(c, room, cmd.RoomID)
	if err != nil {
		return nil, err
	}
	return []Event{TypingStopped{RoomID: room.ID(), UserID: user}}, nil
}

func typingCheck(c Context, room *Room, roomID string) (string, error) {
	user, err := c.user()
	if err != nil {
		return "", err
	}
	if err := validateRoomID(roomID); err != nil {
		return "", err
	}
	if err := room.find(roomID); err != nil {
		return "", err
	}
	return user, room.requireMember(user, ActionTyping)
}

// ViewHistory is a read of a room's messages: history:fetch, the messages
// room:join returns, or the HTTP API. It is a PHI read, so it is decided (for
// membership) and recorded (HistoryViewed) like a write.
type ViewHistory struct {
	RoomID    string
	BeforeSeq uint64 // exclusive; 0 means "the newest"
	Limit     int    // 0 means Limits.DefaultHistoryLimit; more than MaxHistoryLimit is invalid
	Via       string // "history:fetch" (default), "room:join", "api"
}

// HistoryRange is the seq range a history read serves, ascending and
// inclusive; Count is 0 (and the range meaningless) when there is nothing.
type HistoryRange struct {
	FromSeq, ToSeq uint64
	Count          int
}

// Validate checks the command's shape.
func (cmd ViewHistory) Validate(l Limits) error {
	l = l.WithDefaults()
	if err := validateRoomID(cmd.RoomID); err != nil {
		return err
	}
	if cmd.Limit < 0 || cmd.Limit > l.MaxHistoryLimit {
		return ErrInvalidLimit.Withf("%d, allowed 1 to %d", cmd.Limit, l.MaxHistoryLimit)
	}
	return validateText("via", cmd.Via, maxShortFieldBytes)
}

// Decide checks membership and returns the seq range to serve: the newest
// Limit messages before BeforeSeq. Seqs are gap-free and room streams keep
// every message, so the range is exact. The HistoryViewed event goes to
// AccessStream(user); a read that serves nothing records nothing. After a
// join, apply the MemberJoined before deciding the join's history read.
func (cmd ViewHistory) Decide(c Context, room *Room) (HistoryRange, []Event, error) {
	user, err := beginRoomCommand(c, cmd, room, cmd.RoomID)
	if err != nil {
		return HistoryRange{}, nil, err
	}
	if err := room.requireMember(user, ActionHistory); err != nil {
		return HistoryRange{}, nil, err
	}
	limit := cmd.Limit
	if limit == 0 {
		limit = c.Limits.WithDefaults().DefaultHistoryLimit
	}
	top := room.Seq()
	if cmd.BeforeSeq > 0 && cmd.BeforeSeq-1 < top {
		top = cmd.BeforeSeq - 1
	}
	if top == 0 {
		return HistoryRange{}, nil, nil
	}
	from := uint64(1)
	if top > uint64(limit) {
		from = top - uint64(limit) + 1
	}
	hr := HistoryRange{FromSeq: from, ToSeq: top, Count: int(top - from + 1)}
	via := cmd.Via
	if via == "" {
		via = historyViaDefault
	}
	return hr, []Event{HistoryViewed{
		RoomID: room.ID(), UserID: user, FromSeq: hr.FromSeq, ToSeq: hr.ToSeq, Count: hr.Count, Via: via,
	}}, nil
}

// beginRoomCommand runs the checks every room command starts with, in the
// contract's order: an authenticated actor, the command's shape (invalid,
// too_large), then the room's existence (not_found). It returns the actor's
// user id.
func beginRoomCommand(c Context, cmd interface{ Validate(Limits) error }, room *Room, roomID string) (string, error) {
	user, err := c.user()
	if err != nil {
		return "", err
	}
	if err := cmd.Validate(c.Limits); err != nil {
		return "", err
	}
	if err := room.find(roomID); err != nil {
		return "", err
	}
	return user, nil
}
