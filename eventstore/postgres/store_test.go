package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/postgres"
	"github.com/wardline/wardline/eventstore/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store { return newStore(t) })
}

func events(n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{ID: uuid.NewString(), Type: "Tested", SchemaVersion: 1, Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return out
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestReopeningKeepsEpochAndEvents(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	first := openStore(t, dsn, schema)
	res, err := first.Append(ctxFor(t), "room-1", eventstore.NoStream, events(2))
	if err != nil {
		t.Fatal(err)
	}
	epoch := first.Epoch()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := openStore(t, dsn, schema)
	if second.Epoch() != epoch {
		t.Errorf("epoch after reopening = %q, want %q", second.Epoch(), epoch)
	}
	if h, err := second.Head(ctxFor(t)); err != nil || h != res.LastPosition() {
		t.Errorf("Head after reopening = %d, %v; want %d", h, err, res.LastPosition())
	}
}

func TestOpenRefusesASchemaOfANewerBinary(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	openStore(t, dsn, schema).Close()

	conn, err := pgx.Connect(ctxFor(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctxFor(t), "INSERT INTO "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" (version) VALUES (1000)"); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctxFor(t), dsn, postgres.WithSchema(schema))
	if !errors.Is(err, eventstore.ErrNewerFormat) {
		t.Errorf("Open of a schema at version 1000: error = %v, want ErrNewerFormat", err)
	}
}

func TestNodesStartingTogetherShareOneSchemaAndEpoch(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	const nodes = 4
	stores := make([]*postgres.Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(ctxFor(t), dsn, postgres.WithSchema(schema))
		})
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("node %d: Open: %v", i, errs[i])
		}
		t.Cleanup(func() { _ = s.Close() })
		if s.Epoch() != stores[0].Epoch() {
			t.Errorf("node %d epoch %q, node 0 epoch %q", i, s.Epoch(), stores[0].Epoch())
		}
	}
}

