package projections_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/memstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/presence"
	"github.com/wardline/wardline/projections/rooms"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func snapshotOf(tb testing.TB, p projections.Projection) []byte {
	tb.Helper()
	b, err := p.MarshalSnapshot()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestLiveWithRestartMatchesRebuildByteForByte is the one rule of the design
// applied to the projections: whatever path the live models took (appends
// while running, a restart from the persisted checkpoint, events appended
// while no runner ran), a rebuild from zero gives the same bytes.
func TestLiveWithRestartMatchesRebuildByteForByte(t *testing.T) {
	store := newBoltStore(t)
	g := newGenerator(1)
	path := dbPath(t)
	cfg := projections.Config{Store: store, Path: path, SnapshotEvery: 700}
	chunks := make([][]command, 6)
	for i := range chunks {
		chunks[i] = g.commands(t, 1000)
	}

	roomsA, presA := rooms.New(), presence.New()
	r1 := mustRunner(t, cfg, roomsA, presA)
	stop1 := started(t, r1)
	var head eventstore.Position
	for _, c := range chunks[:3] {
		head = appendAll(t, store, c)
	}
	waitFor(t, r1, head)
	if err := stop1(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	persisted := head
	head = appendAll(t, store, chunks[3]) // while no runner runs

	roomsB, presB := rooms.New(), presence.New()
	r2 := mustRunner(t, cfg, roomsB, presB)
	if st := statusOf(t, r2, rooms.Name); st.Checkpoint != persisted {
		t.Fatalf("restarted at checkpoint %d, want the persisted %d", st.Checkpoint, persisted)
	}
	if !bytes.Equal(snapshotOf(t, roomsB), snapshotOf(t, roomsA)) {
		t.Fatal("the restored rooms model differs from the one that was closed")
	}
	started(t, r2)
	for _, c := range chunks[4:] {
		head = appendAll(t, store, c)
	}
	waitFor(t, r2, head)

	liveRooms, livePres := snapshotOf(t, roomsB), snapshotOf(t, presB)
	rebuiltRooms, rebuiltPres := rooms.New(), presence.New()
	for _, p := range []projections.Projection{rebuiltRooms, rebuiltPres} {
		prog, err := projections.RebuildOffline(context.Background(), projections.Config{Store: store, Path: dbPath(t)}, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if prog.Position != head {
			t.Fatalf("%s rebuilt to %d, want head %d", p.Name(), prog.Position, head)
		}
	}
	if !bytes.Equal(liveRooms, snapshotOf(t, rebuiltRooms)) {
		t.Fatalf("rooms: live and rebuilt snapshots differ (%d vs %d bytes)", len(liveRooms), len(snapshotOf(t, rebuiltRooms)))
	}
	if !bytes.Equal(livePres, snapshotOf(t, rebuiltPres)) {
		t.Fatal("presence: live and rebuilt snapshots differ")
	}

	// Nothing was applied twice or missed: every room's seq is its message
	// count, and the newest message carries it.
	var total uint64
	for _, id := range roomIDs(roomsB) {
		room, _ := roomsB.Room(id)
		total += room.Seq
		msgs, _ := roomsB.RecentMessages(id, 0)
		if room.Seq > 0 && (len(msgs) == 0 || msgs[len(msgs)-1].Seq != room.Seq) {
			t.Fatalf("room %s: seq %d but newest message %v", id, room.Seq, msgs)
		}
		for i := 1; i < len(msgs); i++ {
			if msgs[i].Seq != msgs[i-1].Seq+1 {
				t.Fatalf("room %s: messages out of sequence: %d after %d", id, msgs[i].Seq, msgs[i-1].Seq)
			}
		}
	}
	if total != uint64(g.messages) {
		t.Fatalf("rooms hold %d messages in all, the log has %d", total, g.messages)
	}
}

func roomIDs(m *rooms.Model) []string {
	seen := map[string]bool{}
	var out []string
	for i := range 60 {
		for _, id := range m.RoomsOf(userName(i)) {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

func userName(i int) string { return "user-" + string(rune('0'+i/10)) + string(rune('0'+i%10)) }

func TestRestartResumesFromTheCheckpointWithoutApplyingTwice(t *testing.T) {
	store := newStore(t)
	g := newGenerator(2)
	cfg := projections.Config{Store: store, Path: dbPath(t)}
	total := 0
	for round := range 3 {
		cmds := g.commands(t, 400)
		head := appendAll(t, store, cmds)
		total = int(head)
		c := newCounter("count")
		r := mustRunner(t, cfg, c)
		if round > 0 && c.count() == 0 {
			t.Fatal("the counter was not restored from its snapshot")
		}
		stop := started(t, r)
		waitFor(t, r, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		// counter.Apply itself refuses a position it has seen, and the count
		// would exceed the log if anything were applied twice.
		if got := c.count(); got != uint64(total) {
			t.Fatalf("round %d: counted %d events, the log has %d", round, got, total)
		}
	}
}

func TestFailingProjectionIsRetriedThenParkedWhileOthersGoOn(t *testing.T) {
	tests := []struct {
		name       string
		failures   int // at the failing position; -1: always
		panics     bool
		wantState  projections.State
		wantTries  int
		wantInErr  string
		wantParked bool
	}{
		{name: "a transient failure is retried and the projection goes on", failures: 2, wantState: projections.StateLive, wantTries: 2},
		{name: "a persistent failure parks the projection after the retries", failures: -1, wantState: projections.StateFailed, wantTries: 4, wantInErr: "injected failure", wantParked: true},
		{name: "a panic parks the projection at once", panics: true, wantState: projections.StateFailed, wantTries: 1, wantInErr: "panic: injected panic", wantParked: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			head := appendAll(t, store, newGenerator(3).commands(t, 300))
			const failAt = 120
			flaky, healthy := newCounter("flaky"), newCounter("healthy")
			flaky.failAt, flaky.failures = failAt, tc.failures
			if tc.panics {
				flaky.panicAt = failAt
			}
			r := mustRunner(t, projections.Config{
				Store: store, Path: dbPath(t),
				Retry: projections.RetryPolicy{MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 4 * time.Millisecond},
			}, flaky, healthy)
			started(t, r)
			waitFor(t, r, head, "healthy")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := r.WaitFor(ctx, head, "flaky")
			st := statusOf(t, r, "flaky")
			if tc.wantParked {
				var fe *projections.FailedError
				if !errors.As(err, &fe) || !errors.Is(err, projections.ErrProjectionFailed) || fe.Position != failAt {
					t.Fatalf("WaitFor = %v, want a FailedError at %d", err, failAt)
				}
				if st.Checkpoint != failAt-1 || flaky.count() != failAt-1 {
					t.Fatalf("parked at checkpoint %d with %d events, want everything before %d", st.Checkpoint, flaky.count(), failAt)
				}
				if st.Err == nil || !strings.HasPrefix(st.Error, "failed at position 120: "+tc.wantInErr) {
					t.Fatalf("status error %q", st.Error)
				}
			} else if err != nil || flaky.count() != uint64(head) {
				t.Fatalf("WaitFor = %v with %d of %d events", err, flaky.count(), head)
			}
			if st.State != tc.wantState {
				t.Fatalf("state %s, want %s", st.State, tc.wantState)
			}
			if got := flaky.attemptCount(); got != tc.wantTries {
				t.Fatalf("%d attempts at the failing event, want %d", got, tc.wantTries)
			}
			if healthy.count() != uint64(head) {
				t.Fatalf("the healthy projection has %d of %d events", healthy.count(), head)
			}
		})
	}
}

func TestAParkedProjectionResumesAfterARestart(t *testing.T) {
	store := newStore(t)
	head := appendAll(t, store, newGenerator(4).commands(t, 200))
	cfg := projections.Config{Store: store, Path: dbPath(t), Retry: projections.RetryPolicy{MaxRetries: -1}}
	c := newCounter("count")
	c.failAt, c.failures = 50, 1
	r := mustRunner(t, cfg, c)
	started(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, head); !errors.Is(err, projections.ErrProjectionFailed) {
		t.Fatalf("WaitFor = %v, want it parked", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	c2 := newCounter("count")
	r2 := mustRunner(t, cfg, c2)
	if c2.count() != 49 {
		t.Fatalf("restored %d events, want the 49 before the failure", c2.count())
	}
	started(t, r2)
	waitFor(t, r2, head)
	if c2.count() != uint64(head) {
		t.Fatalf("%d events after the restart, want %d", c2.count(), head)
	}
}

func TestRebuildSwitchesAtomicallyWhileLiveGoesOn(t *testing.T) {
	store := newBoltStore(t)
	g := newGenerator(5)
	head := appendAll(t, store, g.commands(t, 3000))
	model := rooms.New()
	r := mustRunner(t, projections.Config{Store: store, Path: dbPath(t), PageSize: 256}, model)
	started(t, r)
	waitFor(t, r, head)

	// Readers must never see the model go back: the live state serves until
	// the rebuilt one, which is at least as far along, replaces it.
	var stopReaders atomic.Bool
	var readers sync.WaitGroup
	var wentBack atomic.Value
	readers.Go(func() {
		last := eventstore.Position(0)
		for !stopReaders.Load() {
			p := model.Position()
			if p < last {
				wentBack.Store([2]eventstore.Position{last, p})
			}
			last = p
		}
	})
	// The log keeps growing during the rebuild.
	more := g.commands(t, 1500)
	var writers sync.WaitGroup
	writers.Go(func() {
		for i := 0; i < len(more); i += 50 {
			appendAll(t, store, more[i:min(i+50, len(more))])
		}
	})
	var calls []projections.Progress
	var mu sync.Mutex
	err := r.Rebuild(context.Background(), rooms.Name, func(p projections.Progress) {
		mu.Lock()
		calls = append(calls, p)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	writers.Wait()
	head, _ = store.Head(context.Background())
	waitFor(t, r, head)
	stopReaders.Store(true)
	readers.Wait()
	if v := wentBack.Load(); v != nil {
		t.Fatalf("a reader saw the model go back from %v", v)
	}
	if len(calls) < 2 {
		t.Fatalf("%d progress calls, want one per page", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Position < calls[i-1].Position || calls[i].Events < calls[i-1].Events {
			t.Fatalf("progress went back: %+v then %+v", calls[i-1], calls[i])
		}
	}
	if st := statusOf(t, r, rooms.Name); st.State != projections.StateLive || st.Rebuild != nil {
		t.Fatalf("after the switch: %+v", st)
	}

	rebuilt := rooms.New()
	if _, err := projections.RebuildOffline(context.Background(), projections.Config{Store: store, Path: dbPath(t)}, rebuilt, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotOf(t, model), snapshotOf(t, rebuilt)) {
		t.Fatal("the switched-in model differs from a rebuild from zero")
	}
}

func TestRebuildRevivesAParkedProjection(t *testing.T) {
	store := newStore(t)
	head := appendAll(t, store, newGenerator(6).commands(t, 300))
	c := newCounter("count")
	c.failAt, c.failures = 77, -1
	r := mustRunner(t, projections.Config{Store: store, Path: dbPath(t), Retry: projections.RetryPolicy{MaxRetries: -1}}, c)
	started(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, head); !errors.Is(err, projections.ErrProjectionFailed) {
		t.Fatalf("WaitFor = %v, want it parked", err)
	}
	if err := r.Rebuild(ctx, "count", nil); err != nil {
		t.Fatal(err)
	}
	more := appendAll(t, store, newGenerator(7).commands(t, 100))
	waitFor(t, r, more)
	if st := statusOf(t, r, "count"); st.State != projections.StateLive || st.Err != nil || c.count() != uint64(more) {
		t.Fatalf("after rebuild: %+v with %d events, want live with %d", st, c.count(), more)
	}
}

func TestWaitFor(t *testing.T) {
	store := newStore(t)
	r := mustRunner(t, projections.Config{Store: store, Path: dbPath(t)}, rooms.New(), newCounter("count"))
	stop := started(t, r)
	g := newGenerator(8)

	done := make(chan error, 1)
	go func() {
		done <- r.WaitFor(context.Background(), 40, rooms.Name)
	}()
	head := appendAll(t, store, g.commands(t, 100))
	if err := <-done; err != nil {
		t.Fatalf("a waiter for an appended position: %v", err)
	}
	waitFor(t, r, head)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.WaitFor(ctx, head+1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a position nobody appends: %v", err)
	}
	if err := r.WaitFor(context.Background(), 1, "nope"); !errors.Is(err, projections.ErrUnknownProjection) {
		t.Fatalf("an unknown name: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitFor(context.Background(), head+1); !errors.Is(err, projections.ErrStopped) {
		t.Fatalf("after Run returned: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitFor(context.Background(), head+1); !errors.Is(err, projections.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := r.WaitFor(context.Background(), head); err != nil {
		t.Fatalf("a position already applied, after Close: %v", err)
	}
}

func TestOnAppliedSeesEveryEventOnceInOrderAfterTheModels(t *testing.T) {
	store := newStore(t)
	model := rooms.New()
	var (
		mu   sync.Mutex
		seen []eventstore.Position
		lag  error
	)
	r := mustRunner(t, projections.Config{Store: store, Path: dbPath(t), OnApplied: func(_ context.Context, batch []projections.Applied) {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range batch {
			seen = append(seen, a.Position)
		}
		if lag == nil && model.Position() < lastRoomEvent(batch) {
			lag = errors.New("OnApplied ran before the model showed the batch")
		}
	}}, model)
	started(t, r)
	head := appendAll(t, store, newGenerator(9).commands(t, 800))
	waitFor(t, r, head)
	eventually(t, "OnApplied saw the head", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && seen[len(seen)-1] == head
	})
	mu.Lock()
	defer mu.Unlock()
	if lag != nil {
		t.Fatal(lag)
	}
	for i, p := range seen {
		if p != eventstore.Position(i+1) {
			t.Fatalf("OnApplied saw position %d at index %d", p, i)
		}
	}
}

func lastRoomEvent(batch []projections.Applied) eventstore.Position {
	var last eventstore.Position
	for _, a := range batch {
		switch a.Envelope.Type {
		case "RoomCreated", "MemberJoined", "MemberLeft", "MessagePosted":
			last = a.Position
		}
	}
	return last
}

func TestStatusReportsCatchUpLiveAndRebuildInPlace(t *testing.T) {
	store := newStore(t)
	head := appendAll(t, store, newGenerator(10).commands(t, 500))
	path := dbPath(t)
	c := newCounter("count")
	r := mustRunner(t, projections.Config{Store: store, Path: path}, c)
	st := statusOf(t, r, "count")
	if st.State != projections.StateRebuilding || st.Lag != uint64(head) || st.Version != 1 {
		t.Fatalf("before the first run, with no snapshot: %+v", st)
	}
	started(t, r)
	waitFor(t, r, head)
	st = statusOf(t, r, "count")
	if st.State != projections.StateLive || st.Lag != 0 || st.Checkpoint != head || st.Head != head {
		t.Fatalf("caught up: %+v", st)
	}
	if b, _ := json.Marshal(st); !strings.Contains(string(b), `"state":"live"`) {
		t.Fatalf("status JSON: %s", b)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	more := appendAll(t, store, newGenerator(11).commands(t, 100))
	r2 := mustRunner(t, projections.Config{Store: store, Path: path}, newCounter("count"))
	if st := statusOf(t, r2, "count"); st.State != projections.StateCatchingUp || st.Lag != uint64(more-head) {
		t.Fatalf("restarted behind the head: %+v", st)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}

	bumped := newCounter("count")
	bumped.version = 2
	r3 := mustRunner(t, projections.Config{Store: store, Path: path}, bumped)
	if st := statusOf(t, r3, "count"); st.State != projections.StateRebuilding || st.Checkpoint != 0 || bumped.count() != 0 {
		t.Fatalf("a new version must start from zero: %+v", st)
	}
	started(t, r3)
	waitFor(t, r3, more)
	if bumped.count() != uint64(more) {
		t.Fatalf("rebuilt in place to %d events, want %d", bumped.count(), more)
	}
}

func TestASnapshotOfAnotherStoreIsNotUsed(t *testing.T) {
	path := dbPath(t)
	first := newStore(t)
	head := appendAll(t, first, newGenerator(12).commands(t, 100))
	r := mustRunner(t, projections.Config{Store: first, Path: path}, newCounter("count"))
	started(t, r)
	waitFor(t, r, head)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	other := newStore(t)
	c := newCounter("count")
	r2 := mustRunner(t, projections.Config{Store: other, Path: path}, c)
	if st := statusOf(t, r2, "count"); st.Checkpoint != 0 || c.count() != 0 {
		t.Fatalf("a snapshot of another store's log was restored: %+v", st)
	}
}

func TestRunEndsCleanlyWhenItsContextIsCancelled(t *testing.T) {
	store := newStore(t)
	r := mustRunner(t, projections.Config{Store: store, Path: dbPath(t)}, rooms.New(), presence.New())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	head := appendAll(t, store, newGenerator(13).commands(t, 200))
	waitFor(t, r, head)
	if err := r.Run(context.Background()); !errors.Is(err, projections.ErrRunning) {
		t.Fatalf("a second Run: %v", err)
	}
	if r.Projection(rooms.Name) == nil || r.Projection("nope") != nil {
		t.Fatal("Projection does not find the registered projections by name")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); !errors.Is(err, projections.ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	// goleak (TestMain) checks that nothing Run started outlives it.
}

func TestCloseStopsARunningRunnerAndRebuild(t *testing.T) {
	store := newStore(t)
	head := appendAll(t, store, newGenerator(14).commands(t, 2000))
	slow := &slowCounter{counter: newCounter("slow")}
	r := mustRunner(t, projections.Config{Store: store, Path: dbPath(t), PageSize: 16}, slow)
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(context.Background()) }()
	waitFor(t, r, head)
	rebuildDone := make(chan error, 1)
	go func() { rebuildDone <- r.Rebuild(context.Background(), "slow", nil) }()
	eventually(t, "the rebuild started", func() bool { return statusOf(t, r, "slow").Rebuild != nil })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-runDone; err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
	if err := <-rebuildDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("Rebuild after Close: %v", err)
	}
}

// slowCounter makes rebuilds slow enough to be caught in the middle.
type slowCounter struct{ *counter }

func (s *slowCounter) Apply(ctx context.Context, batch []projections.Applied) error {
	time.Sleep(time.Millisecond)
	return s.counter.Apply(ctx, batch)
}

func (s *slowCounter) New() projections.Projection {
	return &slowCounter{counter: s.counter.New().(*counter)}
}

func (s *slowCounter) Adopt(other projections.Projection) error {
	return s.counter.Adopt(other.(*slowCounter).counter)
}

func TestNewRunnerRefusesAnUnusableConfig(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	tests := []struct {
		name  string
		cfg   projections.Config
		projs []projections.Projection
	}{
		{name: "no store", cfg: projections.Config{Path: dbPath(t)}, projs: []projections.Projection{rooms.New()}},
		{name: "no path", cfg: projections.Config{Store: store}, projs: []projections.Projection{rooms.New()}},
		{name: "no projection", cfg: projections.Config{Store: store, Path: dbPath(t)}},
		{name: "two projections of one name", cfg: projections.Config{Store: store, Path: dbPath(t)}, projs: []projections.Projection{rooms.New(), rooms.New()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := projections.NewRunner(context.Background(), tc.cfg, tc.projs...)
			if !errors.Is(err, projections.ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestASecondProcessCannotOpenTheProjectionsDB(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	path := dbPath(t)
	mustRunner(t, projections.Config{Store: store, Path: path}, rooms.New())
	_, err := projections.RebuildOffline(context.Background(), projections.Config{Store: store, Path: path}, rooms.New(), nil)
	if !errors.Is(err, projections.ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
}

// gatedCounter is a counter whose rebuilt instances (New) stop at a
// position until told to go on, so a test can let the live log move past a
// rebuild.
type gatedCounter struct {
	*counter
	gate *gate // nil: this instance does not stop
	next *gate // the gate New gives the rebuilt instance
}

type gate struct {
	at               eventstore.Position
	reached, proceed chan struct{}
}

func (g *gatedCounter) Apply(ctx context.Context, batch []projections.Applied) error {
	if g.gate != nil && len(batch) > 0 && batch[len(batch)-1].Position >= g.gate.at {
		close(g.gate.reached)
		<-g.gate.proceed
		g.gate = nil
	}
	return g.counter.Apply(ctx, batch)
}

func (g *gatedCounter) New() projections.Projection {
	return &gatedCounter{counter: g.counter.New().(*counter), gate: g.next}
}

func (g *gatedCounter) Adopt(other projections.Projection) error {
	return g.counter.Adopt(other.(*gatedCounter).counter)
}

func TestRebuildCatchesUpWithWhatLiveAppliedMeanwhileBeforeSwitching(t *testing.T) {
	store := newStore(t)
	head := appendAll(t, store, newGenerator(15).commands(t, 300))
	g := &gate{at: head, reached: make(chan struct{}), proceed: make(chan struct{})}
	live := &gatedCounter{counter: newCounter("count"), next: g}
	r := mustRunner(t, projections.Config{Store: store, Path: dbPath(t), PageSize: 64}, live)
	started(t, r)
	waitFor(t, r, head)

	done := make(chan error, 1)
	go func() { done <- r.Rebuild(context.Background(), "count", nil) }()
	<-g.reached
	// The rebuild has read up to the old head; the live runner goes on.
	more := appendAll(t, store, newGenerator(16).commands(t, 200))
	waitFor(t, r, more)
	close(g.proceed)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := live.count(); got != uint64(more) {
		t.Fatalf("after the switch the model holds %d events, want %d", got, more)
	}
	last := appendAll(t, store, newGenerator(17).commands(t, 50))
	waitFor(t, r, last)
	if got := live.count(); got != uint64(last) {
		t.Fatalf("after the switch the live runner applied up to %d events, want %d", got, last)
	}
}

func TestAnUndecodableEventParksOnlyTheProjectionsThatFoldItsType(t *testing.T) {
	store := newStore(t)
	head := appendAll(t, store, newGenerator(18).commands(t, 200))
	ctx := context.Background()
	bad, err := store.Append(ctx, "room-broken", eventstore.AnyVersion, []eventstore.EventData{
		{ID: "bad-1", Type: "MessagePosted", SchemaVersion: 2, Data: []byte(`{"seq":"not a number"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, "other-broken", eventstore.AnyVersion, []eventstore.EventData{
		{ID: "bad-2", Type: "NobodyFoldsThis", SchemaVersion: 1, Data: []byte(`{}`)},
	}); err != nil {
		t.Fatal(err)
	}
	head = appendAll(t, store, newGenerator(19).commands(t, 100))

	var hooked atomic.Int64
	model, pres := rooms.New(), presence.New()
	r := mustRunner(t, projections.Config{Store: store, Path: dbPath(t), OnApplied: func(_ context.Context, b []projections.Applied) {
		hooked.Add(int64(len(b)))
	}}, model, pres)
	started(t, r)
	waitFor(t, r, head, presence.Name)
	err = r.WaitFor(ctx, head, rooms.Name)
	var fe *projections.FailedError
	if !errors.As(err, &fe) || fe.Position != bad.LastPosition() || !strings.Contains(fe.Error(), "decode MessagePosted event bad-1") {
		t.Fatalf("rooms: %v, want parked at the undecodable event %d", err, bad.LastPosition())
	}
	if st := statusOf(t, r, rooms.Name); st.Checkpoint >= bad.LastPosition() || st.State != projections.StateFailed {
		t.Fatalf("rooms went past the event it could not decode: %+v", st)
	}
	// OnApplied sees every event but the two that would not decode.
	eventually(t, "OnApplied saw the log", func() bool { return hooked.Load() == int64(head)-2 })
}

func TestRebuildRefusesAnUnknownNameASecondRebuildAndAClosedRunner(t *testing.T) {
	store := newStore(t)
	head := appendAll(t, store, newGenerator(20).commands(t, 100))
	g := &gate{at: head, reached: make(chan struct{}), proceed: make(chan struct{})}
	r := mustRunner(t, projections.Config{Store: store, Path: dbPath(t)}, &gatedCounter{counter: newCounter("count"), next: g})
	ctx := context.Background()
	if err := r.Rebuild(ctx, "nope", nil); !errors.Is(err, projections.ErrUnknownProjection) {
		t.Fatalf("an unknown name: %v", err)
	}
	first := make(chan error, 1)
	go func() { first <- r.Rebuild(ctx, "count", nil) }()
	<-g.reached
	if err := r.Rebuild(ctx, "count", nil); !errors.Is(err, projections.ErrRebuildInProgress) {
		t.Fatalf("a second rebuild: %v", err)
	}
	if st := statusOf(t, r, "count"); st.State != projections.StateRebuilding || st.Rebuild == nil {
		t.Fatalf("status during a rebuild: %+v", st)
	}
	close(g.proceed)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Rebuild(ctx, "count", nil); !errors.Is(err, projections.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
