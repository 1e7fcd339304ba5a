package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/wardline/wardline/domain"
)

// The rooms every room test starts from.
var (
	icuCreated = domain.RoomCreated{RoomID: "icu-1", Name: "ICU", Private: true, PHI: true, CreatedBy: "alice", Members: []string{"alice", "bob"}}
	lobby      = domain.RoomCreated{RoomID: "lobby", Name: "Lobby", Private: false, CreatedBy: "alice", Members: []string{"alice"}}
)

func room(t *testing.T, events ...domain.Event) *domain.Room {
	t.Helper()
	return fold(t, &domain.Room{}, events...)
}

func TestCreateRoom(t *testing.T) {
	nurse := []domain.Role{domain.RoleNurse}
	tests := []struct {
		name    string
		roles   []domain.Role
		history []domain.Event
		cmd     domain.CreateRoom
		want    []domain.Event
		wantErr error
	}{
		{
			name: "a nurse creates a private PHI room by default and is its first member", roles: nurse,
			cmd:  domain.CreateRoom{RoomID: "icu-1", Name: "ICU", Members: []string{"bob", "alice", "bob"}},
			want: []domain.Event{domain.RoomCreated{RoomID: "icu-1", Name: "ICU", Private: true, PHI: true, CreatedBy: "alice", Members: []string{"alice", "bob"}}},
		},
		{
			name: "a room without an id gets a new one", roles: []domain.Role{domain.RoleSuperAdmin},
			cmd:  domain.CreateRoom{Name: "Handover", Private: ptr(false), PHI: ptr(false)},
			want: []domain.Event{domain.RoomCreated{RoomID: "id-1", Name: "Handover", CreatedBy: "alice", Members: []string{"alice"}}},
		},
		{name: "physicians, staff and admins may create rooms too", roles: []domain.Role{domain.RoleStaff},
			cmd:  domain.CreateRoom{RoomID: "r", Name: "R", Private: ptr(true)},
			want: []domain.Event{domain.RoomCreated{RoomID: "r", Name: "R", Private: true, PHI: true, CreatedBy: "alice", Members: []string{"alice"}}}},
		{name: "a compliance officer may not create rooms", roles: []domain.Role{domain.RoleComplianceOfficer}, cmd: domain.CreateRoom{RoomID: "r", Name: "R"}, wantErr: domain.ErrCannotCreateRoom},
		{name: "a service may not create rooms", roles: []domain.Role{domain.RoleService}, cmd: domain.CreateRoom{RoomID: "r", Name: "R"}, wantErr: domain.ErrCannotCreateRoom},
		{name: "a duplicate room id is a conflict", roles: nurse, history: []domain.Event{icuCreated}, cmd: domain.CreateRoom{RoomID: "icu-1", Name: "ICU"}, wantErr: domain.ErrRoomExists},
		{name: "a user without the role cannot learn that an id exists", roles: nil, history: []domain.Event{icuCreated}, cmd: domain.CreateRoom{RoomID: "icu-1", Name: "ICU"}, wantErr: domain.ErrCannotCreateRoom},
		{name: "a room id with a space is invalid", roles: nurse, cmd: domain.CreateRoom{RoomID: "icu 1", Name: "ICU"}, wantErr: domain.ErrInvalidRoomID},
		{name: "a room id of 129 characters is invalid", roles: nurse, cmd: domain.CreateRoom{RoomID: strings.Repeat("a", 129), Name: "ICU"}, wantErr: domain.ErrInvalidRoomID},
		{name: "a room id of 128 characters is accepted", roles: nurse, cmd: domain.CreateRoom{RoomID: strings.Repeat("a", 128), Name: "ICU", Private: ptr(true), PHI: ptr(true)},
			want: []domain.Event{domain.RoomCreated{RoomID: strings.Repeat("a", 128), Name: "ICU", Private: true, PHI: true, CreatedBy: "alice", Members: []string{"alice"}}}},
		{name: "a room needs a name", roles: nurse, cmd: domain.CreateRoom{RoomID: "r"}, wantErr: domain.ErrInvalidName},
		{name: "a member id with a tilde is invalid", roles: nurse, cmd: domain.CreateRoom{RoomID: "r", Name: "R", Members: []string{"a~b"}}, wantErr: domain.ErrInvalidUserID},
		{name: "schema is checked before permission", roles: nil, cmd: domain.CreateRoom{RoomID: "bad id", Name: "R"}, wantErr: domain.ErrInvalidRoomID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cmd.Decide(ctxAs("alice", tt.roles...), room(t, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestCreateRoomRefusesAnAnonymousCaller(t *testing.T) {
	_, err := domain.CreateRoom{RoomID: "r", Name: "R"}.Decide(ctxAs(""), nil)
	if !errors.Is(err, domain.ErrUnauthenticated) || domain.ErrorCodeOf(err) != domain.CodeUnauthorized {
		t.Fatalf("error = %v, want unauthorized", err)
	}
}

func TestCreateRoomRefusesStateOfAnotherRoom(t *testing.T) {
	_, err := domain.CreateRoom{RoomID: "other", Name: "R"}.Decide(ctxAs("alice", domain.RoleNurse), room(t, icuCreated))
	if !errors.Is(err, domain.ErrWrongStateForCommand) || domain.ErrorCodeOf(err) != domain.CodeInternal {
		t.Fatalf("error = %v, want ErrWrongStateForCommand", err)
	}
}

func TestJoinRoom(t *testing.T) {
	left := domain.MemberLeft{RoomID: "icu-1", UserID: "bob"}
	tests := []struct {
		name       string
		user       string
		roles      []domain.Role
		history    []domain.Event
		roomID     string
		want       []domain.Event
		wantErr    error
		wantDenial *domain.RoomAccessDenied
	}{
		{name: "anyone joins a public room and becomes a member", user: "zoe", history: []domain.Event{lobby}, roomID: "lobby",
			want: []domain.Event{domain.MemberJoined{RoomID: "lobby", UserID: "zoe"}}},
		{name: "joining a room again succeeds with no new event", user: "alice", history: []domain.Event{lobby}, roomID: "lobby"},
		{name: "a listed member of a private room joins it without a new event", user: "bob", history: []domain.Event{icuCreated}, roomID: "icu-1"},
		{name: "a user not listed in a private room is forbidden", user: "mallory", history: []domain.Event{icuCreated}, roomID: "icu-1",
			wantErr: domain.ErrPrivateRoom, wantDenial: &domain.RoomAccessDenied{RoomID: "icu-1", UserID: "mallory", Action: "join", Reason: "private_room"}},
		{name: "an admin who is not a member is forbidden a private room", user: "root", roles: []domain.Role{domain.RoleAdmin, domain.RoleSuperAdmin}, history: []domain.Event{icuCreated}, roomID: "icu-1",
			wantErr: domain.ErrPrivateRoom, wantDenial: &domain.RoomAccessDenied{RoomID: "icu-1", UserID: "root", Action: "join", Reason: "private_room"}},
		{name: "a member who left a private room is forbidden until added back", user: "bob", history: []domain.Event{icuCreated, left}, roomID: "icu-1",
			wantErr: domain.ErrLeftPrivateRoom, wantDenial: &domain.RoomAccessDenied{RoomID: "icu-1", UserID: "bob", Action: "join", Reason: "left_private_room"}},
		{name: "a member added back after leaving is a member again", user: "bob", history: []domain.Event{icuCreated, left, domain.MemberJoined{RoomID: "icu-1", UserID: "bob", AddedBy: "alice"}}, roomID: "icu-1"},
		{name: "a member who left a public room may simply join again", user: "alice", history: []domain.Event{lobby, domain.MemberLeft{RoomID: "lobby", UserID: "alice"}}, roomID: "lobby",
			want: []domain.Event{domain.MemberJoined{RoomID: "lobby", UserID: "alice"}}},
		{name: "joining a room that does not exist is not found", user: "alice", roomID: "nowhere", wantErr: domain.ErrRoomNotFound},
		{name: "a malformed room id is invalid before existence is checked", user: "alice", roomID: "no/where", wantErr: domain.ErrInvalidRoomID},
		{name: "a missing room id is invalid", user: "alice", roomID: "", wantErr: domain.ErrInvalidRoomID},
		{name: "an anonymous caller is unauthorized", user: "", history: []domain.Event{lobby}, roomID: "lobby", wantErr: domain.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.JoinRoom{RoomID: tt.roomID}.Decide(ctxAs(tt.user, tt.roles...), room(t, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
			if tt.wantDenial != nil {
				checkDenial(t, err, *tt.wantDenial)
			}
		})
	}
}

func TestAddMember(t *testing.T) {
	left := domain.MemberLeft{RoomID: "icu-1", UserID: "bob"}
	tests := []struct {
		name       string
		actor      string
		history    []domain.Event
		cmd        domain.AddMember
		want       []domain.Event
		wantErr    error
		wantDenial *domain.RoomAccessDenied
	}{
		{name: "a member adds a user who left a private room back", actor: "alice", history: []domain.Event{icuCreated, left}, cmd: domain.AddMember{RoomID: "icu-1", UserID: "bob"},
			want: []domain.Event{domain.MemberJoined{RoomID: "icu-1", UserID: "bob", AddedBy: "alice"}}},
		{name: "a member adds a new user to a private room", actor: "bob", history: []domain.Event{icuCreated}, cmd: domain.AddMember{RoomID: "icu-1", UserID: "carol"},
			want: []domain.Event{domain.MemberJoined{RoomID: "icu-1", UserID: "carol", AddedBy: "bob"}}},
		{name: "adding a member is a no-op", actor: "alice", history: []domain.Event{icuCreated}, cmd: domain.AddMember{RoomID: "icu-1", UserID: "bob"}},
		{name: "a non-member may not add anyone", actor: "mallory", history: []domain.Event{icuCreated}, cmd: domain.AddMember{RoomID: "icu-1", UserID: "mallory"},
			wantErr: domain.ErrNotMember, wantDenial: &domain.RoomAccessDenied{RoomID: "icu-1", UserID: "mallory", Action: "add_member", Reason: "not_member"}},
		{name: "a user who left may not add themself back", actor: "bob", history: []domain.Event{icuCreated, left}, cmd: domain.AddMember{RoomID: "icu-1", UserID: "bob"},
			wantErr: domain.ErrNotMember, wantDenial: &domain.RoomAccessDenied{RoomID: "icu-1", UserID: "bob", Action: "add_member", Reason: "not_member"}},
		{name: "adding to a room that does not exist is not found", actor: "alice", cmd: domain.AddMember{RoomID: "nope", UserID: "bob"}, wantErr: domain.ErrRoomNotFound},
		{name: "adding an empty user id is invalid", actor: "alice", history: []domain.Event{icuCreated}, cmd: domain.AddMember{RoomID: "icu-1"}, wantErr: domain.ErrInvalidUserID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cmd.Decide(ctxAs(tt.actor), room(t, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
			if tt.wantDenial != nil {
				checkDenial(t, err, *tt.wantDenial)
			}
		})
	}
}

func TestLeaveRoom(t *testing.T) {
	tests := []struct {
		name    string
		actor   string
		history []domain.Event
		roomID  string
		want    []domain.Event
		wantErr error
	}{
		{name: "a member leaves and their membership ends", actor: "bob", history: []domain.Event{icuCreated}, roomID: "icu-1",
			want: []domain.Event{domain.MemberLeft{RoomID: "icu-1", UserID: "bob"}}},
		{name: "the creator may leave too", actor: "alice", history: []domain.Event{icuCreated}, roomID: "icu-1",
			want: []domain.Event{domain.MemberLeft{RoomID: "icu-1", UserID: "alice"}}},
		{name: "leaving a room one is not a member of succeeds with no event", actor: "mallory", history: []domain.Event{icuCreated}, roomID: "icu-1"},
		{name: "leaving twice succeeds with no second event", actor: "bob", history: []domain.Event{icuCreated, domain.MemberLeft{RoomID: "icu-1", UserID: "bob"}}, roomID: "icu-1"},
		{name: "leaving a room that does not exist is not found", actor: "bob", roomID: "nope", wantErr: domain.ErrRoomNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.LeaveRoom{RoomID: tt.roomID}.Decide(ctxAs(tt.actor), room(t, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestPostMessage(t *testing.T) {
	first := domain.MessagePosted{MessageID: "m-1", RoomID: "icu-1", SenderID: "alice", Content: "hello", Seq: 1, ClientMsgID: "c-1"}
	second := domain.MessagePosted{MessageID: "m-2", RoomID: "icu-1", SenderID: "bob", Content: "hi", Seq: 2}
	small := domain.Limits{MaxContentBytes: 8}
	tests := []struct {
		name       string
		actor      string
		roles      []domain.Role
		limits     domain.Limits
		history    []domain.Event
		cmd        domain.PostMessage
		want       []domain.Event
		wantResult domain.MessageResult
		wantErr    error
		wantDenial *domain.RoomAccessDenied
	}{
		{name: "the first message of a room has seq 1", actor: "alice", history: []domain.Event{icuCreated}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "hello", ClientMsgID: "c-1"},
			want:       []domain.Event{domain.MessagePosted{MessageID: "id-1", RoomID: "icu-1", SenderID: "alice", Content: "hello", Seq: 1, ClientMsgID: "c-1"}},
			wantResult: domain.MessageResult{MessageID: "id-1", Seq: 1}},
		{name: "the next message takes the next seq with no gap", actor: "bob", history: []domain.Event{icuCreated, first, second}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "third"},
			want:       []domain.Event{domain.MessagePosted{MessageID: "id-1", RoomID: "icu-1", SenderID: "bob", Content: "third", Seq: 3}},
			wantResult: domain.MessageResult{MessageID: "id-1", Seq: 3}},
		{name: "membership changes do not consume seqs", actor: "carol", history: []domain.Event{icuCreated, first, domain.MemberJoined{RoomID: "icu-1", UserID: "carol", AddedBy: "alice"}}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "x"},
			want:       []domain.Event{domain.MessagePosted{MessageID: "id-1", RoomID: "icu-1", SenderID: "carol", Content: "x", Seq: 2}},
			wantResult: domain.MessageResult{MessageID: "id-1", Seq: 2}},
		{name: "a retry with the same clientMsgId returns the original result and appends nothing", actor: "alice", history: []domain.Event{icuCreated, first, second}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "hello", ClientMsgID: "c-1"},
			wantResult: domain.MessageResult{MessageID: "m-1", Seq: 1, Duplicate: true, EventID: "ev-2", StreamVersion: 2}},
		{name: "the same clientMsgId from another sender is another message", actor: "bob", history: []domain.Event{icuCreated, first}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "hello", ClientMsgID: "c-1"},
			want:       []domain.Event{domain.MessagePosted{MessageID: "id-1", RoomID: "icu-1", SenderID: "bob", Content: "hello", Seq: 2, ClientMsgID: "c-1"}},
			wantResult: domain.MessageResult{MessageID: "id-1", Seq: 2}},
		{name: "the same clientMsgId with other content is a conflict", actor: "alice", history: []domain.Event{icuCreated, first}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "goodbye", ClientMsgID: "c-1"},
			wantErr: domain.ErrClientMsgIDReused},
		{name: "a non-member may not post", actor: "mallory", history: []domain.Event{icuCreated}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "x"},
			wantErr: domain.ErrNotMember, wantDenial: &domain.RoomAccessDenied{RoomID: "icu-1", UserID: "mallory", Action: "send", Reason: "not_member"}},
		{name: "a non-member admin may not post", actor: "root", roles: []domain.Role{domain.RoleAdmin}, history: []domain.Event{icuCreated}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "x"},
			wantErr: domain.ErrNotMember, wantDenial: &domain.RoomAccessDenied{RoomID: "icu-1", UserID: "root", Action: "send", Reason: "not_member"}},
		{name: "a member who left may not post", actor: "bob", history: []domain.Event{icuCreated, domain.MemberLeft{RoomID: "icu-1", UserID: "bob"}}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "x"},
			wantErr: domain.ErrNotMember},
		{name: "a service may post to a room it is not a member of", actor: "monitor", roles: []domain.Role{domain.RoleService}, history: []domain.Event{icuCreated}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "SpO2 88%"},
			want:       []domain.Event{domain.MessagePosted{MessageID: "id-1", RoomID: "icu-1", SenderID: "monitor", Content: "SpO2 88%", Seq: 1}},
			wantResult: domain.MessageResult{MessageID: "id-1", Seq: 1}},
		{name: "empty content is invalid", actor: "alice", history: []domain.Event{icuCreated}, cmd: domain.PostMessage{RoomID: "icu-1"}, wantErr: domain.ErrEmptyContent},
		{name: "content that is not UTF-8 is invalid", actor: "alice", history: []domain.Event{icuCreated}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "\xff\xfe"}, wantErr: domain.ErrInvalidUTF8},
		{name: "content over the default 16 KiB is too large", actor: "alice", history: []domain.Event{icuCreated}, cmd: domain.PostMessage{RoomID: "icu-1", Content: strings.Repeat("a", 16<<10+1)}, wantErr: domain.ErrContentTooLarge},
		{name: "content of exactly 16 KiB is accepted", actor: "alice", history: []domain.Event{icuCreated}, cmd: domain.PostMessage{RoomID: "icu-1", Content: strings.Repeat("a", 16<<10)},
			want:       []domain.Event{domain.MessagePosted{MessageID: "id-1", RoomID: "icu-1", SenderID: "alice", Content: strings.Repeat("a", 16<<10), Seq: 1}},
			wantResult: domain.MessageResult{MessageID: "id-1", Seq: 1}},
		{name: "the content limit is configurable and counts bytes not characters", actor: "alice", limits: small, history: []domain.Event{icuCreated}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "ééééé"}, wantErr: domain.ErrContentTooLarge},
		{name: "too large is decided before the room is looked up", actor: "alice", limits: small, cmd: domain.PostMessage{RoomID: "nope", Content: "123456789"}, wantErr: domain.ErrContentTooLarge},
		{name: "posting to a room that does not exist is not found", actor: "alice", cmd: domain.PostMessage{RoomID: "nope", Content: "x"}, wantErr: domain.ErrRoomNotFound},
		{name: "a clientMsgId with a control character is invalid", actor: "alice", history: []domain.Event{icuCreated}, cmd: domain.PostMessage{RoomID: "icu-1", Content: "x", ClientMsgID: "a\nb"}, wantErr: domain.ErrInvalidClientMsgID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ctxAs(tt.actor, tt.roles...)
			c.Limits = tt.limits
			res, got, err := tt.cmd.Decide(c, room(t, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
			if tt.wantDenial != nil {
				checkDenial(t, err, *tt.wantDenial)
			}
			if res != tt.wantResult {
				t.Fatalf("result = %+v, want %+v", res, tt.wantResult)
			}
		})
	}
}

func TestTyping(t *testing.T) {
	tests := []struct {
		name       string
		actor      string
		history    []domain.Event
		start      bool
		want       []domain.Event
		wantErr    error
		wantDenial *domain.RoomAccessDenied
	}{
		{name: "a member starts typing", actor: "bob", history: []domain.Event{icuCreated}, start: true, want: []domain.Event{domain.TypingStarted{RoomID: "icu-1", UserID: "bob"}}},
		{name: "a member stops typing", actor: "bob", history: []domain.Event{icuCreated}, want: []domain.Event{domain.TypingStopped{RoomID: "icu-1", UserID: "bob"}}},
		{name: "a non-member may not type", actor: "mallory", history: []domain.Event{icuCreated}, start: true,
			wantErr: domain.ErrNotMember, wantDenial: &domain.RoomAccessDenied{RoomID: "icu-1", UserID: "mallory", Action: "typing", Reason: "not_member"}},
		{name: "typing in a room that does not exist is not found", actor: "bob", start: true, wantErr: domain.ErrRoomNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				got []domain.Event
				err error
			)
			if tt.start {
				got, err = domain.StartTyping{RoomID: "icu-1"}.Decide(ctxAs(tt.actor), room(t, tt.history...))
			} else {
				got, err = domain.StopTyping{RoomID: "icu-1"}.Decide(ctxAs(tt.actor), room(t, tt.history...))
			}
			checkDecision(t, got, err, tt.want, tt.wantErr)
			if tt.wantDenial != nil {
				checkDenial(t, err, *tt.wantDenial)
			}
		})
	}
}

