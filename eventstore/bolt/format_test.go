package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/wardline/wardline/eventstore"
)

func TestNewerFormatIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte(strconv.Itoa(FormatVersion+1)))
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	if s, err := Open(context.Background(), dir); !errors.Is(err, eventstore.ErrNewerFormat) {
		if err == nil {
			_ = s.Close()
		}
		t.Fatalf("Open of a newer format: %v, want ErrNewerFormat", err)
	}
	if v, err := ReadFormatVersion(dir); err != nil || v != FormatVersion+1 {
		t.Errorf("ReadFormatVersion = %d, %v; want %d", v, err, FormatVersion+1)
	}
}
