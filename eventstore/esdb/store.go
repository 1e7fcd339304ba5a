// Package esdb is the EventStoreDB / KurrentDB backend of the Wardline
// event store, for deployments that already run KurrentDB.
//
// Mapping onto KurrentDB:
//   - Streams are KurrentDB streams. Stream versions are KurrentDB stream
//     revisions plus one (revisions count from 0, versions from 1), and
//     expected versions map onto the client's StreamState.
//   - A Position is the event's commit position in $all: increasing in
//     commit order but NOT contiguous (it is a byte offset in the server's
//     log). Offsets stay opaque to clients, so nothing else changes.
//   - ReadAll, Head and Subscribe read $all and leave out KurrentDB's system
//     events (types or streams starting with '$') and the store's own stream.
//   - Retention (MaxAge, MaxCount) is KurrentDB stream metadata ($maxAge,
//     $maxCount), which the server enforces natively; $maxAge has whole
//     seconds, so a MaxAge is rounded up to the next second.
//   - Event IDs become KurrentDB event UUIDs (name-based for IDs that are not
//     UUIDs); the exact ID, the schema version and the caller's metadata
//     travel in a small JSON envelope in the event's metadata.
//   - The epoch is the first event of the stream "wardline-meta", created
//     once by whichever node opens the store first.
//
// Idempotent appends rely on KurrentDB's own: guaranteed for an exact
// expected version, best effort (the server's recent-ID cache) for
// AnyVersion and StreamExists. Appends learn their events' positions by
// reading them back, one extra round trip.
//
// Stream names and event types starting with '$' are refused
// (ErrInvalidArgument): KurrentDB reserves them.
package esdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/wardline/wardline/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

const (
	// maxLimit bounds a single read so that one call cannot pull the whole
	// log into memory; callers page.
	maxLimit = 10000
	// allPage is how many $all records one request fetches while looking
	// for the store's events among the server's.
	allPage = 512
	// subscribeBatch bounds the events handed to a subscriber at once.
	subscribeBatch = 512
)

// Option configures Open.
type Option func(*config)

type config struct {
	namespace string
}

// WithNamespace keeps the store in the streams whose names start with
// prefix, so that several stores (tenants, test runs) share one KurrentDB:
// each sees only its own streams, events, epoch and head. Streams are
// stored as prefix+name. End the prefix with a separator (e.g. "tenant1:")
// so that no namespace is a prefix of another.
func WithNamespace(prefix string) Option { return func(c *config) { c.namespace = prefix } }

// Store is a KurrentDB-backed eventstore.Store. It is safe for concurrent
// use; several Stores may share one KurrentDB.
type Store struct {
	client *kurrentdb.Client
	ns     string
	epoch  string

	ctx       context.Context // cancelled by Close: aborts in-flight calls
	cancel    context.CancelFunc
	closing   chan struct{}
	closeOnce sync.Once
}

// Open connects to the KurrentDB at url (esdb://, esdb+discover://,
// kurrentdb://, kurrentdb+discover://, kurrent://, kdb://; the client's
// query settings such as tls=false apply) and reads or creates the store's
// epoch. A malformed url is eventstore.ErrInvalidArgument.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if strings.HasPrefix(cfg.namespace, systemPrefix) {
		return nil, fmt.Errorf("esdb: open: %w: namespace %q starts with %q", eventstore.ErrInvalidArgument, cfg.namespace, systemPrefix)
	}
	ccfg, err := parseURL(url)
	if err != nil {
		return nil, fmt.Errorf("esdb: open: %w", err)
	}
	client, err := kurrentdb.NewClient(ccfg)
	if err != nil {
		return nil, fmt.Errorf("esdb: open: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Store{client: client, ns: cfg.namespace, ctx: sctx, cancel: cancel, closing: make(chan struct{})}
	s.epoch, err = s.loadEpoch(ctx)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("esdb: open %s: %w", redact(url), err)
	}
	return s, nil
}

// Epoch identifies this store's log.
func (s *Store) Epoch() string { return s.epoch }

// Close closes the client. Calls in progress and later return
// eventstore.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.cancel()
		_ = s.client.Close() // always nil
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

// opContext returns a context that ends with ctx or when the store closes.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.isClosed() {
		return nil, nil, eventstore.ErrClosed
	}
	octx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return octx, func() { stop(); cancel() }, nil
}

