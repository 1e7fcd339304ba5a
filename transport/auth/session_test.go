package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
)

var sessionKey = []byte("session-key-session-key-session-key!")

func mustSessions(tb testing.TB, cfg auth.SessionConfig) *auth.Sessions {
	tb.Helper()
	if cfg.Key == nil {
		cfg.Key = sessionKey
	}
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	s, err := auth.NewSessions(cfg)
	if err != nil {
		tb.Fatalf("NewSessions: %v", err)
	}
	return s
}

func tokenClaims(exp time.Time) auth.Claims {
	return auth.Claims{Subject: "u-1", Roles: []domain.Role{domain.RoleNurse}, ExpiresAt: exp}
}

func TestSessionRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		maxTTL  time.Duration
		jwtExp  time.Time
		wantExp time.Time
	}{
		{"a session ends with its token", 12 * time.Hour, t0.Add(time.Hour), t0.Add(time.Hour)},
		{"a session never outlives MaxTTL", 30 * time.Minute, t0.Add(time.Hour), t0.Add(30 * time.Minute)},
		{"a session's end is rounded down to the second", 12 * time.Hour, t0.Add(time.Hour + 900*time.Millisecond), t0.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSessions(t, auth.SessionConfig{MaxTTL: tt.maxTTL})
			value, issued, err := s.Issue(tokenClaims(tt.jwtExp))
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Verify(context.Background(), value)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != "u-1" || !slices.Equal(got.Roles, []domain.Role{domain.RoleNurse}) ||
				got.SessionID == "" || got.SessionID != issued.SessionID || !got.ExpiresAt.Equal(tt.wantExp) {
				t.Errorf("claims = %+v (issued %+v), want exp %v", got, issued, tt.wantExp)
			}
		})
	}
}

func TestSessionsAreDistinct(t *testing.T) {
	s := mustSessions(t, auth.SessionConfig{})
	_, a, _ := s.Issue(tokenClaims(t0.Add(time.Hour)))
	_, b, _ := s.Issue(tokenClaims(t0.Add(time.Hour)))
	if a.SessionID == b.SessionID {
		t.Fatal("two sessions share an id")
	}
}

