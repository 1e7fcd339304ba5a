package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/eventstore"
)

func appendCases() []testCase {
	return []testCase{
		{"appended events read back with their stream, versions, positions and commit time", testAppendReadBack},
		{"data, metadata and schema versions round-trip byte for byte", testBytesRoundTrip},
		{"a second append continues the stream's versions", testAppendContinues},
		{"positions increase strictly from one append to the next", testPositionsIncrease},
		{"head is zero on an empty store and then the newest position", testHead},
		{"malformed arguments are refused as invalid", testInvalidArguments},
		{"an append with a cancelled context returns the context's error", testAppendCancelled},
	}
}

func testAppendReadBack(t *testing.T, s eventstore.Store) {
	stream := streamName("readback")
	events := newEvents(3)
	before := time.Now()
	res := mustAppend(t, s, stream, eventstore.NoStream, events)
	after := time.Now()
	if res.Version != 3 {
		t.Errorf("AppendResult.Version = %d, want 3", res.Version)
	}
	for i := 1; i < len(res.Positions); i++ {
		if res.Positions[i] <= res.Positions[i-1] {
			t.Errorf("positions %v are not strictly increasing", res.Positions)
		}
	}
	if res.LastPosition() != res.Positions[2] {
		t.Errorf("LastPosition = %d, want %d", res.LastPosition(), res.Positions[2])
	}
	got := mustReadStream(t, s, stream, 0, eventstore.Forward, 10)
	if len(got) != 3 {
		t.Fatalf("ReadStream returned %d events, want 3", len(got))
	}
	for i, e := range got {
		checkEvent(t, e, events[i], stream, uint64(i+1), res.Positions[i])
		// Allow for clock granularity and a store clock slightly off ours.
		if e.RecordedAt.Before(before.Add(-time.Second)) || e.RecordedAt.After(after.Add(time.Second)) {
			t.Errorf("RecordedAt = %v, want within [%v, %v]", e.RecordedAt, before, after)
		}
		if e.RecordedAt.Location() != time.UTC {
			t.Errorf("RecordedAt location = %v, want UTC", e.RecordedAt.Location())
		}
	}
	if got[0].RecordedAt.After(got[2].RecordedAt) {
		t.Errorf("RecordedAt goes backwards within one append: %v then %v", got[0].RecordedAt, got[2].RecordedAt)
	}
}

func testBytesRoundTrip(t *testing.T, s eventstore.Store) {
	stream := streamName("bytes")
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 100<<10) // larger than a page in page-based backends
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	events := newEvents(6)
	events[0].Data, events[0].Metadata = nil, nil
	events[1].Data, events[1].Metadata = []byte{}, []byte{}
	events[2].Data, events[2].Metadata = all, []byte("\xff\xfe not UTF-8 \x00")
	events[3].Data, events[3].Metadata = big, all
	events[4].SchemaVersion = 0
	events[5].SchemaVersion = 1 << 20
	events[5].Type = "Type with spaces, ünïcode and / slashes"
	res := mustAppend(t, s, stream, eventstore.AnyVersion, events)
	got := mustReadStream(t, s, stream, 1, eventstore.Forward, 100)
	if len(got) != len(events) {
		t.Fatalf("ReadStream returned %d events, want %d", len(got), len(events))
	}
	for i := range got {
		checkEvent(t, got[i], events[i], stream, uint64(i+1), res.Positions[i])
	}
	all2, err := s.ReadAll(testContext(t), res.Positions[0]-1, len(events))
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(all2) != len(events) {
		t.Fatalf("ReadAll returned %d events, want %d", len(all2), len(events))
	}
	for i := range all2 {
		checkEvent(t, all2[i], events[i], stream, uint64(i+1), res.Positions[i])
	}
}

func testAppendContinues(t *testing.T, s eventstore.Store) {
	stream := streamName("continue")
	first := mustAppend(t, s, stream, eventstore.NoStream, newEvents(2))
	second := mustAppend(t, s, stream, eventstore.Exact(2), newEvents(3))
	if second.Version != 5 {
		t.Errorf("second append Version = %d, want 5", second.Version)
	}
	if second.Positions[0] <= first.LastPosition() {
		t.Errorf("second append starts at position %d, not after %d", second.Positions[0], first.LastPosition())
	}
	if got := versions(mustReadStream(t, s, stream, 0, eventstore.Forward, 100)); !equalVersions(got, span(1, 5)) {
		t.Errorf("stream versions = %v, want 1..5", got)
	}
}

