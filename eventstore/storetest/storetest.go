// Package storetest is the contract test suite that every eventstore.Store
// backend runs: the embedded bbolt store, the in-memory store, PostgreSQL and
// EventStoreDB alike. A backend is production ready when Run passes under
// -race.
//
// Beyond what eventstore.Store's doc states, the suite pins these decisions:
//
//   - Idempotency: re-appending events whose IDs are already stored, in the
//     same stream, in the same order and at consecutive versions, is a retry:
//     it succeeds without writing and returns the original AppendResult, when
//     expected is AnyVersion, StreamExists or the exact version the stream had
//     before the original append. A partial match, or the same events at
//     another exact version, is a *WrongExpectedVersionError.
//   - An append with two events of the same ID, an empty ID or type, no
//     events, or an ExpectedVersion below StreamExists is ErrInvalidArgument;
//     so is a read with a limit <= 0 or an unknown Direction.
//   - Reading forward past the end of a stream returns no events and no
//     error; reading backward from a version past the end starts at the
//     newest event. A stream whose events all fell out of retention still
//     exists: reads return no events and no error.
//   - RecordedAt is the commit time in UTC.
//   - Close may be called more than once; the factory's cleanup closes the
//     store again after the "after close" cases.
//
// Every case gets a fresh store from the factory, uses its own stream names
// and event IDs (UUIDs), and runs in parallel with the others. Backends that
// start goroutines should also run goleak.VerifyTestMain: the subscription
// cases check that Subscribe returns, and goleak checks nothing is left.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wardline/wardline/eventstore"
)

// caseTimeout bounds each case, so a backend that hangs fails rather than
// stalling the whole run.
const caseTimeout = 30 * time.Second

type testCase struct {
	name string
	run  func(t *testing.T, s eventstore.Store)
}

// Run runs every contract case as a parallel subtest. newStore must return a
// fresh, empty, open store and register its own cleanup (t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	t.Helper()
	var cases []testCase
	cases = append(cases, appendCases()...)
	cases = append(cases, expectedVersionCases()...)
	cases = append(cases, idempotencyCases()...)
	cases = append(cases, readCases()...)
	cases = append(cases, retentionCases()...)
	cases = append(cases, offsetCases()...)
	cases = append(cases, subscribeCases()...)
	cases = append(cases, concurrencyCases()...)
	cases = append(cases, closeCases()...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStore(t))
		})
	}
}

// testContext is the context every store call of a case uses.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), caseTimeout)
	t.Cleanup(cancel)
	return ctx
}

// streamName returns a stream name no other case (or run) uses.
func streamName(label string) string {
	return "storetest-" + label + "-" + uuid.NewString()[:8]
}

// newEvents returns n events with fresh UUIDv7 IDs and recognisable bodies.
func newEvents(n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		id := uuid.Must(uuid.NewV7()).String()
		out[i] = eventstore.EventData{
			ID:            id,
			Type:          "StoretestHappened",
			SchemaVersion: 1,
			Data:          []byte(`{"n":` + fmt.Sprint(i) + `,"id":"` + id + `"}`),
			Metadata:      []byte(`{"by":"storetest"}`),
		}
	}
	return out
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(testContext(t), stream, expected, events)
	if err != nil {
		t.Fatalf("Append(%q, %s, %d events): %v", stream, expected, len(events), err)
	}
	if len(res.Positions) != len(events) {
		t.Fatalf("Append(%q) returned %d positions for %d events", stream, len(res.Positions), len(events))
	}
	return res
}

func mustReadStream(t *testing.T, s eventstore.Store, stream string, from uint64, dir eventstore.Direction, limit int) []eventstore.RecordedEvent {
	t.Helper()
	got, err := s.ReadStream(testContext(t), stream, from, dir, limit)
	if err != nil {
		t.Fatalf("ReadStream(%q, %d, %v, %d): %v", stream, from, dir, limit, err)
	}
	return got
}

func mustHead(t *testing.T, s eventstore.Store) eventstore.Position {
	t.Helper()
	h, err := s.Head(testContext(t))
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

// versions lists the stream versions of events, for compact comparisons.
func versions(events []eventstore.RecordedEvent) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Version
	}
	return out
}

