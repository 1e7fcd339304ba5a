package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"
)

// startRealServer builds this checkout's wardline (or takes the binary
// named by WARDLINE_BENCH_SERVER_BIN) and starts `serve`; it skips the test
// when the gateway is not mounted in serve yet.
func startRealServer(t *testing.T) *child {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and starts wardline serve: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := os.Getenv("WARDLINE_BENCH_SERVER_BIN")
	if bin == "" {
		var err error
		if bin, err = buildServer(ctx, dir); err != nil {
			t.Fatal(err)
		}
	}
	c, err := startServer(ctx, bin, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("stop server: %v", err)
		}
	})
	probe, err := dial(ctx, newDialer(), c.addr)
	if errors.Is(err, errGatewayNotMounted) {
		t.Fatal("wardline serve does not mount the gateway: /ws/chat answers 404")
	}
	if err != nil {
		t.Fatal(err)
	}
	probe.close()
	return c
}

// runJSON runs the tool against srv and decodes its JSON result into v.
func runJSON(t *testing.T, srv *child, v any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	global := []string{"--addr", srv.addr, "--server-pid", strconv.Itoa(srv.pid()), "--json", "--max-time", "90s"}
	if err := execute(ctx, append(global, args...), &out, &errOut); err != nil {
		t.Fatalf("wardline-bench %v: %v\nstderr: %s\n%s", args, err, errOut.String(), srv.logTail())
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		t.Fatalf("result %q: %v", out.String(), err)
	}
}

func TestScenariosAgainstTheRealServer(t *testing.T) {
	srv := startRealServer(t)
	for _, tr := range []transport{transportNative, transportSocketIO} {
		t.Run("over "+string(tr), func(t *testing.T) { testScenarios(t, srv, tr) })
	}
}

// testScenarios runs every scenario, small, over one transport.
func testScenarios(t *testing.T, srv *child, tr transport) {
	run := func(t *testing.T, v any, args ...string) {
		t.Helper()
		runJSON(t, srv, v, append(args, "--transport", string(tr))...)
	}

	t.Run("a small fan-out delivers every message once, in order, to every member", func(t *testing.T) {
		var r fanoutResult
		run(t, &r, "fanout", "--rooms", "2", "--members", "3", "--rate", "20", "--warmup", "0s", "--duration", "1s", "--grace", "10s")
		if r.Transport != string(tr) {
			t.Fatalf("result transport %q, want %q", r.Transport, tr)
		}
		if r.Planned != 40 || r.Sent != r.Planned || r.Acked != r.Sent || r.AckFailed != 0 || r.Unanswered != 0 {
			t.Fatalf("planned %d sent %d acked %d failed %d (%v)", r.Planned, r.Sent, r.Acked, r.AckFailed, r.AckFailures)
		}
		if r.Expected != r.Acked*3 || r.Received != r.Expected || r.Lost != 0 || r.Duplicates != 0 || r.Reordered != 0 || r.Undecoded != 0 || r.Disconnects != 0 {
			t.Fatalf("accounting %+v", r)
		}
		if r.Latency.Count != r.Expected || r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P99 {
			t.Fatalf("latency %+v for %d deliveries", r.Latency, r.Expected)
		}
		if r.Server == nil || r.Server.RSSKiB == 0 {
			t.Fatalf("server figures missing: %+v", r.Server)
		}
	})

	t.Run("several publishers per room share its rate without loss or reordering", func(t *testing.T) {
		var r fanoutResult
		run(t, &r, "fanout", "--rooms", "1", "--members", "2", "--publishers", "3", "--rate", "30", "--warmup", "0s", "--duration", "1s", "--grace", "10s")
		if r.Planned != 30 || r.Sent != 30 || r.Acked != 30 || r.Expected != 60 || r.Received != 60 || r.Lost != 0 || r.Duplicates != 0 || r.Reordered != 0 {
			t.Fatalf("fanout %+v", r)
		}
	})

	t.Run("idle connections all authenticate and stay up", func(t *testing.T) {
		var r idleResult
		run(t, &r, "idle", "--conns", "20", "--hold", "200ms", "--settle", "0s", "--inflight", "5")
		if r.Connected != 20 || r.Disconnects != 0 || r.RSSAfter == 0 || r.Transport != string(tr) {
			t.Fatalf("idle %+v", r)
		}
	})

	t.Run("a connect storm authenticates every connection", func(t *testing.T) {
		var r stormResult
		run(t, &r, "connect-storm", "--conns", "40", "--inflight", "10")
		if r.Connected != 40 || r.Failed != 0 || r.ConnsPerSec <= 0 || r.Connect.Count != 40 || r.Transport != string(tr) {
			t.Fatalf("storm %+v", r)
		}
	})
}
