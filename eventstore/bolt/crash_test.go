package bolt_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/bolt"
)

// crashDirEnv tells a re-executed test binary to act as the crash test's
// child: append until killed, printing every acknowledged event.
const crashDirEnv = "WARDLINE_BOLT_CRASH_DIR"

// crashIndexFlush is small so that a crash finds index entries both on disk
// and only in memory (rebuilt from the log at Open).
const crashIndexFlush = 100

// crashFlushChunk spreads each flush over several commits, so that a crash
// can also come between them.
const crashFlushChunk = 16

const crashLarge = 9000

// crashData is the body every crash-test event carries, derived from its ID
// so the parent can check bytes it never saw. Large ones need overflow pages.
func crashData(id string, large bool) []byte {
	sum := sha256.Sum256([]byte(id))
	n := 300
	if large {
		n = crashLarge
	}
	return bytes.Repeat(sum[:], n/len(sum)+1)[:n]
}

// TestHelperProcess is the crash test's child. It is not a test of its own.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the crash test's child; runs only when re-executed by TestCrashKeepsEveryAcknowledgedEvent")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // bounded even if nobody kills us
	defer cancel()
	s, err := bolt.Open(ctx, dir, bolt.WithIndexFlushEvents(crashIndexFlush), bolt.WithFlushChunk(crashFlushChunk))
	if err != nil {
		fmt.Printf("ERR open: %v\n", err)
		os.Exit(2)
	}
	var out sync.Mutex
	ack := func(stream string, version uint64, p eventstore.Position, id string) {
		out.Lock()
		defer out.Unlock()
		// One short write per line: atomic on a pipe, so a kill never
		// leaves half a line.
		_, _ = os.Stdout.WriteString(fmt.Sprintf("ACK %s %d %d %s\n", stream, version, p, id))
	}
	fail := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Printf("ERR "+format+"\n", args...)
		os.Exit(2)
	}
	const writers, maxAppends = 6, 20000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			// Writers 0-3 share two streams with AnyVersion; 4-5 own a
			// stream and use exact versions.
			stream := fmt.Sprintf("shared-%d", w%2)
			exact := w >= 4
			var version uint64
			if exact {
				stream = fmt.Sprintf("own-%d", w)
				last, err := s.ReadStream(ctx, stream, 0, eventstore.Backward, 1)
				switch {
				case errors.Is(err, eventstore.ErrStreamNotFound):
				case err != nil:
					fail("read %s: %v", stream, err)
				default:
					version = last[0].Version
				}
			}
			for i := range maxAppends {
				events := make([]eventstore.EventData, 1+i%3)
				for j := range events {
					id := uuid.Must(uuid.NewV7()).String()
					events[j] = eventstore.EventData{ID: id, Type: "CrashTested", SchemaVersion: 1, Data: crashData(id, (i+j)%50 == 0), Metadata: []byte(stream)}
				}
				expected := eventstore.AnyVersion
				if exact {
					expected = eventstore.Exact(version)
				}
				res, err := s.Append(ctx, stream, expected, events)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					fail("append to %s: %v", stream, err)
				}
				if i%10 == 0 { // a client retry: same IDs, same answer
					again, err := s.Append(ctx, stream, expected, events)
					if err != nil || again.Version != res.Version || again.LastPosition() != res.LastPosition() {
						fail("retry of %s: %+v, %v; want %+v", events[0].ID, again, err, res)
					}
				}
				version = res.Version
				for j, e := range events {
					ack(stream, res.Version-uint64(len(events)-1-j), res.Positions[j], e.ID)
				}
			}
		})
	}
	wg.Wait()
	fmt.Println("ERR the child ran out of appends before being killed")
	os.Exit(2)
}

type acked struct {
	stream  string
	version uint64
	pos     eventstore.Position
}

// TestCrashKeepsEveryAcknowledgedEvent kills a writing process with SIGKILL
// at a random moment, a few times over the same store, and checks after
// each kill that every acknowledged event survived, intact, at the place it
// was acknowledged at, with gap-free positions and versions.
func TestCrashKeepsEveryAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary several times")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	all := map[string]acked{}
	var epoch string
	for round := range 3 {
		killAfter := 200 + rng.IntN(1800)
		got := runChild(t, dir, killAfter)
		for id, a := range got {
			if prev, ok := all[id]; ok && prev != a {
				t.Fatalf("round %d: event %s acknowledged at %+v, earlier at %+v", round, id, a, prev)
			}
			all[id] = a
		}
		t.Logf("round %d: killed after %d acknowledgements (%d new), %d acknowledged in all", round, killAfter, len(got), len(all))
		e := verifyStore(t, dir, all)
		if epoch != "" && e != epoch {
			t.Fatalf("round %d: epoch changed from %s to %s", round, epoch, e)
		}
		epoch = e
	}
}

