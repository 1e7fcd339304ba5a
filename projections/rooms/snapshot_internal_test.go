package rooms

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
)

// structSnapshot is the snapshot as the snap structs hold it, for
// json.Marshal to render the reference bytes.
func (m *Model) structSnapshot() snapshot {
	snap := snapshot{Format: snapshotFormat, Position: m.st.pos, Rooms: []snapRoom{}}
	for _, r := range m.st.rooms {
		sr := snapRoom{
			ID: r.info.ID, Name: r.info.Name, Private: r.info.Private, PHI: r.info.PHI,
			CreatedBy: r.info.CreatedBy, CreatedAt: r.info.CreatedAt, Seq: r.info.Seq, Position: r.info.Position,
			Members: []snapMember{}, Messages: []snapMessage{},
		}
		for _, mb := range r.memberList() {
			sr.Members = append(sr.Members, snapMember(mb))
		}
		for _, msg := range r.recent(RecentLimit) {
			sr.Messages = append(sr.Messages, snapMessage{
				MessageID: msg.MessageID, SenderID: msg.SenderID, Content: msg.Content, Seq: msg.Seq,
				ClientMsgID: msg.ClientMsgID, CreatedAt: msg.CreatedAt, Position: msg.Position,
			})
		}
		snap.Rooms = append(snap.Rooms, sr)
	}
	sort.Slice(snap.Rooms, func(i, j int) bool { return snap.Rooms[i].ID < snap.Rooms[j].ID })
	return snap
}

func TestMarshalSnapshotWritesWhatEncodingJSONWrites(t *testing.T) {
	m := New()
	var batch []projections.Applied
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 400 {
		room, user := fmt.Sprintf("r%d", i%9), fmt.Sprintf("u%d", i%13)
		var ev domain.Event
		switch i % 4 {
		case 0:
			ev = domain.RoomCreated{RoomID: room, Name: "<b>&\u2028\x01", CreatedBy: user, Members: []string{"u3"}, Private: i%8 == 0}
		case 1:
			ev = domain.MemberJoined{RoomID: room, UserID: user}
		case 2:
			ev = domain.MemberLeft{RoomID: room, UserID: fmt.Sprintf("u%d", i%5)}
		default:
			ev = domain.MessagePosted{RoomID: room, MessageID: fmt.Sprint(i), SenderID: user, Content: "é\"\\\n\xff", Seq: uint64(i), ClientMsgID: fmt.Sprint(i % 3)}
		}
		batch = append(batch, projections.Applied{
			Position: eventstore.Position(i + 1),
			Envelope: domain.Envelope{Time: at.Add(time.Duration(i) * 1_234_567 * time.Microsecond), Actor: domain.Actor{UserID: user, Roles: []domain.Role{"nurse", "x"}}, Event: ev},
		})
	}
	if err := m.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(m.structSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.MarshalSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("the encoder and encoding/json disagree:\n got %s\nwant %s", got, want)
	}
	empty, _ := New().MarshalSnapshot()
	if want, _ := json.Marshal(New().structSnapshot()); string(empty) != string(want) {
		t.Fatalf("empty model: got %s, want %s", empty, want)
	}
}
