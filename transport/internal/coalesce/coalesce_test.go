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
		held      bool          // a push is held already (since now)
		queued    int
		wantNow   bool
		wantList  time.Duration // listed at, after now; 0: not listed
		wantDue   time.Duration // after now; 0: nothing held
	}{
		{name: "a connection never written is written at once", queued: 1, wantNow: true},
		{name: "a push 2W after the last write is not held", lastWrite: 2 * w, queued: 1, wantNow: true},
		{name: "a lone push in a stream is held for 1.5W and listed then", lastWrite: w, queued: 1, wantList: w + w/2, wantDue: w + w/2},
		{name: "company a window after the last write goes at once, unlisted", lastWrite: w, queued: 2, wantNow: true},
		{name: "company sooner waits for the window since the last write", lastWrite: w / 2, queued: 2, wantList: w / 2, wantDue: w / 2},
		{name: "company for a held push lists it again at the sooner time", lastWrite: w / 2, held: true, queued: 2, wantList: w / 2, wantDue: w / 2},
		{name: "company for a held push due sooner than the window is not listed again", lastWrite: w / 2, held: true, queued: 1, wantDue: w + w/2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			now := t0
			if tc.lastWrite > 0 {
				s.Written(now.Add(-tc.lastWrite))
			}
			if tc.held {
				if writeNow, at := s.Push(now, 1, w); writeNow || at == 0 {
					t.Fatalf("first push: writeNow %v listAt %v, want held and listed", writeNow, at)
				}
			}
			writeNow, at := s.Push(now, tc.queued, w)
			wantAt := int64(0)
			if tc.wantList > 0 {
				wantAt = now.Add(tc.wantList).UnixNano()
			}
			if writeNow != tc.wantNow || at != wantAt {
				t.Fatalf("writeNow %v listAt %v after now, want %v %v", writeNow, time.Duration(at-now.UnixNano()), tc.wantNow, tc.wantList)
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
	s.Push(t0.Add(w/2), 1, w) // held until t0 + w/2 + 1.5w
	due := s.DueAt()
	if s.Due(due-1, false) {
		t.Fatal("written before due")
	}
	if !s.Due(due, false) {
		t.Fatal("not written at due")
	}
	if s.Due(due+1, false) {
		t.Fatal("written twice")
	}
	// Written by someone else (a reply) meanwhile: nothing to write.
	s.Push(t0.Add(w), 1, w)
	s.Written(t0.Add(w + 1))
	if s.Due(due+w.Nanoseconds(), false) {
		t.Fatal("written after a reply took the pushes")
	}
	// An entry of an earlier hold finds a new hold due later: not yet.
	s.Push(t0.Add(w+2), 1, w)
	if s.Due(due, false) {
		t.Fatal("a new hold was written at an earlier hold's entry")
	}
	if !s.Due(due, true) {
		t.Fatal("stop did not write what is held")
	}
}

// fakeConn counts the writes the Flusher starts.
type fakeConn struct {
	mu     sync.Mutex
	st     State
	writes atomic.Int64
}

func (c *fakeConn) FlushDue(now int64, stop bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.Due(now, stop) {
		c.writes.Add(1)
		c.st.Written(time.Now())
	}
}

// push is a transport's Send: the rule, then the listing it asks for.
func (c *fakeConn) push(f *Flusher, now time.Time, queued int, w time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, at := c.st.Push(now, queued, w); at != 0 {
		f.Add(c, at)
	}
}

func TestTheFlusherWritesAHeldConnectionWhenDueAndThenStops(t *testing.T) {
	f := NewFlusher(w)
	c := &fakeConn{}
	c.mu.Lock()
	c.st.Written(time.Now())
	c.mu.Unlock()
	c.push(f, time.Now(), 1, w)
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

func TestACheckFlushesOnlyTheEntriesDueAndKeepsTheRest(t *testing.T) {
	f := NewFlusher(w)
	f.flushing = true // no goroutine: the test calls check itself
	now := time.Now()
	early, late, moved := &fakeConn{}, &fakeConn{}, &fakeConn{}
	for _, c := range []*fakeConn{early, late, moved} {
		c.st.Written(now)
	}
	early.push(f, now.Add(-w), 1, w)  // due at now + w/2
	late.push(f, now, 1, w)           // due at now + 1.5w
	moved.push(f, now, 1, w)          // due at now + 1.5w ...
	moved.push(f, now.Add(1), 2, w/2) // ... company: due at now + w/2, listed again

	if !f.check(now.Add(w/4).UnixNano(), false) {
		t.Fatal("nothing left after the first check")
	}
	if e, l, m := early.writes.Load(), late.writes.Load(), moved.writes.Load(); e != 0 || l != 0 || m != 0 {
		t.Fatalf("writes before any due time: %d %d %d", e, l, m)
	}
	f.check(now.Add(w/2).UnixNano(), false)
	if e, l, m := early.writes.Load(), late.writes.Load(), moved.writes.Load(); e != 1 || l != 0 || m != 1 {
		t.Fatalf("writes at w/2: early %d late %d moved %d, want 1 0 1", e, l, m)
	}
	if more := f.check(now.Add(w+w/2).UnixNano(), false); more {
		t.Fatal("entries left after every due time passed")
	}
	if e, l, m := early.writes.Load(), late.writes.Load(), moved.writes.Load(); e != 1 || l != 1 || m != 1 {
		t.Fatalf("writes at 1.5w: early %d late %d moved %d, want one each (the moved one's first entry is stale)", e, l, m)
	}
}

func TestStopWritesEverythingHeldAtOnce(t *testing.T) {
	f := NewFlusher(time.Hour)
	conns := make([]*fakeConn, 10)
	for i := range conns {
		c := &fakeConn{}
		conns[i] = c
		c.st.Written(time.Now())
		c.push(f, time.Now(), 1, time.Hour)
	}
	f.Stop()
	for i, c := range conns {
		if c.writes.Load() != 1 {
			t.Fatalf("connection %d: %d writes at Stop, want 1", i, c.writes.Load())
		}
	}
}

// BenchmarkCheck is one flusher tick over 10,000 streaming connections
// whose held pushes are not yet due: what every quarter window costs.
func BenchmarkCheck(b *testing.B) {
	f := NewFlusher(w)
	f.flushing = true // no goroutine: the benchmark calls check itself
	now := time.Now()
	conns := make([]*fakeConn, 10000)
	pads := make([][]byte, len(conns))
	for i := range conns {
		// Apart in memory, like the transports' connections.
		pads[i] = make([]byte, 2<<10)
		conns[i] = &fakeConn{}
		conns[i].st.Written(now)
		conns[i].push(f, now, 1, w)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !f.check(now.UnixNano(), false) {
			b.Fatal("entries were flushed before their due time")
		}
	}
}