// runChild runs the helper process on dir, kills it after killAfter
// acknowledged events, and returns every acknowledgement it printed.
func runChild(t *testing.T, dir string, killAfter int) map[string]acked {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := map[string]acked{}
	var other []string
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) != 5 || f[0] != "ACK" {
			other = append(other, line)
			continue
		}
		version, err1 := strconv.ParseUint(f[2], 10, 64)
		pos, err2 := strconv.ParseUint(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("child printed a malformed acknowledgement %q", line)
		}
		a := acked{f[1], version, eventstore.Position(pos)}
		if prev, ok := got[f[4]]; ok && prev != a {
			t.Fatalf("child acknowledged %s at %+v and at %+v", f[4], prev, a)
		}
		got[f[4]] = a
		if !killed && len(got) >= killAfter {
			// Lines already in the pipe were acknowledged too: keep reading.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed (%v) after %d acknowledgements; output %q; stderr %s", err, len(got), other, stderr.String())
	}
	if len(other) > 0 {
		t.Fatalf("child reported %q", other)
	}
	return got
}

// verifyStore reopens the store and checks it against every acknowledgement
// so far, then checks it still takes appends. It returns the epoch.
func verifyStore(t *testing.T, dir string, want map[string]acked) string {
	t.Helper()
	ctx := t.Context()
	s, err := bolt.Open(ctx, dir, bolt.WithIndexFlushEvents(crashIndexFlush), bolt.WithFlushChunk(crashFlushChunk))
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]uint64{}
	seen := map[string]bool{}
	var n int
	for from := eventstore.Position(0); ; {
		events, err := s.ReadAll(ctx, from, 1000)
		if err != nil {
			t.Fatalf("ReadAll after kill: %v", err)
		}
		if len(events) == 0 {
			break
		}
		for i, e := range events {
			if e.Position != from+eventstore.Position(i)+1 {
				t.Fatalf("position %d follows %d: the log has a gap", e.Position, from+eventstore.Position(i))
			}
			if e.Version != versions[e.Stream]+1 {
				t.Fatalf("stream %s: version %d follows %d", e.Stream, e.Version, versions[e.Stream])
			}
			versions[e.Stream] = e.Version
			if a, ok := want[e.ID]; ok && (a.stream != e.Stream || a.version != e.Version || a.pos != e.Position) {
				t.Fatalf("event %s is %s v%d at %d, acknowledged as %s v%d at %d", e.ID, e.Stream, e.Version, e.Position, a.stream, a.version, a.pos)
			}
			// Every event, acknowledged or not, must be intact.
			if e.Type != "CrashTested" || string(e.Metadata) != e.Stream || !bytes.Equal(e.Data, crashData(e.ID, len(e.Data) == crashLarge)) {
				t.Fatalf("event %s at %d is damaged: type %q, metadata %q, %d data bytes", e.ID, e.Position, e.Type, e.Metadata, len(e.Data))
			}
			if seen[e.ID] {
				t.Fatalf("event %s is in the log twice", e.ID)
			}
			seen[e.ID] = true
		}
		n += len(events)
		from = events[len(events)-1].Position
	}
	if eventstore.Position(n) != head {
		t.Fatalf("the log holds %d events, head is %d", n, head)
	}
	for id, a := range want {
		if !seen[id] {
			t.Fatalf("acknowledged event %s (%s v%d at %d) is missing", id, a.stream, a.version, a.pos)
		}
	}
	// The indexes (on disk and rebuilt in memory) agree with the log.
	for stream, last := range versions {
		events, err := s.ReadStream(ctx, stream, 0, eventstore.Forward, int(last)+10)
		if err != nil || uint64(len(events)) != last {
			t.Fatalf("ReadStream(%s) = %d events, %v; the log has %d", stream, len(events), err, last)
		}
	}
	// Appends work again, where they should.
	id := uuid.NewString()
	res, err := s.Append(ctx, "own-4", eventstore.Exact(versions["own-4"]), []eventstore.EventData{{ID: id, Type: "CrashTested", Metadata: []byte("own-4"), Data: crashData(id, false)}})
	if err != nil || res.Positions[0] != head+1 {
		t.Fatalf("append after reopen = %+v, %v; want position %d", res, err, head+1)
	}
	return s.Epoch()
}
