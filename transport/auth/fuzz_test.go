package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardline/wardline/transport/auth"
)

// FuzzVerify: Verify on arbitrary strings never panics, and whatever it
// accepts carries a subject and an expiry.
func FuzzVerify(f *testing.F) {
	k := keys()
	good := sign(f, jwt.SigningMethodHS256, secret, nil, claimsAt(t0))
	f.Add(good)
	f.Add(sign(f, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "ec-1"}, claimsAt(t0)))
	f.Add(sign(f, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "ed-1", "crit": []string{"x"}}, claimsAt(t0)))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, claimsAt(t0)))
	f.Add(sign(f, jwt.SigningMethodHS256, secret, nil, claimsAt(t0, set("roles", map[string]any{"a": 1}))))
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("")
	f.Add("...")
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJyb2xlcyI6WyJhIixudWxsXX0.")
	v, err := auth.NewVerifier(keyedConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.Close() })
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			if _, ok := auth.ReasonOf(err); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if c.Subject == "" || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted claims without sub or exp: %+v", c)
		}
	})
}

// FuzzSessionVerify: the cookie decoder never panics on arbitrary values
// and accepts nothing but whole, signed, unexpired sessions.
func FuzzSessionVerify(f *testing.F) {
	s, err := auth.NewSessions(auth.SessionConfig{Key: sessionKey, Now: fixedNow})
	if err != nil {
		f.Fatal(err)
	}
	value, _, err := s.Issue(auth.Claims{Subject: "u-1", ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(value)
	f.Add(value[:len(value)-1])
	f.Add("v1..")
	f.Add("v1.e30." + strings.Repeat("A", 43))
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := s.Verify(context.Background(), v)
		if err != nil {
			if _, ok := auth.ReasonOf(err); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if c.Subject == "" || c.SessionID == "" || !c.ExpiresAt.After(t0) {
			t.Fatalf("accepted an incomplete session: %+v", c)
		}
	})
}
