package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/wardline/wardline/eventstore/postgres"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// testDSN is the database the tests use: WARDLINE_POSTGRES_URL, or the
// local trust-auth server. Unreachable skips, except under
// WARDLINE_INTEGRATION=1, where it fails.
func testDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("WARDLINE_POSTGRES_URL")
	if dsn == "" {
		dsn = defaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.Ping(ctx)
		_ = conn.Close(ctx)
	}
	if err != nil {
		if os.Getenv("WARDLINE_INTEGRATION") == "1" {
			tb.Fatalf("PostgreSQL at %s unreachable under WARDLINE_INTEGRATION=1: %v", dsn, err)
		}
		tb.Skipf("PostgreSQL at %s unreachable (set WARDLINE_POSTGRES_URL): %v", dsn, err)
	}
	return dsn
}

// newSchema returns a schema name no other test or CI run uses, dropped at
// cleanup with everything in it.
func newSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	schema := "wl_test_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// openStore opens a store on schema and closes it at cleanup.
func openStore(tb testing.TB, dsn, schema string, opts ...postgres.Option) *postgres.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, dsn, append([]postgres.Option{postgres.WithSchema(schema)}, opts...)...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// newStore returns a fresh store in a schema of its own.
func newStore(tb testing.TB, opts ...postgres.Option) *postgres.Store {
	tb.Helper()
	dsn := testDSN(tb)
	return openStore(tb, dsn, newSchema(tb, dsn), opts...)
}
