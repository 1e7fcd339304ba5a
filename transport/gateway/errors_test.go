package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/guard"
	"github.com/wardline/wardline/transport/native"
)

func TestNativeRequestsAreAnsweredWithTheContractsErrorCodes(t *testing.T) {
	h := newHarness(t, nil)
	owner := h.connect(h.nurse("owner"), "")
	mustOK(t, owner.request("room:create", map[string]any{"roomId": "icu", "name": "ICU"})) // private by default
	mustOK(t, owner.request("room:create", map[string]any{"roomId": "lobby", "name": "Lobby", "private": false}))
	c := h.connect(h.nurse("visitor"), "")
	mustOK(t, c.request("room:join", map[string]any{"roomId": "lobby"}))
	compliance := h.connect(h.token("auditor", time.Hour, domain.RoleComplianceOfficer), "")

	cases := []struct {
		name   string
		client *nclient
		event  string
		data   any
		want   string
	}{
		{"an unknown event is invalid", c, "room:destroy", map[string]any{"roomId": "icu"}, "invalid"},
		{"data that is not an object is invalid", c, "room:join", "icu", "invalid"},
		{"missing data is invalid", c, "room:join", nil, "invalid"},
		{"a number where a string belongs is invalid", c, "room:join", map[string]any{"roomId": 42}, "invalid"},
		{"a malformed room id is invalid", c, "room:join", map[string]any{"roomId": "a b"}, "invalid"},
		{"a string where a list belongs is invalid", c, "presence:query", map[string]any{"userIds": "owner"}, "invalid"},
		{"a history limit over 200 is invalid", c, "history:fetch", map[string]any{"roomId": "lobby", "limit": 201}, "invalid"},
		{"empty content is invalid", c, "message:send", map[string]any{"roomId": "lobby", "content": ""}, "invalid"},
		{"content over 16 KiB is too_large", c, "message:send", map[string]any{"roomId": "lobby", "content": strings.Repeat("x", 16<<10+1)}, "too_large"},
		{"too_large is decided before not_found", c, "message:send", map[string]any{"roomId": "nowhere", "content": strings.Repeat("x", 16<<10+1)}, "too_large"},
		{"an unknown room is not_found", c, "room:join", map[string]any{"roomId": "nowhere"}, "not_found"},
		{"a private room is forbidden to a non-member", c, "room:join", map[string]any{"roomId": "icu"}, "forbidden"},
		{"sending to a room one is not in is forbidden", c, "message:send", map[string]any{"roomId": "icu", "content": "hi"}, "forbidden"},
		{"reading the history of a private room is forbidden", c, "history:fetch", map[string]any{"roomId": "icu"}, "forbidden"},
		{"typing in a room one is not in is forbidden", c, "typing:start", map[string]any{"roomId": "icu"}, "forbidden"},
		{"a role that may not create rooms is forbidden", compliance, "room:create", map[string]any{"name": "x"}, "forbidden"},
		{"a duplicate room id is conflict", owner, "room:create", map[string]any{"roomId": "icu", "name": "again"}, "conflict"},
		{"a DM to oneself is invalid", c, "dm:send", map[string]any{"toUserId": "visitor", "content": "me"}, "invalid"},
		{"a refresh with a forged token is unauthorized", c, "auth:refresh", map[string]any{"token": "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"}, "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := errCode(tc.client.request(tc.event, tc.data)); got != tc.want {
				t.Fatalf("%s: code %q, want %q", tc.event, got, tc.want)
			}
		})
	}
}

func TestNativeRefusedActionsAreAudited(t *testing.T) {
	h := newHarness(t, nil)
	owner := h.connect(h.nurse("owner"), "")
	mustOK(t, owner.request("room:create", map[string]any{"roomId": "icu", "name": "ICU"}))
	c := h.connect(h.nurse("visitor"), "")
	if code := errCode(c.request("room:join", map[string]any{"roomId": "icu"})); code != "forbidden" {
		t.Fatalf("join = %q", code)
	}
	evs, err := h.store.ReadStream(t.Context(), domain.AccessStream("visitor"), 1, 1, 10)
	if err != nil || len(evs) != 1 || evs[0].Type != "RoomAccessDenied" {
		t.Fatalf("access stream of visitor = %v, %v; want one RoomAccessDenied", evs, err)
	}
	// A PHI read is recorded too.
	mustOK(t, owner.request("message:send", map[string]any{"roomId": "icu", "content": "K+ 5.9"}))
	mustOK(t, owner.request("history:fetch", map[string]any{"roomId": "icu"}))
	evs, err = h.store.ReadStream(t.Context(), domain.AccessStream("owner"), 1, 1, 10)
	if err != nil || len(evs) != 1 || evs[0].Type != "HistoryViewed" {
		t.Fatalf("access stream of owner = %v, %v; want one HistoryViewed", evs, err)
	}
}

