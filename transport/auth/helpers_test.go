package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The JWKS refresher and httptest servers start goroutines; every one
	// must be gone when the tests end.
	goleak.VerifyTestMain(m)
}

// t0 is the fixed "now" of every test.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// clock is a concurrency-safe settable clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.Set(t)
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

type testKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	ec, ecOther   *ecdsa.PrivateKey
	ec384         *ecdsa.PrivateKey
	ed, edOther   ed25519.PrivateKey
}

// keys are generated once per test binary: RSA generation is slow under
// the race detector.
var keys = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeys{}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ecOther, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	_, k.edOther, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

// sign builds a token with any header and claims, the way an attacker or
// a foreign issuer could.
func sign(tb testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return s
}

// claimsAt are valid claims at t0, changed by the mutators.
func claimsAt(now time.Time, mut ...func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":   "u-1",
		"roles": []string{"nurse", "staff"},
		"exp":   now.Add(time.Hour).Unix(),
		"iat":   now.Unix(),
		"jti":   "tok-1",
	}
	for _, m := range mut {
		m(c)
	}
	return c
}

func set(k string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[k] = v } }
func del(k string) func(jwt.MapClaims)        { return func(c jwt.MapClaims) { delete(c, k) } }

func pemPublic(tb testing.TB, pub crypto.PublicKey, headers map[string]string) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: headers, Bytes: der})
}

func writeFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf is the public JWK of a key, as an identity provider publishes it.
func jwkOf(tb testing.TB, kid string, pub crypto.PublicKey) map[string]any {
	tb.Helper()
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := k.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		size := (len(raw) - 1) / 2
		return map[string]any{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name,
			"x": b64u(raw[1 : 1+size]), "y": b64u(raw[1+size:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64u(k)}
	}
	tb.Fatalf("jwkOf: %T", pub)
	return nil
}

func jwksJSON(tb testing.TB, jwks ...map[string]any) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
