package workpool_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardline/wardline/transport/internal/workpool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEveryJobRunsOnce(t *testing.T) {
	var ran atomic.Int64
	var wg sync.WaitGroup
	p := workpool.New(time.Second, func(n int) {
		ran.Add(int64(n))
		wg.Done()
	})
	const jobs = 1000
	wg.Add(jobs)
	for range jobs {
		p.Go(1)
	}
	wg.Wait()
	p.Stop()
	if got := ran.Load(); got != jobs {
		t.Fatalf("%d jobs ran, want %d", got, jobs)
	}
}

func TestAnIdleWorkerTakesTheNextJobInsteadOfANewGoroutine(t *testing.T) {
	done := make(chan struct{})
	p := workpool.New(time.Minute, func(int) { done <- struct{}{} })
	defer p.Stop()
	for range 20 {
		p.Go(1)
		<-done
		// Let the worker get back to waiting for work.
		for deadline := time.Now().Add(time.Second); p.Idle() == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	if n := p.Running(); n != 1 {
		t.Fatalf("%d workers after sequential jobs, want 1", n)
	}
}

func TestIdleWorkersExitAfterTheIdlePeriod(t *testing.T) {
	p := workpool.New(20*time.Millisecond, func(int) {})
	p.Go(1)
	deadline := time.Now().Add(5 * time.Second)
	for p.Running() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the idle worker never exited")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Stop()
}

func TestStopWaitsForABusyWorker(t *testing.T) {
	release := make(chan struct{})
	var finished atomic.Bool
	p := workpool.New(time.Minute, func(int) {
		<-release
		finished.Store(true)
	})
	p.Go(1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		close(release)
	}()
	p.Stop()
	if !finished.Load() {
		t.Fatal("Stop returned while a job was running")
	}
}

func TestTurnsRunEveryPushedJobAndRequeueABusyOne(t *testing.T) {
	var mu sync.Mutex
	runs := map[int]int{}
	var wg sync.WaitGroup
	w := workpool.NewTurns(time.Second, func(j int) bool {
		mu.Lock()
		runs[j]++
		n := runs[j]
		mu.Unlock()
		again := n < 3 // each job "has more queued" twice
		if !again {
			wg.Done()
		}
		return again
	})
	const jobs = 200
	wg.Add(jobs)
	for j := range jobs {
		w.Push(j)
	}
	wg.Wait()
	w.Stop()
	for j := range jobs {
		if runs[j] != 3 {
			t.Fatalf("job %d ran %d times, want 3", j, runs[j])
		}
	}
}

func TestTurnsGoroutinesAreGoneAfterTheIdlePeriodAndComeBackForAPush(t *testing.T) {
	var ran atomic.Int64
	w := workpool.NewTurns(20*time.Millisecond, func(int) bool { ran.Add(1); return false })
	defer w.Stop()
	for j := range 10 {
		w.Push(j)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.Running() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running long after the idle period", w.Running())
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.Push(10)
	for ran.Load() < 11 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 11 jobs ran", ran.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTurnsNeverRunMoreGoroutinesThanCPUs(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	w := workpool.NewTurns(time.Second, func(int) bool { started.Done(); <-release; return false })
	started.Add(w.Max())
	for j := range w.Max() + 5 {
		w.Push(j)
	}
	started.Wait()
	if n := w.Running(); n != w.Max() {
		t.Errorf("%d goroutines running, want %d", n, w.Max())
	}
	started.Add(5)
	close(release)
	started.Wait()
	w.Stop()
}
