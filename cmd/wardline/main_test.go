package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/bolt"
	"github.com/wardline/wardline/transport/auth"
)

// binary is the wardline binary built once for the tests in this package:
// the CLI is tested as operators use it, as a real process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wardline-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "wardline")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build wardline:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// wardline runs the binary in dir with args and a clean WARDLINE_* environment.
func wardline(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run wardline %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WARDLINE_") {
			env = append(env, kv)
		}
	}
	return env
}

// seed writes n messages into a fresh embedded store in dir/data.
func seed(t *testing.T, dir string, n int) {
	t.Helper()
	ctx := context.Background()
	store, err := bolt.Open(ctx, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	dc := domain.Context{Now: now, Actor: domain.Actor{UserID: "alice", Roles: []domain.Role{domain.RoleNurse}}, NewID: domain.NewID}
	var room domain.Room
	evs, err := domain.CreateRoom{RoomID: "icu-1", Name: "ICU 1"}.Decide(dc, &room)
	if err != nil {
		t.Fatal(err)
	}
	appendDecided(t, store, dc, &room, evs)
	for i := 0; i < n; i++ {
		_, evs, err := domain.PostMessage{RoomID: "icu-1", Content: fmt.Sprintf("message %d", i)}.Decide(dc, &room)
		if err != nil {
			t.Fatal(err)
		}
		appendDecided(t, store, dc, &room, evs)
	}
}

func appendDecided(t *testing.T, store eventstore.Store, dc domain.Context, room *domain.Room, evs []domain.Event) {
	t.Helper()
	envs, err := dc.Wrap(evs)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]eventstore.EventData, len(envs))
	for i, e := range envs {
		raw, err := domain.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		data[i] = eventstore.EventData{ID: raw.ID, Type: raw.Type, SchemaVersion: raw.SchemaVersion, Data: raw.Data, Metadata: raw.Metadata}
	}
	res, err := store.Append(context.Background(), envs[0].Stream, eventstore.Exact(room.Version()), data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range envs {
		room.Apply(envs[i])
	}
	if room.Version() != res.Version {
		t.Fatalf("room version %d after apply, store says %d", room.Version(), res.Version)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServeAnswersHealthAndReadinessAndStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	seed(t, dir, 25)
	addr, debugAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(binary, "serve", "--addr", addr, "--debug-addr", debugAddr)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	var ready struct {
		Ready       bool `json:"ready"`
		Projections []struct {
			Name       string `json:"name"`
			Checkpoint uint64 `json:"checkpoint"`
			Lag        uint64 `json:"lag"`
		} `json:"projections"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&ready)
			resp.Body.Close()
			if err == nil && ready.Ready && len(ready.Projections) > 0 && ready.Projections[0].Lag == 0 && ready.Projections[0].Checkpoint > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready in time: %+v, err %v", ready, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range ready.Projections {
		if p.Checkpoint != 26 {
			t.Errorf("projection %s checkpoint %d, want 26 (one room created + 25 messages)", p.Name, p.Checkpoint)
		}
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	if dresp, err := http.Get("http://" + debugAddr + "/debug/pprof/goroutine?debug=1"); err != nil || dresp.StatusCode != http.StatusOK {
		t.Errorf("pprof on --debug-addr: %v %v", dresp, err)
	} else {
		dresp.Body.Close()
	}
	if dresp, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		if dresp.StatusCode == http.StatusOK {
			t.Errorf("pprof is served on the public address")
		}
		dresp.Body.Close()
	}
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte(`wardline_projection_checkpoint{projection="rooms"} 26`)) {
		t.Errorf("metrics lack the rooms checkpoint:\n%s", metrics)
	}
	// The 26 events were written before the server started: this process
	// has committed nothing.
	if !bytes.Contains(metrics, []byte("wardline_store_committed_events_total 0\n")) || !bytes.Contains(metrics, []byte("wardline_store_commits_total 0\n")) {
		t.Errorf("metrics lack the embedded store's commit counters:\n%s", metrics)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit within 10 s of SIGTERM")
	}
	t.Logf("exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	var all []string
	for l := range logs {
		all = append(all, l)
	}
	if !strings.Contains(strings.Join(all, "\n"), "DEVELOPMENT JWT SECRET") {
		t.Errorf("serve with no secret did not warn about the dev secret; logs:\n%s", strings.Join(all, "\n"))
	}
}

func TestServeRefusesASecondProcessOnTheSameDataDir(t *testing.T) {
	dir := t.TempDir()
	store, err := bolt.Open(context.Background(), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// Another process holds the data dir (bbolt's flock is per open file, so
	// even this test process holding it makes the child fail).
	r := wardline(t, dir, "serve", "--addr", freeAddr(t))
	if r.code != 1 || !strings.Contains(r.stderr, "in use by another wardline process") {
		t.Fatalf("want exit 1 and a clear lock error, got %d: %s", r.code, r.stderr)
	}
}

func TestCommandsRefuseABadDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "afile"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve", "--data", "afile", "--addr", freeAddr(t)},
		{"events", "tail", "--data", "afile"},
		{"projections", "rebuild", "--data", "afile", "rooms"},
	} {
		r := wardline(t, dir, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "is a file, not a directory") {
			t.Errorf("%v: want exit 1 and a clear error, got %d: %s", args, r.code, r.stderr)
		}
	}
}

func TestServeRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	r := wardline(t, t.TempDir(), "serve", "--addr", "0.0.0.0:0")
	if r.code != 1 || !strings.Contains(r.stderr, "refusing plain HTTP") {
		t.Fatalf("got %d: %s", r.code, r.stderr)
	}
}

func TestEventsTailPrintsTheLogAsNDJSONAndByStream(t *testing.T) {
	dir := t.TempDir()
	seed(t, dir, 3)
	r := wardline(t, dir, "events", "tail", "--ndjson")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 events, got %d:\n%s", len(lines), r.stdout)
	}
	var last struct {
		Position uint64          `json:"position"`
		Offset   string          `json:"offset"`
		Stream   string          `json:"stream"`
		Type     string          `json:"type"`
		Data     json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Position != 4 || last.Stream != "room-icu-1" || last.Type != "MessagePosted" || !bytes.Contains(last.Data, []byte("message 2")) {
		t.Fatalf("last line: %+v", last)
	}

	r = wardline(t, dir, "events", "tail", "--from", last.Offset)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("tail from the last offset should print nothing: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = wardline(t, dir, "events", "tail", "--from", "2")
	if n := strings.Count(r.stdout, "MessagePosted"); r.code != 0 || n != 2 {
		t.Fatalf("tail --from 2: want 2 messages, got %d (exit %d): %s", n, r.code, r.stdout+r.stderr)
	}
	r = wardline(t, dir, "events", "tail", "--stream", "room-icu-1", "--limit", "2")
	if n := strings.Count(r.stdout, "room-icu-1@"); r.code != 0 || n != 2 {
		t.Fatalf("tail --stream --limit 2: got %d lines (exit %d): %s", n, r.code, r.stdout+r.stderr)
	}
	r = wardline(t, dir, "events", "tail", "--stream", "room-nope")
	if r.code != 1 || !strings.Contains(r.stderr, "has no events") {
		t.Fatalf("unknown stream: %d %s", r.code, r.stderr)
	}
	r = wardline(t, dir, "events", "tail", "--from", "otherstore.5")
	if r.code != 2 || !strings.Contains(r.stderr, "not a position of this store") {
		t.Fatalf("foreign offset: %d %s", r.code, r.stderr)
	}
}

func TestProjectionsRebuildAndStatusWorkOnAnIdleDataDir(t *testing.T) {
	dir := t.TempDir()
	seed(t, dir, 40)
	r := wardline(t, dir, "projections", "rebuild", "rooms")
	if r.code != 0 || !strings.Contains(r.stdout, "rebuilt rooms: 41 events up to position 41") {
		t.Fatalf("rebuild: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Piped, progress comes as plain lines, never terminal escapes.
	if strings.Contains(r.stderr, "\x1b[") || strings.Contains(r.stderr, "\r") {
		t.Errorf("progress on a pipe contains terminal control characters: %q", r.stderr)
	}
	r = wardline(t, dir, "projections", "status", "--json")
	if r.code != 0 {
		t.Fatalf("status: %d %s", r.code, r.stderr)
	}
	var st []struct {
		Name       string `json:"name"`
		Checkpoint uint64 `json:"checkpoint"`
		Head       uint64 `json:"head"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	found := false
	for _, s := range st {
		if s.Name == "rooms" {
			found = true
			if s.Checkpoint != 41 || s.Head != 41 {
				t.Errorf("rooms after rebuild: %+v", s)
			}
		}
	}
	if !found {
		t.Fatalf("no rooms projection in %s", r.stdout)
	}
	r = wardline(t, dir, "projections", "rebuild", "nosuch")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown projection "nosuch"`) {
		t.Fatalf("unknown projection: %d %s", r.code, r.stderr)
	}
}

func TestMigrateReportsTheCurrentFormatAndCreatesAnEmptyStore(t *testing.T) {
	dir := t.TempDir()
	r := wardline(t, dir, "migrate", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "step 1:") {
		t.Fatalf("dry run on an empty dir: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", bolt.FileName)); err == nil {
		t.Fatal("a dry run created the store")
	}
	r = wardline(t, dir, "migrate")
	if r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	r = wardline(t, dir, "migrate")
	if r.code != 0 || !strings.Contains(r.stdout, "nothing to do") {
		t.Fatalf("second migrate: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestTokenMintsAJWTTheServerVerifies(t *testing.T) {
	r := wardline(t, t.TempDir(), "token", "--sub", "alice", "--roles", "nurse,physician", "--ttl", "5m")
	if r.code != 0 {
		t.Fatalf("token: %d %s", r.code, r.stderr)
	}
	v, err := auth.NewVerifier(auth.Config{Secret: []byte("wardline-dev-secret-do-not-use-in-production")})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	claims, err := v.Verify(context.Background(), strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != "alice" || len(claims.Roles) != 2 || claims.Roles[1] != domain.RolePhysician {
		t.Fatalf("claims: %+v", claims)
	}
	if d := time.Until(claims.ExpiresAt); d < 4*time.Minute || d > 6*time.Minute {
		t.Fatalf("expiry %v away, want about 5m", d)
	}
	for _, args := range [][]string{{"token"}, {"token", "--sub", "a~b"}, {"token", "--sub", "x", "--ttl", "-1h"}} {
		if r := wardline(t, t.TempDir(), args...); r.code == 0 {
			t.Errorf("%v succeeded: %s", args, r.stdout)
		}
	}
}

func TestUnknownSubcommandIsAUsageError(t *testing.T) {
	r := wardline(t, t.TempDir(), "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, "unknown subcommand") {
		t.Fatalf("%d %s", r.code, r.stderr)
	}
}
