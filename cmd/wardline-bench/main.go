// Command wardline-bench measures a Wardline server the way issue 3 asks:
// fan-out latency and delivery accounting, idle memory per connection, and
// authenticated connections per second in a connect storm.
//
// It talks the native protocol (/ws/chat), or with --transport socketio
// Socket.IO v4 on the /chat namespace (Engine.IO v4 over WebSocket only, at
// /socket.io/), over loopback only. By default it
// builds and starts `wardline serve` itself on a free loopback port with a
// temporary data directory, so it can read the server's CPU time and RSS from
// /proc over exactly the measured window, and stops it afterwards (SIGTERM,
// then SIGKILL after 10 s). With --addr it measures a running server instead
// (CPU and RSS only when --server-pid names it).
//
// Every loop is bounded in count and time, and the whole run is bounded by
// --max-time: the tool always stops by itself.
//
//	wardline-bench [global flags] SCENARIO [scenario flags]
//	wardline-bench fanout --rooms 10 --members 100 --rate 100 --duration 20s --warmup 5s
//	wardline-bench idle --conns 10000 --hold 10s
//	wardline-bench connect-storm --conns 2000 --inflight 500
//	wardline-bench fanout --transport socketio --rate 50
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wardline/wardline/transport/auth"
)

// devSecret is the secret `wardline serve` uses when none is configured.
const devSecret = "wardline-dev-secret-do-not-use-in-production"

const usage = `wardline-bench — load tool for the Wardline gateway (loopback only)

Usage:
  wardline-bench [global flags] SCENARIO [flags]

Scenarios:
  fanout         R rooms x M members, one publisher per room at N msgs/s:
                 latency send->delivery, deliveries/s, loss, duplicates,
                 reordering, server CPU per 1,000 deliveries
  idle           N authenticated idle connections: server RSS per connection
  connect-storm  N connections, K in flight, each connected and authenticated:
                 connections/s, failures, connect time

Every scenario takes --transport native (default: /ws/chat, auth frame) or
--transport socketio (Socket.IO v4 on /chat over an Engine.IO v4 WebSocket at
/socket.io/, no polling; CONNECT auth {token}, requests as events with acks,
the tool answers the server's pings).

Examples:
  wardline-bench fanout --rooms 10 --members 100 --rate 50
  wardline-bench fanout --transport socketio --rooms 10 --members 100 --rate 50
  wardline-bench idle --transport socketio --conns 10000
  wardline-bench connect-storm --transport socketio --conns 2000 --inflight 500

Global flags (also accepted after the scenario):
`

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "wardline-bench:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "wardline-bench:", err)
		os.Exit(1)
	}
}

// options are the global flags.
type options struct {
	serverBin  string
	addr       string
	serverPID  int
	debugAddr  string
	secret     string
	serverArgs listFlag
	json       bool
	maxTime    time.Duration
	cpuProfile string
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// register defines the global flags on fs with o's current values as
// defaults, so flags given before the scenario survive the scenario's parse.
func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.serverBin, "server-bin", o.serverBin, "wardline binary to start (default: go build ./cmd/wardline of this checkout into a temp dir)")
	fs.StringVar(&o.addr, "addr", o.addr, "measure an already running server at HOST:PORT (loopback only) instead of starting one")
	fs.IntVar(&o.serverPID, "server-pid", o.serverPID, "with --addr: the server's pid, for CPU and RSS figures")
	fs.StringVar(&o.secret, "jwt-secret", o.secret, "HS256 secret the server verifies tokens with (passed to a started server)")
	fs.StringVar(&o.debugAddr, "server-debug-addr", o.debugAddr, "with --addr: the server's --debug-addr, for --server-profile (a started server gets one of its own)")
	fs.Var(&o.serverArgs, "server-arg", "extra argument for the started server's serve command (repeatable)")
	fs.BoolVar(&o.json, "json", o.json, "print the result as JSON")
	fs.DurationVar(&o.maxTime, "max-time", o.maxTime, "hard bound on the whole run")
	fs.StringVar(&o.cpuProfile, "cpuprofile", o.cpuProfile, "write the tool's own CPU profile of the scenario to this file")
}

