package coalesce

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const w = 20 * time.Millisecond

var t0 = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func TestPushDecisions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lastWrite time.Duration // before now; 0: never written
		held      bool          // a push is held already
		queued    int
		wantNow   bool
		wantList  bool
		wantDue   time.Duration // after now; 0: nothing held
	}{
		{name: "a connection never written is written at once", queued: 1, wantNow: true},
		{name: "a push 2W after the last write is not held", lastWrite: 2 * w, queued: 1, wantNow: true},
		{name: "a lone push in a stream is held for 1.5W and listed", lastWrite: w, queued: 1, wantList: true, wantDue: w + w/2},
		{name: "company a window after the last write goes at once", lastWrite: w, queued: 2, wantNow: true, wantList: true},
		{name: "company sooner waits for the window since the last write", lastWrite: w / 2, queued: 2, wantList: true, wantDue: w / 2},
		{name: "a second push to a held connection is not listed again", lastWrite: w / 2, held: true, queued: 2, wantDue: w / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			now := t0
			if tc.lastWrite > 0 {
				s.Written(now.Add(-tc.lastWrite))
			}
			if tc.held {
				if writeNow, list := s.Push(now, 1, w); writeNow || !list {
					t.Fatalf("first push: writeNow %v list %v, want held and listed", writeNow, list)
				}
			}
			writeNow, list := s.Push(now, tc.queued, w)
			if writeNow != tc.wantNow || list != tc.wantList {
				t.Fatalf("writeNow %v list %v, want %v %v", writeNow, list, tc.wantNow, tc.wantList)
			}
			want := int64(0)
			if tc.wantDue > 0 {
				want = now.Add(tc.wantDue).UnixNano()
			}
			if got := s.DueAt(); got != want {
				t.Fatalf("due %v after now, want %v", time.Duration(got-now.UnixNano()), tc.wantDue)
			}
		})
	}
}

func TestDueWritesOnlyWhatIsHeldAndDue(t *testing.T) {
	var s State
	s.Written(t0)
	s.Push(t0.Add(w/2), 1, w) // held until t0 + w/2 + 2w
	due := s.DueAt()
	if keep, write := s.Due(due-1, false); !keep || write {
		t.Fatalf("before due: keep %v write %v, want kept", keep, write)
	}
	if keep, write := s.Due(due, false); keep || !write {
		t.Fatalf("at due: keep %v write %v, want written", keep, write)
	}
	if keep, write := s.Due(due+1, false); keep || write {
		t.Fatalf("after the write: keep %v write %v, want neither", keep, write)
	}
	// Written by someone else (a reply) meanwhile: only unlisted.
	s.Push(t0.Add(w), 1, w)
	s.Written(t0.Add(w + 1))
	if keep, write := s.Due(s.DueAt(), false); keep || write {
		t.Fatalf("after a reply took the pushes: keep %v write %v, want neither", keep, write)
	}
}

// fakeConn counts the writes the Flusher starts.
type fakeConn struct {
	mu     sync.Mutex
	st     State
	writes atomic.Int64
}

func (c *fakeConn) Coalesce() *State { return &c.st }

func (c *fakeConn) FlushDue(now int64, stop bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep, write := c.st.Due(now, stop)
	if write {
		c.writes.Add(1)
		c.st.Written(time.Now())
	}
	return keep
}

func TestTheFlusherWritesAHeldConnectionWhenDueAndThenStops(t *testing.T) {
	f := NewFlusher(w)
	c := &fakeConn{}
	c.mu.Lock()
	c.st.Written(time.Now())
	_, list := c.st.Push(time.Now(), 1, w)
	if list {
		f.Add(c)
	}
	c.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for c.writes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the held push was never written")
		}
		time.Sleep(time.Millisecond)
	}
	// With nothing listed the goroutine ends by itself.
	for {
		f.mu.Lock()
		running := f.flushing
		f.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flusher kept running with nothing listed")
		}
		time.Sleep(time.Millisecond)
	}
	f.Stop()
}

func TestStopWritesEverythingHeldAtOnce(t *testing.T) {
	f := NewFlusher(time.Hour)
	conns := make([]*fakeConn, 10)
	for i := range conns {
		c := &fakeConn{}
		conns[i] = c
		c.st.Written(time.Now())
		if _, list := c.st.Push(time.Now(), 1, time.Hour); list {
			f.Add(c)
		}
	}
	f.Stop()
	for i, c := range conns {
		if c.writes.Load() != 1 {
			t.Fatalf("connection %d: %d writes at Stop, want 1", i, c.writes.Load())
		}
	}
}
