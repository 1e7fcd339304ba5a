// Package postgres is the PostgreSQL backend of the Wardline event store:
// the one a deployment with several nodes shares.
//
// Layout: one schema per store (see WithSchema) holding the tables events
// (the global log), streams (versions and retention), store_meta (epoch and
// the position counter) and schema_version. The schema is created and
// migrated by Open.
//
// Ordering: every append transaction first locks the single store_meta row,
// then allocates its positions from the counter in that row. The lock is
// released only after the transaction is visible, so positions are gap-free
// and a reader can never see position n+1 before n, whichever node wrote
// them. Readers therefore follow the log with a plain range query.
//
// Group commit: each Store owns one writer goroutine that takes every append
// waiting for it and commits them in one transaction (one WAL flush), so
// throughput does not stop at one fsync per append.
//
// Live subscriptions (eventstore.CatchUp): the append transaction sends a
// NOTIFY; each Store owns one dedicated LISTEN connection that wakes its
// subscribers, and wakes them at a fallback poll interval too, so a lost
// notification only delays delivery. Several Store instances (nodes) on one database all see
// every event in the same order.
//
// Retention (StreamMetadata) is applied on stream reads; expired events stay
// in the global log, which this backend never rewrites.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardline/wardline/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

const (
	defaultPollInterval   = time.Second
	defaultMaxBatchEvents = 4096
	// subscribeBatch bounds the events handed to a subscriber at once.
	subscribeBatch = 512
	// maxLimit bounds a single read so that one call cannot pull the whole
	// log into memory; callers page.
	maxLimit = 10000
)

// Option configures Open.
type Option func(*config)

type config struct {
	schema         string
	pollInterval   time.Duration
	maxBatchEvents int
	maxConns       int32
}

// WithSchema keeps the store's tables in the named PostgreSQL schema,
// creating it if needed. Without it the DSN's search_path decides.
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithPollInterval sets how often an idle subscriber re-reads the log even
// without a notification (default 1 s). It bounds the delay a lost NOTIFY
// can cause.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithMaxBatchEvents bounds the events one group-commit transaction carries
// (default 4096). An append larger than this still commits, alone.
func WithMaxBatchEvents(n int) Option { return func(c *config) { c.maxBatchEvents = n } }

// WithMaxConns sets the connection pool size used for reads and appends
// (default: pgxpool's default, or pool_max_conns from the DSN). The store
// uses one more connection for LISTEN.
func WithMaxConns(n int32) Option { return func(c *config) { c.maxConns = n } }

// Store is a PostgreSQL-backed eventstore.Store. It is safe for concurrent
// use; several Stores (on one or many hosts) may share a database schema.
type Store struct {
	pool    *pgxpool.Pool
	epoch   string
	channel string // NOTIFY channel of this schema
	cfg     config

	reqs   chan *appendReq
	wake   *notifier
	ctx    context.Context // cancelled by Close: aborts in-flight work
	cancel context.CancelFunc

	closing    chan struct{}
	writerDone chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

// Open connects to the database at dsn (a libpq URL or key=value string),
// creates or migrates the schema, and starts the store's writer and
// listener. A schema written by a newer Wardline is eventstore.ErrNewerFormat.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg := config{pollInterval: defaultPollInterval, maxBatchEvents: defaultMaxBatchEvents}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.pollInterval <= 0 || cfg.maxBatchEvents <= 0 || cfg.maxConns < 0 {
		return nil, fmt.Errorf("postgres: open: %w: poll interval, batch size and pool size must be positive", eventstore.ErrInvalidArgument)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: parse dsn: %w", err)
	}
	if cfg.schema != "" {
		pcfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{cfg.schema}.Sanitize()
	}
	if cfg.maxConns > 0 {
		pcfg.MaxConns = cfg.maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	schema, epoch, err := migrate(ctx, pool, cfg.schema)
	if err != nil {
		pool.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		pool:       pool,
		epoch:      epoch,
		channel:    channelName(schema),
		cfg:        cfg,
		reqs:       make(chan *appendReq, 1024),
		wake:       newNotifier(),
		ctx:        sctx,
		cancel:     cancel,
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	ready := make(chan error, 1)
	s.wg.Add(3)
	go s.runWriter()
	go s.runPoller()
	go s.runListener(pcfg.ConnConfig.Copy(), ready)
	// Wait for LISTEN to be in place so that no commit after Open returns
	// relies on the poll interval to be seen by this node's subscribers.
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("postgres: open: listen: %w", err)
	}
	return s, nil
}

