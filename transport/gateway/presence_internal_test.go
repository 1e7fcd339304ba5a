package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/memstore"
	"github.com/wardline/wardline/migrations"
	"github.com/wardline/wardline/projections"
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

// countingStore counts the events its stream reads return.
type countingStore struct {
	eventstore.Store
	read atomic.Int64
}

func (c *countingStore) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	evs, err := c.Store.ReadStream(ctx, stream, from, dir, limit)
	c.read.Add(int64(len(evs)))
	return evs, err
}

// TestAPresenceStateLoadedFromItsTailDecidesLikeTheWholeFold drives a
// user's presence stream through random session starts and ends decided by
// the domain, and after each decision checks that a service with nothing
// cached (as after an eviction) loads the same state and version as the
// one that folded every event, reading no further back than the last
// UserOffline.
func TestAPresenceStateLoadedFromItsTailDecidesLikeTheWholeFold(t *testing.T) {
	store := &countingStore{Store: memstore.New()}
	t.Cleanup(func() { store.Close() })
	cfg := &Config{Store: store, Decoder: projections.DecoderFunc(migrations.Decode), NodeID: "n1", Now: time.Now}
	cached := newService(cfg)
	stream := domain.PresenceStream("alice")
	decide := func(svc *service, cmd interface {
		Decide(domain.Context, *domain.Presence) ([]domain.Event, error)
	}, session string) {
		t.Helper()
		actor := domain.Actor{UserID: "alice", Roles: []domain.Role{domain.RoleNurse}, SessionID: session}
		if _, err := svc.execute(context.Background(), actor, stream, newPresence, func(c domain.Context, st folder) ([]domain.Event, error) {
			return cmd.Decide(c, st.(*presenceState).presence())
		}, nil); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	sawOffline, sawLongTail := false, false
	for i := range 300 {
		id := fmt.Sprintf("s%d", rng.IntN(4))
		if i == 0 || rng.IntN(2) == 0 {
			decide(cached, domain.StartSession{SessionID: id, Namespace: chatNamespace, Transport: transportNative}, id)
		} else {
			decide(cached, domain.EndSession{UserID: "alice", SessionID: id, Reason: reasonDisconnect}, id)
		}
		want, _ := cached.presence.peek(stream)
		fresh := newService(cfg)
		store.read.Store(0)
		e := &streamEntry{state: newPresence()}
		if err := fresh.catchUp(context.Background(), stream, e); err != nil {
			t.Fatal(err)
		}
		if e.version != want.version || e.lastPos != want.lastPos {
			t.Fatalf("decision %d: loaded version %d at %d, want %d at %d", i, e.version, e.lastPos, want.version, want.lastPos)
		}
		got, wantP := e.state.(*presenceState).presence(), want.state.(*presenceState).presence()
		if got.UserID() != wantP.UserID() || got.Online() != wantP.Online() || !reflect.DeepEqual(got.Sessions(), wantP.Sessions()) {
			t.Fatalf("decision %d: loaded %q online %v %+v, want %q online %v %+v", i,
				got.UserID(), got.Online(), got.Sessions(), wantP.UserID(), wantP.Online(), wantP.Sessions())
		}
		// Read back to the newest UserOffline: what the whole fold read
		// after it, plus that event itself.
		evs, err := store.Store.ReadStream(context.Background(), stream, 0, eventstore.Backward, 1000)
		if err != nil {
			t.Fatal(err)
		}
		tail := len(evs)
		for j, r := range evs {
			if r.Type == "UserOffline" {
				tail, sawOffline = j+1, true
				break
			}
		}
		sawLongTail = sawLongTail || tail > 8
		// The first page is of 8; a longer tail is read in growing pages
		// that may overshoot it by up to one page.
		if n := store.read.Load(); n < int64(tail) || n > int64(max(8, 5*tail)) {
			t.Fatalf("decision %d: read %d events for a tail of %d", i, n, tail)
		}
	}
	if !sawOffline || !sawLongTail {
		t.Fatalf("the random walk never checked a load from a UserOffline (%v) or past the first page (%v)", sawOffline, sawLongTail)
	}
}
