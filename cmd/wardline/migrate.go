package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/bolt"
	"github.com/wardline/wardline/migrations"
)

// runMigrate brings the store's on-disk format up to this binary's. Event
// payloads are never rewritten (they are upcast on read, see package
// migrations); only the store's own format moves.
func runMigrate(ctx context.Context, args []string, stdio IO) error {
	var (
		c      Config
		dryRun bool
	)
	fs := flag.NewFlagSet("wardline migrate", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	storeFlags(fs, stdio.Getenv, &c)
	fs.BoolVar(&dryRun, "dry-run", false, "print the plan without changing anything")
	if err := fs.Parse(args); err != nil {
		return err
	}
	kind, err := parseStoreKind(c.Store)
	if err != nil {
		return err
	}
	if kind != storeEmbedded {
		// Shared backends migrate their schema inside Open, under a lock
		// that several nodes starting at once respect.
		if dryRun {
			fmt.Fprintf(stdio.Stdout, "%s: the schema is migrated when the store is opened\n", redact(c.Store))
			return nil
		}
		s, err := openStore(ctx, c)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdio.Stdout, "%s: schema is current\n", redact(c.Store))
		return s.Close()
	}

	current := 0
	if _, err := os.Stat(filepath.Join(c.DataDir, bolt.FileName)); err == nil {
		current, err = bolt.ReadFormatVersion(c.DataDir)
		if errors.Is(err, eventstore.ErrLocked) {
			return fmt.Errorf("data dir %s is in use by a running server; stop it first: %w", c.DataDir, err)
		}
		if err != nil {
			return err
		}
	}
	steps := embeddedSteps(ctx, c)
	plan, err := steps.Plan(current, bolt.FormatVersion)
	if errors.Is(err, migrations.ErrNewerFormat) {
		return fmt.Errorf("store in %s has format %d, newer than this binary's %d: upgrade wardline (downgrades are not supported): %w",
			c.DataDir, current, bolt.FormatVersion, err)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(plan) == 0 {
		fmt.Fprintf(stdio.Stdout, "embedded store in %s is at format %d, the current one: nothing to do\n", c.DataDir, current)
		return nil
	}
	for _, s := range plan {
		fmt.Fprintf(stdio.Stdout, "step %d: %s\n", s.Version, s.Description)
	}
	if dryRun {
		return nil
	}
	return migrations.Run(ctx, plan, func(s migrations.Step) {
		fmt.Fprintf(stdio.Stdout, "applying step %d…\n", s.Version)
	})
}

// embeddedSteps lists the embedded store's format steps, oldest first.
// Format 1 is the first: Open creates it in an empty directory.
func embeddedSteps(ctx context.Context, c Config) migrations.Steps {
	return migrations.Steps{{
		Version:     1,
		Description: "create the embedded store (log, stream index, event ids, stream metadata, epoch)",
		Apply: func(context.Context) error {
			if err := prepareDataDir(c.DataDir); err != nil {
				return err
			}
			s, err := bolt.Open(ctx, c.DataDir)
			if err != nil {
				return err
			}
			return s.Close()
		},
	}}
}