func testPositionsIncrease(t *testing.T, s eventstore.Store) {
	streams := []string{streamName("pos-a"), streamName("pos-b"), streamName("pos-c")}
	var last eventstore.Position
	for i := range 12 {
		res := mustAppend(t, s, streams[i%3], eventstore.AnyVersion, newEvents(1+i%2))
		for _, p := range res.Positions {
			if p <= last {
				t.Fatalf("append %d got position %d after %d", i, p, last)
			}
			last = p
		}
	}
}

func testHead(t *testing.T, s eventstore.Store) {
	if h := mustHead(t, s); h != 0 {
		t.Errorf("Head of an empty store = %d, want 0", h)
	}
	res := mustAppend(t, s, streamName("head"), eventstore.NoStream, newEvents(2))
	if h := mustHead(t, s); h != res.LastPosition() {
		t.Errorf("Head = %d, want the last appended position %d", h, res.LastPosition())
	}
}

func testInvalidArguments(t *testing.T, s eventstore.Store) {
	stream := streamName("invalid")
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(1))
	dup := newEvents(2)
	dup[1].ID = dup[0].ID
	noID := newEvents(1)
	noID[0].ID = ""
	noType := newEvents(1)
	noType[0].Type = ""
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"an append to an empty stream name", func(ctx context.Context) error {
			_, err := s.Append(ctx, "", eventstore.AnyVersion, newEvents(1))
			return err
		}},
		{"an append of no events", func(ctx context.Context) error {
			_, err := s.Append(ctx, stream, eventstore.AnyVersion, nil)
			return err
		}},
		{"an append of an event without an ID", func(ctx context.Context) error {
			_, err := s.Append(ctx, stream, eventstore.AnyVersion, noID)
			return err
		}},
		{"an append of an event without a type", func(ctx context.Context) error {
			_, err := s.Append(ctx, stream, eventstore.AnyVersion, noType)
			return err
		}},
		{"an append with the same ID twice", func(ctx context.Context) error {
			_, err := s.Append(ctx, stream, eventstore.AnyVersion, dup)
			return err
		}},
		{"an append with an expected version below the sentinels", func(ctx context.Context) error {
			_, err := s.Append(ctx, stream, eventstore.ExpectedVersion(-3), newEvents(1))
			return err
		}},
		{"a stream read of an empty stream name", func(ctx context.Context) error {
			_, err := s.ReadStream(ctx, "", 0, eventstore.Forward, 1)
			return err
		}},
		{"a stream read with limit zero", func(ctx context.Context) error {
			_, err := s.ReadStream(ctx, stream, 0, eventstore.Forward, 0)
			return err
		}},
		{"a stream read with a negative limit", func(ctx context.Context) error {
			_, err := s.ReadStream(ctx, stream, 0, eventstore.Backward, -1)
			return err
		}},
		{"a stream read with no direction", func(ctx context.Context) error {
			_, err := s.ReadStream(ctx, stream, 0, eventstore.Direction(0), 1)
			return err
		}},
		{"a log read with limit zero", func(ctx context.Context) error {
			_, err := s.ReadAll(ctx, 0, 0)
			return err
		}},
		{"setting metadata of an empty stream name", func(ctx context.Context) error {
			return s.SetStreamMetadata(ctx, "", eventstore.StreamMetadata{MaxCount: 1})
		}},
		{"reading metadata of an empty stream name", func(ctx context.Context) error {
			_, err := s.StreamMetadata(ctx, "")
			return err
		}},
		{"a subscription without a handler", func(ctx context.Context) error {
			return s.Subscribe(ctx, 0, nil)
		}},
	}
	for _, c := range calls {
		expectError(t, c.name, c.call(testContext(t)), eventstore.ErrInvalidArgument)
	}
	if got := mustReadStream(t, s, stream, 0, eventstore.Forward, 10); len(got) != 1 {
		t.Errorf("after refused appends the stream has %d events, want 1", len(got))
	}
}

func testAppendCancelled(t *testing.T, s eventstore.Store) {
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	_, err := s.Append(ctx, streamName("cancelled"), eventstore.AnyVersion, newEvents(1))
	expectError(t, "Append with a cancelled context", err, context.Canceled)
}

