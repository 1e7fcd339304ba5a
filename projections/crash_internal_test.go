package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/memstore"
)

// tally counts the events it folds and refuses any it has seen, so a replay
// that applied something twice fails loudly.
type tally struct {
	mu  sync.Mutex
	pos eventstore.Position
	n   uint64
}

func (t *tally) Name() string         { return "tally" }
func (t *tally) Version() int         { return 1 }
func (t *tally) EventTypes() []string { return nil }
func (t *tally) New() Projection      { return &tally{} }

func (t *tally) Position() eventstore.Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pos
}

func (t *tally) Apply(_ context.Context, batch []Applied) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range batch {
		if a.Position <= t.pos {
			return fmt.Errorf("position %d applied again (at %d)", a.Position, t.pos)
		}
		t.pos, t.n = a.Position, t.n+1
	}
	return nil
}

func (t *tally) MarshalSnapshot() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return json.Marshal([2]uint64{uint64(t.pos), t.n})
}

func (t *tally) UnmarshalSnapshot(b []byte) error {
	var v [2]uint64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pos, t.n = eventstore.Position(v[0]), v[1]
	return nil
}

func (t *tally) Adopt(other Projection) error {
	o := other.(*tally)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pos, t.n = o.pos, o.n
	return nil
}

func appendN(t *testing.T, s eventstore.Store, from, n int) eventstore.Position {
	t.Helper()
	var last eventstore.Position
	for i := from; i < from+n; i++ {
		raw, err := domain.Encode(domain.Envelope{ID: fmt.Sprint("e", i), Time: time.Unix(int64(i), 0), Event: domain.UserOnline{UserID: fmt.Sprint("u", i%7)}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Append(context.Background(), domain.PresenceStream(fmt.Sprint("u", i%7)), eventstore.AnyVersion,
			[]eventstore.EventData{{ID: raw.ID, Type: raw.Type, SchemaVersion: raw.SchemaVersion, Data: raw.Data, Metadata: raw.Metadata}})
		if err != nil {
			t.Fatal(err)
		}
		last = res.LastPosition()
	}
	return last
}

// TestACrashResumesFromTheLastSaveWithoutApplyingTwice takes a consistent
// copy of the projections db while the runner is live (what a crash would
// leave on disk: the last save, not the state in memory), starts a new
// runner on it, and checks that it resumes after the saved checkpoint,
// applying everything after it exactly once.
func TestACrashResumesFromTheLastSaveWithoutApplyingTwice(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	dir := t.TempDir()
	cfg := Config{Store: store, Path: filepath.Join(dir, "projections.db"), SnapshotEvery: 1000, SnapshotInterval: time.Hour}
	r, err := NewRunner(context.Background(), cfg, &tally{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Error(err)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}()

	appendN(t, store, 0, 1200) // crosses SnapshotEvery once: one save in between
	head := appendN(t, store, 1200, 100)
	if err := r.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}

	crashed := filepath.Join(dir, "crashed.db")
	if err := r.db.db.View(func(tx *bbolt.Tx) error { return tx.CopyFile(crashed, 0o600) }); err != nil {
		t.Fatal(err)
	}
	saved, err := r.db.load("tally")
	if err != nil {
		t.Fatal(err)
	}
	if !saved.found || saved.checkpoint < 1000 || saved.checkpoint >= head {
		t.Fatalf("the last save is at %d; want one between 1000 and the head %d", saved.checkpoint, head)
	}

	after := &tally{}
	cfg.Path = crashed
	r2, err := NewRunner(context.Background(), cfg, after)
	if err != nil {
		t.Fatal(err)
	}
	if after.n != uint64(saved.checkpoint) {
		t.Fatalf("restored %d events, want the %d saved", after.n, saved.checkpoint)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- r2.Run(ctx2) }()
	if err := r2.WaitFor(ctx2, head); err != nil {
		t.Fatal(err)
	}
	cancel2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if after.n != uint64(head) {
		t.Fatalf("after the crash recovery %d events, want %d", after.n, head)
	}
}
