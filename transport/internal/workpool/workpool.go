// Package workpool runs the transports' short jobs (draining a connection's
// send queue, reading and handling one message) on shared goroutines that
// outlive them.
//
// A fresh goroutine per job would be simpler, but its stack starts small
// and grows to what the job needs, every time: in a CPU profile of wardline
// serve at 50k deliveries/s, runtime.newstack and copystack under the
// writev path were 14% of the server's CPU when every write burst got a new
// goroutine. A worker keeps its grown stack for the next job. Workers that
// find no job for Pool's idle period exit, so an idle server holds none.
package workpool

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs jobs of type T with its run function.
type Pool[T any] struct {
	run  func(T)
	idle time.Duration
	work chan T // unbuffered: a send succeeds only if a worker is idle
	quit chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	running atomic.Int64 // workers
	idling  atomic.Int64 // workers waiting for a job
}

// New returns a Pool whose workers call run for each job and exit after
// idle without one.
func New[T any](idle time.Duration, run func(T)) *Pool[T] {
	return &Pool[T]{run: run, idle: idle, work: make(chan T), quit: make(chan struct{})}
}

// Go hands j to an idle worker, or starts a worker for it. It never
// blocks. After Stop it still runs j, on a worker of its own.
func (p *Pool[T]) Go(j T) {
	select {
	case p.work <- j:
	default:
		p.wg.Add(1)
		p.running.Add(1)
		go p.worker(j)
	}
}

func (p *Pool[T]) worker(j T) {
	defer p.wg.Done()
	defer p.running.Add(-1)
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	// j is never address-taken here (the select is in wait), so a finished
	// job is dead while the worker waits: an idle worker keeps nothing of
	// its last connection reachable.
	for ok := true; ok; j, ok = p.wait(idle) {
		p.run(j)
	}
}

// wait returns the next job, or false once the worker has been idle for
// the idle period or the Pool is stopping.
func (p *Pool[T]) wait(idle *time.Timer) (T, bool) {
	idle.Reset(p.idle)
	p.idling.Add(1)
	defer p.idling.Add(-1)
	select {
	case j := <-p.work:
		return j, true
	case <-idle.C:
	case <-p.quit:
	}
	var zero T
	return zero, false
}

// Stop makes idle workers exit and waits for every worker, busy ones
// included, to return.
func (p *Pool[T]) Stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}

// Running is the number of workers, busy or idle.
func (p *Pool[T]) Running() int { return int(p.running.Load()) }

// Idle is the number of workers waiting for a job.
func (p *Pool[T]) Idle() int { return int(p.idling.Load()) }

// Caller runs functions on a Pool's workers and waits for them: a reader
// that must stay on a small stack hands its deep work (reading a message
// through gorilla, handling it) to a worker whose stack has grown already.
type Caller struct{ p *Pool[call] }

type call struct {
	fn   func()
	done chan struct{}
}

func (c call) run() {
	defer close(c.done)
	c.fn()
}

// NewCaller returns a Caller whose workers exit after idle without a call.
func NewCaller(idle time.Duration) *Caller { return &Caller{p: New(idle, call.run)} }

// Call runs fn on a worker and returns when fn has returned.
func (c *Caller) Call(fn func()) {
	k := call{fn: fn, done: make(chan struct{})}
	c.p.Go(k)
	<-k.done
}

// Stop is Pool.Stop.
func (c *Caller) Stop() { c.p.Stop() }
