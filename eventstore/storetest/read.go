package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/eventstore"
)

func readCases() []testCase {
	return []testCase{
		{"reading a stream that has no events is stream not found", testStreamNotFound},
		{"stream reads honour their start version, direction and limit", testReadStreamWindows},
		{"streams whose names share a prefix are kept apart", testStreamPrefixes},
		{"reading the global log from a position returns the later events in commit order", testReadAll},
	}
}

func testStreamNotFound(t *testing.T, s eventstore.Store) {
	stream := streamName("missing")
	for _, dir := range []eventstore.Direction{eventstore.Forward, eventstore.Backward} {
		_, err := s.ReadStream(testContext(t), stream, 0, dir, 10)
		expectError(t, "ReadStream of a stream without events", err, eventstore.ErrStreamNotFound)
	}
	// Metadata alone does not make a stream exist.
	if err := s.SetStreamMetadata(testContext(t), stream, eventstore.StreamMetadata{MaxCount: 3}); err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	_, err := s.ReadStream(testContext(t), stream, 0, eventstore.Forward, 10)
	expectError(t, "ReadStream of a stream with metadata but no events", err, eventstore.ErrStreamNotFound)
}

func testReadStreamWindows(t *testing.T, s eventstore.Store) {
	stream := streamName("windows")
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(4))
	mustAppend(t, s, stream, eventstore.Exact(4), newEvents(6))
	rows := []struct {
		name  string
		from  uint64
		dir   eventstore.Direction
		limit int
		want  []uint64
	}{
		{"forward from zero reads from the first event", 0, eventstore.Forward, 100, span(1, 10)},
		{"forward from a version starts at that version", 4, eventstore.Forward, 3, span(4, 6)},
		{"forward stops at the newest event", 8, eventstore.Forward, 10, span(8, 10)},
		{"forward from the newest event reads just it", 10, eventstore.Forward, 10, span(10, 10)},
		{"forward past the end reads nothing", 11, eventstore.Forward, 10, nil},
		{"backward from zero starts at the newest event", 0, eventstore.Backward, 2, span(10, 9)},
		{"backward from a version starts at that version", 7, eventstore.Backward, 3, span(7, 5)},
		{"backward stops at the first event", 2, eventstore.Backward, 10, span(2, 1)},
		{"backward from past the end starts at the newest event", 100, eventstore.Backward, 2, span(10, 9)},
		{"a limit of one reads one event", 5, eventstore.Forward, 1, span(5, 5)},
	}
	for _, r := range rows {
		got := versions(mustReadStream(t, s, stream, r.from, r.dir, r.limit))
		if !equalVersions(got, r.want) {
			t.Errorf("%s: versions = %v, want %v", r.name, got, r.want)
		}
	}
}

func testStreamPrefixes(t *testing.T, s eventstore.Store) {
	short := streamName("prefix")
	long := longStreamName(short)
	mustAppend(t, s, long, eventstore.NoStream, newEvents(3))
	mustAppend(t, s, short, eventstore.NoStream, newEvents(2))
	mustAppend(t, s, long, eventstore.Exact(3), newEvents(1))
	for _, c := range []struct {
		stream string
		n      uint64
	}{{short, 2}, {long, 4}} {
		for _, dir := range []eventstore.Direction{eventstore.Forward, eventstore.Backward} {
			got := mustReadStream(t, s, c.stream, 0, dir, 100)
			want := span(1, c.n)
			if dir == eventstore.Backward {
				want = span(c.n, 1)
			}
			if !equalVersions(versions(got), want) {
				t.Errorf("stream %q %v: versions = %v, want %v", c.stream, dir, versions(got), want)
			}
			for _, e := range got {
				if e.Stream != c.stream {
					t.Errorf("reading %q returned an event of %q", c.stream, e.Stream)
				}
			}
		}
	}
	// A stream name that is a prefix of a stored one does not exist.
	_, err := s.ReadStream(testContext(t), strings.TrimSuffix(short, short[len(short)-1:]), 0, eventstore.Forward, 1)
	expectError(t, "ReadStream of a prefix of a stored stream name", err, eventstore.ErrStreamNotFound)
}

