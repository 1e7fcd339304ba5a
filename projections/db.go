package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/wardline/wardline/eventstore"
)

// Layout of the projections db (one bbolt file, <dataDir>/projections.db):
//
//	meta/format                  -> uint64 BE, dbFormat
//	p/<name>/version             -> uint64 BE, the Projection.Version the snapshot was made by
//	p/<name>/checkpoint          -> uint64 BE, the position the snapshot includes
//	p/<name>/epoch               -> the store epoch the checkpoint belongs to
//	p/<name>/snapshot/<chunk BE> -> MarshalSnapshot's bytes, in chunks
//
// All keys of a projection are written in one transaction, so the snapshot
// and its checkpoint can never disagree. Chunking keeps bbolt from needing a
// contiguous run of free pages as large as a whole snapshot.
const (
	dbFormat  = 1
	chunkSize = 1 << 20
)

var (
	bucketMeta     = []byte("meta")
	bucketProjs    = []byte("p")
	bucketSnapshot = []byte("snapshot")
	keyFormat      = []byte("format")
	keyVersion     = []byte("version")
	keyCheckpoint  = []byte("checkpoint")
	keyEpoch       = []byte("epoch")
)

type snapshotDB struct {
	db *bbolt.DB
}

// openDB opens (creating if needed) the projections db at path. A db held by
// another process is ErrLocked after a short wait.
func openDB(path string) (*snapshotDB, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: 2 * time.Second,
		// Address space, not memory: growing into a mapping this size needs
		// no remap, and a remap copies every node a transaction touched.
		InitialMmapSize: 256 << 20,
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("projections: open %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("projections: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyFormat); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("malformed format marker %x", v)
			}
			if f := binary.BigEndian.Uint64(v); f > dbFormat {
				return fmt.Errorf("%w: format %d, this binary knows %d", ErrNewerFormat, f, dbFormat)
			}
		} else if err := meta.Put(keyFormat, u64(dbFormat)); err != nil {
			return err
		}
		_, err = tx.CreateBucketIfNotExists(bucketProjs)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("projections: open %s: %w", path, err)
	}
	return &snapshotDB{db: db}, nil
}

func (d *snapshotDB) close() error { return d.db.Close() }

// stored is what the db holds for one projection.
type stored struct {
	found      bool
	version    int
	checkpoint eventstore.Position
	epoch      string
	snapshot   []byte
}

// record is one projection's state to save.
type record struct {
	name       string
	version    int
	checkpoint eventstore.Position
	snapshot   []byte
}

func (d *snapshotDB) load(name string) (stored, error) {
	var s stored
	err := d.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketProjs).Bucket([]byte(name))
		if b == nil {
			return nil
		}
		v, c := b.Get(keyVersion), b.Get(keyCheckpoint)
		if len(v) != 8 || len(c) != 8 {
			return fmt.Errorf("malformed version or checkpoint of %q", name)
		}
		s.found = true
		s.version = int(binary.BigEndian.Uint64(v))
		s.checkpoint = eventstore.Position(binary.BigEndian.Uint64(c))
		s.epoch = string(b.Get(keyEpoch))
		if sb := b.Bucket(bucketSnapshot); sb != nil {
			// Copy: bbolt's values live in its mmap only until the tx ends.
			err := sb.ForEach(func(_, chunk []byte) error {
				s.snapshot = append(s.snapshot, chunk...)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return stored{}, fmt.Errorf("projections: load %q: %w", name, err)
	}
	return s, nil
}

// save writes every record, with the store's epoch, in one transaction.
func (d *snapshotDB) save(epoch string, recs []record) error {
	if len(recs) == 0 {
		return nil
	}
	err := d.db.Update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketProjs)
		for _, r := range recs {
			b, err := root.CreateBucketIfNotExists([]byte(r.name))
			if err != nil {
				return err
			}
			if b.Bucket(bucketSnapshot) != nil {
				if err := b.DeleteBucket(bucketSnapshot); err != nil {
					return err
				}
			}
			sb, err := b.CreateBucket(bucketSnapshot)
			if err != nil {
				return err
			}
			sb.FillPercent = 1 // chunks are appended in key order
			for i, off := uint32(0), 0; off < len(r.snapshot); i, off = i+1, off+chunkSize {
				end := min(off+chunkSize, len(r.snapshot))
				var k [4]byte
				binary.BigEndian.PutUint32(k[:], i)
				if err := sb.Put(k[:], r.snapshot[off:end]); err != nil {
					return err
				}
			}
			if err := b.Put(keyVersion, u64(uint64(r.version))); err != nil {
				return err
			}
			if err := b.Put(keyCheckpoint, u64(uint64(r.checkpoint))); err != nil {
				return err
			}
			if err := b.Put(keyEpoch, []byte(epoch)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("projections: save snapshots: %w", err)
	}
	return nil
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}
