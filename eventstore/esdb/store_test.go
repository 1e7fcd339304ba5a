package esdb_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/esdb"
	"github.com/wardline/wardline/eventstore/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestContract runs the contract suite against the KurrentDB at
// EVENTSTORE_URL (e.g. esdb://localhost:2113?tls=false). Every case gets a
// namespace of its own, so the suite's "fresh, empty store" holds on a
// shared server. Without EVENTSTORE_URL it skips, even under
// WARDLINE_INTEGRATION=1: no KurrentDB can run on the CI machines.
func TestContract(t *testing.T) {
	url := os.Getenv("EVENTSTORE_URL")
	if url == "" {
		t.Skip("EVENTSTORE_URL not set: EventStoreDB contract suite skipped (no EventStoreDB server on this machine)")
	}
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := esdb.Open(ctx, url, esdb.WithNamespace("wltest-"+hex.EncodeToString(b[:])+":"))
		if err != nil {
			t.Fatalf("Open(%s): %v", url, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestOpenRefusesWhatIsNotAKurrentDBURL(t *testing.T) {
	for _, url := range []string{"postgres://postgres@127.0.0.1:5432/test", "embedded", "esdb://host:notaport"} {
		_, err := esdb.Open(context.Background(), url)
		if !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("Open(%q): error = %v, want ErrInvalidArgument", url, err)
		}
	}
	_, err := esdb.Open(context.Background(), "esdb://localhost:2113?tls=false", esdb.WithNamespace("$system"))
	if !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Errorf("Open with a namespace starting with $: error = %v, want ErrInvalidArgument", err)
	}
}

// With nothing listening, Open fails within its context and leaves no
// goroutine behind (goleak checks at exit).
func TestOpenWithoutAServerFailsAndCleansUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// Port 9 (discard) on loopback: refused at once on a machine without it.
	s, err := esdb.Open(ctx, "esdb://127.0.0.1:9?tls=false&maxDiscoverAttempts=1")
	if err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded with no server")
	}
}
