package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/bolt"
	"github.com/wardline/wardline/eventstore/esdb"
	"github.com/wardline/wardline/eventstore/postgres"
)

// storeKind names the backend a --store value selects.
type storeKind int

const (
	storeEmbedded storeKind = iota + 1
	storePostgres
	storeESDB
)

func parseStoreKind(s string) (storeKind, error) {
	switch {
	case s == "" || s == "embedded":
		return storeEmbedded, nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return storePostgres, nil
	case strings.HasPrefix(s, "esdb://"), strings.HasPrefix(s, "esdb+discover://"),
		strings.HasPrefix(s, "kurrentdb://"), strings.HasPrefix(s, "kurrentdb+discover://"):
		return storeESDB, nil
	}
	return 0, usageError{fmt.Sprintf("--store %q: want embedded, postgres://…, esdb://… or kurrentdb://…", redact(s))}
}

// redact hides a password in a store URL before it is printed.
func redact(s string) string {
	at := strings.LastIndex(s, "@")
	scheme := strings.Index(s, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return s
	}
	userinfo := s[scheme+3 : at]
	if i := strings.IndexByte(userinfo, ':'); i >= 0 {
		return s[:scheme+3] + userinfo[:i] + ":***" + s[at:]
	}
	return s
}

// prepareDataDir makes sure dir is a usable directory, with a clear error otherwise.
func prepareDataDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("data dir %s: cannot create it: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("data dir %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("data dir %s: is a file, not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".wardline-probe-*")
	if err != nil {
		return fmt.Errorf("data dir %s: not writable: %w", dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// openStore opens the configured event store. The data dir is prepared even
// for shared backends, since it holds this node's projections db.
func openStore(ctx context.Context, c Config) (eventstore.Store, error) {
	kind, err := parseStoreKind(c.Store)
	if err != nil {
		return nil, err
	}
	if err := prepareDataDir(c.DataDir); err != nil {
		return nil, err
	}
	var s eventstore.Store
	switch kind {
	case storeEmbedded:
		s, err = bolt.Open(ctx, c.DataDir, bolt.WithCommitInterval(c.CommitInterval))
		if errors.Is(err, eventstore.ErrLocked) {
			return nil, fmt.Errorf("data dir %s is in use by another wardline process (stop it first, or use a shared store): %w", c.DataDir, err)
		}
	case storePostgres:
		s, err = postgres.Open(ctx, c.Store)
	case storeESDB:
		s, err = esdb.Open(ctx, c.Store)
	}
	if errors.Is(err, eventstore.ErrNewerFormat) {
		return nil, fmt.Errorf("the store was written by a newer version of wardline; upgrade this binary (downgrades are not supported): %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redact(storeName(c)), err)
	}
	return s, nil
}

func storeName(c Config) string {
	if k, _ := parseStoreKind(c.Store); k == storeEmbedded {
		return "embedded (" + c.DataDir + ")"
	}
	return c.Store
}

// projectionsPath is this node's projections db.
func projectionsPath(c Config) string { return filepath.Join(c.DataDir, "projections.db") }
