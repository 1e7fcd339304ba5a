package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardline/wardline/transport/auth"
)

func BenchmarkVerify(b *testing.B) {
	k := keys()
	v, err := auth.NewVerifier(keyedConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = v.Close() })
	for _, bc := range []struct {
		name string
		tok  string
	}{
		{"HS256", sign(b, jwt.SigningMethodHS256, secret, nil, claimsAt(t0))},
		{"RS256", sign(b, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "rsa-1"}, claimsAt(t0))},
		{"ES256", sign(b, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "ec-1"}, claimsAt(t0))},
		{"EdDSA", sign(b, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "ed-1"}, claimsAt(t0))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, bc.tok); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func BenchmarkSessionVerify(b *testing.B) {
	s, err := auth.NewSessions(auth.SessionConfig{Key: sessionKey, Now: fixedNow})
	if err != nil {
		b.Fatal(err)
	}
	value, _, err := s.Issue(tokenClaims(t0.Add(time.Hour)))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(ctx, value); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
}
