package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardline/wardline/eventstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRetains(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name       string
		meta       eventstore.StreamMetadata
		version    uint64
		last       uint64
		recordedAt time.Time
		want       bool
	}{
		{"no retention keeps everything", eventstore.StreamMetadata{}, 1, 1000, now.Add(-time.Hour * 24 * 365), true},
		{"max count keeps the newest events", eventstore.StreamMetadata{MaxCount: 3}, 8, 10, now, true},
		{"max count drops older events", eventstore.StreamMetadata{MaxCount: 3}, 7, 10, now, false},
		{"max count larger than the stream keeps everything", eventstore.StreamMetadata{MaxCount: 30}, 1, 10, now, true},
		{"max age keeps younger events", eventstore.StreamMetadata{MaxAge: time.Minute}, 1, 1, now.Add(-59 * time.Second), true},
		{"max age drops events exactly that old", eventstore.StreamMetadata{MaxAge: time.Minute}, 1, 1, now.Add(-time.Minute), false},
		{"both limits apply", eventstore.StreamMetadata{MaxAge: time.Minute, MaxCount: 5}, 10, 10, now.Add(-2 * time.Minute), false},
	}
	for _, c := range cases {
		if got := c.meta.Retains(c.version, c.last, c.recordedAt, now); got != c.want {
			t.Errorf("%s: Retains = %v, want %v", c.name, got, c.want)
		}
	}
}

// racyLog commits an event between CatchUp's Changed and ReadAll calls, the
// moment a naive "read, then wait" loop would miss it.
type racyLog struct {
	mu      sync.Mutex
	events  []eventstore.RecordedEvent
	changed chan struct{}
	reads   int
}

func (l *racyLog) commit() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, eventstore.RecordedEvent{ID: "e", Position: eventstore.Position(len(l.events) + 1)})
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *racyLog) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *racyLog) ReadAll(_ context.Context, from eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	l.mu.Lock()
	l.reads++
	first := l.reads == 1
	l.mu.Unlock()
	if first {
		l.commit() // lands after Changed() was taken, before this read returns
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if int(from) >= len(l.events) {
		return nil, nil
	}
	tail := l.events[from:]
	return append([]eventstore.RecordedEvent(nil), tail[:min(limit, len(tail))]...), nil
}

func TestCatchUp(t *testing.T) {
	t.Run("a commit between taking the change channel and reading is not missed", func(t *testing.T) {
		log := &racyLog{changed: make(chan struct{})}
		errGot := errors.New("got it")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := eventstore.CatchUp(ctx, log, 0, 0, func(_ context.Context, events []eventstore.RecordedEvent) error {
			if len(events) != 1 || events[0].Position != 1 {
				t.Errorf("handler got %+v", events)
			}
			return errGot
		})
		if !errors.Is(err, errGot) {
			t.Fatalf("CatchUp = %v, want the handler's error after the racing commit", err)
		}
	})
	t.Run("full batches are followed by another read without waiting", func(t *testing.T) {
		log := &racyLog{changed: make(chan struct{})}
		log.reads = 1 // no racing commit
		for range 5 {
			log.commit()
		}
		var got []eventstore.Position
		ctx, cancel := context.WithCancel(context.Background())
		err := eventstore.CatchUp(ctx, log, 0, 2, func(_ context.Context, events []eventstore.RecordedEvent) error {
			for _, e := range events {
				got = append(got, e.Position)
			}
			if len(got) == 5 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || len(got) != 5 {
			t.Fatalf("CatchUp = %v after %v, want context.Canceled after 5 events", err, got)
		}
	})
	t.Run("a nil handler is invalid", func(t *testing.T) {
		err := eventstore.CatchUp(context.Background(), &racyLog{changed: make(chan struct{})}, 0, 0, nil)
		if !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Fatalf("CatchUp(nil handler) = %v", err)
		}
	})
}

func TestValidateAppend(t *testing.T) {
	ok := []eventstore.EventData{{ID: "a", Type: "T"}, {ID: "b", Type: "T"}}
	cases := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.EventData
		valid    bool
	}{
		{"a well-formed append is valid", "s", eventstore.AnyVersion, ok, true},
		{"stream exists is a valid expectation", "s", eventstore.StreamExists, ok, true},
		{"an empty stream is invalid", "", eventstore.AnyVersion, ok, false},
		{"an expectation below the sentinels is invalid", "s", -3, ok, false},
		{"no events is invalid", "s", eventstore.AnyVersion, nil, false},
		{"a missing ID is invalid", "s", eventstore.AnyVersion, []eventstore.EventData{{Type: "T"}}, false},
		{"a missing type is invalid", "s", eventstore.AnyVersion, []eventstore.EventData{{ID: "a"}}, false},
		{"a repeated ID is invalid", "s", eventstore.AnyVersion, []eventstore.EventData{{ID: "a", Type: "T"}, {ID: "a", Type: "T"}}, false},
	}
	for _, c := range cases {
		err := eventstore.ValidateAppend(c.stream, c.expected, c.events)
		if c.valid != (err == nil) || (err != nil && !errors.Is(err, eventstore.ErrInvalidArgument)) {
			t.Errorf("%s: ValidateAppend = %v", c.name, err)
		}
	}
}
