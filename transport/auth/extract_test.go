package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardline/wardline/transport/auth"
)

func TestBearerToken(t *testing.T) {
	for _, tt := range []struct {
		name    string
		headers []string
		want    string
		reason  auth.Reason
	}{
		{"a bearer credential is read", []string{"Bearer abc.def.ghi"}, "abc.def.ghi", 0},
		{"the scheme is case-insensitive", []string{"bearer abc"}, "abc", 0},
		{"surrounding spaces are ignored", []string{"  Bearer   abc  "}, "abc", 0},
		{"no header is no token", nil, "", auth.ReasonNoToken},
		{"another scheme is malformed", []string{"Basic dXNlcjpwYXNz"}, "", auth.ReasonMalformed},
		{"a bare scheme is malformed", []string{"Bearer"}, "", auth.ReasonMalformed},
		{"a credential with spaces is malformed", []string{"Bearer a b"}, "", auth.ReasonMalformed},
		{"two headers are malformed", []string{"Bearer a", "Bearer b"}, "", auth.ReasonMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.headers {
				h.Add("Authorization", v)
			}
			got, err := auth.BearerToken(h)
			if r, _ := auth.ReasonOf(err); r != tt.reason || got != tt.want {
				t.Fatalf("BearerToken = %q, %v; want %q, reason %v", got, err, tt.want, tt.reason)
			}
		})
	}
}

func TestQueryToken(t *testing.T) {
	for _, tt := range []struct {
		name, query, want string
		reason            auth.Reason
	}{
		{"a token parameter is read", "token=abc&EIO=4", "abc", 0},
		{"no parameter is no token", "EIO=4", "", auth.ReasonNoToken},
		{"an empty parameter is no token", "token=", "", auth.ReasonNoToken},
		{"a repeated parameter is malformed", "token=a&token=b", "", auth.ReasonMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.QueryToken(&url.URL{RawQuery: tt.query})
			if r, _ := auth.ReasonOf(err); r != tt.reason || got != tt.want {
				t.Fatalf("QueryToken = %q, %v; want %q, reason %v", got, err, tt.want, tt.reason)
			}
		})
	}
}

func TestAuthenticatorSources(t *testing.T) {
	good := sign(t, jwt.SigningMethodHS256, secret, nil, claimsAt(t0, set("sub", "from-token")))
	expired := sign(t, jwt.SigningMethodHS256, secret, nil, claimsAt(t0, set("exp", t0.Add(-time.Hour).Unix())))
	s := mustSessions(t, auth.SessionConfig{})
	cookie, _, _ := s.Issue(auth.Claims{Subject: "from-cookie", ExpiresAt: t0.Add(time.Hour)})
	strict := auth.Authenticator{Verifier: mustVerifier(t, hsConfig()), Sessions: s}
	lenient := auth.Authenticator{Verifier: mustVerifier(t, with(hsConfig(), func(c *auth.Config) { c.AllowQueryToken = true })()), Sessions: s}

	type req struct{ header, query, cookie string }
	for _, tt := range []struct {
		name       string
		a          auth.Authenticator
		r          req
		wantSub    string
		wantMethod auth.Method
		reason     auth.Reason
	}{
		{"the Authorization header is used", strict, req{header: "Bearer " + good}, "from-token", auth.MethodBearer, 0},
		{"the header wins over a cookie", strict, req{header: "Bearer " + good, cookie: cookie}, "from-token", auth.MethodBearer, 0},
		{"a refused header does not fall back to a valid cookie", strict, req{header: "Bearer " + expired, cookie: cookie}, "", auth.MethodBearer, auth.ReasonExpired},
		{"a query token is ignored unless allowed", strict, req{query: good}, "", "", auth.ReasonNoToken},
		{"a query token is used when allowed", lenient, req{query: good}, "from-token", auth.MethodQuery, 0},
		{"a refused query token does not fall back to a cookie", lenient, req{query: expired, cookie: cookie}, "", auth.MethodQuery, auth.ReasonExpired},
		{"the session cookie is used when nothing else is given", strict, req{cookie: cookie}, "from-cookie", auth.MethodCookie, 0},
		{"a bad session cookie is refused", strict, req{cookie: "v1.x.y"}, "", auth.MethodCookie, auth.ReasonMalformed},
		{"no credential at all is no token", strict, req{}, "", "", auth.ReasonNoToken},
		{"without Sessions a cookie is not read", auth.Authenticator{Verifier: strict.Verifier}, req{cookie: cookie}, "", "", auth.ReasonNoToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := "/socket.io/?EIO=4&transport=websocket"
			if tt.r.query != "" {
				target += "&token=" + tt.r.query
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			if tt.r.header != "" {
				r.Header.Set("Authorization", tt.r.header)
			}
			if tt.r.cookie != "" {
				r.AddCookie(&http.Cookie{Name: auth.DefaultCookieName, Value: tt.r.cookie})
			}
			c, m, err := tt.a.Authenticate(context.Background(), r)
			if r, _ := auth.ReasonOf(err); r != tt.reason {
				t.Fatalf("err = %v, want reason %v", err, tt.reason)
			}
			if c.Subject != tt.wantSub || m != tt.wantMethod {
				t.Fatalf("got %q via %q, want %q via %q", c.Subject, m, tt.wantSub, tt.wantMethod)
			}
		})
	}
}

func TestVerifyRequestReadsHeaderThenAllowedQuery(t *testing.T) {
	good := sign(t, jwt.SigningMethodHS256, secret, nil, claimsAt(t0))
	v := mustVerifier(t, with(hsConfig(), func(c *auth.Config) { c.AllowQueryToken = true })())
	r := httptest.NewRequest(http.MethodGet, "/ws/chat?token="+good, nil)
	c, m, err := v.VerifyRequest(context.Background(), r)
	if err != nil || m != auth.MethodQuery || c.Subject != "u-1" {
		t.Fatalf("VerifyRequest = %+v, %q, %v", c, m, err)
	}
}