func testReadAll(t *testing.T, s eventstore.Store) {
	streams := []string{streamName("all-a"), streamName("all-b"), streamName("all-c")}
	start := mustHead(t, s)
	var ids []string
	var positions []eventstore.Position
	for i := range 9 {
		events := newEvents(1 + i%3)
		res := mustAppend(t, s, streams[i%3], eventstore.AnyVersion, events)
		for j, e := range events {
			ids = append(ids, e.ID)
			positions = append(positions, res.Positions[j])
		}
	}
	keep := inStreams(streams...)
	read := func(from eventstore.Position, limit int) []eventstore.RecordedEvent {
		t.Helper()
		got, err := s.ReadAll(testContext(t), from, limit)
		if err != nil {
			t.Fatalf("ReadAll(%d, %d): %v", from, limit, err)
		}
		var out []eventstore.RecordedEvent
		last := from
		for _, e := range got {
			if e.Position <= last {
				t.Fatalf("ReadAll(%d) returned position %d after %d", from, e.Position, last)
			}
			last = e.Position
			if keep(e) {
				out = append(out, e)
			}
		}
		if len(got) > limit {
			t.Fatalf("ReadAll(%d, %d) returned %d events", from, limit, len(got))
		}
		return out
	}
	all := read(start, 1000)
	if len(all) != len(ids) {
		t.Fatalf("ReadAll from %d returned %d of our events, want %d", start, len(all), len(ids))
	}
	for i, e := range all {
		if e.ID != ids[i] || e.Position != positions[i] {
			t.Errorf("event %d = %s at %d, want %s at %d", i, e.ID, e.Position, ids[i], positions[i])
		}
	}
	// From the middle: strictly after the given position, in order, limited.
	mid := read(positions[4], 3)
	if len(mid) != 3 {
		t.Fatalf("ReadAll from the fifth event's position returned %d events, want 3", len(mid))
	}
	for i, e := range mid {
		if e.ID != ids[5+i] {
			t.Errorf("ReadAll from the middle: event %d = %s, want %s", i, e.ID, ids[5+i])
		}
	}
	if tail := read(positions[len(positions)-1], 10); len(tail) != 0 {
		t.Errorf("ReadAll from the last position returned %d of our events, want 0", len(tail))
	}
	// Paging through with small limits yields the same sequence.
	var paged []string
	for from := start; ; {
		got, err := s.ReadAll(testContext(t), from, 4)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if len(got) == 0 {
			break
		}
		for _, e := range got {
			if keep(e) {
				paged = append(paged, e.ID)
			}
		}
		from = got[len(got)-1].Position
	}
	if strings.Join(paged, ",") != strings.Join(ids, ",") {
		t.Errorf("paging with limit 4 returned %v, want %v", paged, ids)
	}
}

func retentionCases() []testCase {
	return []testCase{
		{"stream metadata reads back as set and is zero when never set", testStreamMetadata},
		{"max count hides all but the newest events from stream reads", testMaxCount},
		{"max age hides expired events from stream reads", testMaxAge},
	}
}

func testStreamMetadata(t *testing.T, s eventstore.Store) {
	stream := streamName("meta")
	got, err := s.StreamMetadata(testContext(t), stream)
	if err != nil || got != (eventstore.StreamMetadata{}) {
		t.Errorf("StreamMetadata of a fresh stream = %+v, %v; want zero, nil", got, err)
	}
	for _, want := range []eventstore.StreamMetadata{
		{MaxAge: 90 * time.Second, MaxCount: 7},
		{MaxCount: 1},
		{MaxAge: time.Millisecond},
		{},
	} {
		if err := s.SetStreamMetadata(testContext(t), stream, want); err != nil {
			t.Fatalf("SetStreamMetadata(%+v): %v", want, err)
		}
		got, err := s.StreamMetadata(testContext(t), stream)
		if err != nil || got != want {
			t.Errorf("StreamMetadata = %+v, %v; want %+v", got, err, want)
		}
	}
}

