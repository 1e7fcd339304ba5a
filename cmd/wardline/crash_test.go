package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/native/client"
)

const devSecret = "wardline-dev-secret-do-not-use-in-production"

// node is a `wardline serve` child process.
type node struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// startNode runs serve in dir with extra args and waits until it is ready.
func startNode(t *testing.T, dir string, extra ...string) *node {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{"serve", "--addr", addr}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, addr: addr, done: make(chan error, 1)}
	var logs strings.Builder
	logDone := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
		close(logDone)
	}()
	go func() {
		<-logDone
		n.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-n.done
		if t.Failed() {
			t.Logf("logs of the node on %s:\n%s", addr, logs.String())
		}
		n.done <- nil
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node on %s not ready: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *node) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-n.done
	n.done <- err
}

func mint(t *testing.T, sub string, roles ...domain.Role) string {
	t.Helper()
	m, err := auth.NewMinter(auth.MinterConfig{Secret: []byte(devSecret)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Mint(auth.Claims{Subject: sub, Roles: roles}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dial(t *testing.T, addr, user string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]client.Option{client.WithToken(mint(t, user, domain.RoleNurse))}, opts...)
	c, err := client.Dial(ctx, "ws://"+addr+"/ws/chat", opts...)
	if err != nil {
		t.Fatalf("dial %s as %s: %v", addr, user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func emit(t *testing.T, c *client.Client, event string, data any, into any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := c.Emit(ctx, event, data)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	if into != nil {
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatalf("%s ack %s: %v", event, raw, err)
		}
	}
}

type sendAck struct {
	MessageID string `json:"messageId"`
	Seq       uint64 `json:"seq"`
	Offset    string `json:"offset"`
}

type historyMessage struct {
	MessageID string `json:"messageId"`
	Seq       uint64 `json:"seq"`
	Content   string `json:"content"`
}

// TestAServerKilledMidTrafficLosesNoAcknowledgedMessage is the crash test of
// the whole server: a client sends as fast as acks come back, the server is
// SIGKILLed at a random moment, and after a restart on the same data dir
// every acknowledged message is in the room's history with its seq, the seq
// has no gap, and the room accepts messages again.
func TestAServerKilledMidTrafficLosesNoAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		n := startNode(t, dir)
		c := dial(t, n.addr, "alice")
		room := fmt.Sprintf("crash-%d", round)
		emit(t, c, "room:create", map[string]any{"roomId": room, "name": "Crash", "private": false}, nil)

		acked := make(map[string]uint64)
		// Below the rate limit's burst of 200, so only the kill stops the sender.
		killAfter := 30 + rand.IntN(150)
		sendErr := make(chan error, 1)
		ackc := make(chan sendAck, 1024)
		go func() {
			defer close(ackc)
			for i := 0; ; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				raw, err := c.Emit(ctx, "message:send", map[string]any{"roomId": room, "content": fmt.Sprintf("m%d", i), "clientMsgId": fmt.Sprintf("c%d", i)})
				cancel()
				if err != nil {
					sendErr <- err
					return
				}
				var a sendAck
				if err := json.Unmarshal(raw, &a); err != nil {
					sendErr <- err
					return
				}
				ackc <- a
			}
		}()
		for a := range ackc {
			acked[a.MessageID] = a.Seq
			if len(acked) == killAfter {
				n.kill(t)
			}
		}
		sendFailure := <-sendErr
		sendErr <- sendFailure
		if len(acked) < killAfter {
			t.Fatalf("only %d acks before the sends failed (%v), wanted at least %d", len(acked), <-sendErr, killAfter)
		}

		n = startNode(t, dir)
		c = dial(t, n.addr, "alice")
		got := make(map[string]uint64)
		var before any
		for {
			req := map[string]any{"roomId": room, "limit": 200}
			if before != nil {
				req["beforeSeq"] = before
			}
			var page struct {
				Messages []historyMessage `json:"messages"`
			}
			emit(t, c, "history:fetch", req, &page)
			if len(page.Messages) == 0 {
				break
			}
			for _, m := range page.Messages {
				got[m.MessageID] = m.Seq
			}
			before = page.Messages[0].Seq
		}
		for id, seq := range acked {
			if got[id] != seq {
				t.Fatalf("round %d: acknowledged message %s (seq %d) is missing or changed after the crash (history has seq %d)", round, id, seq, got[id])
			}
		}
		for seq := uint64(1); seq <= uint64(len(got)); seq++ {
			found := false
			for _, s := range got {
				if s == seq {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("round %d: seq %d missing in a history of %d messages", round, seq, len(got))
			}
		}
		var a sendAck
		emit(t, c, "message:send", map[string]any{"roomId": room, "content": "after the crash"}, &a)
		if a.Seq != uint64(len(got))+1 {
			t.Fatalf("round %d: first message after the restart has seq %d, want %d", round, a.Seq, len(got)+1)
		}
		t.Logf("round %d: %d acked before SIGKILL, %d in history after restart", round, len(acked), len(got))
		c.Close()
		n.kill(t)
	}
}

// TestTwoNodesOnOnePostgresDeliverEachOthersMessages runs two real server
// processes on one PostgreSQL store: a message sent through one node reaches
// a member connected to the other, with the same offset, and a client that
// resumes on the other node gets what it missed.
func TestTwoNodesOnOnePostgresDeliverEachOthersMessages(t *testing.T) {
	dsn := postgresDSN(t)
	a := startNode(t, t.TempDir(), "--store", dsn, "--node-id", "node-a")
	b := startNode(t, t.TempDir(), "--store", dsn, "--node-id", "node-b")

	room := fmt.Sprintf("ward-%d", time.Now().UnixNano())
	alice := dial(t, a.addr, "alice")
	emit(t, alice, "room:create", map[string]any{"roomId": room, "name": "Ward", "private": true, "members": []string{"bob"}}, nil)
	bob := dial(t, b.addr, "bob")

	var ack sendAck
	emit(t, alice, "message:send", map[string]any{"roomId": room, "content": "vitals stable"}, &ack)
	push := waitPush(t, bob, "message:new", ack.MessageID)
	if push.Offset != ack.Offset {
		t.Fatalf("node b pushed offset %q, node a acked %q", push.Offset, ack.Offset)
	}
	bob.Close()

	var missed sendAck
	emit(t, alice, "message:send", map[string]any{"roomId": room, "content": "while bob was away"}, &missed)
	bob2 := dial(t, b.addr, "bob", client.WithOffset(push.Offset))
	got := waitPush(t, bob2, "message:new", missed.MessageID)
	if got.Offset != missed.Offset {
		t.Fatalf("resumed push offset %q, want %q", got.Offset, missed.Offset)
	}
}

func waitPush(t *testing.T, c *client.Client, event, messageID string) client.Push {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p, ok := <-c.Events():
			if !ok {
				t.Fatalf("events closed while waiting for %s %s: %v", event, messageID, c.Err())
			}
			if p.Event != event {
				continue
			}
			var m struct {
				MessageID string `json:"messageId"`
			}
			if json.Unmarshal(p.Data, &m) == nil && m.MessageID == messageID {
				return p
			}
		case <-timeout:
			t.Fatalf("no %s for %s within 10 s", event, messageID)
		}
	}
}

// postgresDSN returns a DSN with a schema of this test's own, or skips when
// PostgreSQL is unreachable (a failure under WARDLINE_INTEGRATION=1).
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("WARDLINE_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("WARDLINE_INTEGRATION") == "1" {
			t.Fatalf("PostgreSQL unreachable at %s and WARDLINE_INTEGRATION=1: %v", base, err)
		}
		t.Skipf("PostgreSQL unreachable at %s (%v): two-node test skipped", base, err)
	}
	defer conn.Close(context.Background())
	schema := fmt.Sprintf("wl_cli_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	sep := "&"
	if !strings.Contains(base, "?") {
		sep = "?"
	}
	return base + sep + "search_path=" + schema
}
