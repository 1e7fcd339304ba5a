package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/bolt"
)

func events(ids ...string) []eventstore.EventData {
	out := make([]eventstore.EventData, len(ids))
	for i, id := range ids {
		out[i] = eventstore.EventData{ID: id, Type: "Tested", Data: []byte(id)}
	}
	return out
}

func TestReopen(t *testing.T) {
	t.Run("retries, versions and stream reads survive a reopen whether indexed on disk or only in memory", func(t *testing.T) {
		ctx := context.Background()
		dir := t.TempDir()
		s, err := bolt.Open(ctx, dir, bolt.WithIndexFlushEvents(4))
		if err != nil {
			t.Fatal(err)
		}
		var results []eventstore.AppendResult
		for i := range 5 { // 10 events: the first ones reach the disk index, the last stay in memory
			res, err := s.Append(ctx, "reopen", eventstore.Exact(uint64(2*i)), events(fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, res)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openStore(t, dir, bolt.WithIndexFlushEvents(4))
		for i, want := range results {
			got, err := s.Append(ctx, "reopen", eventstore.AnyVersion, events(fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)))
			if err != nil || got.Version != want.Version || got.LastPosition() != want.LastPosition() {
				t.Errorf("retry %d after reopen = %+v, %v; want %+v", i, got, err, want)
			}
		}
		read, err := s.ReadStream(ctx, "reopen", 0, eventstore.Forward, 100)
		if err != nil || len(read) != 10 {
			t.Fatalf("ReadStream after reopen = %d events, %v", len(read), err)
		}
		for i, e := range read {
			if e.Version != uint64(i+1) || e.Position != eventstore.Position(i+1) {
				t.Errorf("event %d: v%d at %d", i, e.Version, e.Position)
			}
		}
		if _, err := s.Append(ctx, "reopen", eventstore.Exact(9), events("late")); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Errorf("append at a stale version after reopen: %v", err)
		}
		if res, err := s.Append(ctx, "reopen", eventstore.Exact(10), events("next")); err != nil || res.Version != 11 {
			t.Errorf("append at the current version after reopen = %+v, %v", res, err)
		}
	})
}

func TestCloseAnswersQueuedAppends(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := bolt.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 32
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok       = map[string]eventstore.Position{}
		startAll = make(chan struct{})
	)
	for w := range writers {
		wg.Go(func() {
			<-startAll
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				res, err := s.Append(ctx, fmt.Sprintf("close-%d", w%4), eventstore.AnyVersion, events(id))
				if errors.Is(err, eventstore.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("append during Close: %v", err)
					return
				}
				mu.Lock()
				ok[id] = res.Positions[0]
				mu.Unlock()
			}
		})
	}
	close(startAll)
	// Close while every writer is mid-loop: after a few commits of them all.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(ok)
		mu.Unlock()
		if n >= 3*writers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d appends in 30s", n)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	s2 := openStore(t, dir)
	all, err := s2.ReadAll(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]eventstore.Position{}
	for _, e := range all {
		byID[e.ID] = e.Position
	}
	if len(ok) == 0 {
		t.Fatal("no append succeeded before Close")
	}
	for id, p := range ok {
		if byID[id] != p {
			t.Errorf("acknowledged %s at %d, found at %d after reopen", id, p, byID[id])
		}
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestInjectedClock(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))}
	s := openStore(t, "", bolt.WithClock(clock.Now))
	if err := s.SetStreamMetadata(ctx, "typing-r1", eventstore.StreamMetadata{MaxAge: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "typing-r1", eventstore.NoStream, events("t1")); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Second)
	if _, err := s.Append(ctx, "typing-r1", eventstore.Exact(1), events("t2")); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadStream(ctx, "typing-r1", 0, eventstore.Forward, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("before expiry: %d events, %v", len(got), err)
	}
	if want := clock.Now().Add(-59 * time.Second).UTC(); !got[0].RecordedAt.Equal(want) || got[0].RecordedAt.Location() != time.UTC {
		t.Errorf("RecordedAt = %v, want the injected clock's %v in UTC", got[0].RecordedAt, want)
	}
	clock.Advance(time.Second) // t1 is now exactly a minute old
	got, err = s.ReadStream(ctx, "typing-r1", 0, eventstore.Forward, 10)
	if err != nil || len(got) != 1 || got[0].ID != "t2" {
		t.Fatalf("after t1 expired: %+v, %v", got, err)
	}
	clock.Advance(-time.Hour) // a clock going backwards does not reorder commit times
	if _, err := s.Append(ctx, "typing-r1", eventstore.Exact(2), events("t3")); err != nil {
		t.Fatal(err)
	}
	all, err := s.ReadAll(ctx, 0, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("ReadAll = %d events, %v", len(all), err)
	}
	if all[2].RecordedAt.Before(all[1].RecordedAt) {
		t.Errorf("RecordedAt went backwards: %v after %v", all[2].RecordedAt, all[1].RecordedAt)
	}
}

func TestUUIDEventIDsAndTheirOtherSpellingsAreToldApartInMemoryOnDiskAndAfterAReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := bolt.Open(ctx, dir, bolt.WithIndexFlushEvents(4))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 5 { // 10 events: the first ones reach the disk index, the last stay in memory
		id := uuid.Must(uuid.NewV7()).String()
		ids = append(ids, id, strings.ToUpper(id))
	}
	var results []eventstore.AppendResult
	for _, id := range ids {
		res, err := s.Append(ctx, "spellings", eventstore.AnyVersion, events(id))
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	retry := func(when string) {
		t.Helper()
		for i, id := range ids {
			got, err := s.Append(ctx, "spellings", eventstore.AnyVersion, events(id))
			if err != nil || got.LastPosition() != results[i].LastPosition() {
				t.Errorf("%s: retry of %s = %+v, %v; want %+v", when, id, got, err, results[i])
			}
		}
	}
	retry("before the reopen")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, bolt.WithIndexFlushEvents(4))
	retry("after the reopen")
	if read, err := s.ReadStream(ctx, "spellings", 0, eventstore.Forward, 100); err != nil || len(read) != len(ids) {
		t.Fatalf("the stream holds %d events, %v; want %d", len(read), err, len(ids))
	}
}