func testMaxCount(t *testing.T, s eventstore.Store) {
	stream := streamName("maxcount")
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(5))
	if err := s.SetStreamMetadata(testContext(t), stream, eventstore.StreamMetadata{MaxCount: 2}); err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	rows := []struct {
		name  string
		from  uint64
		dir   eventstore.Direction
		limit int
		want  []uint64
	}{
		{"forward from the start skips to the newest two", 0, eventstore.Forward, 10, span(4, 5)},
		{"forward from a hidden version skips to the newest two", 2, eventstore.Forward, 1, span(4, 4)},
		{"backward from the newest stops before hidden events", 0, eventstore.Backward, 10, span(5, 4)},
		{"backward from a hidden version reads nothing", 3, eventstore.Backward, 10, nil},
	}
	for _, r := range rows {
		if got := versions(mustReadStream(t, s, stream, r.from, r.dir, r.limit)); !equalVersions(got, r.want) {
			t.Errorf("%s: versions = %v, want %v", r.name, got, r.want)
		}
	}
	// Retention does not rewind versions.
	mustAppend(t, s, stream, eventstore.Exact(5), newEvents(1))
	if got := versions(mustReadStream(t, s, stream, 0, eventstore.Forward, 10)); !equalVersions(got, span(5, 6)) {
		t.Errorf("after one more append: versions = %v, want [5 6]", got)
	}
}

func testMaxAge(t *testing.T, s eventstore.Store) {
	const maxAge = time.Second
	stream := streamName("maxage")
	if err := s.SetStreamMetadata(testContext(t), stream, eventstore.StreamMetadata{MaxAge: maxAge}); err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	// A stalled machine could let fresh events expire before the read, so
	// the "still there" checks only count when they ran within MaxAge.
	appended := time.Now()
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(2))
	if got := versions(mustReadStream(t, s, stream, 0, eventstore.Forward, 10)); !equalVersions(got, span(1, 2)) && time.Since(appended) < maxAge {
		t.Errorf("fresh events: versions = %v, want [1 2]", got)
	}
	// Wait for the events to expire: poll rather than sleep a fixed time, so
	// a slow machine only makes the test slower, not flaky.
	deadline := time.Now().Add(maxAge + 10*time.Second)
	for {
		got := mustReadStream(t, s, stream, 0, eventstore.Forward, 10)
		if len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events older than %s are still returned: versions %v", maxAge, versions(got))
		}
		time.Sleep(maxAge / 10)
	}
	if got := mustReadStream(t, s, stream, 0, eventstore.Backward, 10); len(got) != 0 {
		t.Errorf("backward read of expired events returned versions %v", versions(got))
	}
	appended = time.Now()
	mustAppend(t, s, stream, eventstore.Exact(2), newEvents(1))
	if got := versions(mustReadStream(t, s, stream, 0, eventstore.Forward, 10)); !equalVersions(got, span(3, 3)) && time.Since(appended) < maxAge {
		t.Errorf("after expiry and a new append: versions = %v, want [3]", got)
	}
}

func offsetCases() []testCase {
	return []testCase{
		{"the epoch is non-empty and stable", testEpoch},
		{"offsets round-trip and an offset of another store is foreign", testOffsets},
	}
}

func testEpoch(t *testing.T, s eventstore.Store) {
	e := s.Epoch()
	if e == "" {
		t.Fatal("Epoch is empty")
	}
	if strings.ContainsAny(e, ". \n") {
		t.Errorf("Epoch %q contains a separator or space", e)
	}
	mustAppend(t, s, streamName("epoch"), eventstore.NoStream, newEvents(1))
	if again := s.Epoch(); again != e {
		t.Errorf("Epoch changed from %q to %q", e, again)
	}
}

func testOffsets(t *testing.T, s eventstore.Store) {
	res := mustAppend(t, s, streamName("offsets"), eventstore.NoStream, newEvents(2))
	epoch := s.Epoch()
	for _, p := range []eventstore.Position{0, 1, res.LastPosition(), 1<<64 - 1} {
		off := eventstore.FormatOffset(epoch, p)
		got, err := eventstore.ParseOffset(epoch, off)
		if err != nil || got != p {
			t.Errorf("ParseOffset(FormatOffset(%d)) = %d, %v", p, got, err)
		}
	}
	foreign := eventstore.FormatOffset(epoch+"x", res.LastPosition())
	_, err := eventstore.ParseOffset(epoch, foreign)
	expectError(t, "ParseOffset of another store's offset", err, eventstore.ErrForeignOffset)
	_, err = eventstore.ParseOffset(epoch, "not an offset")
	if !errors.Is(err, eventstore.ErrMalformedOffset) {
		t.Errorf("ParseOffset of garbage: error = %v, want ErrMalformedOffset", err)
	}
}
