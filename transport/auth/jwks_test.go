package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardline/wardline/transport/auth"
)

// jwksServer is an identity provider on loopback whose key set, status
// and speed the test controls.
type jwksServer struct {
	*httptest.Server
	body   atomic.Pointer[[]byte]
	status atomic.Int32
	hits   atomic.Int64
	gate   atomic.Pointer[chan struct{}] // when set, requests wait for it to close
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.setBody(body)
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if g := s.gate.Load(); g != nil {
			select {
			case <-*g:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(int(s.status.Load()))
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setBody(b []byte) { s.body.Store(&b) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func jwksConfig(srv *jwksServer, clk *clock) auth.Config {
	return auth.Config{
		JWKSURL:                srv.URL + "/.well-known/jwks.json",
		HTTPClient:             srv.Client(),
		JWKSRefreshInterval:    time.Hour,
		JWKSMinRefreshInterval: 30 * time.Second,
		Now:                    clk.Now,
	}
}

func TestJWKSRotationFetchesTheNewKidWithinTheRateLimit(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, "A", &k.ec.PublicKey)))
	clk := newClock(t0)
	v := mustVerifier(t, jwksConfig(srv, clk))
	ctx := context.Background()
	waitFor(t, "the first background fetch", func() bool { return srv.hits.Load() == 1 })

	tokA := sign(t, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "A"}, claimsAt(t0))
	tokB := sign(t, jwt.SigningMethodES256, k.ecOther, map[string]any{"kid": "B"}, claimsAt(t0))
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatalf("kid A: %v", err)
	}

	// The provider rotates: A is gone, B is new.
	srv.setBody(jwksJSON(t, jwkOf(t, "B", &k.ecOther.PublicKey)))
	for range 50 {
		if _, err := v.Verify(ctx, tokB); !errors.Is(err, &auth.Error{Reason: auth.ReasonUnknownKey}) {
			t.Fatalf("kid B before the rate limit allows a fetch: err = %v, want unknown key", err)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("unknown kids within the rate limit caused %d fetches, want 1 in all", got)
	}

	clk.Advance(30 * time.Second)
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatalf("kid B after the rate limit: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2", got)
	}
	if _, err := v.Verify(ctx, tokA); !errors.Is(err, &auth.Error{Reason: auth.ReasonUnknownKey}) {
		t.Fatalf("kid A after rotation: err = %v, want unknown key", err)
	}
}

func TestJWKSIsRefreshedPeriodicallyUntilClose(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, "A", k.ed.Public())))
	cfg := jwksConfig(srv, newClock(t0))
	cfg.JWKSRefreshInterval = 5 * time.Millisecond
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three periodic fetches", func() bool { return srv.hits.Load() >= 3 })
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Keys fetched before Close still verify; nothing is fetched after it.
	tok := sign(t, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "A"}, claimsAt(t0))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	if err := v.RefreshKeys(context.Background()); err == nil {
		t.Error("RefreshKeys after Close succeeded")
	}
}

func TestJWKSFailedRefreshKeepsThePreviousKeys(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, "A", &k.rsa.PublicKey)))
	v := mustVerifier(t, jwksConfig(srv, newClock(t0)))
	ctx := context.Background()
	if err := v.RefreshKeys(ctx); err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "A"}, claimsAt(t0))

	for _, broken := range []func(){
		func() { srv.status.Store(http.StatusInternalServerError) },
		func() { srv.status.Store(http.StatusOK); srv.setBody([]byte(`{"keys":[]}`)) },
		func() { srv.setBody([]byte(`<html>`)) },
	} {
		broken()
		if err := v.RefreshKeys(ctx); err == nil {
			t.Fatal("a broken JWKS response refreshed without error")
		}
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("after a failed refresh: %v", err)
		}
	}
}

