package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/memstore"
	"github.com/wardline/wardline/migrations"
	"github.com/wardline/wardline/projections"
)

// gateStore holds each Append to one stream until the test lets it
// through, telling the test how many events it carries.
type gateStore struct {
	eventstore.Store
	stream  string
	entered chan int      // the number of events of each held append
	release chan struct{} // one receive lets one append through
	fail    chan error    // if one is ready, the next append fails with it
}

func (g *gateStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if stream != g.stream {
		return g.Store.Append(ctx, stream, expected, events)
	}
	g.entered <- len(events)
	<-g.release
	select {
	case err := <-g.fail:
		return eventstore.AppendResult{}, err
	default:
	}
	return g.Store.Append(ctx, stream, expected, events)
}

func newGatedService(t *testing.T) (*service, *gateStore) {
	t.Helper()
	inner := memstore.New()
	t.Cleanup(func() { inner.Close() })
	g := &gateStore{Store: inner, stream: domain.RoomStream("ward"), entered: make(chan int, 64), release: make(chan struct{}), fail: make(chan error, 1)}
	cfg := &Config{Store: g, Decoder: projections.DecoderFunc(migrations.Decode), NodeID: "n1", Now: time.Now}
	svc := newService(cfg)
	create := func(c domain.Context, st folder) ([]domain.Event, error) {
		return domain.CreateRoom{RoomID: "ward", Name: "Ward", Members: []string{"bob"}}.Decide(c, st.(*domain.Room))
	}
	done := make(chan error, 1)
	go func() {
		_, err := svc.execute(context.Background(), domain.Actor{UserID: "alice", Roles: []domain.Role{domain.RoleNurse}}, domain.RoomStream("ward"), newRoom, create, nil)
		done <- err
	}()
	<-g.entered
	g.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return svc, g
}

type sendResult struct {
	seq uint64
	pos eventstore.Position
	err error
}

// send posts content to the ward as alice and reports on out.
func send(svc *service, content string, out chan<- sendResult) {
	var result domain.MessageResult
	res, err := svc.execute(context.Background(), domain.Actor{UserID: "alice"}, domain.RoomStream("ward"), newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
		r, events, err := domain.PostMessage{RoomID: "ward", Content: content}.Decide(c, st.(*domain.Room))
		result = r
		return events, err
	}, nil)
	out <- sendResult{seq: result.Seq, pos: res.last(), err: err}
}

func TestSendsThatArriveDuringAnAppendAreDecidedInOrderAndAppendedTogether(t *testing.T) {
	svc, g := newGatedService(t)
	out := make(chan sendResult, 16)
	go send(svc, "first", out)
	if n := <-g.entered; n != 1 {
		t.Fatalf("first append carries %d events, want 1", n)
	}
	// While the first waits for its append, ten more arrive, one after
	// another, so their order is known.
	const more = 10
	for i := range more {
		go send(svc, fmt.Sprint("m", i), out)
		waitQueued(t, svc, i+1)
	}
	g.release <- struct{}{}
	if n := <-g.entered; n != more {
		t.Fatalf("the second append carries %d events, want all %d queued sends", n, more)
	}
	g.release <- struct{}{}
	seqs := map[uint64]bool{}
	var last eventstore.Position
	for range more + 1 {
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		if seqs[r.seq] || r.seq < 1 || r.seq > more+1 {
			t.Fatalf("seq %d repeated or out of range", r.seq)
		}
		seqs[r.seq] = true
		last = max(last, r.pos)
	}
	evs, err := g.Store.ReadStream(context.Background(), domain.RoomStream("ward"), 1, eventstore.Forward, 100)
	if err != nil {
		t.Fatal(err)
	}
	var contents []string
	for _, e := range evs {
		env, err := svc.decode(e)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := env.Event.(domain.MessagePosted); ok {
			contents = append(contents, fmt.Sprintf("%d:%s", m.Seq, m.Content))
		}
	}
	want := []string{"1:first"}
	for i := range more {
		want = append(want, fmt.Sprintf("%d:m%d", i+2, i))
	}
	if fmt.Sprint(contents) != fmt.Sprint(want) {
		t.Fatalf("log holds %v, want %v", contents, want)
	}
	if evs[len(evs)-1].Position != last {
		t.Fatalf("newest ack position %d, want the last event's %d", last, evs[len(evs)-1].Position)
	}
}

