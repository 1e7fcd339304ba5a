package gateway

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/memstore"
	"github.com/wardline/wardline/migrations"
	"github.com/wardline/wardline/projections"
)

// createRoom creates roomID as alice, with bob as a member.
func createRoom(t *testing.T, svc *service, roomID string) {
	t.Helper()
	if _, err := svc.execute(context.Background(), domain.Actor{UserID: "alice", Roles: []domain.Role{domain.RoleNurse}}, domain.RoomStream(roomID), newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
		return domain.CreateRoom{RoomID: roomID, Name: roomID, Members: []string{"bob"}}.Decide(c, st.(*domain.Room))
	}, nil); err != nil {
		t.Fatal(err)
	}
}

// post posts content to roomID as alice and returns its seq.
func post(t *testing.T, svc *service, roomID, content string) uint64 {
	t.Helper()
	var result domain.MessageResult
	if _, err := svc.execute(context.Background(), domain.Actor{UserID: "alice"}, domain.RoomStream(roomID), newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
		r, events, err := domain.PostMessage{RoomID: roomID, Content: content}.Decide(c, st.(*domain.Room))
		result = r
		return events, err
	}, nil); err != nil {
		t.Fatal(err)
	}
	return result.Seq
}

func TestAStateEvictedFromAFullCacheIsLoadedAgainFromTheStore(t *testing.T) {
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	svc := newService(&Config{Store: store, Decoder: projections.DecoderFunc(migrations.Decode), NodeID: "n1", Now: time.Now})
	svc.states = newStateCache(2)
	createRoom(t, svc, "ward")
	for i := range 3 {
		if seq := post(t, svc, "ward", fmt.Sprint("before ", i)); seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, seq)
		}
	}
	before, _ := svc.states.peek(domain.RoomStream("ward"))
	// Two rooms used after the ward push it out of a cache of two.
	createRoom(t, svc, "icu")
	createRoom(t, svc, "er")
	if _, ok := svc.states.peek(domain.RoomStream("ward")); ok {
		t.Fatal("the least recently used state is still cached")
	}
	if busy, idle := svc.states.len(); busy != 0 || idle != 2 {
		t.Fatalf("%d busy and %d idle states cached, want 0 and 2", busy, idle)
	}
	// The ward's next decision folds it from the store: the message
	// sequence and the stream version go on where they were.
	if seq := post(t, svc, "ward", "after"); seq != 4 {
		t.Fatalf("the message after the reload has seq %d, want 4", seq)
	}
	after, ok := svc.states.peek(domain.RoomStream("ward"))
	if !ok || after == before {
		t.Fatal("the ward's state was not loaded into a new entry")
	}
	if after.version != before.version+1 {
		t.Fatalf("reloaded state at version %d, want %d", after.version, before.version+1)
	}
}

func TestARecentlyUsedStateOutlivesAnOlderOne(t *testing.T) {
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	svc := newService(&Config{Store: store, Decoder: projections.DecoderFunc(migrations.Decode), NodeID: "n1", Now: time.Now})
	svc.states = newStateCache(2)
	createRoom(t, svc, "ward")
	createRoom(t, svc, "icu")
	post(t, svc, "ward", "keeps the ward recent")
	createRoom(t, svc, "er")
	if _, ok := svc.states.peek(domain.RoomStream("ward")); !ok {
		t.Fatal("the recently used ward was evicted")
	}
	if _, ok := svc.states.peek(domain.RoomStream("icu")); ok {
		t.Fatal("the least recently used icu is still cached")
	}
}

func TestAStateWithADecisionInFlightIsNeverEvicted(t *testing.T) {
	svc, g := newGatedService(t)
	svc.states = newStateCache(1)
	ward := domain.RoomStream("ward")
	out := make(chan sendResult, 2)
	go send(svc, "held", out)
	<-g.entered // the ward's leader waits in its append
	go send(svc, "queued", out)
	waitQueued(t, svc, 1)
	held, _ := svc.states.peek(ward)
	// Other rooms fill and overflow the cache of one meanwhile.
	for _, room := range []string{"icu", "er", "nicu"} {
		createRoom(t, svc, room)
	}
	if e, ok := svc.states.peek(ward); !ok || e != held {
		t.Fatal("the ward's state was evicted while its decisions were in flight")
	}
	g.release <- struct{}{}
	<-g.entered // the queued send's batch
	g.release <- struct{}{}
	for range 2 {
		if r := <-out; r.err != nil {
			t.Fatal(r.err)
		}
	}
	// Settled, the ward is the most recent idle state and pushes nicu out.
	deadline := time.Now().Add(5 * time.Second)
	for {
		busy, idle := svc.states.len()
		if busy == 0 && idle == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d busy and %d idle states, want 0 and 1", busy, idle)
		}
		time.Sleep(time.Millisecond)
	}
	if e, ok := svc.states.peek(ward); !ok || e != held {
		t.Fatal("the ward's settled state is not the cached one")
	}
	go func() { // the ward's appends stay gated
		<-g.entered
		g.release <- struct{}{}
	}()
	if seq := post(t, svc, "ward", "next"); seq != 3 {
		t.Fatalf("next message has seq %d, want 3", seq)
	}
}

func TestTheEndOfASessionWhoseUsersPresenceWasEvictedStillTakesTheUserOffline(t *testing.T) {
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	svc := newService(&Config{Store: store, Decoder: projections.DecoderFunc(migrations.Decode), NodeID: "n1", Now: time.Now})
	svc.presence = newStateCache(2)
	presence := func(user string, decide func(c domain.Context, p *domain.Presence) ([]domain.Event, error)) {
		t.Helper()
		actor := domain.Actor{UserID: user, Roles: []domain.Role{domain.RoleNurse}, SessionID: "s-" + user}
		if _, err := svc.execute(context.Background(), actor, domain.PresenceStream(user), newPresence, func(c domain.Context, st folder) ([]domain.Event, error) {
			return decide(c, st.(*presenceState).presence())
		}, nil); err != nil {
			t.Fatal(err)
		}
	}
	start := func(user string) {
		t.Helper()
		presence(user, domain.StartSession{SessionID: "s-" + user, Namespace: chatNamespace, Transport: transportNative}.Decide)
	}
	createRoom(t, svc, "ward")
	for _, user := range []string{"alice", "bob", "carol"} {
		start(user)
	}
	if _, ok := svc.presence.peek(domain.PresenceStream("alice")); ok {
		t.Fatal("alice's presence is still cached past the bound of two")
	}
	if _, ok := svc.states.peek(domain.RoomStream("ward")); !ok {
		t.Fatal("presence states pushed a room's state out")
	}
	presence("alice", domain.EndSession{UserID: "alice", SessionID: "s-alice", Reason: reasonDisconnect}.Decide)
	evs, err := store.ReadStream(context.Background(), domain.PresenceStream("alice"), 1, eventstore.Forward, 10)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range evs {
		types = append(types, r.Type)
	}
	if want := []string{"SessionStarted", "UserOnline", "SessionEnded", "UserOffline"}; !slices.Equal(types, want) {
		t.Fatalf("alice's presence stream is %v, want %v", types, want)
	}
	// Her next session, on the state loaded from the UserOffline on,
	// takes her online again.
	start("alice")
	evs, err = store.ReadStream(context.Background(), domain.PresenceStream("alice"), 5, eventstore.Forward, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Type != "SessionStarted" || evs[1].Type != "UserOnline" {
		t.Fatalf("alice's next session appended %d events, want SessionStarted and UserOnline", len(evs))
	}
}