func TestJWKSSkipsKeysItMustNotUse(t *testing.T) {
	k := keys()
	enc := jwkOf(t, "enc", k.ed.Public())
	enc["use"] = "enc"
	priv := jwkOf(t, "priv", k.edOther.Public())
	priv["d"] = b64u(k.edOther.Seed())
	mismatch := jwkOf(t, "mismatch", &k.ec.PublicKey)
	mismatch["alg"] = "RS256"
	weak := jwkOf(t, "weak", &weakRSA(t).PublicKey)
	srv := newJWKSServer(t, jwksJSON(t, enc, priv, mismatch, weak,
		map[string]any{"kty": "oct", "kid": "sym", "k": b64u(secret)},
		jwkOf(t, "ok", &k.ecOther.PublicKey)))
	v := mustVerifier(t, jwksConfig(srv, newClock(t0)))
	ctx := context.Background()
	if err := v.RefreshKeys(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tok  string
		want auth.Reason
	}{
		{"a token for the usable key is accepted", sign(t, jwt.SigningMethodES256, k.ecOther, map[string]any{"kid": "ok"}, claimsAt(t0)), 0},
		{"an encryption key is not used for signatures", sign(t, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "enc"}, claimsAt(t0)), auth.ReasonUnknownKey},
		{"a published private key is not trusted", sign(t, jwt.SigningMethodEdDSA, k.edOther, map[string]any{"kid": "priv"}, claimsAt(t0)), auth.ReasonUnknownKey},
		{"a key whose alg does not fit it is not used", sign(t, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "mismatch"}, claimsAt(t0)), auth.ReasonUnknownKey},
		{"a weak RSA key is not used", sign(t, jwt.SigningMethodRS256, weakRSA(t), map[string]any{"kid": "weak"}, claimsAt(t0)), auth.ReasonUnknownKey},
		{"a symmetric JWK never becomes an HMAC secret", sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": "sym"}, claimsAt(t0)), auth.ReasonAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tt.tok)
			if tt.want == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if r, _ := auth.ReasonOf(err); r != tt.want {
				t.Fatalf("err = %v, want reason %v", err, tt.want)
			}
		})
	}
}

func TestJWKSKeysAreLookedUpOnlyInTheConfiguredSet(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, "A", &k.ec.PublicKey)))
	attacker := newJWKSServer(t, jwksJSON(t, jwkOf(t, "evil", &k.ecOther.PublicKey)))
	v := mustVerifier(t, jwksConfig(srv, newClock(t0)))
	tok := sign(t, jwt.SigningMethodES256, k.ecOther, map[string]any{
		"kid": "evil", "jku": attacker.URL, "x5u": attacker.URL,
		"jwk": jwkOf(t, "evil", &k.ecOther.PublicKey),
	}, claimsAt(t0))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, &auth.Error{Reason: auth.ReasonUnknownKey}) {
		t.Fatalf("err = %v, want unknown key", err)
	}
	if n := attacker.hits.Load(); n != 0 {
		t.Fatalf("the verifier fetched the URL a token named (%d requests)", n)
	}
}

func TestJWKSConcurrentUnknownKidsShareOneFetch(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, "A", k.ed.Public())))
	clk := newClock(t0)
	v := mustVerifier(t, jwksConfig(srv, clk))
	// Wait for the first background fetch to have completed, not merely
	// reached the server: verifications that queue behind it would get
	// its old set and fail.
	tokA := sign(t, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "A"}, claimsAt(t0))
	waitFor(t, "the first background fetch", func() bool {
		_, err := v.Verify(context.Background(), tokA)
		return err == nil
	})
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches before the rotation, want 1", n)
	}

	srv.setBody(jwksJSON(t, jwkOf(t, "B", k.edOther.Public())))
	gate := make(chan struct{})
	srv.gate.Store(&gate)
	clk.Advance(time.Minute)
	tok := sign(t, jwt.SigningMethodEdDSA, k.edOther, map[string]any{"kid": "B"}, claimsAt(t0.Add(time.Minute)))

	const n = 20
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		})
	}
	waitFor(t, "the fetch to be in flight", func() bool { return srv.hits.Load() == 2 })
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("%d concurrent unknown kids caused %d fetches, want 1", n, got-1)
	}
}

func TestJWKSUnreachableIsAnUnknownKeyThatSaysWhy(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, nil)
	url := srv.URL
	srv.Close()
	v := mustVerifier(t, auth.Config{JWKSURL: url, JWKSRefreshInterval: time.Hour, Now: fixedNow})
	tok := sign(t, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "A"}, claimsAt(t0))
	_, err := v.Verify(context.Background(), tok)
	if !errors.Is(err, &auth.Error{Reason: auth.ReasonUnknownKey}) {
		t.Fatalf("err = %v, want unknown key", err)
	}
	if err := v.RefreshKeys(context.Background()); err == nil || !strings.Contains(err.Error(), "JWKS fetch") {
		t.Fatalf("RefreshKeys = %v, want a fetch error", err)
	}
}

func TestJWKSFetchHonoursTheCallersContext(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, "A", k.ed.Public())))
	gate := make(chan struct{})
	srv.gate.Store(&gate)
	defer close(gate)
	v := mustVerifier(t, jwksConfig(srv, newClock(t0)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tok := sign(t, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "A"}, claimsAt(t0))
	if _, err := v.Verify(ctx, tok); !errors.Is(err, &auth.Error{Reason: auth.ReasonUnknownKey}) {
		t.Fatalf("err = %v, want unknown key", err)
	}
}
