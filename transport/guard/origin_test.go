package guard_test

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/wardline/wardline/transport/guard"
)

func TestOriginCheck(t *testing.T) {
	type req struct {
		host    string
		tls     bool
		origins []string // nil: no Origin header
		headers map[string]string
	}
	allowList := guard.OriginConfig{Allowed: guard.ParseOrigins("https://app.example, http://localhost:5173 ,https://[::1]:8443")}
	tests := []struct {
		name   string
		cfg    guard.OriginConfig
		r      req
		accept bool
	}{
		{"a request without Origin is accepted", allowList, req{host: "api.example"}, true},
		{"an allowed origin is accepted", allowList, req{host: "api.example", origins: []string{"https://app.example"}}, true},
		{"an allowed origin with an explicit default port is accepted", allowList, req{host: "api.example", origins: []string{"https://app.example:443"}}, true},
		{"an allowed origin in other case is accepted", allowList, req{host: "api.example", origins: []string{"HTTPS://App.Example"}}, true},
		{"an allowed origin with its port is accepted", allowList, req{host: "api.example", origins: []string{"http://localhost:5173"}}, true},
		{"an allowed IPv6 origin is accepted", allowList, req{host: "api.example", origins: []string{"https://[::1]:8443"}}, true},
		{"an allowed host on another port is refused", allowList, req{host: "api.example", origins: []string{"http://localhost:5174"}}, false},
		{"an allowed host with another scheme is refused", allowList, req{host: "api.example", origins: []string{"http://app.example"}}, false},
		{"a subdomain of an allowed host is refused", allowList, req{host: "api.example", origins: []string{"https://evil.app.example"}}, false},
		{"a look-alike suffix is refused", allowList, req{host: "api.example", origins: []string{"https://app.example.evil"}}, false},
		{"a foreign origin is refused", allowList, req{host: "api.example", origins: []string{"https://evil.example"}}, false},
		{"null is refused", allowList, req{host: "api.example", origins: []string{"null"}}, false},
		{"null is refused even when all are allowed", guard.OriginConfig{Allowed: []string{"*"}}, req{host: "api.example", origins: []string{"null"}}, false},
		{"any real origin is accepted when all are allowed", guard.OriginConfig{Allowed: []string{"*"}}, req{host: "api.example", origins: []string{"https://anything.example"}}, true},
		{"an origin with a path is refused", allowList, req{host: "api.example", origins: []string{"https://app.example/x"}}, false},
		{"an origin with user info is refused", allowList, req{host: "api.example", origins: []string{"https://u@app.example"}}, false},
		{"an empty Origin is refused", allowList, req{host: "api.example", origins: []string{""}}, false},
		{"two Origin headers are refused", allowList, req{host: "api.example", origins: []string{"https://app.example", "https://app.example"}}, false},
		{"the server's own origin over plain HTTP is accepted", guard.OriginConfig{}, req{host: "127.0.0.1:8080", origins: []string{"http://127.0.0.1:8080"}}, true},
		{"the server's own origin over TLS is accepted", guard.OriginConfig{}, req{host: "chat.example", tls: true, origins: []string{"https://chat.example"}}, true},
		{"the own host with the wrong scheme is refused", guard.OriginConfig{}, req{host: "chat.example", origins: []string{"https://chat.example"}}, false},
		{"the own host on another port is refused", guard.OriginConfig{}, req{host: "127.0.0.1:8080", origins: []string{"http://127.0.0.1:8081"}}, false},
		{"localhost is not the same origin as 127.0.0.1", guard.OriginConfig{}, req{host: "127.0.0.1:8080", origins: []string{"http://localhost:8080"}}, false},
		{"forwarded headers are ignored unless trusted", guard.OriginConfig{},
			req{host: "10.0.0.5:8080", origins: []string{"https://chat.example"}, headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example"}}, false},
		{"trusted forwarded headers give the own origin", guard.OriginConfig{TrustProxyHeaders: true},
			req{host: "10.0.0.5:8080", origins: []string{"https://chat.example"}, headers: map[string]string{"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "chat.example"}}, true},
		{"a trusted forwarded proto alone keeps the Host", guard.OriginConfig{TrustProxyHeaders: true},
			req{host: "chat.example", origins: []string{"https://chat.example"}, headers: map[string]string{"X-Forwarded-Proto": "https"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := guard.NewOriginChecker(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=websocket", nil)
			r.Host = tt.r.host
			if tt.r.tls {
				r.TLS = &tls.ConnectionState{}
			} else {
				r.TLS = nil
			}
			for _, o := range tt.r.origins {
				r.Header.Add("Origin", o)
			}
			for k, v := range tt.r.headers {
				r.Header.Set(k, v)
			}
			err = c.Check(r)
			if tt.accept && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.accept {
				var oe *guard.OriginError
				if !errors.As(err, &oe) || !errors.Is(err, guard.ErrOriginRefused) || oe.Code() != "forbidden" {
					t.Fatalf("err = %v, want an *OriginError", err)
				}
			}
		})
	}
}

func TestOriginConfigRefusesBadEntries(t *testing.T) {
	for _, entry := range []string{"null", "app.example", "https://", "https://app.example/path", "https://app.example:", "::"} {
		t.Run("the allow-list entry "+entry+" is refused", func(t *testing.T) {
			if _, err := guard.NewOriginChecker(guard.OriginConfig{Allowed: []string{entry}}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := guard.NewOriginChecker(guard.OriginConfig{Allowed: []string{"https://app.example/"}}); err != nil {
		t.Fatalf("a trailing slash should be tolerated: %v", err)
	}
}

func TestParseOrigins(t *testing.T) {
	got := guard.ParseOrigins(" https://a.example,,http://b.example:8080 , ")
	if want := []string{"https://a.example", "http://b.example:8080"}; !slices.Equal(got, want) {
		t.Fatalf("ParseOrigins = %q, want %q", got, want)
	}
	if guard.ParseOrigins("") != nil {
		t.Fatal("empty list should be nil")
	}
}

func TestOriginMiddlewareRefusesWith403BeforeTheHandler(t *testing.T) {
	c, err := guard.NewOriginChecker(guard.OriginConfig{})
	if err != nil {
		t.Fatal(err)
	}
	called := false
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/ws/chat", nil)
	r.Header.Set("Origin", "https://evil.example")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden || called {
		t.Fatalf("status %d, handler called %v", rec.Code, called)
	}
	if body := rec.Body.String(); !strings.Contains(body, `"code":"forbidden"`) || !strings.Contains(body, `"success":false`) {
		t.Fatalf("body %s", body)
	}
	r.Header.Set("Origin", "http://127.0.0.1:8080")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if !called {
		t.Fatal("the own origin did not reach the handler")
	}
}

func newReq(origin string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://api.example/ws/chat", nil)
	r.Header.Set("Origin", origin)
	return r
}
