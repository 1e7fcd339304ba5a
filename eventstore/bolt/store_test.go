package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/bolt"
	"github.com/wardline/wardline/eventstore/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openStore opens a store in a fresh temp dir and closes it when t ends.
func openStore(t testing.TB, dir string, opts ...bolt.Option) *bolt.Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := bolt.Open(context.Background(), dir, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store { return openStore(t, "") })
}

// The stream and ID indexes live partly in memory until enough events pile
// up; small thresholds make every case cross that boundary, or flush at
// every commit.
func TestContractWithFrequentIndexFlushes(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("every %d events", n), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) eventstore.Store { return openStore(t, "", bolt.WithIndexFlushEvents(n)) })
		})
	}
}

// A flush of a generation written a few entries per commit leaves the
// indexes half on disk, half in memory, between commits.
func TestContractWithIndexFlushesSpreadOverCommits(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return openStore(t, "", bolt.WithIndexFlushEvents(5), bolt.WithFlushChunk(1))
	})
}

func TestOpen(t *testing.T) {
	t.Run("a second open of the same dir fails quickly with ErrLocked", func(t *testing.T) {
		dir := t.TempDir()
		openStore(t, dir)
		start := time.Now()
		s, err := bolt.Open(context.Background(), dir, bolt.WithLockTimeout(50*time.Millisecond))
		if err == nil {
			_ = s.Close()
			t.Fatal("second Open succeeded")
		}
		if !errors.Is(err, eventstore.ErrLocked) {
			t.Errorf("second Open: %v, want ErrLocked", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("second Open took %s", d)
		}
		if _, err := bolt.ReadFormatVersion(dir); !errors.Is(err, eventstore.ErrLocked) {
			t.Errorf("ReadFormatVersion of an open store: %v, want ErrLocked", err)
		}
	})
	t.Run("a closed store can be opened again with its events and epoch", func(t *testing.T) {
		dir := t.TempDir()
		s, err := bolt.Open(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Append(context.Background(), "reopen", eventstore.NoStream, []eventstore.EventData{{ID: "e1", Type: "T", Data: []byte("x")}})
		if err != nil {
			t.Fatal(err)
		}
		epoch := s.Epoch()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := openStore(t, dir)
		if s2.Epoch() != epoch {
			t.Errorf("epoch after reopen = %q, want %q", s2.Epoch(), epoch)
		}
		if h, _ := s2.Head(context.Background()); h != res.LastPosition() {
			t.Errorf("head after reopen = %d, want %d", h, res.LastPosition())
		}
		res2, err := s2.Append(context.Background(), "reopen", eventstore.Exact(1), []eventstore.EventData{{ID: "e2", Type: "T"}})
		if err != nil || res2.Positions[0] != res.LastPosition()+1 {
			t.Errorf("append after reopen = %+v, %v; want position %d", res2, err, res.LastPosition()+1)
		}
		if v, err := bolt.ReadFormatVersion(t.TempDir()); err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ReadFormatVersion of an empty dir = %d, %v; want ErrNotExist", v, err)
		}
	})
	t.Run("the format version of a closed store can be read", func(t *testing.T) {
		dir := t.TempDir()
		s, err := bolt.Open(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		v, err := bolt.ReadFormatVersion(dir)
		if err != nil || v != bolt.FormatVersion {
			t.Errorf("ReadFormatVersion = %d, %v; want %d", v, err, bolt.FormatVersion)
		}
	})
	t.Run("a data dir that is a file is refused with a clear error", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "not-a-dir")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{file, filepath.Join(file, "sub")} {
			s, err := bolt.Open(context.Background(), dir)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%s) succeeded", dir)
			}
			if !strings.Contains(err.Error(), "data dir") || !strings.Contains(err.Error(), dir) {
				t.Errorf("Open(%s): %v; want an error naming the data dir", dir, err)
			}
		}
	})
	t.Run("a data dir the process cannot write is refused", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root ignores directory permissions; the file-as-dir case covers the error path")
		}
		dir := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		if s, err := bolt.Open(context.Background(), dir); err == nil {
			_ = s.Close()
			t.Fatal("Open of a read-only dir succeeded")
		}
	})
	t.Run("a file that is not a store is refused", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, bolt.FileName), make([]byte, 8192), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := bolt.Open(context.Background(), dir); err == nil {
			_ = s.Close()
			t.Fatal("Open of a zeroed file succeeded")
		}
	})
	t.Run("a cancelled context is refused before touching the dir", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		dir := filepath.Join(t.TempDir(), "never")
		if _, err := bolt.Open(ctx, dir); !errors.Is(err, context.Canceled) {
			t.Errorf("Open with a cancelled context: %v", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open with a cancelled context created %s", dir)
		}
	})
}
