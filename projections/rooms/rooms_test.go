package rooms_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/rooms"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 123_456_789, time.UTC)

// log builds a batch of applied events with increasing positions.
type log struct {
	pos   eventstore.Position
	batch []projections.Applied
}

func (l *log) add(actor string, roles []domain.Role, ev domain.Event) *log {
	l.pos++
	l.batch = append(l.batch, projections.Applied{
		Position: l.pos,
		Envelope: domain.Envelope{
			ID: fmt.Sprintf("e%d", l.pos), Type: ev.EventType(),
			Time:  t0.Add(time.Duration(l.pos) * time.Second),
			Actor: domain.Actor{UserID: actor, Roles: roles}, Event: ev,
		},
	})
	return l
}

func apply(t testing.TB, m *rooms.Model, batch []projections.Applied) {
	t.Helper()
	if err := m.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

var nurse = []domain.Role{domain.RoleNurse}

func created(id string, members ...string) domain.RoomCreated {
	return domain.RoomCreated{RoomID: id, Name: "Room " + id, Private: true, PHI: true, CreatedBy: "alice", Members: members}
}

func TestApplyFoldsARoomsLife(t *testing.T) {
	tests := []struct {
		name        string
		events      func(l *log)
		wantMembers []rooms.Member // of room r1
		wantRoomsOf map[string][]string
	}{
		{
			name:   "a created room has its creator with her roles and the listed members without",
			events: func(l *log) { l.add("alice", nurse, created("r1", "bob", "alice")) },
			wantMembers: []rooms.Member{
				{UserID: "alice", Roles: nurse, JoinedAt: ms(1)},
				{UserID: "bob", JoinedAt: ms(1)},
			},
			wantRoomsOf: map[string][]string{"alice": {"r1"}, "bob": {"r1"}, "carol": {}},
		},
		{
			name: "a self-join records the joiner's roles and an addition does not",
			events: func(l *log) {
				l.add("alice", nurse, created("r1"))
				l.add("carol", []domain.Role{domain.RolePhysician}, domain.MemberJoined{RoomID: "r1", UserID: "carol"})
				l.add("alice", nurse, domain.MemberJoined{RoomID: "r1", UserID: "dave", AddedBy: "alice"})
			},
			wantMembers: []rooms.Member{
				{UserID: "alice", Roles: nurse, JoinedAt: ms(1)},
				{UserID: "carol", Roles: []domain.Role{domain.RolePhysician}, JoinedAt: ms(2)},
				{UserID: "dave", JoinedAt: ms(3)},
			},
			wantRoomsOf: map[string][]string{"carol": {"r1"}, "dave": {"r1"}},
		},
		{
			name: "leaving removes the member from the room and the room from RoomsOf",
			events: func(l *log) {
				l.add("alice", nurse, created("r1", "bob"))
				l.add("alice", nurse, created("r2", "bob"))
				l.add("bob", nil, domain.MemberLeft{RoomID: "r1", UserID: "bob"})
			},
			wantMembers: []rooms.Member{{UserID: "alice", Roles: nurse, JoinedAt: ms(1)}},
			wantRoomsOf: map[string][]string{"alice": {"r1", "r2"}, "bob": {"r2"}},
		},
		{
			name: "joining again changes nothing",
			events: func(l *log) {
				l.add("alice", nurse, created("r1", "bob"))
				l.add("bob", nurse, domain.MemberJoined{RoomID: "r1", UserID: "bob"})
			},
			wantMembers: []rooms.Member{{UserID: "alice", Roles: nurse, JoinedAt: ms(1)}, {UserID: "bob", JoinedAt: ms(1)}},
		},
		{
			name: "events about an unknown room and a second creation are ignored",
			events: func(l *log) {
				l.add("alice", nurse, created("r1"))
				l.add("bob", nil, domain.MemberJoined{RoomID: "nope", UserID: "bob"})
				l.add("bob", nil, domain.MessagePosted{RoomID: "nope", MessageID: "m", Seq: 1})
				l.add("bob", nil, domain.RoomCreated{RoomID: "r1", CreatedBy: "bob", Members: []string{"eve"}})
			},
			wantMembers: []rooms.Member{{UserID: "alice", Roles: nurse, JoinedAt: ms(1)}},
			wantRoomsOf: map[string][]string{"bob": {}, "eve": {}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l log
			tc.events(&l)
			m := rooms.New()
			apply(t, m, l.batch)
			got, ok := m.Members("r1")
			if !ok {
				t.Fatal("room r1 missing")
			}
			if !reflect.DeepEqual(got, tc.wantMembers) {
				t.Fatalf("members:\n got %+v\nwant %+v", got, tc.wantMembers)
			}
			for user, want := range tc.wantRoomsOf {
				if got := m.RoomsOf(user); !reflect.DeepEqual(got, want) {
					t.Errorf("RoomsOf(%s) = %v, want %v", user, got, want)
				}
			}
			if m.Position() != l.pos {
				t.Errorf("position %d, want %d", m.Position(), l.pos)
			}
		})
	}
}

// ms is the millisecond-truncated time of the event at position p.
func ms(p int) time.Time {
	return t0.Add(time.Duration(p) * time.Second).Truncate(time.Millisecond)
}

func TestRoomDescribesSettingsSeqAndPosition(t *testing.T) {
	var l log
	l.add("alice", nurse, created("r1", "bob"))
	l.add("bob", nil, domain.MessagePosted{MessageID: "m1", RoomID: "r1", SenderID: "bob", Content: "hi", Seq: 1})
	l.add("bob", nil, domain.TypingStarted{RoomID: "r1", UserID: "bob"}) // not folded
	m := rooms.New()
	apply(t, m, l.batch)
	got, ok := m.Room("r1")
	want := rooms.Room{ID: "r1", Name: "Room r1", Private: true, PHI: true, CreatedBy: "alice", CreatedAt: ms(1), Seq: 1, Position: 2, MemberCount: 2}
	if !ok || got != want {
		t.Fatalf("Room = %+v, want %+v", got, want)
	}
	if _, ok := m.Room("nope"); ok {
		t.Fatal("an unknown room was found")
	}
	if !m.IsMember("r1", "bob") || m.IsMember("r1", "eve") || m.IsMember("nope", "bob") {
		t.Fatal("IsMember disagrees with the members")
	}
	if m.Position() != 3 {
		t.Fatalf("the model's position %d, want 3 (events it ignores count)", m.Position())
	}
}

func TestRecentMessagesKeepsTheNewestFiftyInOrder(t *testing.T) {
	var l log
	l.add("alice", nurse, created("r1"))
	for seq := uint64(1); seq <= 120; seq++ {
		l.add("alice", nurse, domain.MessagePosted{MessageID: fmt.Sprint("m", seq), RoomID: "r1", SenderID: "alice", Content: "c", Seq: seq})
	}
	m := rooms.New()
	apply(t, m, l.batch[:60])
	apply(t, m, l.batch[60:])
	tests := []struct {
		n         int
		wantFirst uint64
		wantLen   int
	}{
		{n: 0, wantFirst: 71, wantLen: 50},
		{n: 50, wantFirst: 71, wantLen: 50},
		{n: 500, wantFirst: 71, wantLen: 50},
		{n: 10, wantFirst: 111, wantLen: 10},
		{n: 1, wantFirst: 120, wantLen: 1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("the newest %d", tc.n), func(t *testing.T) {
			got, ok := m.RecentMessages("r1", tc.n)
			if !ok || len(got) != tc.wantLen || got[0].Seq != tc.wantFirst {
				t.Fatalf("got %d messages from seq %d, want %d from %d", len(got), got[0].Seq, tc.wantLen, tc.wantFirst)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Seq != got[i-1].Seq+1 {
					t.Fatalf("out of order: %d after %d", got[i].Seq, got[i-1].Seq)
				}
			}
		})
	}
	if room, _ := m.Room("r1"); room.Seq != 120 {
		t.Fatalf("seq %d, want 120", room.Seq)
	}
}

func TestMessageJSONIsTheWirePayload(t *testing.T) {
	msg := rooms.Message{MessageID: "m1", RoomID: "r1", SenderID: "u1", Content: "BP <120>", Seq: 7,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Position: 99}
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"messageId":"m1","roomId":"r1","senderId":"u1","content":"BP \u003c120\u003e","seq":7,"createdAt":"2026-01-02T03:04:05.000Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	msg.ClientMsgID = "c1"
	msg.CreatedAt = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.FixedZone("x", 3600))
	b, _ = json.Marshal(msg)
	if !strings.Contains(string(b), `"clientMsgId":"c1","createdAt":"2026-01-02T02:04:05.678Z"`) {
		t.Fatalf("got %s", b)
	}
	mb, _ := json.Marshal(rooms.Member{UserID: "u1", JoinedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if string(mb) != `{"userId":"u1","joinedAt":"2026-01-02T03:04:05.000Z"}` {
		t.Fatalf("member: %s", mb)
	}
}

func TestApplySkipsPositionsAlreadyApplied(t *testing.T) {
	var l log
	l.add("alice", nurse, created("r1"))
	l.add("alice", nurse, domain.MessagePosted{MessageID: "m1", RoomID: "r1", Seq: 1})
	m := rooms.New()
	apply(t, m, l.batch)
	apply(t, m, l.batch) // a retry of the same batch
	if msgs, _ := m.RecentMessages("r1", 0); len(msgs) != 1 {
		t.Fatalf("%d messages after applying a batch twice, want 1", len(msgs))
	}
}

// randomLog makes a varied room history for snapshot tests.
func randomLog(n int) []projections.Applied {
	var l log
	for i := range n {
		room := fmt.Sprintf("r%d", i%7)
		user := fmt.Sprintf("u%d", i%11)
		switch i % 5 {
		case 0:
			l.add(user, nurse, domain.RoomCreated{RoomID: room, Name: "n <&> \u2028", CreatedBy: user, Members: []string{"u1", "u2"}})
		case 1:
			l.add(user, []domain.Role{domain.RoleStaff, "x"}, domain.MemberJoined{RoomID: room, UserID: user})
		case 2:
			l.add(user, nil, domain.MemberLeft{RoomID: room, UserID: fmt.Sprintf("u%d", (i+3)%11)})
		default:
			l.add(user, nil, domain.MessagePosted{MessageID: fmt.Sprint("m", i), RoomID: room, SenderID: user,
				Content: "line\n\"quoted\" é", Seq: uint64(i), ClientMsgID: strings.Repeat("c", i%2)})
		}
	}
	return l.batch
}

func TestSnapshotRestoresTheSameModel(t *testing.T) {
	m := rooms.New()
	apply(t, m, randomLog(600))
	snap, err := m.MarshalSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := rooms.New()
	if err := restored.UnmarshalSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	again, _ := restored.MarshalSnapshot()
	if !bytes.Equal(snap, again) {
		t.Fatal("a restored model snapshots differently")
	}
	for i := range 7 {
		id := fmt.Sprintf("r%d", i)
		a, _ := m.View(id, 0)
		b, _ := restored.View(id, 0)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("room %s differs after restore:\n%+v\n%+v", id, a, b)
		}
	}
	for i := range 11 {
		u := fmt.Sprintf("u%d", i)
		if !reflect.DeepEqual(m.RoomsOf(u), restored.RoomsOf(u)) {
			t.Fatalf("RoomsOf(%s) differs after restore", u)
		}
	}
	if restored.Position() != m.Position() {
		t.Fatal("position differs after restore")
	}
}

func TestUnmarshalSnapshotRefusesADamagedSnapshot(t *testing.T) {
	tests := []struct{ name, snap string }{
		{"not JSON", `{`},
		{"another format", `{"format":2,"position":1,"rooms":[]}`},
		{"a repeated room", `{"format":1,"position":5,"rooms":[{"id":"a","members":[],"messages":[]},{"id":"a","members":[],"messages":[]}]}`},
		{"a room without id", `{"format":1,"position":5,"rooms":[{"id":"","members":[],"messages":[]}]}`},
		{"a room ahead of the snapshot", `{"format":1,"position":5,"rooms":[{"id":"a","position":6,"members":[],"messages":[]}]}`},
		{"a repeated member", `{"format":1,"position":5,"rooms":[{"id":"a","members":[{"userId":"u"},{"userId":"u"}],"messages":[]}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := rooms.New()
			apply(t, m, randomLog(20))
			before, _ := m.MarshalSnapshot()
			if err := m.UnmarshalSnapshot([]byte(tc.snap)); err == nil {
				t.Fatal("accepted")
			}
			if after, _ := m.MarshalSnapshot(); !bytes.Equal(before, after) {
				t.Fatal("a refused snapshot changed the model")
			}
		})
	}
}

func FuzzUnmarshalSnapshot(f *testing.F) {
	m := rooms.New()
	apply(f, m, randomLog(40))
	snap, _ := m.MarshalSnapshot()
	f.Add(snap)
	f.Add([]byte(`{"format":1,"position":3,"rooms":[{"id":"a","members":[{"userId":"u","roles":["x"]}],"messages":[{"seq":2}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := rooms.New()
		if err := m.UnmarshalSnapshot(data); err != nil {
			return
		}
		// Whatever is accepted must be a model that snapshots stably.
		first, err := m.MarshalSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		m2 := rooms.New()
		if err := m2.UnmarshalSnapshot(first); err != nil {
			t.Fatalf("its own snapshot is refused: %v", err)
		}
		second, _ := m2.MarshalSnapshot()
		if !bytes.Equal(first, second) {
			t.Fatalf("snapshot not stable:\n%s\n%s", first, second)
		}
	})
}

func TestReadersNeverSeeHalfABatch(t *testing.T) {
	m := rooms.New()
	var l log
	l.add("alice", nurse, created("r1"))
	apply(t, m, l.batch)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Value
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				v, _ := m.View("r1", 0)
				// Every batch posts two messages, so a whole batch leaves
				// the seq even and the newest message at it.
				if v.Room.Seq%2 != 0 || len(v.Messages) > 0 && v.Messages[len(v.Messages)-1].Seq != v.Room.Seq {
					bad.Store(fmt.Sprintf("seq %d with %d messages", v.Room.Seq, len(v.Messages)))
				}
			}
		})
	}
	for seq := uint64(1); seq <= 2000; seq += 2 {
		l.batch = l.batch[:0]
		l.add("alice", nurse, domain.MessagePosted{RoomID: "r1", MessageID: fmt.Sprint(seq), Seq: seq})
		l.add("alice", nurse, domain.MessagePosted{RoomID: "r1", MessageID: fmt.Sprint(seq + 1), Seq: seq + 1})
		apply(t, m, l.batch)
	}
	stop.Store(true)
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Fatalf("a reader saw half a batch: %v", v)
	}
}

func TestAdoptSwitchesToTheOtherState(t *testing.T) {
	live, fresh := rooms.New(), rooms.New()
	apply(t, live, randomLog(10))
	apply(t, fresh, randomLog(50))
	want, _ := fresh.MarshalSnapshot()
	if err := live.Adopt(fresh); err != nil {
		t.Fatal(err)
	}
	if got, _ := live.MarshalSnapshot(); !bytes.Equal(got, want) {
		t.Fatal("the adopted state differs")
	}
	if err := live.Adopt(projections.Projection(nil)); err == nil {
		t.Fatal("adopting something else was accepted")
	}
}
