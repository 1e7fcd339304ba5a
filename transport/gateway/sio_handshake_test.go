package gateway_test

import (
	"net/http"
	"testing"

	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/socketio"
)

// A Socket.IO CONNECT without an auth token is authenticated with the
// credentials of the Engine.IO handshake, which the session keeps (and
// nothing else of the request).
func TestASocketIOConnectWithoutATokenUsesTheHandshakesCredentials(t *testing.T) {
	allowQuery := func(c *gateway.Config) {
		v, err := auth.NewVerifier(auth.Config{Secret: testSecret, AllowQueryToken: true})
		if err != nil {
			t.Fatal(err)
		}
		c.Verifier, c.AllowQueryToken = v, true
	}
	for _, tc := range []struct {
		name   string
		adjust func(*gateway.Config)
		dial   func(h *harness) (http.Header, string)
		ok     bool
	}{
		{"an Authorization header", nil, func(h *harness) (http.Header, string) {
			return http.Header{"Authorization": {"Bearer " + h.nurse("alice")}}, ""
		}, true},
		{"a browser session cookie", nil, func(h *harness) (http.Header, string) {
			ck := h.sessionCookie(t, h.nurse("alice"))
			return http.Header{"Cookie": {ck.Name + "=" + ck.Value}}, ""
		}, true},
		{"?token= when query tokens are allowed", allowQuery, func(h *harness) (http.Header, string) {
			return nil, "&token=" + h.nurse("alice")
		}, true},
		{"?token= when they are not", nil, func(h *harness) (http.Header, string) {
			return nil, "&token=" + h.nurse("alice")
		}, false},
		{"no credentials at all", nil, func(h *harness) (http.Header, string) {
			return http.Header{"X-Unrelated": {"Bearer " + h.nurse("alice")}}, ""
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.adjust)
			c := h.dialSocketIOWith(tc.dial(h))
			c.write(socketio.Packet{Type: socketio.PacketConnect, Namespace: "/chat"})
			p := c.next(func(p socketio.Packet) bool {
				return p.Type == socketio.PacketConnect || p.Type == socketio.PacketConnectError
			}, "CONNECT reply")
			if got := p.Type == socketio.PacketConnect; got != tc.ok {
				t.Fatalf("CONNECT accepted %v, want %v (reply %s)", got, tc.ok, p.Data)
			}
			if tc.ok {
				c.waitEvent("connected")
			}
		})
	}
}

// sessionCookie exchanges token for a browser session cookie
// (POST /api/v1/sessions).
func (h *harness) sessionCookie(t *testing.T, token string) *http.Cookie {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(res.Cookies()) != 1 {
		t.Fatalf("POST /api/v1/sessions: %d, cookies %v", res.StatusCode, res.Cookies())
	}
	return res.Cookies()[0]
}