func TestViewHistory(t *testing.T) {
	history := []domain.Event{icuCreated}
	for i := 1; i <= 120; i++ {
		history = append(history, domain.MessagePosted{MessageID: "m", RoomID: "icu-1", SenderID: "alice", Content: "x", Seq: uint64(i)})
	}
	viewed := func(from, to uint64, via string) []domain.Event {
		return []domain.Event{domain.HistoryViewed{RoomID: "icu-1", UserID: "bob", FromSeq: from, ToSeq: to, Count: int(to - from + 1), Via: via}}
	}
	tests := []struct {
		name      string
		actor     string
		history   []domain.Event
		cmd       domain.ViewHistory
		want      []domain.Event
		wantRange domain.HistoryRange
		wantErr   error
	}{
		{name: "by default a member gets the newest 50 messages", actor: "bob", history: history, cmd: domain.ViewHistory{RoomID: "icu-1"},
			want: viewed(71, 120, "history:fetch"), wantRange: domain.HistoryRange{FromSeq: 71, ToSeq: 120, Count: 50}},
		{name: "beforeSeq is exclusive", actor: "bob", history: history, cmd: domain.ViewHistory{RoomID: "icu-1", BeforeSeq: 71, Limit: 10, Via: "room:join"},
			want: viewed(61, 70, "room:join"), wantRange: domain.HistoryRange{FromSeq: 61, ToSeq: 70, Count: 10}},
		{name: "a page near the start is cut at seq 1", actor: "bob", history: history, cmd: domain.ViewHistory{RoomID: "icu-1", BeforeSeq: 5, Limit: 200},
			want: viewed(1, 4, "history:fetch"), wantRange: domain.HistoryRange{FromSeq: 1, ToSeq: 4, Count: 4}},
		{name: "a beforeSeq past the newest reads the newest", actor: "bob", history: history, cmd: domain.ViewHistory{RoomID: "icu-1", BeforeSeq: 1000, Limit: 1},
			want: viewed(120, 120, "history:fetch"), wantRange: domain.HistoryRange{FromSeq: 120, ToSeq: 120, Count: 1}},
		{name: "a read that serves nothing records nothing", actor: "bob", history: []domain.Event{icuCreated}, cmd: domain.ViewHistory{RoomID: "icu-1"}},
		{name: "a limit over 200 is invalid", actor: "bob", history: history, cmd: domain.ViewHistory{RoomID: "icu-1", Limit: 201}, wantErr: domain.ErrInvalidLimit},
		{name: "a negative limit is invalid", actor: "bob", history: history, cmd: domain.ViewHistory{RoomID: "icu-1", Limit: -1}, wantErr: domain.ErrInvalidLimit},
		{name: "a non-member may not read history", actor: "mallory", history: history, cmd: domain.ViewHistory{RoomID: "icu-1"}, wantErr: domain.ErrNotMember},
		{name: "reading a room that does not exist is not found", actor: "bob", cmd: domain.ViewHistory{RoomID: "icu-1"}, wantErr: domain.ErrRoomNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr, got, err := tt.cmd.Decide(ctxAs(tt.actor), room(t, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
			if hr != tt.wantRange {
				t.Fatalf("range = %+v, want %+v", hr, tt.wantRange)
			}
		})
	}
}

func TestNonMemberHistoryReadIsAnAuditedDenial(t *testing.T) {
	_, _, err := domain.ViewHistory{RoomID: "icu-1"}.Decide(ctxAs("mallory"), room(t, icuCreated))
	checkDenial(t, err, domain.RoomAccessDenied{RoomID: "icu-1", UserID: "mallory", Action: "history", Reason: "not_member"})
}

func TestRoomStateFoldsItsStream(t *testing.T) {
	r := room(t, icuCreated,
		domain.MemberJoined{RoomID: "icu-1", UserID: "carol", AddedBy: "alice"},
		domain.MemberLeft{RoomID: "icu-1", UserID: "bob"},
		domain.MessagePosted{MessageID: "m-1", RoomID: "icu-1", SenderID: "carol", Content: "x", Seq: 1, ClientMsgID: "k"},
	)
	if !r.Exists() || r.ID() != "icu-1" || r.Name() != "ICU" || !r.Private() || !r.PHI() || r.CreatedBy() != "alice" {
		t.Fatalf("room header wrong: %+v", r)
	}
	if got, want := r.Members(), []string{"alice", "carol"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("members = %v, want %v", got, want)
	}
	if !r.HasLeft("bob") || r.HasLeft("carol") {
		t.Fatal("left set wrong")
	}
	if r.Seq() != 1 || r.Version() != 4 {
		t.Fatalf("seq %d version %d, want 1 and 4", r.Seq(), r.Version())
	}
	if res, ok := r.Sent("carol", "k"); !ok || res.MessageID != "m-1" || res.StreamVersion != 4 {
		t.Fatalf("Sent = %+v, %v", res, ok)
	}
	var none *domain.Room
	if none.Exists() || none.IsMember("a") || len(none.Members()) != 0 || none.Version() != 0 {
		t.Fatal("a nil room is not an empty room")
	}
}

// TestAJoinThenHistoryReadFlow is the sequence the gateway runs for
// room:join: decide the join, apply it, then decide the history read.
func TestAJoinThenHistoryReadFlow(t *testing.T) {
	r := room(t, lobby, domain.MessagePosted{MessageID: "m-1", RoomID: "lobby", SenderID: "alice", Content: "x", Seq: 1})
	c := ctxAs("zoe")
	events, err := domain.JoinRoom{RoomID: "lobby"}.Decide(c, r)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := c.Wrap(events)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envs {
		r.Apply(e)
	}
	hr, events, err := domain.ViewHistory{RoomID: "lobby", Via: "room:join"}.Decide(c, r)
	if err != nil {
		t.Fatal(err)
	}
	if hr.Count != 1 || len(events) != 1 {
		t.Fatalf("range %+v events %v", hr, events)
	}
	if s, _ := domain.StreamOf(events[0]); s != domain.AccessStream("zoe") {
		t.Fatalf("history read goes to %q", s)
	}
}

// BenchmarkPostMessageRetry measures the idempotent path: after the first
// send, every decision is a retry of the same clientMsgId and appends nothing.
func BenchmarkPostMessageRetry(b *testing.B) {
	c := ctxAs("alice")
	r := fold(b, &domain.Room{}, icuCreated)
	b.ReportAllocs()
	for b.Loop() {
		_, events, err := domain.PostMessage{RoomID: "icu-1", Content: "BP 120/80", ClientMsgID: "k"}.Decide(c, r)
		if err != nil {
			b.Fatal(err)
		}
		if len(events) == 0 {
			continue
		}
		envs, err := c.Wrap(events)
		if err != nil {
			b.Fatal(err)
		}
		r.Apply(envs[0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkPostMessage measures one decision plus wrapping and folding its
// event, with a fresh clientMsgId per send so the retry table grows: the
// domain's share of every message:send.
func BenchmarkPostMessage(b *testing.B) {
	c := ctxAs("alice")
	r := fold(b, &domain.Room{}, icuCreated)
	keys := counter("k")
	b.ReportAllocs()
	for b.Loop() {
		_, events, err := domain.PostMessage{RoomID: "icu-1", Content: "BP 120/80", ClientMsgID: keys()}.Decide(c, r)
		if err != nil {
			b.Fatal(err)
		}
		envs, err := c.Wrap(events)
		if err != nil {
			b.Fatal(err)
		}
		r.Apply(envs[0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