// channelName derives a NOTIFY channel per schema, so stores in different
// schemas of one database do not wake each other; hashing keeps it under
// PostgreSQL's 63-byte identifier limit.
func channelName(schema string) string {
	h := fnv.New64a()
	h.Write([]byte(schema))
	return fmt.Sprintf("wardline_events_%016x", h.Sum64())
}

// Epoch identifies this store's log; it is created with the schema.
func (s *Store) Epoch() string { return s.epoch }

// Close stops the writer and listener and closes the pool. Appends still
// waiting for a commit, and subscriptions, return eventstore.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.cancel()
		// Subscribers waiting for a change re-read and see ErrClosed.
		s.wake.broadcast()
		s.wg.Wait()
		s.pool.Close()
	})
	return nil
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// opContext returns a context that ends with ctx or when the store closes,
// so that calls blocked in the database return when Close is called.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.isClosed() {
		return nil, nil, eventstore.ErrClosed
	}
	octx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return octx, func() { stop(); cancel() }, nil
}

// wrapErr gives err the operation's context and turns the failures callers
// must tell apart into the eventstore sentinels.
func (s *Store) wrapErr(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case s.isClosed():
		return fmt.Errorf("postgres: %s: %w", op, eventstore.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("postgres: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// Head returns the position of the newest committed event (0 if none).
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: head: %w", err)
	}
	defer done()
	var head int64
	if err := s.pool.QueryRow(octx, `SELECT head FROM store_meta`).Scan(&head); err != nil {
		return 0, s.wrapErr(ctx, "head", err)
	}
	return eventstore.Position(head), nil
}

// SetStreamMetadata sets stream's retention. It may precede the stream's
// first event.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, meta eventstore.StreamMetadata) error {
	if stream == "" {
		return fmt.Errorf("postgres: set stream metadata: %w: empty stream name", eventstore.ErrInvalidArgument)
	}
	maxAge, maxCount, err := encodeRetention(meta)
	if err != nil {
		return fmt.Errorf("postgres: set stream metadata %q: %w", stream, err)
	}
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return fmt.Errorf("postgres: set stream metadata: %w", err)
	}
	defer done()
	_, err = s.pool.Exec(octx, `
		INSERT INTO streams (stream, version, max_age_us, max_count) VALUES ($1, 0, $2, $3)
		ON CONFLICT (stream) DO UPDATE SET max_age_us = EXCLUDED.max_age_us, max_count = EXCLUDED.max_count`,
		stream, maxAge, maxCount)
	return s.wrapErr(ctx, "set stream metadata", err)
}

// StreamMetadata returns stream's retention (zero value if never set).
func (s *Store) StreamMetadata(ctx context.Context, stream string) (eventstore.StreamMetadata, error) {
	if stream == "" {
		return eventstore.StreamMetadata{}, fmt.Errorf("postgres: stream metadata: %w: empty stream name", eventstore.ErrInvalidArgument)
	}
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return eventstore.StreamMetadata{}, fmt.Errorf("postgres: stream metadata: %w", err)
	}
	defer done()
	var maxAge, maxCount int64
	err = s.pool.QueryRow(octx, `SELECT max_age_us, max_count FROM streams WHERE stream = $1`, stream).Scan(&maxAge, &maxCount)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.StreamMetadata{}, nil
	}
	if err != nil {
		return eventstore.StreamMetadata{}, s.wrapErr(ctx, "stream metadata", err)
	}
	return decodeRetention(maxAge, maxCount), nil
}

// encodeRetention stores MaxAge in microseconds, PostgreSQL's timestamp
// resolution; a positive MaxAge below that is rounded up so it still limits.
func encodeRetention(meta eventstore.StreamMetadata) (maxAgeUS, maxCount int64, err error) {
	if meta.MaxAge < 0 {
		return 0, 0, fmt.Errorf("%w: negative MaxAge", eventstore.ErrInvalidArgument)
	}
	if meta.MaxCount > 1<<62 {
		return 0, 0, fmt.Errorf("%w: MaxCount too large", eventstore.ErrInvalidArgument)
	}
	maxAgeUS = int64((meta.MaxAge + time.Microsecond - 1) / time.Microsecond)
	return maxAgeUS, int64(meta.MaxCount), nil
}

func decodeRetention(maxAgeUS, maxCount int64) eventstore.StreamMetadata {
	return eventstore.StreamMetadata{MaxAge: time.Duration(maxAgeUS) * time.Microsecond, MaxCount: uint64(maxCount)}
}

// notifier wakes every waiting subscriber at once: waiters take the current
// channel, broadcast closes it and installs a fresh one.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}
