package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxJWKSBytes bounds a JWKS response; real sets are a few KiB.
const maxJWKSBytes = 1 << 20

// errRefreshTooSoon is returned when an unknown kid would refetch the JWKS
// before JWKSMinRefreshInterval has passed.
var errRefreshTooSoon = errors.New("JWKS refetched too recently")

// jwksCache holds the keys of one JWKS URL. Reads are lock-free; fetches
// are coalesced, so concurrent verifications with an unknown kid cause one
// request, and rate-limited by minInterval unless forced (the periodic
// refresh and RefreshKeys force). A failed fetch keeps the previous keys.
type jwksCache struct {
	url         string
	client      *http.Client
	timeout     time.Duration
	minInterval time.Duration
	now         func() time.Time
	log         *slog.Logger

	keys atomic.Pointer[[]Key]

	mu          sync.Mutex
	lastAttempt time.Time
	inflight    *fetchCall
}

type fetchCall struct {
	done chan struct{}
	err  error
}

func (c *jwksCache) current() []Key {
	if p := c.keys.Load(); p != nil {
		return *p
	}
	return nil
}

// refresh fetches the set, or waits for a fetch already in flight.
func (c *jwksCache) refresh(ctx context.Context, force bool) error {
	c.mu.Lock()
	if call := c.inflight; call != nil {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := c.now()
	if !force && !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.minInterval {
		c.mu.Unlock()
		return errRefreshTooSoon
	}
	call := &fetchCall{done: make(chan struct{})}
	c.inflight = call
	c.lastAttempt = now
	c.mu.Unlock()

	keys, err := c.fetch(ctx)
	if err == nil {
		c.keys.Store(&keys)
		c.log.Debug("auth: JWKS refreshed", "url", c.url, "keys", len(keys))
	} else {
		c.log.Warn("auth: JWKS refresh failed; keeping previous keys", "url", c.url, "err", err)
	}

	c.mu.Lock()
	c.inflight = nil
	c.mu.Unlock()
	call.err = err
	close(call.done)
	return err
}

func (c *jwksCache) fetch(ctx context.Context) ([]Key, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("JWKS fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("JWKS fetch: HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("JWKS read: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

// run refreshes the set every period until ctx ends.
func (c *jwksCache) run(ctx context.Context, every time.Duration) {
	_ = c.refresh(ctx, true)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.refresh(ctx, true)
		}
	}
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

// parseJWKS decodes a JWK Set (RFC 7517). Keys this package cannot or must
// not use are skipped rather than failing the set, because identity
// providers publish encryption keys and new key types alongside signing
// keys: keys with `use` other than "sig", unknown kty or curve, an `alg`
// that does not fit the key, weak RSA keys, and keys that carry private
// material (`d`: a set that publishes private keys lets anyone sign). A set
// with no usable key is an error, so a broken response never empties the
// cache.
func parseJWKS(data []byte) ([]Key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JWKS decode: %w", err)
	}
	var keys []Key
	for _, raw := range set.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil {
			continue
		}
		if (k.Use != "" && k.Use != "sig") || k.D != "" {
			continue
		}
		pub, err := k.publicKey()
		if err != nil || checkPublicKey(pub) != nil {
			continue
		}
		if k.Alg != "" && !keyFits(k.Alg, pub) {
			continue
		}
		keys = append(keys, Key{ID: k.Kid, Algorithm: k.Alg, Public: pub})
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no usable signing key")
	}
	return keys, nil
}

func (k *jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64(k.N)
		if err != nil {
			return nil, err
		}
		e, err := b64(k.E)
		if err != nil {
			return nil, err
		}
		if len(e) == 0 || len(e) > 4 || len(n) == 0 {
			return nil, errors.New("bad RSA parameters")
		}
		exp := new(big.Int).SetBytes(e).Int64()
		if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64(k.X)
		if err != nil {
			return nil, err
		}
		y, err := b64(k.Y)
		if err != nil {
			return nil, err
		}
		if len(x) != size || len(y) != size {
			return nil, errors.New("bad EC coordinate length")
		}
		point := make([]byte, 0, 1+2*size)
		point = append(point, 4)
		point = append(point, x...)
		point = append(point, y...)
		return ecdsa.ParseUncompressedPublicKey(curve, point)
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := b64(k.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key length")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported kty %q", k.Kty)
}

// b64 decodes base64url, tolerating the padding some providers add.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
