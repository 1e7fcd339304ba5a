package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardline/wardline/eventstore"
)

// The SQL lives beside the code that depends on it: package eventstore may
// not import the migrations package, and a binary must carry the exact
// schema it was written against.
//
//go:embed schema/*.sql
var schemaFS embed.FS

// migrations lists the schema's SQL files; schema version i+1 is
// migrations[i]. Append only: a released file never changes.
var migrations = []string{
	"schema/0001_init.sql",
}

// migrate brings the store's schema to the newest version this binary
// knows, under a transaction-scoped advisory lock so that nodes starting
// together do not race. It returns the schema in use and the store's epoch.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (string, string, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return "", "", fmt.Errorf("postgres: migrate: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit

	if schema != "" {
		if err := lockMigration(ctx, tx, schema); err != nil {
			return "", "", err
		}
		// Checked before creating, so a role without CREATE on the database
		// can still use a schema an administrator made for it.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			return "", "", fmt.Errorf("postgres: migrate: %w", err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
				return "", "", fmt.Errorf("postgres: migrate: create schema %q: %w", schema, err)
			}
		}
	}
	var current *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&current); err != nil {
		return "", "", fmt.Errorf("postgres: migrate: %w", err)
	}
	switch {
	case current == nil:
		return "", "", fmt.Errorf("postgres: migrate: no schema on the search_path exists (use WithSchema)")
	case schema != "" && *current != schema:
		return "", "", fmt.Errorf("postgres: migrate: search_path resolves to schema %q, want %q", *current, schema)
	case schema == "":
		if err := lockMigration(ctx, tx, *current); err != nil {
			return "", "", err
		}
	}

	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    integer     PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return "", "", fmt.Errorf("postgres: migrate: %w", err)
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&version); err != nil {
		return "", "", fmt.Errorf("postgres: migrate: %w", err)
	}
	if version > len(migrations) {
		return "", "", fmt.Errorf("postgres: schema %q is at version %d, this binary knows %d: %w",
			*current, version, len(migrations), eventstore.ErrNewerFormat)
	}
	for v := version + 1; v <= len(migrations); v++ {
		sql, err := schemaFS.ReadFile(migrations[v-1])
		if err != nil {
			return "", "", fmt.Errorf("postgres: migrate: %w", err)
		}
		// No arguments: pgx uses the simple protocol, which runs a file of
		// several statements.
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return "", "", fmt.Errorf("postgres: migrate to version %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, v); err != nil {
			return "", "", fmt.Errorf("postgres: migrate to version %d: %w", v, err)
		}
	}

	epoch, err := newEpoch()
	if err != nil {
		return "", "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO store_meta (epoch) VALUES ($1) ON CONFLICT (singleton) DO NOTHING`, epoch); err != nil {
		return "", "", fmt.Errorf("postgres: migrate: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT epoch FROM store_meta`).Scan(&epoch); err != nil {
		return "", "", fmt.Errorf("postgres: migrate: read epoch: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", "", fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	return *current, epoch, nil
}

func lockMigration(ctx context.Context, tx pgx.Tx, schema string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "wardline-migrate:"+schema)
	if err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	return nil
}

// newEpoch makes the random identity of a new log. It avoids '.', the
// separator of eventstore offsets.
func newEpoch() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errors.Join(errors.New("postgres: new epoch"), err)
	}
	return hex.EncodeToString(b[:]), nil
}