func TestABatchThatConflictsWithAnotherNodesWriteIsDecidedAgainOnIt(t *testing.T) {
	svc, g := newGatedService(t)
	out := make(chan sendResult, 4)
	go send(svc, "ours", out)
	<-g.entered
	// Another node posts to the room while our append is held.
	other := newService(&Config{Store: g.Store, Decoder: svc.decoder, NodeID: "n2", Now: time.Now})
	theirs := make(chan sendResult, 1)
	send(other, "theirs", theirs)
	if r := <-theirs; r.err != nil || r.seq != 1 {
		t.Fatalf("the other node's send: %+v", r)
	}
	g.release <- struct{}{} // conflicts, is decided again
	<-g.entered
	g.release <- struct{}{}
	if r := <-out; r.err != nil || r.seq != 2 {
		t.Fatalf("our send after the conflict: %+v, want seq 2", r)
	}
}

func TestAFailedBatchAppendFailsItsSendsAndLeavesNoPhantomState(t *testing.T) {
	svc, g := newGatedService(t)
	out := make(chan sendResult, 8)
	go send(svc, "held", out)
	<-g.entered
	for i := range 3 {
		go send(svc, fmt.Sprint("lost", i), out)
		waitQueued(t, svc, i+1)
	}
	g.release <- struct{}{} // "held" succeeds
	<-g.entered
	storeDown := errors.New("disk full")
	g.fail <- storeDown
	g.release <- struct{}{} // the batch of three fails
	failed := 0
	for range 4 {
		r := <-out
		if errors.Is(r.err, storeDown) {
			failed++
		} else if r.err != nil {
			t.Fatal(r.err)
		}
	}
	if failed != 3 {
		t.Fatalf("%d sends failed, want the batch of 3", failed)
	}
	// The next send gets seq 2: the failed batch's speculative messages
	// left nothing behind.
	go send(svc, "after", out)
	<-g.entered
	g.release <- struct{}{}
	if r := <-out; r.err != nil || r.seq != 2 {
		t.Fatalf("send after the failed batch: %+v, want seq 2", r)
	}
}

// waitQueued waits until n decisions wait behind the ward's leader.
func waitQueued(t *testing.T, svc *service, n int) {
	t.Helper()
	e, ok := svc.states.peek(domain.RoomStream("ward"))
	if !ok {
		t.Fatal("the ward's state is not cached")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		e.qmu.Lock()
		got := len(e.waiting)
		e.qmu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d decisions queued, want %d", got, n)
		}
	}
}

func TestASendWhoseRequesterLeftWhileQueuedDoesNotFailTheOthers(t *testing.T) {
	svc, g := newGatedService(t)
	out := make(chan sendResult, 4)
	go send(svc, "held", out)
	<-g.entered
	gone, leave := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() {
		_, err := svc.execute(gone, domain.Actor{UserID: "alice"}, domain.RoomStream("ward"), newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
			_, events, err := domain.PostMessage{RoomID: "ward", Content: "never"}.Decide(c, st.(*domain.Room))
			return events, err
		}, nil)
		left <- err
	}()
	waitQueued(t, svc, 1)
	go send(svc, "stays", out)
	waitQueued(t, svc, 2)
	leave()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("the departed requester got %v, want context.Canceled", err)
	}
	g.release <- struct{}{}
	if n := <-g.entered; n != 1 {
		t.Fatalf("the next append carries %d events, want only the remaining send", n)
	}
	g.release <- struct{}{}
	for range 2 {
		if r := <-out; r.err != nil || r.seq > 2 {
			t.Fatalf("send: %+v, want success with seq 1 or 2", r)
		}
	}
}

func TestACallerThatLedItsOwnDecisionIsNotKeptLeadingABusyRoom(t *testing.T) {
	svc, g := newGatedService(t)
	var leaders sync.WaitGroup
	defer leaders.Wait()
	svc.spawn = func(fn func()) bool {
		leaders.Go(fn)
		return true
	}
	// A synchronous request (like a join) finds the room idle and leads.
	own := make(chan sendResult, 1)
	go send(svc, "own", own)
	<-g.entered
	// Sends keep arriving while its append is held.
	out := make(chan sendResult, 4)
	go func() {
		wait := svc.submit(context.Background(), domain.Actor{UserID: "alice"}, domain.RoomStream("ward"), newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
			_, events, err := domain.PostMessage{RoomID: "ward", Content: "later"}.Decide(c, st.(*domain.Room))
			return events, err
		})
		res, err := wait()
		out <- sendResult{pos: res.last(), err: err}
	}()
	waitQueued(t, svc, 1)
	g.release <- struct{}{}
	// The caller is answered while the next append is still held.
	<-g.entered
	select {
	case r := <-own:
		if r.err != nil || r.seq != 1 {
			t.Fatalf("own send: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the caller was kept leading the room's next batch")
	}
	g.release <- struct{}{}
	if r := <-out; r.err != nil {
		t.Fatal(r.err)
	}
}