func equalVersions(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func span(from, to uint64) []uint64 {
	var out []uint64
	if from <= to {
		for v := from; v <= to; v++ {
			out = append(out, v)
		}
		return out
	}
	for v := from; v >= to; v-- {
		out = append(out, v)
	}
	return out
}

// checkEvent compares a recorded event with the data it was appended from.
func checkEvent(t *testing.T, got eventstore.RecordedEvent, want eventstore.EventData, stream string, version uint64, pos eventstore.Position) {
	t.Helper()
	if got.ID != want.ID || got.Stream != stream || got.Version != version || got.Position != pos ||
		got.Type != want.Type || got.SchemaVersion != want.SchemaVersion {
		t.Errorf("recorded event = {ID:%s Stream:%s Version:%d Position:%d Type:%s Schema:%d}, want {ID:%s Stream:%s Version:%d Position:%d Type:%s Schema:%d}",
			got.ID, got.Stream, got.Version, got.Position, got.Type, got.SchemaVersion,
			want.ID, stream, version, pos, want.Type, want.SchemaVersion)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Errorf("event %s: data = %q, want %q", want.ID, clip(got.Data), clip(want.Data))
	}
	if !bytes.Equal(got.Metadata, want.Metadata) {
		t.Errorf("event %s: metadata = %q, want %q", want.ID, clip(got.Metadata), clip(want.Metadata))
	}
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// expectError fails unless err matches target with errors.Is.
func expectError(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", what, err, target)
	}
}

// subscription runs Subscribe in a goroutine owned by the test and collects
// what it delivers.
type subscription struct {
	t        *testing.T
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	mu       sync.Mutex
	events   []eventstore.RecordedEvent
	batches  int
	sawEmpty bool
	notify   chan struct{}
}

// subscribe starts a subscription from position from that keeps the events
// keep accepts (nil keeps all). handle, when set, runs on each batch first
// and may stop the subscription with an error.
func subscribe(t *testing.T, s eventstore.Store, from eventstore.Position, keep func(eventstore.RecordedEvent) bool,
	handle func([]eventstore.RecordedEvent) error) *subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), caseTimeout)
	sub := &subscription{t: t, cancel: cancel, done: make(chan struct{}), notify: make(chan struct{}, 1)}
	go func() {
		defer close(sub.done)
		sub.err = s.Subscribe(ctx, from, func(ctx context.Context, events []eventstore.RecordedEvent) error {
			sub.mu.Lock()
			sub.batches++
			if len(events) == 0 {
				sub.sawEmpty = true
			}
			for _, e := range events {
				if keep == nil || keep(e) {
					// The contract lets the store reuse the batch, so copy.
					e.Data = bytes.Clone(e.Data)
					e.Metadata = bytes.Clone(e.Metadata)
					sub.events = append(sub.events, e)
				}
			}
			sub.mu.Unlock()
			select {
			case sub.notify <- struct{}{}:
			default:
			}
			if handle != nil {
				return handle(events)
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-sub.done
	})
	return sub
}

// waitFor waits until the subscription has collected at least n events and
// returns a copy of them.
func (s *subscription) waitFor(n int) []eventstore.RecordedEvent {
	s.t.Helper()
	deadline := time.NewTimer(caseTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got := len(s.events)
		s.mu.Unlock()
		if got >= n {
			return s.collected()
		}
		select {
		case <-s.notify:
		case <-s.done:
			s.t.Fatalf("subscription ended after %d of %d events: %v", got, n, s.err)
		case <-deadline.C:
			s.t.Fatalf("subscription delivered %d of %d events in %s", got, n, caseTimeout)
		}
	}
}

func (s *subscription) collected() []eventstore.RecordedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]eventstore.RecordedEvent(nil), s.events...)
}

// wait waits for Subscribe to return and returns its error.
func (s *subscription) wait() error {
	s.t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(caseTimeout):
		s.t.Fatalf("Subscribe did not return within %s", caseTimeout)
		return nil
	}
}

// stop cancels the subscription and returns Subscribe's error.
func (s *subscription) stop() error {
	s.t.Helper()
	s.cancel()
	return s.wait()
}

func inStreams(streams ...string) func(eventstore.RecordedEvent) bool {
	set := make(map[string]bool, len(streams))
	for _, s := range streams {
		set[s] = true
	}
	return func(e eventstore.RecordedEvent) bool { return set[e.Stream] }
}
