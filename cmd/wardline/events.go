package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/wardline/wardline/eventstore"
)

// tailPage is how many events one read of the log returns.
const tailPage = 1024

// runEventsTail prints the event log (or one stream) for operators and
// analysts: human-readable lines, or NDJSON for tools.
func runEventsTail(ctx context.Context, args []string, stdio IO) error {
	var (
		c      Config
		from   string
		stream string
		follow bool
		ndjson bool
		limit  int
	)
	fs := flag.NewFlagSet("wardline events tail", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	storeFlags(fs, stdio.Getenv, &c)
	fs.StringVar(&from, "from", "0", "start after this position (a number, or an offset a client was given)")
	fs.StringVar(&stream, "stream", "", "print only this stream, from its first event")
	fs.BoolVar(&follow, "follow", false, "keep printing new events as they are committed (not with --stream)")
	fs.BoolVar(&ndjson, "ndjson", false, "print one JSON object per line")
	fs.IntVar(&limit, "limit", 0, "stop after this many events (0: no limit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if stream != "" && follow {
		return usageError{"events tail: --follow reads the global log; it does not go with --stream"}
	}
	store, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer store.Close()

	pos, err := parsePosition(store.Epoch(), from)
	if err != nil {
		return err
	}
	p := &eventPrinter{w: stdio.Stdout, ndjson: ndjson, epoch: store.Epoch(), limit: limit}
	if stream != "" {
		return tailStream(ctx, store, stream, p)
	}
	if follow {
		err := store.Subscribe(ctx, pos, func(_ context.Context, evs []eventstore.RecordedEvent) error {
			return p.print(evs)
		})
		if errors.Is(err, errLimitReached) || errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	for {
		evs, err := store.ReadAll(ctx, pos, tailPage)
		if err != nil {
			return fmt.Errorf("events tail: %w", err)
		}
		if len(evs) == 0 {
			return nil
		}
		if err := p.print(evs); err != nil {
			if errors.Is(err, errLimitReached) {
				return nil
			}
			return err
		}
		pos = evs[len(evs)-1].Position
	}
}

func tailStream(ctx context.Context, store eventstore.Store, stream string, p *eventPrinter) error {
	var version uint64 = 1
	for {
		evs, err := store.ReadStream(ctx, stream, version, eventstore.Forward, tailPage)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return fmt.Errorf("events tail: stream %q has no events", stream)
		}
		if err != nil {
			return fmt.Errorf("events tail: %w", err)
		}
		if len(evs) == 0 {
			return nil
		}
		if err := p.print(evs); err != nil {
			if errors.Is(err, errLimitReached) {
				return nil
			}
			return err
		}
		version = evs[len(evs)-1].Version + 1
	}
}

// parsePosition accepts a plain position or a client offset of this store.
func parsePosition(epoch, s string) (eventstore.Position, error) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return eventstore.Position(n), nil
	}
	p, err := eventstore.ParseOffset(epoch, s)
	if err != nil {
		return 0, usageError{fmt.Sprintf("--from %q: not a position of this store: %v", s, err)}
	}
	return p, nil
}

var errLimitReached = errors.New("limit reached")

type eventPrinter struct {
	w       io.Writer
	ndjson  bool
	epoch   string
	limit   int
	printed int
}

// tailLine is the NDJSON form of an event. Data and metadata are the stored
// JSON as is (not upcast), so the output is the log exactly.
type tailLine struct {
	Position      eventstore.Position `json:"position"`
	Offset        string              `json:"offset"`
	Stream        string              `json:"stream"`
	Version       uint64              `json:"version"`
	ID            string              `json:"id"`
	Type          string              `json:"type"`
	SchemaVersion int                 `json:"schemaVersion"`
	RecordedAt    string              `json:"recordedAt"`
	Data          json.RawMessage     `json:"data,omitempty"`
	Metadata      json.RawMessage     `json:"metadata,omitempty"`
}

func (p *eventPrinter) print(evs []eventstore.RecordedEvent) error {
	for _, e := range evs {
		if p.limit > 0 && p.printed >= p.limit {
			return errLimitReached
		}
		var err error
		if p.ndjson {
			line := tailLine{
				Position: e.Position, Offset: eventstore.FormatOffset(p.epoch, e.Position),
				Stream: e.Stream, Version: e.Version, ID: e.ID, Type: e.Type,
				SchemaVersion: e.SchemaVersion, RecordedAt: e.RecordedAt.UTC().Format(time.RFC3339Nano),
				Data: jsonOrString(e.Data), Metadata: jsonOrString(e.Metadata),
			}
			var b []byte
			b, err = json.Marshal(line)
			if err == nil {
				_, err = fmt.Fprintf(p.w, "%s\n", b)
			}
		} else {
			_, err = fmt.Fprintf(p.w, "%8d  %s  %s@%d  %s v%d  %s\n", e.Position,
				e.RecordedAt.UTC().Format("2006-01-02T15:04:05.000Z"), e.Stream, e.Version,
				e.Type, e.SchemaVersion, e.Data)
		}
		if err != nil {
			return fmt.Errorf("events tail: write: %w", err)
		}
		p.printed++
	}
	return nil
}

// jsonOrString keeps valid JSON as is and quotes anything else, so one odd
// event written by another tool cannot break the NDJSON stream.
func jsonOrString(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}
