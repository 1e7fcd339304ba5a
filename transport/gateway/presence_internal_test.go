package gateway

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
)

// TestPresenceStateDecidesLikeTheDomainFold checks that the cached compact
// state rebuilds the domain state the decisions read (user, open sessions
// with their details, online flag) for event sequences the domain emits
// and for odd ones (repeats, ends of unknown sessions) alike.
func TestPresenceStateDecidesLikeTheDomainFold(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	start := func(id string) domain.Event {
		return domain.SessionStarted{SessionID: id, UserID: "alice", Namespace: "/chat", Transport: "native", NodeID: "n-" + id, ClientAddr: "addr-" + id}
	}
	end := func(id string) domain.Event {
		return domain.SessionEnded{SessionID: id, UserID: "alice", Reason: "disconnect"}
	}
	online, offline := domain.UserOnline{UserID: "alice"}, domain.UserOffline{UserID: "alice"}
	tests := []struct {
		name   string
		events []domain.Event
	}{
		{"an empty stream gives an empty state", nil},
		{"a first session makes the user online", []domain.Event{start("s1"), online}},
		{"a second session adds to the first", []domain.Event{start("s1"), online, start("s2")}},
		{"ending the middle session keeps the others", []domain.Event{start("s1"), online, start("s2"), start("s3"), end("s2")}},
		{"the last session's end and the offline edge leave the user known but offline", []domain.Event{start("s1"), online, end("s1"), offline}},
		{"a session started twice is open once, with the later details", []domain.Event{start("s1"), online, start("s1")}},
		{"ending an unknown session changes nothing", []domain.Event{start("s1"), online, end("s9")}},
		{"a user online without a session stays online", []domain.Event{online}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 50 {
		events := make([]domain.Event, 0, 40)
		for range rng.IntN(40) {
			id := fmt.Sprintf("s%d", rng.IntN(5))
			events = append(events, []domain.Event{start(id), end(id), online, offline}[rng.IntN(4)])
		}
		tests = append(tests, struct {
			name   string
			events []domain.Event
		}{fmt.Sprintf("random stream %d folds alike", n), events})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, compact := &domain.Presence{}, newPresence().(*presenceState)
			for i, ev := range tc.events {
				env := domain.Envelope{Type: ev.EventType(), Time: at.Add(time.Duration(i) * time.Second), Event: ev}
				want.Apply(env)
				compact.Apply(env)
			}
			got := compact.presence()
			if got.UserID() != want.UserID() || got.Online() != want.Online() {
				t.Fatalf("user %q online %v, want %q %v", got.UserID(), got.Online(), want.UserID(), want.Online())
			}
			if !reflect.DeepEqual(got.Sessions(), want.Sessions()) {
				t.Fatalf("sessions %+v, want %+v", got.Sessions(), want.Sessions())
			}
			for i := range 10 {
				id := fmt.Sprintf("s%d", i)
				if got.HasSession(id) != want.HasSession(id) {
					t.Fatalf("HasSession(%s) = %v, want %v", id, got.HasSession(id), want.HasSession(id))
				}
			}
		})
	}
}
