package bolt

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardline/wardline/eventstore"
)

func TestThePacerPausesOnlyWhileAPauseKeepsGatheringCompany(t *testing.T) {
	const iv = 5 * time.Millisecond
	type step struct {
		sinceLast time.Duration
		want      time.Duration
		company   bool // outcome of the pause, when want > 0
	}
	for _, tc := range []struct {
		name  string
		iv    time.Duration
		steps []step
	}{
		{"off: never pauses", 0, []step{{0, 0, false}, {time.Millisecond, 0, false}}},
		{"a commit after a quiet spell goes at once", iv, []step{{iv, 0, false}, {time.Hour, 0, false}}},
		{"a commit soon after the previous one waits out the interval", iv, []step{{2 * time.Millisecond, 3 * time.Millisecond, true}, {0, iv, true}}},
		{"fruitless pauses back off 1, 2, 4 commits", iv, []step{
			{0, iv, false},
			{0, 0, false},
			{0, iv, false},
			{0, 0, false}, {0, 0, false},
			{0, iv, false},
			{0, 0, false}, {0, 0, false}, {0, 0, false}, {0, 0, false},
			{0, iv, true},
			{0, iv, true},
		}},
		{"a quiet spell does not use up the backoff", iv, []step{
			{0, iv, false},
			{time.Hour, 0, false},
			{0, 0, false},
			{0, iv, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pacer{interval: tc.iv}
			for i, s := range tc.steps {
				got := p.delay(s.sinceLast)
				if got != s.want {
					t.Fatalf("step %d: delay(%s) = %s, want %s", i, s.sinceLast, got, s.want)
				}
				if got > 0 {
					p.paused(s.company)
				}
			}
		})
	}
}

func TestTheBackoffAfterFruitlessPausesIsBounded(t *testing.T) {
	p := pacer{interval: time.Millisecond}
	for range 30 {
		p.delay(0)
		p.paused(false)
	}
	if p.backoff != maxPaceBackoff || p.skip != maxPaceBackoff {
		t.Fatalf("backoff %d, skip %d; want both %d", p.backoff, p.skip, maxPaceBackoff)
	}
}

func appendOne(ctx context.Context, s *Store, stream string, n int) error {
	_, err := s.Append(ctx, stream, eventstore.AnyVersion, []eventstore.EventData{{
		ID: fmt.Sprintf("%s-%d", stream, n), Type: "Paced", Data: []byte(`{}`),
	}})
	return err
}

func TestAPausedCommitTakesTheAppendsThatArriveDuringItsPause(t *testing.T) {
	ctx := context.Background()
	var s *Store
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	pauses := 0
	pause := func(d time.Duration, quit <-chan struct{}) {
		pauses++
		if pauses > 1 {
			return
		}
		// Three other callers append while the writer pauses.
		for i := range 3 {
			wg.Go(func() { errs <- appendOne(ctx, s, fmt.Sprintf("other-%d", i), 0) })
		}
		for s.queued() < 4 {
			time.Sleep(time.Millisecond)
		}
	}
	s, err := Open(ctx, t.TempDir(), WithCommitInterval(time.Hour), withPause(pause))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if err := appendOne(ctx, s, "first", 0); err != nil { // commits at once: nothing came before it
		t.Fatal(err)
	}
	if err := appendOne(ctx, s, "second", 0); err != nil { // pauses, gathering three more
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if pauses != 1 || st.Commits != 2 || st.Events != 5 {
		t.Fatalf("pauses %d, commits %d, events %d; want 1 pause and 5 events in 2 commits", pauses, st.Commits, st.Events)
	}
}

func TestALoneSequentialWriterPausesOnlyAHandfulOfTimes(t *testing.T) {
	ctx := context.Background()
	pauses := 0
	s, err := Open(ctx, t.TempDir(), WithCommitInterval(time.Hour),
		withPause(func(time.Duration, <-chan struct{}) { pauses++ }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 200 {
		if err := appendOne(ctx, s, "alone", i); err != nil {
			t.Fatal(err)
		}
	}
	// Pauses before commits 2, 4, 7, 12, 21, 38, 71 and 136: each found
	// nobody and doubled the commits taken unpaced after it.
	if pauses != 8 {
		t.Fatalf("%d pauses in 200 sequential commits, want 8", pauses)
	}
}

func TestCloseEndsAPausedCommitAndCommitsWhatWaited(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), WithCommitInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := appendOne(ctx, s, "first", 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- appendOne(ctx, s, "second", 0) }()
	for s.queued() == 0 { // queued and not taken: the writer pauses for an hour
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited out the commit interval")
	}
	if err := <-done; err != nil {
		t.Fatalf("the append that waited for the paced commit: %v", err)
	}
	if st := s.Stats(); st.Commits != 2 {
		t.Fatalf("%d commits, want 2", st.Commits)
	}
}

func TestAPausedCommitGoesAsSoonAsEnoughAppendsAreQueued(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), WithCommitInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := appendOne(ctx, s, "first", 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, pauseEnough)
	for i := range pauseEnough { // the first pauses the writer for an hour
		go func() { done <- appendOne(ctx, s, fmt.Sprintf("burst-%d", i), 0) }()
	}
	guard := time.After(10 * time.Second)
	for range pauseEnough {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-guard:
			t.Fatal("the burst waited out the commit interval")
		}
	}
	if st := s.Stats(); st.Commits != 2 {
		t.Fatalf("%d commits, want 2: the first append's, then the whole burst's", st.Commits)
	}
}
