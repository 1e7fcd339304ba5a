package socketio_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardline/wardline/transport/socketio"
)

// e2eDir holds the Node scripts and their node_modules (socket.io-client).
var e2eDir = filepath.Join("..", "..", "test", "e2e-node")

// requireNode returns the node binary, or skips (fails under
// WARDLINE_INTEGRATION=1) when node or the npm packages are missing.
func requireNode(t *testing.T) string {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("WARDLINE_INTEGRATION") == "1" {
			t.Fatalf("%s (WARDLINE_INTEGRATION=1 makes this a failure)", why)
		}
		t.Skip(why)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed: the end-to-end test with the real socket.io-client needs it")
	}
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "socket.io-client", "package.json")); err != nil {
		missing("socket.io-client is not installed: run scripts/npm-install.sh (npm install in test/e2e-node)")
	}
	return node
}

// newE2EServer serves the /chat namespace the client script expects: auth
// token "x", an echo with ack, binary in both directions, connection state
// recovery with pids it issued, and a server disconnect on "kick-me".
func newE2EServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv, err := socketio.NewServer(socketio.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	issued := map[string]bool{}
	chat := srv.Of("/chat")
	chat.OnConnect(func(_ context.Context, c *socketio.Conn, auth json.RawMessage) error {
		var a struct {
			Token string `json:"token"`
		}
		if json.Unmarshal(auth, &a) != nil || a.Token != "x" {
			return &socketio.ConnectError{Message: "unauthorized", Data: map[string]string{"code": "unauthorized"}}
		}
		if r, ok := socketio.ParseRecovery(auth); ok {
			mu.Lock()
			valid := issued[r.PID]
			mu.Unlock()
			if valid {
				c.SetPID(r.PID)
				return c.Emit("replayed", r.Offset)
			}
		}
		var b [8]byte
		_, _ = rand.Read(b[:])
		pid := hex.EncodeToString(b[:])
		mu.Lock()
		issued[pid] = true
		mu.Unlock()
		c.SetPID(pid)
		return c.Emit("welcome", map[string]string{"socketId": c.ID(), "token": a.Token}, "off-1")
	})
	chat.On("echo", func(_ *socketio.Conn, ev *socketio.Event) {
		if err := ev.Ack(map[string]any{"args": ev.Args}); err != nil {
			t.Errorf("echo ack: %v", err)
		}
	})
	chat.On("upload", func(c *socketio.Conn, ev *socketio.Event) {
		data, ok := ev.BinaryArg(0)
		var meta struct {
			Name string `json:"name"`
		}
		if !ok || ev.Unmarshal(1, &meta) != nil {
			t.Errorf("upload args %s with %d attachments", ev.Args, len(ev.Binary))
			return
		}
		reversed := slices.Clone(data)
		slices.Reverse(reversed)
		if err := ev.Ack(socketio.Binary(reversed)); err != nil {
			t.Errorf("upload ack: %v", err)
		}
		if err := c.Emit("file", socketio.Binary(data), meta.Name, "off-2"); err != nil {
			t.Errorf("file emit: %v", err)
		}
	})
	chat.On("kick-me", func(c *socketio.Conn, _ *socketio.Event) {
		if err := c.Disconnect(); err != nil {
			t.Errorf("Disconnect: %v", err)
		}
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	})
	return ts
}

func TestRealSocketIOClientEndToEnd(t *testing.T) {
	node := requireNode(t)
	for _, mode := range []string{"default", "websocket", "polling"} {
		t.Run("a "+mode+" client connects, acks, sends binary, recovers and is disconnected", func(t *testing.T) {
			ts := newE2EServer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "socketio-client.mjs", ts.URL, mode)
			cmd.Dir = e2eDir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("client script: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			}
			var seen struct {
				Transport          string `json:"transport"`
				FirstRecovered     bool   `json:"firstRecovered"`
				Recovered          bool   `json:"recovered"`
				OffsetSeenByServer string `json:"offsetSeenByServer"`
				DisconnectReason   string `json:"disconnectReason"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &seen); err != nil {
				t.Fatalf("client output %q: %v", stdout.String(), err)
			}
			wantTransport := "websocket"
			if mode == "polling" {
				wantTransport = "polling"
			}
			if seen.Transport != wantTransport || seen.FirstRecovered || !seen.Recovered ||
				seen.OffsetSeenByServer != "off-2" || seen.DisconnectReason != "io server disconnect" {
				t.Errorf("client saw %+v", seen)
			}
		})
	}
}
