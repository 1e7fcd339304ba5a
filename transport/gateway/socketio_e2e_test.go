package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/guard"
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
		missing("socket.io-client is not installed: run npm install in test/e2e-node")
	}
	return node
}

func TestRealSocketIOClientChatsAndRecoversItsConnectionState(t *testing.T) {
	node := requireNode(t)
	for _, mode := range []string{"default", "websocket"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(c *gateway.Config) { c.PingInterval, c.PingTimeout = 2*time.Second, 2*time.Second })
			room := "e2e-" + mode
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "gateway-chat.mjs", h.srv.URL, mode)
			cmd.Dir = e2eDir
			cmd.Env = append(os.Environ(),
				"TOKEN_ALICE="+h.nurse("alice"), "TOKEN_BOB="+h.nurse("bob"), "TOKEN_CAROL="+h.nurse("carol"),
				"BAD_TOKEN="+h.nurse("alice")[:20]+"x.y.z", "ROOM="+room)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var result string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				if line == "SHORT" {
					if _, err := io.WriteString(stdin, "SHORT "+h.shortToken(t, "alice", 2*time.Second)+"\n"); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if line != "DROP" {
					result = line
					continue
				}
				h.listener.dropAll()
				h.postAsService(t, room, "while you were away")
				if _, err := io.WriteString(stdin, "DROPPED\n"); err != nil {
					t.Fatal(err)
				}
			}
			_ = stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("node: %v\nstderr: %s", err, stderr.String())
			}
			var seen struct {
				BadToken  string `json:"badToken"`
				Recovered bool   `json:"recovered"`
				MissedSeq int    `json:"missedSeq"`
				Transport string `json:"transport"`
				Expiry    string `json:"expiry"`
			}
			if err := json.Unmarshal([]byte(result), &seen); err != nil {
				t.Fatalf("script output %q: %v", result, err)
			}
			if !seen.Recovered || seen.MissedSeq != 3 || seen.BadToken != "unauthorized" || seen.Transport != "websocket" || seen.Expiry != "io server disconnect" {
				t.Fatalf("script saw %+v", seen)
			}
		})
	}
}

// postAsService posts to a room through POST /api/v1/rooms/{id}/messages.
func (h *harness) postAsService(t *testing.T, room, content string) json.RawMessage {
	t.Helper()
	body := strings.NewReader(`{"content":` + string(mustMarshal(t, content)) + `}`)
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/v1/rooms/"+room+"/messages", body)
	req.Header.Set("Authorization", "Bearer "+h.token("pharmacy", time.Hour, domain.RoleService))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST messages: %d %s", res.StatusCode, raw)
	}
	return raw
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shortToken mints a token for sub that expires in ttl (tokens are minted
// with whole-hour lifetimes from a clock set back).
func (h *harness) shortToken(t testing.TB, sub string, ttl time.Duration) string {
	t.Helper()
	m, err := auth.NewMinter(auth.MinterConfig{Secret: testSecret, Now: func() time.Time { return time.Now().Add(-time.Hour + ttl) }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Mint(authClaims(sub), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRealSocketIOClientFloodingIsRateLimitedThenDisconnectedByTheServer(t *testing.T) {
	node := requireNode(t)
	for _, mode := range []string{"default", "websocket"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(c *gateway.Config) {
				c.RateLimit = guard.LimitConfig{Rate: 1, Burst: 5, DisconnectAfter: 300 * time.Millisecond, ResetAfter: time.Second}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "gateway-flood.mjs", h.srv.URL, mode)
			cmd.Dir = e2eDir
			cmd.Env = append(os.Environ(), "TOKEN="+h.nurse("alice"))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node: %v\nstderr: %s", err, stderr.String())
			}
			var seen struct {
				Acks      []string `json:"acks"`
				Exception struct {
					Code, Event string
				} `json:"exception"`
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(out, &seen); err != nil {
				t.Fatalf("script output %q: %v", out, err)
			}
			assertFlood(t, seen.Acks)
			if seen.Exception.Code != "rate_limited" || seen.Exception.Event != "presence:query" || seen.Reason != "io server disconnect" {
				t.Fatalf("script saw %+v", seen)
			}
		})
	}
}