func expectedVersionCases() []testCase {
	type row struct {
		name     string
		existing int // events in the stream before the append
		expected eventstore.ExpectedVersion
		ok       bool
	}
	rows := []row{
		{"any version appends to a new stream", 0, eventstore.AnyVersion, true},
		{"any version appends to an existing stream", 2, eventstore.AnyVersion, true},
		{"no stream appends to a new stream", 0, eventstore.NoStream, true},
		{"no stream refuses an existing stream with its actual version", 2, eventstore.NoStream, false},
		{"stream exists appends to an existing stream", 2, eventstore.StreamExists, true},
		{"stream exists refuses a new stream with actual version zero", 0, eventstore.StreamExists, false},
		{"the exact current version appends", 2, eventstore.Exact(2), true},
		{"exact zero appends to a new stream", 0, eventstore.Exact(0), true},
		{"a stale exact version is refused with the actual version", 3, eventstore.Exact(2), false},
		{"an exact version ahead of the stream is refused", 2, eventstore.Exact(5), false},
		{"an exact version on a new stream is refused", 0, eventstore.Exact(1), false},
	}
	out := make([]testCase, 0, len(rows))
	for _, r := range rows {
		out = append(out, testCase{"expected version: " + r.name, func(t *testing.T, s eventstore.Store) {
			stream := streamName("expected")
			if r.existing > 0 {
				mustAppend(t, s, stream, eventstore.NoStream, newEvents(r.existing))
			}
			res, err := s.Append(testContext(t), stream, r.expected, newEvents(2))
			if r.ok {
				if err != nil {
					t.Fatalf("Append with %s to a stream at %d: %v", r.expected, r.existing, err)
				}
				if want := uint64(r.existing + 2); res.Version != want {
					t.Errorf("Version = %d, want %d", res.Version, want)
				}
				return
			}
			if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Fatalf("Append with %s to a stream at %d: error = %v, want ErrWrongExpectedVersion", r.expected, r.existing, err)
			}
			var wev *eventstore.WrongExpectedVersionError
			if !errors.As(err, &wev) {
				t.Fatalf("error %v is not a *WrongExpectedVersionError", err)
			}
			if wev.Actual != uint64(r.existing) || wev.Stream != stream || wev.Expected != r.expected {
				t.Errorf("WrongExpectedVersionError = {Stream:%q Expected:%s Actual:%d}, want {Stream:%q Expected:%s Actual:%d}",
					wev.Stream, wev.Expected, wev.Actual, stream, r.expected, r.existing)
			}
			if r.existing == 0 {
				_, err := s.ReadStream(testContext(t), stream, 0, eventstore.Forward, 10)
				expectError(t, "reading the stream after a refused first append", err, eventstore.ErrStreamNotFound)
			} else if got := mustReadStream(t, s, stream, 0, eventstore.Forward, 10); len(got) != r.existing {
				t.Errorf("after a refused append the stream has %d events, want %d", len(got), r.existing)
			}
		}})
	}
	return out
}

func idempotencyCases() []testCase {
	return []testCase{
		{"re-appending the same events at the same place returns the original result and writes nothing", testIdempotentSamePlace},
		{"re-appending the same events after later appends returns the original result", testIdempotentAfterLater},
		{"re-appending the same events with any version returns the original result", testIdempotentAnyVersion},
		{"re-appending events that only partly match the stored ones is refused", testIdempotentPartial},
		{"re-appending the same events at another exact version is refused", testIdempotentOtherPlace},
	}
}

func sameResult(t *testing.T, got, want eventstore.AppendResult) {
	t.Helper()
	if got.Version != want.Version || len(got.Positions) != len(want.Positions) {
		t.Fatalf("retry result = %+v, want the original %+v", got, want)
	}
	for i := range got.Positions {
		if got.Positions[i] != want.Positions[i] {
			t.Fatalf("retry result = %+v, want the original %+v", got, want)
		}
	}
}

func countAll(t *testing.T, s eventstore.Store) int {
	t.Helper()
	got, err := s.ReadAll(testContext(t), 0, 1<<20)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return len(got)
}

