package presence

import (
	"bytes"
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

// marshalReflect is the snapshot as json.Marshal writes it, the reference
// the hand-written encoder must match byte for byte.
func marshalReflect(t *testing.T, m *Model) []byte {
	t.Helper()
	snap := snapshot{Format: snapshotFormat, Position: m.st.pos, Users: []snapUser{}}
	for id, u := range m.st.users {
		su := snapUser{UserID: id, Online: u.online, Sessions: []Session{}}
		for i := range u.sessions {
			su.Sessions = append(su.Sessions, u.sessions[i].session(id))
		}
		sort.Slice(su.Sessions, func(i, j int) bool { return su.Sessions[i].SessionID < su.Sessions[j].SessionID })
		snap.Users = append(snap.Users, su)
	}
	sort.Slice(snap.Users, func(i, j int) bool { return snap.Users[i].UserID < snap.Users[j].UserID })
	data, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestMarshalSnapshotWritesWhatEncodingJSONWould(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 120_000_000, time.UTC)
	awkward := []string{"plain", "<b>&amp;</b>", "quote\" back\\slash", "line\u2028sep", "bad\xffutf8", "tab\tnl\n", ""}
	var batch []projections.Applied
	add := func(ev domain.Event, when time.Time) {
		batch = append(batch, projections.Applied{
			Position: eventstore.Position(len(batch) + 1),
			Envelope: domain.Envelope{Type: ev.EventType(), Time: when, Event: ev},
		})
	}
	for i, s := range awkward {
		user := fmt.Sprintf("u%d-%s", i%3, s)
		add(domain.UserOnline{UserID: user}, at)
		for k := range 3 {
			add(domain.SessionStarted{
				SessionID: fmt.Sprintf("s%d-%s", 2-k, s), UserID: user, Namespace: "/chat" + s, Transport: "native",
				NodeID: s, ClientAddr: s,
			}, at.Add(time.Duration(i*k)*time.Second))
		}
	}
	add(domain.UserOnline{UserID: "only-online"}, at)
	for _, tc := range []struct {
		name  string
		batch []projections.Applied
	}{
		{"an empty model", nil},
		{"users with awkward strings, several sessions and empty optional fields", batch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New()
			if err := m.Apply(context.Background(), tc.batch); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second sized from the first
				got, err := m.MarshalSnapshot()
				if err != nil {
					t.Fatal(err)
				}
				if want := marshalReflect(t, m); !bytes.Equal(got, want) {
					t.Fatalf("snapshot differs from encoding/json:\n got %s\nwant %s", got, want)
				}
			}
		})
	}
}