func TestSessionVerifyRefuses(t *testing.T) {
	s := mustSessions(t, auth.SessionConfig{})
	value, _, err := s.Issue(tokenClaims(t0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(value, ".")
	other := mustSessions(t, auth.SessionConfig{Key: []byte(strings.Repeat("o", 32))})
	otherValue, _, _ := other.Issue(tokenClaims(t0.Add(time.Hour)))
	forgedBody := b64u([]byte(`{"sid":"x","sub":"admin","roles":["super_admin"],"iat":1,"exp":4102444800}`))
	m, _ := auth.NewMinter(auth.MinterConfig{Secret: sessionKey, Now: fixedNow})
	jwtWithSessionKey, _ := m.Mint(auth.Claims{Subject: "u-1"}, time.Hour)

	tests := []struct {
		name  string
		value string
		want  auth.Reason
	}{
		{"an empty cookie is no token", "", auth.ReasonNoToken},
		{"garbage is malformed", "garbage", auth.ReasonMalformed},
		{"another version is malformed", "v2." + parts[1] + "." + parts[2], auth.ReasonMalformed},
		{"an extra segment is malformed", value + ".x", auth.ReasonMalformed},
		{"a truncated signature is malformed", parts[0] + "." + parts[1] + "." + parts[2][:10], auth.ReasonMalformed},
		{"a changed payload fails the signature", parts[0] + "." + forgedBody + "." + parts[2], auth.ReasonSignature},
		{"a cookie from another key fails the signature", otherValue, auth.ReasonSignature},
		{"a JWT signed with the session key is not a session", jwtWithSessionKey, auth.ReasonMalformed},
		{"an oversized cookie is malformed", strings.Repeat("a", 5000), auth.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Verify(context.Background(), tt.value)
			if r, _ := auth.ReasonOf(err); r != tt.want {
				t.Fatalf("err = %v, want reason %v", err, tt.want)
			}
		})
	}
}

func TestSessionCookieIsNotABearerToken(t *testing.T) {
	// Even when an operator reuses the JWT secret as the session key.
	s := mustSessions(t, auth.SessionConfig{Key: secret})
	value, _, _ := s.Issue(tokenClaims(t0.Add(time.Hour)))
	v := mustVerifier(t, hsConfig())
	if _, err := v.Verify(context.Background(), value); err == nil {
		t.Fatal("a session cookie verified as a JWT")
	}
}

func TestSessionExpiresWithoutLeeway(t *testing.T) {
	clk := newClock(t0)
	s := mustSessions(t, auth.SessionConfig{Now: clk.Now})
	value, _, _ := s.Issue(tokenClaims(t0.Add(time.Minute)))
	clk.Advance(time.Minute - time.Millisecond)
	if _, err := s.Verify(context.Background(), value); err != nil {
		t.Fatalf("just before exp: %v", err)
	}
	clk.Advance(time.Millisecond)
	if _, err := s.Verify(context.Background(), value); !errors.Is(err, &auth.Error{Reason: auth.ReasonExpired}) {
		t.Fatalf("at exp: err = %v, want expired", err)
	}
}

func TestSessionIssueRefuses(t *testing.T) {
	s := mustSessions(t, auth.SessionConfig{})
	for _, tt := range []struct {
		name string
		c    auth.Claims
		want auth.Reason
	}{
		{"claims without subject", auth.Claims{ExpiresAt: t0.Add(time.Hour)}, auth.ReasonMissingSubject},
		{"claims without expiry", auth.Claims{Subject: "u"}, auth.ReasonMissingExpiry},
		{"claims expiring within the second", tokenClaims(t0.Add(500 * time.Millisecond)), auth.ReasonExpired},
		{"claims with roles too many for a cookie", auth.Claims{Subject: "u", ExpiresAt: t0.Add(time.Hour),
			Roles: slices.Repeat([]domain.Role{"a-rather-long-role-name"}, 200)}, auth.ReasonMalformed},
	} {
		t.Run("issuing a session for "+tt.name+" is refused", func(t *testing.T) {
			_, _, err := s.Issue(tt.c)
			if r, _ := auth.ReasonOf(err); r != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

type failingRevoker struct{}

func (failingRevoker) Revoke(context.Context, string, time.Time) error {
	return errors.New("store down")
}
func (failingRevoker) Revoked(context.Context, string) (bool, error) {
	return false, errors.New("store down")
}

func TestSessionRevocation(t *testing.T) {
	clk := newClock(t0)
	rev := auth.NewMemoryRevoker(clk.Now)
	s := mustSessions(t, auth.SessionConfig{Revoker: rev, Now: clk.Now, MaxTTL: time.Hour})
	ctx := context.Background()
	a, ca, _ := s.Issue(tokenClaims(t0.Add(time.Hour)))
	b, _, _ := s.Issue(tokenClaims(t0.Add(time.Hour)))
	if err := s.Revoke(ctx, ca.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, a); !errors.Is(err, &auth.Error{Reason: auth.ReasonRevoked}) {
		t.Fatalf("revoked session: err = %v", err)
	}
	if _, err := s.Verify(ctx, b); err != nil {
		t.Fatalf("another session of the same user was ended: %v", err)
	}

	failing := mustSessions(t, auth.SessionConfig{Revoker: failingRevoker{}})
	v, _, _ := failing.Issue(tokenClaims(t0.Add(time.Hour)))
	_, err := failing.Verify(ctx, v)
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.Reason != auth.ReasonUnavailable || ae.Code() != "unavailable" {
		t.Fatalf("revoker down: err = %v, want unavailable (fail closed)", err)
	}
}

func TestMemoryRevokerForgetsRecordsOnceTheirCookiesAreDead(t *testing.T) {
	clk := newClock(t0)
	rev := auth.NewMemoryRevoker(clk.Now)
	ctx := context.Background()
	for i := range 1000 {
		_ = rev.Revoke(ctx, "old-"+string(rune('a'+i%26))+strings.Repeat("x", i/26), t0.Add(time.Minute))
	}
	if ok, _ := rev.Revoked(ctx, "old-a"); !ok {
		t.Fatal("a fresh revocation is not seen")
	}
	clk.Advance(time.Minute)
	if ok, _ := rev.Revoked(ctx, "old-a"); ok {
		t.Fatal("a revocation is still seen after its until")
	}
	for i := range 100 {
		_ = rev.Revoke(ctx, "new-"+strings.Repeat("y", i), t0.Add(2*time.Hour))
	}
	if n := rev.Len(); n > 200 {
		t.Fatalf("%d records held; expired ones were not pruned", n)
	}
	if ok, _ := rev.Revoked(ctx, "new-y"); !ok {
		t.Fatal("a live revocation was pruned")
	}
}

func TestSessionConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  auth.SessionConfig
		want string
	}{
		{"a short key", auth.SessionConfig{Key: []byte("short")}, "at least 32"},
		{"a negative MaxTTL", auth.SessionConfig{Key: sessionKey, MaxTTL: -1}, "negative"},
		{"a cookie name with a separator", auth.SessionConfig{Key: sessionKey, CookieName: "a;b"}, "cookie name"},
	} {
		t.Run("a session config with "+tt.name+" is invalid", func(t *testing.T) {
			if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	if err := (auth.SessionConfig{Key: sessionKey}).Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
}

type ack struct {
	Success   bool   `json:"success"`
	SessionID string `json:"sessionId"`
	UserID    string `json:"userId"`
	ExpiresAt string `json:"expiresAt"`
	Error     *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeAck(t *testing.T, rec *httptest.ResponseRecorder) ack {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var a ack
	if err := json.NewDecoder(rec.Body).Decode(&a); err != nil {
		t.Fatalf("decode ack: %v", err)
	}
	return a
}

func sessionCookie(t *testing.T, rec *httptest.ResponseRecorder, name string) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", name, rec.Header()["Set-Cookie"])
	return nil
}

func TestCreateSessionHandler(t *testing.T) {
	v := mustVerifier(t, hsConfig())
	var created atomic.Int32
	var refused atomic.Int32
	s := mustSessions(t, auth.SessionConfig{
		OnCreate:  func(context.Context, auth.Claims) { created.Add(1) },
		OnRefused: func(context.Context, *http.Request, error) { refused.Add(1) },
	})
	h := s.CreateHandler(v)
	good := sign(t, jwt.SigningMethodHS256, secret, nil, claimsAt(t0))
	expired := sign(t, jwt.SigningMethodHS256, secret, nil, claimsAt(t0, set("exp", t0.Add(-time.Hour).Unix())))

	t.Run("a valid bearer token gets a hardened session cookie", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/sessions", nil)
		req.Header.Set("Authorization", "Bearer "+good)
		rec := httptest.NewRecorder()
		h(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		ck := sessionCookie(t, rec, auth.DefaultCookieName)
		if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("cookie attributes: %+v", ck)
		}
		if ck.MaxAge != 3600 {
			t.Errorf("MaxAge = %d, want 3600", ck.MaxAge)
		}
		a := decodeAck(t, rec)
		if !a.Success || a.SessionID == "" || a.UserID != "u-1" || a.ExpiresAt != "2025-03-14T10:26:53.000Z" {
			t.Errorf("ack = %+v", a)
		}
		c, err := s.Verify(context.Background(), ck.Value)
		if err != nil || c.SessionID != a.SessionID {
			t.Errorf("cookie verifies to %+v, %v", c, err)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Error("session answer may be cached")
		}
		if created.Load() != 1 {
			t.Error("OnCreate not called")
		}
	})
	for _, tt := range []struct {
		name    string
		header  string
		wantMsg string
	}{
		{"a request without a bearer token is refused", "", "no token"},
		{"an expired bearer token is refused", "Bearer " + expired, "token expired"},
		{"a Basic credential is refused", "Basic dXNlcjpwYXNz", "malformed token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/api/v1/sessions", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			before := refused.Load()
			rec := httptest.NewRecorder()
			h(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d", rec.Code)
			}
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Error("no Bearer challenge")
			}
			if len(rec.Result().Cookies()) != 0 {
				t.Error("a refused request got a cookie")
			}
			a := decodeAck(t, rec)
			if a.Success || a.Error == nil || a.Error.Code != "unauthorized" || a.Error.Message != tt.wantMsg {
				t.Errorf("ack = %+v, error %+v", a, a.Error)
			}
			if refused.Load() != before+1 {
				t.Error("OnRefused not called")
			}
		})
	}
	t.Run("a query token does not create a session", func(t *testing.T) {
		v := mustVerifier(t, with(hsConfig(), func(c *auth.Config) { c.AllowQueryToken = true })())
		rec := httptest.NewRecorder()
		s.CreateHandler(v)(rec, httptest.NewRequest(http.MethodPost, "/api/v1/sessions?token="+good, nil))
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("status = %d", rec.Code)
		}
	})
}

func TestDeleteSessionHandler(t *testing.T) {
	var revoked []auth.Claims
	s := mustSessions(t, auth.SessionConfig{OnRevoke: func(_ context.Context, c auth.Claims) { revoked = append(revoked, c) }})
	h := s.DeleteHandler()
	value, c, _ := s.Issue(tokenClaims(t0.Add(time.Hour)))

	del := func(cookie string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodDelete, "/api/v1/sessions", nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: auth.DefaultCookieName, Value: cookie})
		}
		rec := httptest.NewRecorder()
		h(rec, req)
		return rec
	}

	t.Run("deleting a live session revokes it, tells the gateway and clears the cookie", func(t *testing.T) {
		rec := del(value)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		if ck := sessionCookie(t, rec, auth.DefaultCookieName); ck.MaxAge >= 0 || ck.Value != "" {
			t.Errorf("cookie not cleared: %+v", ck)
		}
		if a := decodeAck(t, rec); !a.Success || a.SessionID != c.SessionID {
			t.Errorf("ack = %+v", a)
		}
		if len(revoked) != 1 || revoked[0].SessionID != c.SessionID || revoked[0].Subject != "u-1" {
			t.Errorf("OnRevoke calls = %+v", revoked)
		}
		if _, err := s.Verify(context.Background(), value); !errors.Is(err, &auth.Error{Reason: auth.ReasonRevoked}) {
			t.Errorf("session still verifies: %v", err)
		}
	})
	t.Run("deleting again succeeds and ends nothing", func(t *testing.T) {
		rec := del(value)
		if a := decodeAck(t, rec); rec.Code != http.StatusOK || !a.Success || a.SessionID != "" {
			t.Errorf("status %d ack %+v", rec.Code, a)
		}
		if len(revoked) != 1 {
			t.Errorf("OnRevoke called %d times", len(revoked))
		}
	})
	t.Run("deleting without a cookie succeeds and still clears", func(t *testing.T) {
		rec := del("")
		sessionCookie(t, rec, auth.DefaultCookieName)
		if a := decodeAck(t, rec); !a.Success {
			t.Errorf("ack %+v", a)
		}
	})
	t.Run("deleting when revocations cannot be read answers unavailable", func(t *testing.T) {
		fs := mustSessions(t, auth.SessionConfig{Revoker: failingRevoker{}})
		v, _, _ := fs.Issue(tokenClaims(t0.Add(time.Hour)))
		req := httptest.NewRequest(http.MethodDelete, "/api/v1/sessions", nil)
		req.AddCookie(&http.Cookie{Name: auth.DefaultCookieName, Value: v})
		rec := httptest.NewRecorder()
		fs.DeleteHandler()(rec, req)
		if a := decodeAck(t, rec); rec.Code != http.StatusServiceUnavailable || a.Error == nil || a.Error.Code != "unavailable" {
			t.Errorf("status %d ack %+v", rec.Code, a)
		}
	})
}