func testIdempotentSamePlace(t *testing.T, s eventstore.Store) {
	stream := streamName("idem-same")
	events := newEvents(2)
	orig := mustAppend(t, s, stream, eventstore.NoStream, events)
	before := countAll(t, s)
	retry := mustAppend(t, s, stream, eventstore.NoStream, events)
	sameResult(t, retry, orig)
	if after := countAll(t, s); after != before {
		t.Errorf("the retry changed the log from %d to %d events", before, after)
	}
	if h := mustHead(t, s); h != orig.LastPosition() {
		t.Errorf("Head after the retry = %d, want %d", h, orig.LastPosition())
	}
}

func testIdempotentAfterLater(t *testing.T, s eventstore.Store) {
	stream := streamName("idem-later")
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(1))
	events := newEvents(2)
	orig := mustAppend(t, s, stream, eventstore.Exact(1), events)
	mustAppend(t, s, stream, eventstore.Exact(3), newEvents(2))
	retry := mustAppend(t, s, stream, eventstore.Exact(1), events)
	sameResult(t, retry, orig)
	retry = mustAppend(t, s, stream, eventstore.StreamExists, events)
	sameResult(t, retry, orig)
	if got := versions(mustReadStream(t, s, stream, 0, eventstore.Forward, 100)); !equalVersions(got, span(1, 5)) {
		t.Errorf("stream versions after the retries = %v, want 1..5", got)
	}
}

func testIdempotentAnyVersion(t *testing.T, s eventstore.Store) {
	stream := streamName("idem-any")
	events := newEvents(3)
	orig := mustAppend(t, s, stream, eventstore.AnyVersion, events)
	retry := mustAppend(t, s, stream, eventstore.AnyVersion, events)
	sameResult(t, retry, orig)
	mustAppend(t, s, stream, eventstore.AnyVersion, newEvents(1))
	retry = mustAppend(t, s, stream, eventstore.AnyVersion, events)
	sameResult(t, retry, orig)
	if got := versions(mustReadStream(t, s, stream, 0, eventstore.Forward, 100)); !equalVersions(got, span(1, 4)) {
		t.Errorf("stream versions after the retries = %v, want 1..4", got)
	}
}

func testIdempotentPartial(t *testing.T, s eventstore.Store) {
	stream := streamName("idem-partial")
	events := newEvents(2)
	mustAppend(t, s, stream, eventstore.NoStream, events)
	mixed := []eventstore.EventData{events[0], newEvents(1)[0]}
	_, err := s.Append(testContext(t), stream, eventstore.NoStream, mixed)
	expectError(t, "re-appending the first stored event with a new one", err, eventstore.ErrWrongExpectedVersion)
	if got := versions(mustReadStream(t, s, stream, 0, eventstore.Forward, 100)); !equalVersions(got, span(1, 2)) {
		t.Errorf("stream versions after the refused retry = %v, want 1..2", got)
	}
	// The same, with the stored event second: a backend must not assume the
	// first event decides whether this is a retry.
	mixed = []eventstore.EventData{newEvents(1)[0], events[1]}
	_, err = s.Append(testContext(t), stream, eventstore.Exact(2), mixed)
	if err == nil {
		t.Errorf("appending a new event with an already stored one succeeded")
	}
	if got := versions(mustReadStream(t, s, stream, 0, eventstore.Forward, 100)); !equalVersions(got, span(1, 2)) {
		t.Errorf("stream versions after the refused mixed append = %v, want 1..2", got)
	}
}

func testIdempotentOtherPlace(t *testing.T, s eventstore.Store) {
	stream := streamName("idem-other")
	events := newEvents(2)
	mustAppend(t, s, stream, eventstore.NoStream, events)
	mustAppend(t, s, stream, eventstore.Exact(2), newEvents(1))
	_, err := s.Append(testContext(t), stream, eventstore.Exact(1), events)
	expectError(t, "re-appending stored events at version 1 instead of 0", err, eventstore.ErrWrongExpectedVersion)
	if got := versions(mustReadStream(t, s, stream, 0, eventstore.Forward, 100)); !equalVersions(got, span(1, 3)) {
		t.Errorf("stream versions after the refused retry = %v, want 1..3", got)
	}
}

// longStreamName checks that a backend does not confuse streams whose names
// share a prefix.
func longStreamName(base string) string { return base + strings.Repeat("x", 3) }
