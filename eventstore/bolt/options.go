package bolt

import (
	"log/slog"
	"time"
)

// Defaults of the options.
const (
	// DefaultLockTimeout is how long Open waits for another process to let go
	// of the data dir before it gives up with eventstore.ErrLocked.
	DefaultLockTimeout = 100 * time.Millisecond
	// DefaultMaxBatchEvents caps the events of one group commit. A single
	// append larger than this still commits, alone.
	DefaultMaxBatchEvents = 16384
	// DefaultMaxBatchBytes caps the encoded bytes of one group commit.
	DefaultMaxBatchBytes = 32 << 20
	// DefaultInitialMmapSize is the address space mapped at Open. bbolt must
	// remap when the file outgrows its mapping, and a remap waits for every
	// read transaction to end, so a generous mapping keeps readers from
	// stalling the writer. It is address space, not memory.
	DefaultInitialMmapSize = 1 << 30
	// DefaultAllocSize is how much the file grows at a time; each growth
	// costs an extra fsync of the file size.
	DefaultAllocSize = 64 << 20
	// MaxEventSize bounds an event's Data plus Metadata.
	MaxEventSize = 16 << 20
	// MaxNameSize bounds a stream name and an event ID or type, in bytes
	// (bbolt keys are limited to 32 KiB).
	MaxNameSize = 1024
)

// Option configures Open.
type Option func(*options)

type options struct {
	now              func() time.Time
	logger           *slog.Logger
	lockTimeout      time.Duration
	maxBatchEvents   int
	maxBatchBytes    int
	initialMmapSize  int
	allocSize        int
	indexFlushEvents int
	commitInterval   time.Duration
	flushChunk       int // fewest index entries a commit writes during a flush
	// pause replaces the writer's timed pause in internal tests.
	pause func(d time.Duration, quit <-chan struct{})
}

func (o *options) setDefaults() {
	if o.now == nil {
		o.now = time.Now
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.lockTimeout <= 0 {
		o.lockTimeout = DefaultLockTimeout
	}
	if o.maxBatchEvents <= 0 {
		o.maxBatchEvents = DefaultMaxBatchEvents
	}
	if o.maxBatchBytes <= 0 {
		o.maxBatchBytes = DefaultMaxBatchBytes
	}
	if o.initialMmapSize <= 0 {
		o.initialMmapSize = DefaultInitialMmapSize
	}
	if o.allocSize <= 0 {
		o.allocSize = DefaultAllocSize
	}
	if o.indexFlushEvents <= 0 {
		o.indexFlushEvents = DefaultIndexFlushEvents
	}
	if o.flushChunk <= 0 {
		o.flushChunk = flushChunkEntries
	}
}

// WithClock sets the clock that stamps RecordedAt and judges MaxAge
// retention (time.Now by default). RecordedAt never goes backwards, even if
// the clock does.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets where the store reports commit failures (discarded by default).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithLockTimeout sets how long Open waits for the data dir's lock.
func WithLockTimeout(d time.Duration) Option { return func(o *options) { o.lockTimeout = d } }

// WithMaxBatch caps one group commit at events events and bytes encoded bytes.
func WithMaxBatch(events, bytes int) Option {
	return func(o *options) { o.maxBatchEvents, o.maxBatchBytes = events, bytes }
}

// WithInitialMmapSize sets the address space bbolt maps at Open.
func WithInitialMmapSize(bytes int) Option { return func(o *options) { o.initialMmapSize = bytes } }

// WithIndexFlushEvents sets how many events' index entries the writer keeps
// in memory before writing them to the on-disk indexes (see index.go). It
// bounds the log replay at Open as well as the memory.
func WithIndexFlushEvents(n int) Option { return func(o *options) { o.indexFlushEvents = n } }

// WithCommitInterval paces commits: a commit begins no sooner than d after
// the previous one began, so that appends arriving in between share its
// fsyncs, as long as pausing gathers company (see pacer). Off (0) by
// default: it adds up to d to an append's latency, which pays only when
// appends arrive from independent callers faster than commits complete.
func WithCommitInterval(d time.Duration) Option { return func(o *options) { o.commitInterval = d } }

// withPause replaces the writer's timed pause (internal tests).
func withPause(f func(d time.Duration, quit <-chan struct{})) Option {
	return func(o *options) { o.pause = f }
}

// withFlushChunk sets the fewest index entries a commit writes while a
// generation is flushed, so that tests spread a flush over many commits.
func withFlushChunk(n int) Option { return func(o *options) { o.flushChunk = n } }