// wrapErr gives err the operation's context and the eventstore sentinel its
// KurrentDB error code stands for.
func (s *Store) wrapErr(ctx context.Context, op string, err error) error {
	switch {
	case s.isClosed():
		return fmt.Errorf("esdb: %s: %w", op, eventstore.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("esdb: %s: %w", op, ctx.Err())
	}
	if code, ok := errorCode(err); ok {
		if sentinel := sentinelFor(code); sentinel != nil {
			return fmt.Errorf("esdb: %s: %w: %w", op, sentinel, err)
		}
	}
	return fmt.Errorf("esdb: %s: %w", op, err)
}

// userStream returns the store-level name of a stored event's stream, and
// false for events that are not the store's: system events, other
// namespaces, the store's own meta stream.
func (s *Store) userStream(e *kurrentdb.RecordedEvent) (string, bool) {
	if e == nil || strings.HasPrefix(e.EventType, systemPrefix) || strings.HasPrefix(e.StreamID, systemPrefix) {
		return "", false
	}
	local, ok := strings.CutPrefix(e.StreamID, s.ns)
	if !ok || local == "" || local == metaStream {
		return "", false
	}
	return local, true
}

// loadEpoch reads the store's epoch, creating it on first use. Two nodes
// opening a new store together both end up with the one that was written.
func (s *Store) loadEpoch(ctx context.Context) (string, error) {
	name := s.ns + metaStream
	for range 2 {
		ev, err := s.firstEvent(ctx, name)
		if err == nil {
			return decodeEpoch(ev.Data)
		}
		if !errors.Is(err, eventstore.ErrStreamNotFound) {
			return "", err
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("new epoch: %w", err)
		}
		epoch := hex.EncodeToString(b[:])
		data, err := json.Marshal(epochRecord{Epoch: epoch})
		if err != nil {
			return "", fmt.Errorf("new epoch: %w", err)
		}
		_, err = s.client.AppendToStream(ctx, name, kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}},
			kurrentdb.EventData{EventID: uuid.New(), EventType: epochType, ContentType: kurrentdb.ContentTypeJson, Data: data})
		if err == nil {
			return epoch, nil
		}
		if code, ok := errorCode(err); !ok || sentinelFor(code) != eventstore.ErrWrongExpectedVersion {
			return "", fmt.Errorf("create epoch: %w", err)
		}
		// Another node created it first: read theirs.
	}
	return "", errors.New("epoch stream exists but cannot be read")
}

// firstEvent reads the first event of a stream; a stream without events is
// eventstore.ErrStreamNotFound.
func (s *Store) firstEvent(ctx context.Context, name string) (*kurrentdb.RecordedEvent, error) {
	rs, err := s.client.ReadStream(ctx, name, kurrentdb.ReadStreamOptions{Direction: kurrentdb.Forwards, From: kurrentdb.Start{}}, 1)
	if err != nil {
		return nil, s.wrapErr(ctx, "read "+name, err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("esdb: read %s: %w", name, eventstore.ErrStreamNotFound)
	}
	if err != nil {
		return nil, s.wrapErr(ctx, "read "+name, err)
	}
	return ev.Event, nil
}

// SetStreamMetadata sets stream's retention as KurrentDB stream metadata.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, meta eventstore.StreamMetadata) error {
	if err := validateStream(stream); err != nil {
		return fmt.Errorf("esdb: set stream metadata: %w", err)
	}
	m, err := toStreamMetadata(meta)
	if err != nil {
		return fmt.Errorf("esdb: set stream metadata %q: %w", stream, err)
	}
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return fmt.Errorf("esdb: set stream metadata: %w", err)
	}
	defer done()
	if _, err := s.client.SetStreamMetadata(octx, s.ns+stream, kurrentdb.AppendToStreamOptions{}, m); err != nil {
		return s.wrapErr(ctx, fmt.Sprintf("set stream metadata %q", stream), err)
	}
	return nil
}

// StreamMetadata returns stream's retention (zero value if never set).
func (s *Store) StreamMetadata(ctx context.Context, stream string) (eventstore.StreamMetadata, error) {
	if err := validateStream(stream); err != nil {
		return eventstore.StreamMetadata{}, fmt.Errorf("esdb: stream metadata: %w", err)
	}
	octx, done, err := s.opContext(ctx)
	if err != nil {
		return eventstore.StreamMetadata{}, fmt.Errorf("esdb: stream metadata: %w", err)
	}
	defer done()
	// The newest metadata event is the one in force.
	m, err := s.client.GetStreamMetadata(octx, s.ns+stream, kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}})
	if code, ok := errorCode(err); ok && code == kurrentdb.ErrorCodeResourceNotFound {
		return eventstore.StreamMetadata{}, nil
	}
	if err != nil {
		return eventstore.StreamMetadata{}, s.wrapErr(ctx, fmt.Sprintf("stream metadata %q", stream), err)
	}
	return fromStreamMetadata(m), nil
}