// Two nodes append concurrently; a subscriber on each sees one and the same
// gap-free total order.
func TestTwoNodesSeeTheSameTotalOrder(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	nodes := []*postgres.Store{openStore(t, dsn, schema), openStore(t, dsn, schema)}
	const writersPerNode, appendsPerWriter = 4, 25
	total := len(nodes) * writersPerNode * appendsPerWriter

	type seen struct {
		mu     sync.Mutex
		events []eventstore.RecordedEvent
		full   chan struct{}
	}
	subs := make([]*seen, len(nodes))
	ctx, cancel := context.WithCancel(ctxFor(t))
	var subWG sync.WaitGroup
	for i, n := range nodes {
		sub := &seen{full: make(chan struct{})}
		subs[i] = sub
		subWG.Go(func() {
			err := n.Subscribe(ctx, 0, func(_ context.Context, batch []eventstore.RecordedEvent) error {
				sub.mu.Lock()
				defer sub.mu.Unlock()
				sub.events = append(sub.events, batch...)
				if len(sub.events) == total {
					close(sub.full)
				}
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("node %d subscription ended with %v", i, err)
			}
		})
	}
	defer func() { cancel(); subWG.Wait() }()

	var wg sync.WaitGroup
	for ni, n := range nodes {
		for w := range writersPerNode {
			wg.Go(func() {
				stream := fmt.Sprintf("node%d-writer%d", ni, w)
				for i := range appendsPerWriter {
					// Half the writers share a stream across nodes, racing
					// on its version.
					target, expected := stream, eventstore.Exact(uint64(i))
					if w%2 == 1 {
						target, expected = "shared", eventstore.AnyVersion
					}
					if _, err := n.Append(ctx, target, expected, events(1)); err != nil {
						t.Errorf("node %d append: %v", ni, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for i, sub := range subs {
		select {
		case <-sub.full:
		case <-ctx.Done():
			t.Fatalf("node %d subscriber saw %d of %d events", i, len(sub.events), total)
		}
	}
	a, b := subs[0].events, subs[1].events
	for i := range a {
		if a[i].Position != eventstore.Position(i+1) {
			t.Fatalf("node 0 event %d at position %d: positions are not gap-free", i, a[i].Position)
		}
		if a[i].ID != b[i].ID || a[i].Position != b[i].Position {
			t.Fatalf("event %d: node 0 saw %s at %d, node 1 saw %s at %d", i, a[i].ID, a[i].Position, b[i].ID, b[i].Position)
		}
	}
}

// A commit on another node reaches a subscriber through NOTIFY, not the
// fallback poll (set to an hour here).
func TestSubscriberIsWokenByAnotherNodesCommit(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	reader := openStore(t, dsn, schema, postgres.WithPollInterval(time.Hour))
	writer := openStore(t, dsn, schema, postgres.WithPollInterval(time.Hour))
	got := subscribeOne(t, reader)
	if _, err := writer.Append(ctxFor(t), "room", eventstore.NoStream, events(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber was not woken by the other node's commit")
	}
}

// When the LISTEN connection dies, the store reconnects and re-reads, so
// the subscriber still gets an event committed meanwhile.
func TestSubscriberSurvivesALostListenConnection(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	// The application name singles out this test's connections.
	reader := openStore(t, withAppName(dsn, schema), schema, postgres.WithPollInterval(time.Hour))
	writer := openStore(t, dsn, schema, postgres.WithPollInterval(time.Hour))
	got := subscribeOne(t, reader)

	conn, err := pgx.Connect(ctxFor(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var killed int
	err = conn.QueryRow(ctxFor(t), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN %'`, schema).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d LISTEN connections (%v), want 1", killed, err)
	}
	if _, err := writer.Append(ctxFor(t), "room", eventstore.NoStream, events(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the subscriber did not see the event after its LISTEN connection was killed")
	}
}

// withAppName sets application_name in a URL or key=value DSN.
func withAppName(dsn, name string) string {
	switch {
	case !strings.Contains(dsn, "://"):
		return dsn + " application_name=" + name
	case strings.Contains(dsn, "?"):
		return dsn + "&application_name=" + name
	}
	return dsn + "?application_name=" + name
}

// subscribeOne subscribes from 0 and signals the first delivered event.
func subscribeOne(t *testing.T, s *postgres.Store) <-chan struct{} {
	got := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var once sync.Once
		_ = s.Subscribe(ctx, 0, func(context.Context, []eventstore.RecordedEvent) error {
			once.Do(func() { close(got) })
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return got
}

func TestAppendAfterCloseIsErrClosed(t *testing.T) {
	s := newStore(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]error{}
	_, calls["Append"] = s.Append(ctxFor(t), "room", eventstore.AnyVersion, events(1))
	_, calls["ReadAll"] = s.ReadAll(ctxFor(t), 0, 1)
	_, calls["ReadStream"] = s.ReadStream(ctxFor(t), "room", 0, eventstore.Forward, 1)
	_, calls["Head"] = s.Head(ctxFor(t))
	calls["Subscribe"] = s.Subscribe(ctxFor(t), 0, func(context.Context, []eventstore.RecordedEvent) error { return nil })
	calls["SetStreamMetadata"] = s.SetStreamMetadata(ctxFor(t), "room", eventstore.StreamMetadata{})
	_, calls["StreamMetadata"] = s.StreamMetadata(ctxFor(t), "room")
	for name, err := range calls {
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s after Close: error = %v, want ErrClosed", name, err)
		}
	}
}

func TestAnEventIDStoredInAnotherStreamIsAConflict(t *testing.T) {
	s := newStore(t)
	evs := events(1)
	if _, err := s.Append(ctxFor(t), "room-a", eventstore.NoStream, evs); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(ctxFor(t), "room-b", eventstore.NoStream, evs)
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Errorf("appending a stored event ID to another stream: error = %v, want ErrWrongExpectedVersion", err)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  postgres.Option
	}{
		{"a zero poll interval", postgres.WithPollInterval(0)},
		{"a zero batch size", postgres.WithMaxBatchEvents(0)},
		{"a negative pool size", postgres.WithMaxConns(-1)},
	} {
		_, err := postgres.Open(context.Background(), defaultDSN, c.opt)
		if !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("Open with %s: error = %v, want ErrInvalidArgument", c.name, err)
		}
	}
}

func TestVersionsBeyondInt64ReadNothingForwardAndTheNewestBackward(t *testing.T) {
	s := newStore(t)
	if _, err := s.Append(ctxFor(t), "room", eventstore.NoStream, events(3)); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadStream(ctxFor(t), "room", 1<<63+5, eventstore.Forward, 10)
	if err != nil || len(got) != 0 {
		t.Errorf("forward from 2^63+5 = %d events, %v; want none", len(got), err)
	}
	got, err = s.ReadStream(ctxFor(t), "room", 1<<64-1, eventstore.Backward, 1)
	if err != nil || len(got) != 1 || got[0].Version != 3 {
		t.Errorf("backward from 2^64-1 = %+v, %v; want version 3", got, err)
	}
	all, err := s.ReadAll(ctxFor(t), 1<<63+5, 10)
	if err != nil || len(all) != 0 {
		t.Errorf("ReadAll from 2^63+5 = %d events, %v; want none", len(all), err)
	}
}