// execute runs the command line args; main and the end-to-end test call it.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := options{secret: devSecret, maxTime: 10 * time.Minute}
	global := flag.NewFlagSet("wardline-bench", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() {
		fmt.Fprint(stderr, usage)
		global.PrintDefaults()
	}
	o.register(global)
	if err := global.Parse(args); err != nil {
		return err
	}
	if global.NArg() == 0 {
		global.Usage()
		return fmt.Errorf("%w: no scenario given", errUsage)
	}
	name, rest := global.Arg(0), global.Args()[1:]
	fs := flag.NewFlagSet("wardline-bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.register(fs)
	var (
		scenario func(context.Context, *target) (any, error)
		validate func() error
		tr       = transportNative
	)
	transportFlag := func() {
		fs.Var(&tr, "transport", "protocol: native (/ws/chat) or socketio (Socket.IO v4 on /chat, WebSocket only)")
	}
	switch name {
	case "fanout":
		var c fanoutConfig
		fs.IntVar(&c.Rooms, "rooms", 10, "rooms")
		fs.IntVar(&c.Members, "members", 100, "member connections per room (each its own user)")
		fs.IntVar(&c.Rate, "rate", 100, "messages per second per room")
		fs.IntVar(&c.Publishers, "publishers", 1, "publisher connections per room sharing its rate (the server limits each connection, 100 events/s by default)")
		fs.DurationVar(&c.Duration, "duration", 20*time.Second, "measured window")
		fs.DurationVar(&c.Warmup, "warmup", 5*time.Second, "publishing before the measured window")
		fs.DurationVar(&c.Grace, "grace", 5*time.Second, "wait after the last send for outstanding deliveries")
		fs.IntVar(&c.ContentSize, "content-size", 0, "pad message content to this many bytes")
		fs.IntVar(&c.SetupInflight, "setup-inflight", 64, "connections set up at once")
		fs.StringVar(&c.ServerProfile, "server-profile", "", "write the server's CPU profile over the window here (needs /debug/pprof/ on the server)")
		transportFlag()
		scenario = func(ctx context.Context, t *target) (any, error) { return runFanout(ctx, t, c) }
		validate = func() error { return c.validate() }
	case "idle":
		var c idleConfig
		fs.IntVar(&c.Conns, "conns", 10000, "idle authenticated connections")
		fs.DurationVar(&c.Hold, "hold", 10*time.Second, "how long to hold them before measuring")
		fs.IntVar(&c.Inflight, "inflight", 200, "connections set up at once")
		fs.DurationVar(&c.Settle, "settle", 2*time.Second, "wait before the baseline RSS sample")
		transportFlag()
		scenario = func(ctx context.Context, t *target) (any, error) { return runIdle(ctx, t, c) }
		validate = func() error { return c.validate() }
	case "connect-storm":
		var c stormConfig
		fs.IntVar(&c.Conns, "conns", 2000, "connections")
		fs.IntVar(&c.Inflight, "inflight", 500, "connections being set up at once")
		transportFlag()
		scenario = func(ctx context.Context, t *target) (any, error) { return runStorm(ctx, t, c) }
		validate = func() error { return c.validate() }
	default:
		global.Usage()
		return fmt.Errorf("%w: unknown scenario %q", errUsage, name)
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if err := o.check(); err != nil {
		return err
	}
	// Refused before a server is built or started.
	if err := validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}

	ctx, cancel := context.WithTimeout(ctx, o.maxTime)
	defer cancel()
	lim, err := raiseNoFile()
	if err != nil {
		return err
	}
	if !o.json {
		fmt.Fprintf(stdout, "RLIMIT_NOFILE raised to %d (tool and started server)\n", lim.Cur)
	}
	tgt, cleanup, err := o.target(ctx, stderr)
	if err != nil {
		return err
	}
	tgt.transport = tr
	defer func() {
		if cerr := cleanup(); cerr != nil {
			fmt.Fprintln(stderr, "wardline-bench:", cerr)
		}
	}()
	// A probe first, so a server without the gateway fails fast and clearly.
	if c, err := tgt.dial(ctx); err != nil {
		return err
	} else {
		c.close()
	}
	stopProfile, err := startProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	res, err := scenario(ctx, tgt)
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	return report(stdout, res, o.json)
}

// check refuses option combinations that cannot work, and anything but
// loopback: the tool must never load another machine.
func (o *options) check() error {
	if o.addr != "" {
		if o.serverBin != "" || len(o.serverArgs) > 0 {
			return fmt.Errorf("%w: --addr targets a running server; --server-bin and --server-arg start one", errUsage)
		}
		host := o.addr
		if i := strings.LastIndex(host, ":"); i >= 0 {
			host = host[:i]
		}
		host = strings.Trim(host, "[]")
		if host != "localhost" && host != "::1" && !strings.HasPrefix(host, "127.") {
			return fmt.Errorf("%w: --addr %q is not loopback", errUsage, o.addr)
		}
	} else if o.serverPID != 0 {
		return fmt.Errorf("%w: --server-pid goes with --addr", errUsage)
	}
	if o.maxTime <= 0 {
		return fmt.Errorf("%w: --max-time must be positive", errUsage)
	}
	return nil
}

// target connects to --addr, or builds and starts a server; cleanup stops
// what was started and removes its temporary directory.
func (o *options) target(ctx context.Context, stderr io.Writer) (*target, func() error, error) {
	minter, err := auth.NewMinter(auth.MinterConfig{Secret: []byte(o.secret)})
	if err != nil {
		return nil, nil, fmt.Errorf("minter: %w", err)
	}
	t := &target{minter: minter, runID: strconv.FormatInt(time.Now().UnixNano()%1e12, 36), dialer: newDialer()}
	if o.addr != "" {
		t.addr, t.pid, t.debugAddr = o.addr, o.serverPID, o.debugAddr
		return t, func() error { return nil }, nil
	}
	tmp, err := os.MkdirTemp("", "wardline-bench-")
	if err != nil {
		return nil, nil, fmt.Errorf("temp dir: %w", err)
	}
	removeTmp := func() error { return os.RemoveAll(tmp) }
	bin := o.serverBin
	if bin == "" {
		fmt.Fprintln(stderr, "wardline-bench: building ./cmd/wardline")
		if bin, err = buildServer(ctx, tmp); err != nil {
			return nil, nil, errors.Join(err, removeTmp())
		}
	}
	extra := append([]string(nil), o.serverArgs...)
	if o.secret != devSecret {
		extra = append(extra, "--jwt-secret", o.secret)
	}
	c, err := startServer(ctx, bin, tmp, extra)
	if err != nil {
		return nil, nil, errors.Join(err, removeTmp())
	}
	t.addr, t.pid, t.debugAddr = c.addr, c.pid(), c.debugAddr
	return t, func() error { return errors.Join(c.stop(), removeTmp()) }, nil
}

// startProfile starts profiling the tool's CPU into path (nothing when
// path is empty); the returned function stops and flushes it.
func startProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}

// report prints res as JSON or as a human-readable summary.
func report(w io.Writer, res any, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		return nil
	}
	var err error
	switch r := res.(type) {
	case *fanoutResult:
		err = printFanout(w, r)
	case *idleResult:
		err = printIdle(w, r)
	case *stormResult:
		err = printStorm(w, r)
	default:
		return fmt.Errorf("report: unknown result %T", res)
	}
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}
