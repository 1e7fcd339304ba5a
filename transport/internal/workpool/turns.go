package workpool

import (
	"runtime"
	"sync"
	"time"
)

// Turns is a few goroutines (one per CPU at most) that take turns running
// jobs from a shared list: the transports' writers, which write one
// connection's queued frames with a writev that never waits and move on to
// the next connection.
//
// A Pool hands every job to a goroutine of its own, waking it: in a CPU
// profile of wardline serve at 50k deliveries/s (1,000 connections, ~42k
// writev/s) that hand-off (channel send to an idle worker, its select and
// idle timer, the scheduler) was ~15% of the server's CPU besides the writev
// itself. A Turns writer finds the next connection on the list instead: one
// wake per fan-out burst, not per connection. Jobs must not block (a
// connection whose socket is full goes to a Pool of its own).
type Turns[T any] struct {
	run  func(T) (again bool) // runs j once; again: give j another turn
	max  int
	idle time.Duration

	mu      sync.Mutex
	ready   []T // FIFO from head
	head    int
	running int
	parked  int           // goroutines waiting without a wake-up sent to them
	wake    chan struct{} // capacity max; sent to only under mu
	quit    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// NewTurns returns a Turns whose goroutines call run for each job, give a
// job for which run reports again another turn at the back of the list,
// and exit after idle without a job.
func NewTurns[T any](idle time.Duration, run func(T) bool) *Turns[T] {
	n := max(runtime.GOMAXPROCS(0), 1)
	return &Turns[T]{run: run, max: n, idle: idle, wake: make(chan struct{}, n), quit: make(chan struct{})}
}

// yieldEvery is how many jobs a goroutine runs before it lets others on
// its CPU run (~0.2 ms of writevs).
const yieldEvery = 32

// Push queues j for a turn. It never blocks.
func (w *Turns[T]) Push(j T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ready = append(w.ready, j)
	w.startLocked()
}

// PushFront queues j for the next turn, ahead of the jobs waiting: a
// reply the client is waiting for should not queue behind a flush of a
// thousand connections' pushes. It never blocks.
func (w *Turns[T]) PushFront(j T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.head > 0 {
		w.head--
		w.ready[w.head] = j
	} else {
		var zero T
		w.ready = append(w.ready, zero)
		copy(w.ready[1:], w.ready)
		w.ready[0] = j
	}
	w.startLocked()
}

// startLocked wakes a parked goroutine for a newly queued job, or starts
// one.
func (w *Turns[T]) startLocked() {
	switch {
	case w.parked > 0:
		w.parked--
		w.wake <- struct{}{} // never blocks: at most max are outstanding
	case w.running < w.max:
		w.running++
		w.wg.Add(1)
		go w.loop()
	}
}

func (w *Turns[T]) popLocked() (T, bool) {
	var zero T
	if w.head == len(w.ready) {
		return zero, false
	}
	j := w.ready[w.head]
	w.ready[w.head] = zero
	w.head++
	if w.head == len(w.ready) {
		w.ready, w.head = w.ready[:0], 0
	}
	return j, true
}

// loop runs jobs until none has been ready for the idle period, so an idle
// server holds no goroutine.
func (w *Turns[T]) loop() {
	defer w.wg.Done()
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for n := 0; ; {
		w.mu.Lock()
		if j, ok := w.popLocked(); ok {
			w.mu.Unlock()
			if w.run(j) {
				w.Push(j) // to the back: a busy connection takes turns
			}
			if n++; n%yieldEvery == 0 {
				// A flush is hundreds of short writevs, none long enough
				// for the runtime to hand the CPU over: without a yield
				// a reader with a request waited for the whole flush.
				runtime.Gosched()
			}
			continue
		}
		w.parked++
		w.mu.Unlock()
		if idle == nil {
			idle = time.NewTimer(w.idle)
		} else {
			idle.Reset(w.idle)
		}
		select {
		case <-w.wake:
			continue
		case <-idle.C:
		case <-w.quit:
		}
		w.mu.Lock()
		select {
		case <-w.wake: // a Push picked this goroutine as it gave up
			w.mu.Unlock()
			continue
		default:
		}
		w.parked--
		w.running--
		w.mu.Unlock()
		return
	}
}

// Running is the number of goroutines, busy or idle.
func (w *Turns[T]) Running() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running
}

// Max is the most goroutines a Turns runs at once.
func (w *Turns[T]) Max() int { return w.max }

// Stop makes idle goroutines exit and waits for all of them. Jobs pushed
// after Stop still run.
func (w *Turns[T]) Stop() {
	w.once.Do(func() { close(w.quit) })
	w.wg.Wait()
}