func TestNativeFramesThatAreNotRequestsGetAnInvalidExceptionAndTheConnectionStays(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(h.nurse("alice"), "")
	for _, raw := range []string{`not json`, `[1,2]`, `{"event": 5}`, `{"id":1}`} {
		c.sendRaw([]byte(raw))
		f := c.waitPush("exception", nil)
		if code := decode[struct{ Code string }](t, f.Data).Code; code != "invalid" {
			t.Fatalf("%s: exception %s", raw, f.Data)
		}
	}
	// A request without an id that fails is answered with an exception
	// naming the event.
	c.send(map[string]any{"event": "room:join", "data": map[string]any{"roomId": "nowhere"}})
	f := c.waitPush("exception", nil)
	if e := decode[struct{ Code, Event string }](t, f.Data); e.Code != "not_found" || e.Event != "room:join" {
		t.Fatalf("exception = %s", f.Data)
	}
	mustOK(t, c.request("presence:query", map[string]any{"userIds": []string{"alice"}}))
}

func TestNativeFrameOver64KiBClosesWith1009(t *testing.T) {
	h := newHarness(t, nil)
	// The server stops reading at the oversized frame's header, so the
	// rest of the frame can make the kernel reset the connection before
	// the client reads the close frame; a reset (1006) is retried.
	for attempt := 0; ; attempt++ {
		c := h.connect(h.nurse("alice"), "")
		_ = c.conn.WriteMessage(websocket.TextMessage, []byte(`{"event":"message:send","data":{"content":"`+strings.Repeat("x", 64<<10)+`"}}`))
		code := c.waitClosed()
		if code == native.CloseTooLarge {
			return
		}
		if code != native.CloseAbnormal || attempt == 4 {
			t.Fatalf("close code %d, want 1009", code)
		}
	}
}

func TestNativeHandshakeRefusesBadTokens(t *testing.T) {
	h := newHarness(t, nil)
	past, err := auth.NewMinter(auth.MinterConfig{Secret: testSecret, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := past.Mint(authClaims("alice"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// alg=none: header {"alg":"none","typ":"JWT"}, payload with sub and exp.
	none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0."
	forged := h.nurse("alice")
	forged = forged[:len(forged)-4] + "AAAA"
	cases := []struct{ name, token string }{
		{"an expired token", expired},
		{"an alg=none token", none},
		{"a token with a forged signature", forged},
		{"garbage", "not-a-jwt"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" gets an unauthorized exception and close 4401", func(t *testing.T) {
			c, _, err := h.dialNative(nil)
			if err != nil {
				t.Fatal(err)
			}
			c.send(map[string]any{"id": 1, "event": "auth", "data": map[string]string{"token": tc.token}})
			if code := c.waitClosed(); code != native.CloseUnauthorized {
				t.Fatalf("close %d, want 4401", code)
			}
			found := false
			for _, f := range c.pending {
				if f.Event == "exception" && decode[struct{ Code string }](t, f.Data).Code == "unauthorized" {
					found = true
				}
			}
			if !found {
				t.Fatalf("no unauthorized exception before the close: %v", c.pending)
			}
		})
	}
	evs, err := h.store.ReadStream(t.Context(), domain.AuthStream("anonymous"), 1, 1, 100)
	if err != nil || len(evs) != len(cases) {
		t.Fatalf("AuthenticationFailed events = %d (%v), want %d", len(evs), err, len(cases))
	}
	// A bad Authorization header refuses the handshake the same way.
	c, _, err := h.dialNative(http.Header{"Authorization": {"Bearer " + forged}})
	if err != nil {
		t.Fatal(err)
	}
	if code := c.waitClosed(); code != native.CloseUnauthorized {
		t.Fatalf("close %d, want 4401", code)
	}
	// And a good one authenticates without an auth frame.
	good, _, err := h.dialNative(http.Header{"Authorization": {"Bearer " + h.nurse("alice")}})
	if err != nil {
		t.Fatal(err)
	}
	good.waitPush("connected", nil)
	mustOK(t, good.request("presence:query", map[string]any{"userIds": []string{"alice"}}))
}

func TestForeignOriginIsRefusedWith403BeforeAnyUpgrade(t *testing.T) {
	h := newHarness(t, nil)
	_, resp, err := websocket.DefaultDialer.Dial(h.wsURL(), http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("native: err %v, response %v; want 403", err, resp)
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/socket.io/?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "https://evil.example")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("socket.io polling handshake: %d, want 403", res.StatusCode)
	}
	req.Header.Set("Origin", h.srv.URL)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("same-origin socket.io handshake: %d, want 200", res.StatusCode)
	}
}

func TestFloodIsRateLimitedThenClosedWith4429(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) {
		c.RateLimit = guard.LimitConfig{Rate: 1, Burst: 5, DisconnectAfter: 300 * time.Millisecond, ResetAfter: time.Second}
	})
	c := h.connect(h.nurse("alice"), "")
	limited := false
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline) && i < 10_000; i++ {
		raw := c.tryRequest("presence:query", map[string]any{"userIds": []string{"alice"}})
		if raw == nil {
			break // closed
		}
		if errCode(raw) == "rate_limited" {
			limited = true
		}
	}
	if !limited {
		t.Fatal("no request was rate_limited")
	}
	if code := c.waitClosed(); code != native.CloseRateLimited {
		t.Fatalf("close %d, want 4429", code)
	}
}

func authClaims(sub string) auth.Claims {
	return auth.Claims{Subject: sub, Roles: []domain.Role{domain.RoleNurse}}
}
