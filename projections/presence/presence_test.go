package presence_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/presence"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 123_456_789, time.UTC)

type log struct {
	pos   eventstore.Position
	batch []projections.Applied
}

func (l *log) add(ev domain.Event) *log {
	l.pos++
	l.batch = append(l.batch, projections.Applied{
		Position: l.pos,
		Envelope: domain.Envelope{Type: ev.EventType(), Time: t0.Add(time.Duration(l.pos) * time.Second), Event: ev},
	})
	return l
}

func started(user, session string) domain.SessionStarted {
	return domain.SessionStarted{SessionID: session, UserID: user, Namespace: "/chat", Transport: "native", NodeID: "n1"}
}

func ended(user, session string) domain.SessionEnded {
	return domain.SessionEnded{SessionID: session, UserID: user, Reason: "gone"}
}

func fold(t testing.TB, events ...domain.Event) *presence.Model {
	t.Helper()
	var l log
	for _, ev := range events {
		l.add(ev)
	}
	m := presence.New()
	if err := m.Apply(context.Background(), l.batch); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOnlineFollowsSessionsAndEdges(t *testing.T) {
	tests := []struct {
		name   string
		events []domain.Event
		want   []string // of u1, u2, u3 asked in that order
	}{
		{name: "nobody is online in an empty model", want: []string{}},
		{name: "a user with an open session is online", events: []domain.Event{domain.UserOnline{UserID: "u1"}, started("u1", "s1")}, want: []string{"u1"}},
		{name: "a user stays online while any session is open", events: []domain.Event{
			started("u1", "s1"), started("u1", "s2"), ended("u1", "s1"),
		}, want: []string{"u1"}},
		{name: "a user whose last session ended and who went offline is offline", events: []domain.Event{
			domain.UserOnline{UserID: "u1"}, started("u1", "s1"), ended("u1", "s1"), domain.UserOffline{UserID: "u1"},
		}, want: []string{}},
		{name: "a user whose sessions ended reads online until the offline edge", events: []domain.Event{
			domain.UserOnline{UserID: "u2"}, started("u2", "s1"), ended("u2", "s1"),
		}, want: []string{"u2"}},
		{name: "sessions of other users do not count", events: []domain.Event{started("u3", "s1"), ended("u1", "s1")}, want: []string{"u3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := fold(t, tc.events...)
			if got := m.Online([]string{"u1", "u2", "u3", "u1"}); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Online = %v, want %v", got, tc.want)
			}
			for _, u := range []string{"u1", "u2", "u3"} {
				if m.IsOnline(u) != contains(tc.want, u) {
					t.Fatalf("IsOnline(%s) disagrees with Online", u)
				}
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestSessionsOfListsOpenSessionsOldestFirst(t *testing.T) {
	m := fold(t, started("u1", "s-b"), started("u2", "x"), started("u1", "s-a"), started("u1", "s-c"), ended("u1", "s-c"))
	got := m.SessionsOf("u1")
	want := []presence.Session{
		{SessionID: "s-b", UserID: "u1", Namespace: "/chat", Transport: "native", NodeID: "n1", StartedAt: t0.Add(1 * time.Second).Truncate(time.Millisecond)},
		{SessionID: "s-a", UserID: "u1", Namespace: "/chat", Transport: "native", NodeID: "n1", StartedAt: t0.Add(3 * time.Second).Truncate(time.Millisecond)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if got := m.SessionsOf("nobody"); got == nil || len(got) != 0 {
		t.Fatalf("a user without sessions: %v", got)
	}
	if all := m.AllSessions(); len(all) != 3 || all[0].UserID != "u1" || all[2].UserID != "u2" {
		t.Fatalf("AllSessions = %+v", all)
	}
}

func randomLog(n int) []projections.Applied {
	var l log
	open := map[string][]string{}
	for i := range n {
		u := fmt.Sprintf("u%d", i%9)
		switch {
		case i%3 != 2:
			if len(open[u]) == 0 {
				l.add(domain.UserOnline{UserID: u})
			}
			s := fmt.Sprintf("s%d", i)
			open[u] = append(open[u], s)
			l.add(started(u, s))
		case len(open[u]) > 0:
			l.add(ended(u, open[u][0]))
			open[u] = open[u][1:]
			if len(open[u]) == 0 {
				l.add(domain.UserOffline{UserID: u})
			}
		}
	}
	return l.batch
}

func TestSnapshotRestoresTheSameModel(t *testing.T) {
	m := presence.New()
	if err := m.Apply(context.Background(), randomLog(300)); err != nil {
		t.Fatal(err)
	}
	snap, err := m.MarshalSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := presence.New()
	if err := r.UnmarshalSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	again, _ := r.MarshalSnapshot()
	if !bytes.Equal(snap, again) {
		t.Fatal("a restored model snapshots differently")
	}
	if !reflect.DeepEqual(m.AllSessions(), r.AllSessions()) || r.Position() != m.Position() {
		t.Fatal("the restored model answers differently")
	}
}

func TestTheSamePresenceGivesTheSameSnapshotHoweverReached(t *testing.T) {
	a := fold(t, started("u1", "s1"), ended("u1", "s1"))
	b := fold(t, domain.UserOnline{UserID: "u1"}, domain.UserOffline{UserID: "u1"})
	sa, _ := a.MarshalSnapshot()
	sb, _ := b.MarshalSnapshot()
	if !bytes.Equal(sa, sb) {
		t.Fatalf("%s\n%s", sa, sb)
	}
}

func TestUnmarshalSnapshotRefusesADamagedSnapshot(t *testing.T) {
	for _, tc := range []struct{ name, snap string }{
		{"not JSON", `[`},
		{"another format", `{"format":9,"users":[]}`},
		{"a repeated user", `{"format":1,"users":[{"userId":"u","online":true},{"userId":"u","online":true}]}`},
		{"a user with no presence", `{"format":1,"users":[{"userId":"u","online":false,"sessions":[]}]}`},
		{"a session filed under another user", `{"format":1,"users":[{"userId":"u","sessions":[{"sessionId":"s","userId":"v"}]}]}`},
		{"a repeated session", `{"format":1,"users":[{"userId":"u","sessions":[{"sessionId":"s","userId":"u"},{"sessionId":"s","userId":"u"}]}]}`},
		{"a session started at a finer time than a millisecond", `{"format":1,"users":[{"userId":"u","sessions":[{"sessionId":"s","userId":"u","startedAt":"2026-05-06T07:08:09.1234Z"}]}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := presence.New().UnmarshalSnapshot([]byte(tc.snap)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzUnmarshalSnapshot(f *testing.F) {
	m := presence.New()
	_ = m.Apply(context.Background(), randomLog(30))
	snap, _ := m.MarshalSnapshot()
	f.Add(snap)
	f.Fuzz(func(t *testing.T, data []byte) {
		m := presence.New()
		if err := m.UnmarshalSnapshot(data); err != nil {
			return
		}
		first, err := m.MarshalSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		m2 := presence.New()
		if err := m2.UnmarshalSnapshot(first); err != nil {
			t.Fatalf("its own snapshot is refused: %v", err)
		}
		if second, _ := m2.MarshalSnapshot(); !bytes.Equal(first, second) {
			t.Fatalf("snapshot not stable:\n%s\n%s", first, second)
		}
	})
}

func TestAdoptSwitchesToTheOtherState(t *testing.T) {
	live := fold(t, started("u1", "s1"))
	fresh := fold(t, started("u2", "s2"))
	if err := live.Adopt(fresh); err != nil {
		t.Fatal(err)
	}
	if live.IsOnline("u1") || !live.IsOnline("u2") {
		t.Fatal("adopt did not switch the state")
	}
}
