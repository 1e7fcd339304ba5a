package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"github.com/wardline/wardline/eventstore"
)

// diskIndex reads the on-disk indexes: entries in the streams and ids
// buckets, and the "indexed" marker.
func diskIndex(t *testing.T, s *Store) (streams, ids int, indexed eventstore.Position) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		streams = tx.Bucket(bucketStreams).Stats().KeyN
		ids = tx.Bucket(bucketIDs).Stats().KeyN
		if raw := tx.Bucket(bucketMeta).Get(keyIndexed); len(raw) == 8 {
			indexed = eventstore.Position(binary.BigEndian.Uint64(raw))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return streams, ids, indexed
}

func TestAFlushIsWrittenAChunkPerCommitAndMovesTheMarkerOnlyAtItsEnd(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), WithIndexFlushEvents(8), withFlushChunk(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendTo := func(stream string) {
		t.Helper()
		ev := []eventstore.EventData{{ID: uuid.Must(uuid.NewV7()).String(), Type: "Chunked", Data: []byte(`{}`)}}
		if _, err := s.Append(ctx, stream, eventstore.AnyVersion, ev); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 8 { // fills the first generation: 8 stream entries, 8 IDs
		appendTo(fmt.Sprintf("room-%d", i%2))
	}
	if st, id, marker := diskIndex(t, s); st+id != 0 || marker != 0 {
		t.Fatalf("before the flush: %d stream and %d ID entries on disk, marker %d", st, id, marker)
	}
	// Each one-event commit now writes 4 of the 16 entries, in key order:
	// room-0's versions, room-1's, then the IDs.
	want := []struct{ streams, ids int }{{4, 0}, {8, 0}, {8, 4}, {8, 8}}
	for i, w := range want {
		appendTo("room-2")
		st, id, marker := diskIndex(t, s)
		if st != w.streams || id != w.ids {
			t.Fatalf("after commit %d of the flush: %d stream and %d ID entries on disk, want %d and %d", i+1, st, id, w.streams, w.ids)
		}
		last := i == len(want)-1
		wantMarker := eventstore.Position(0)
		if last {
			wantMarker = 8 // the generation's newest position
		}
		if marker != wantMarker {
			t.Fatalf("after commit %d of the flush: marker %d, want %d", i+1, marker, wantMarker)
		}
		s.mem.mu.RLock()
		inMemory := s.mem.flushing != nil
		s.mem.mu.RUnlock()
		if inMemory == last {
			t.Fatalf("after commit %d of the flush: generation in memory %v", i+1, inMemory)
		}
	}
	// Everything stays readable throughout and after.
	for i := range 2 {
		events, err := s.ReadStream(ctx, fmt.Sprintf("room-%d", i), 1, eventstore.Forward, 10)
		if err != nil || len(events) != 4 {
			t.Fatalf("room-%d: %d events, %v", i, len(events), err)
		}
	}
}

func TestAChunkBoundaryInsideAStreamResumesAtTheNextVersion(t *testing.T) {
	g := newGeneration(0)
	g.add("r", 1, []string{"a", "b", "c"}, []eventstore.Position{1, 2, 3})
	p := newFlushPlan(g)
	db, err := bbolt.Open(t.TempDir()+"/x.db", 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var keys [][]byte
	for step := 0; step < 10; step++ {
		done := false
		err := db.Update(func(tx *bbolt.Tx) error {
			for _, b := range [][]byte{bucketStreams, bucketIDs, bucketMeta} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			at, d, err := p.write(tx, 2)
			p.at, done = at, d
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
	}
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketStreams).ForEach(func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("%d stream entries written, want 3", len(keys))
	}
	for i, k := range keys {
		if want := streamKey(nil, "r", uint64(i+1)); string(k) != string(want) {
			t.Fatalf("entry %d: key %x, want %x", i, k, want)
		}
	}
}
