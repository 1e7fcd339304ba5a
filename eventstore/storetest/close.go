package storetest

import (
	"context"
	"testing"

	"github.com/wardline/wardline/eventstore"
)

func closeCases() []testCase {
	return []testCase{
		{"every operation after close returns ErrClosed", testAfterClose},
	}
}

func testAfterClose(t *testing.T, s eventstore.Store) {
	stream := streamName("closed")
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(1))
	epoch := s.Epoch()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Append", func(ctx context.Context) error {
			_, err := s.Append(ctx, stream, eventstore.AnyVersion, newEvents(1))
			return err
		}},
		{"ReadStream", func(ctx context.Context) error {
			_, err := s.ReadStream(ctx, stream, 0, eventstore.Forward, 10)
			return err
		}},
		{"ReadAll", func(ctx context.Context) error {
			_, err := s.ReadAll(ctx, 0, 10)
			return err
		}},
		{"Subscribe", func(ctx context.Context) error {
			return s.Subscribe(ctx, 0, func(context.Context, []eventstore.RecordedEvent) error { return nil })
		}},
		{"Head", func(ctx context.Context) error {
			_, err := s.Head(ctx)
			return err
		}},
		{"SetStreamMetadata", func(ctx context.Context) error {
			return s.SetStreamMetadata(ctx, stream, eventstore.StreamMetadata{MaxCount: 1})
		}},
		{"StreamMetadata", func(ctx context.Context) error {
			_, err := s.StreamMetadata(ctx, stream)
			return err
		}},
	}
	for _, c := range calls {
		expectError(t, c.name+" after Close", c.call(testContext(t)), eventstore.ErrClosed)
	}
	if got := s.Epoch(); got != epoch {
		t.Errorf("Epoch after Close = %q, want %q", got, epoch)
	}
}
