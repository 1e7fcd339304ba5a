package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
)

func TestHTTPAPI(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.connect(h.nurse("alice"), "")
	mustOK(t, alice.request("room:create", map[string]any{"roomId": "ward", "name": "Ward"}))
	service := h.token("pharmacy", time.Hour, domain.RoleService)

	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	t.Run("a service posts to a room and members get message:new with the ack's offset", func(t *testing.T) {
		status, body := do(http.MethodPost, "/api/v1/rooms/ward/messages", service, `{"content":"dose due at 14:00"}`)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		ack := decode[sendAck](t, []byte(body))
		f := alice.waitPush("message:new", nil)
		if !ack.Success || ack.Seq != 1 || f.Offset != ack.Offset {
			t.Fatalf("ack %+v, push offset %q", ack, f.Offset)
		}
	})
	t.Run("presence answers who of the listed users is online", func(t *testing.T) {
		status, body := do(http.MethodGet, "/api/v1/presence?userIds=alice,bob", service, "")
		if status != http.StatusOK || body != `{"success":true,"online":["alice"]}` {
			t.Fatalf("%d %s", status, body)
		}
	})
	cases := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"a request without a token is unauthorized", http.MethodGet, "/api/v1/presence?userIds=alice", "", "", 401, "unauthorized"},
		{"a nurse token is forbidden", http.MethodGet, "/api/v1/presence?userIds=alice", h.nurse("alice"), "", 403, "forbidden"},
		{"presence without userIds is invalid", http.MethodGet, "/api/v1/presence", service, "", 400, "invalid"},
		{"a post to an unknown room is not_found", http.MethodPost, "/api/v1/rooms/nowhere/messages", service, `{"content":"x"}`, 404, "not_found"},
		{"a post with a body that is not an object is invalid", http.MethodPost, "/api/v1/rooms/ward/messages", service, `[]`, 400, "invalid"},
		{"a post over the size limit is too_large", http.MethodPost, "/api/v1/rooms/ward/messages", service, `{"content":"` + strings.Repeat("x", 17<<10) + `"}`, 413, "too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(tc.method, tc.path, tc.token, tc.body)
			if status != tc.status || errCode([]byte(body)) != tc.code {
				t.Fatalf("%d %s; want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	t.Run("metrics count connections, requests and deliveries", func(t *testing.T) {
		if v := h.metricValue("wardline_gateway_connections", map[string]string{"transport": "native", "namespace": "/chat"}); v != 1 {
			t.Fatalf("connections = %v", v)
		}
		if v := h.metricValue("wardline_gateway_events_in_total", map[string]string{"event": "room:create", "outcome": "ok"}); v != 1 {
			t.Fatalf("room:create ok = %v", v)
		}
		if v := h.metricValue("wardline_gateway_events_out_total", map[string]string{"event": "message:new"}); v < 1 {
			t.Fatalf("message:new out = %v", v)
		}
		if v := h.metricValue("wardline_gateway_delivery_latency_seconds", nil); v < 1 {
			t.Fatalf("delivery latency samples = %v", v)
		}
		if v := h.metricValue("wardline_gateway_auth_failures_total", nil); v != 1 {
			t.Fatalf("auth failures = %v", v)
		}
	})
}
