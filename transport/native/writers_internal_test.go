package native

import (
	"sync"
	"testing"
	"time"
)

func TestSharedWritersRunEveryPushedConnectionAndRequeueABusyOne(t *testing.T) {
	var mu sync.Mutex
	runs := map[*Conn]int{}
	var wg sync.WaitGroup
	w := newSharedWriters(time.Second, func(c *Conn) bool {
		mu.Lock()
		runs[c]++
		n := runs[c]
		mu.Unlock()
		again := n < 3 // each connection "has more queued" twice
		if !again {
			wg.Done()
		}
		return again
	})
	conns := make([]*Conn, 200)
	wg.Add(len(conns))
	for i := range conns {
		conns[i] = &Conn{}
		w.push(conns[i])
	}
	wg.Wait()
	w.stop()
	for i, c := range conns {
		if runs[c] != 3 {
			t.Fatalf("connection %d ran %d times, want 3", i, runs[c])
		}
	}
}

func TestSharedWritersAreGoneAfterTheIdlePeriod(t *testing.T) {
	w := newSharedWriters(20*time.Millisecond, func(*Conn) bool { return false })
	defer w.stop()
	for range 10 {
		w.push(&Conn{})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		running := w.running
		w.mu.Unlock()
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writers still running long after the idle period", running)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A push after they left starts a writer again.
	done := make(chan struct{})
	w.run = func(*Conn) bool { close(done); return false }
	w.push(&Conn{})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a push after the writers left was never run")
	}
}

func TestSharedWritersNeverExceedOnePerCPU(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	w := newSharedWriters(time.Second, func(*Conn) bool { started.Done(); <-release; return false })
	started.Add(w.max)
	for range w.max + 5 {
		w.push(&Conn{})
	}
	started.Wait()
	w.mu.Lock()
	running := w.running
	w.mu.Unlock()
	if running != w.max {
		t.Errorf("%d writers running, want %d", running, w.max)
	}
	started.Add(5)
	close(release)
	started.Wait()
	w.stop()
}
