// Command wardline is the Wardline server and its operator tools: serve,
// token, events tail, projections rebuild|status, migrate, conformance.
//
// main only parses the subcommand and turns SIGINT/SIGTERM into context
// cancellation; each subcommand is a function of (ctx, args, io) so the
// end-to-end tests can run it in-process or as a real child process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `wardline — event-sourced real-time messaging for care teams

Usage:
  wardline serve [flags]                    run the server (see wardline serve --help)
  wardline token --sub USER [--roles r1,r2] [--ttl 1h]
                                            print a JWT signed with the configured secret
  wardline events tail [--from POS] [--stream S] [--follow] [--ndjson]
                                            print the event log
  wardline projections status               show each projection's checkpoint and lag
  wardline projections rebuild NAME         rebuild a projection from the log
  wardline migrate [--dry-run]              bring the store's format up to this binary's
  wardline conformance [--addr localhost:3000]
                                            serve the Socket.IO protocol test suites' echo server
`

// IO is where a subcommand reads and writes.
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv env
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stdio := IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.LookupEnv}
	if err := run(ctx, os.Args[1:], stdio); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "wardline:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for usage errors and 1 for everything else.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func run(ctx context.Context, args []string, stdio IO) error {
	if len(args) == 0 {
		fmt.Fprint(stdio.Stderr, usage)
		return usageError{"no subcommand"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdio)
	case "token":
		return runToken(ctx, rest, stdio)
	case "events":
		if len(rest) == 0 || rest[0] != "tail" {
			return usageError{"events: want 'events tail'"}
		}
		return runEventsTail(ctx, rest[1:], stdio)
	case "projections":
		if len(rest) == 0 {
			return usageError{"projections: want 'status' or 'rebuild NAME'"}
		}
		switch rest[0] {
		case "status":
			return runProjectionsStatus(ctx, rest[1:], stdio)
		case "rebuild":
			return runProjectionsRebuild(ctx, rest[1:], stdio)
		}
		return usageError{fmt.Sprintf("projections: unknown subcommand %q", rest[0])}
	case "migrate":
		return runMigrate(ctx, rest, stdio)
	case "conformance":
		return runConformance(ctx, rest, stdio)
	case "help", "-h", "--help":
		fmt.Fprint(stdio.Stdout, usage)
		return nil
	}
	fmt.Fprint(stdio.Stderr, usage)
	return usageError{fmt.Sprintf("unknown subcommand %q", cmd)}
}
