package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the work one presented token can cause; real tokens
// are well under 4 KiB.
const maxTokenLen = 16 << 10

// Verifier checks JWTs against one Config. It is safe for concurrent use.
// When a JWKS URL is configured it owns one goroutine that refreshes the
// keys; Close stops it.
type Verifier struct {
	cfg    Config
	algs   []string
	static []Key
	parser *jwt.Parser
	jwks   *jwksCache

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool // no JWKS fetches after Close
}

// NewVerifier validates cfg, reads the key files, and, when JWKSURL is set,
// starts the background refresh (its first fetch runs at once, without
// blocking NewVerifier; call RefreshKeys to wait for keys at startup).
func NewVerifier(cfg Config) (*Verifier, error) {
	ownClient := cfg.HTTPClient == nil
	cfg.setDefaults()
	static := slices.Clone(cfg.PublicKeys)
	for _, path := range cfg.PublicKeyFiles {
		keys, err := LoadPublicKeysPEM(path)
		if err != nil {
			return nil, err
		}
		static = append(static, keys...)
	}
	if err := cfg.validate(len(static) > 0); err != nil {
		return nil, err
	}
	algs := slices.Clone(cfg.Algorithms)
	if len(algs) == 0 {
		algs = defaultAlgorithms(len(cfg.Secret) > 0, static, cfg.JWKSURL != "")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithExpirationRequired(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v := &Verifier{
		cfg:    cfg,
		algs:   algs,
		static: static,
		parser: jwt.NewParser(opts...),
		done:   make(chan struct{}),
	}
	if cfg.JWKSURL == "" {
		close(v.done)
		return v, nil
	}
	v.jwks = &jwksCache{
		url:         cfg.JWKSURL,
		client:      cfg.HTTPClient,
		timeout:     cfg.JWKSFetchTimeout,
		minInterval: cfg.JWKSMinRefreshInterval,
		now:         cfg.Now,
		log:         cfg.Logger,
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	go func() {
		defer close(v.done)
		v.jwks.run(ctx, cfg.JWKSRefreshInterval)
		if ownClient {
			cfg.HTTPClient.CloseIdleConnections()
		}
	}()
	return v, nil
}

// Close stops the JWKS refresh and waits for it. It is idempotent; Verify
// keeps working afterwards with the keys already fetched, and fetches no
// more.
func (v *Verifier) Close() error {
	v.closeOnce.Do(func() {
		v.closed.Store(true)
		if v.cancel != nil {
			v.cancel()
		}
	})
	<-v.done
	return nil
}

// Algorithms is the effective allow-list.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algs) }

// RefreshKeys fetches the JWKS now, regardless of the rate limit. Without a
// JWKS URL it does nothing.
func (v *Verifier) RefreshKeys(ctx context.Context) error {
	if v.jwks == nil {
		return nil
	}
	if v.closed.Load() {
		return errors.New("auth: verifier closed")
	}
	if err := v.jwks.refresh(ctx, true); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

// Verify checks token and returns its claims, or an *Error saying why not.
// ctx bounds a JWKS fetch caused by an unknown kid.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if token == "" {
		return Claims{}, fail(ReasonNoToken, nil)
	}
	if len(token) > maxTokenLen {
		return Claims{}, failf(ReasonMalformed, "token longer than %d bytes", maxTokenLen)
	}
	var tc tokenClaims
	tok, err := v.parser.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	})
	if err != nil {
		return Claims{}, v.classify(tok, &tc, err)
	}
	kid, _ := tok.Header["kid"].(string)
	if v.cfg.Type != "" {
		typ, _ := tok.Header["typ"].(string)
		if !sameMediaType(typ, v.cfg.Type) {
			return Claims{}, fail(ReasonType, nil)
		}
	}
	if tc.Subject == "" {
		return Claims{}, fail(ReasonMissingSubject, nil)
	}
	return tc.toClaims(kid), nil
}

// keyFor picks the key for a token whose alg is already on the allow-list.
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 §4.1.11: we understand no extensions, so must refuse.
		return nil, failf(ReasonMalformed, "unsupported crit header")
	}
	if isHMAC(alg) {
		// Only ever the configured secret: a kid cannot select a public key
		// as HMAC secret.
		return v.cfg.Secret, nil
	}
	rawKid, hasKid := t.Header["kid"]
	kid, ok := rawKid.(string)
	if hasKid && !ok {
		return nil, failf(ReasonMalformed, "kid header is not a string")
	}
	keys, named := v.match(alg, kid, hasKid)
	var fetchErr error
	if len(keys) == 0 && !named && v.jwks != nil && !v.closed.Load() {
		fetchErr = v.jwks.refresh(ctx, false)
		keys, named = v.match(alg, kid, hasKid)
	}
	if len(keys) == 0 && named {
		return nil, failf(ReasonAlgorithm, "%s does not fit key %q", alg, kid)
	}
	if len(keys) == 0 && hasKid {
		// A kid-less PEM key is the operator saying "this is the key",
		// whatever kid the issuer stamps on its tokens.
		for _, k := range v.static {
			if k.ID == "" && fits(k, alg) {
				keys = append(keys, k.Public)
			}
		}
	}
	switch {
	case len(keys) == 0:
		if fetchErr != nil && !errors.Is(fetchErr, errRefreshTooSoon) {
			return nil, failf(ReasonUnknownKey, "no key for kid %q and alg %s (JWKS: %v)", kid, alg, fetchErr)
		}
		return nil, failf(ReasonUnknownKey, "no key for kid %q and alg %s", kid, alg)
	case len(keys) == 1:
		return keys[0], nil
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k
	}
	return set, nil
}

// match returns the keys that may check a token with alg and kid; named
// reports that keys with this kid exist but none fits alg.
func (v *Verifier) match(alg, kid string, hasKid bool) (keys []any, named bool) {
	sets := [2][]Key{v.static}
	if v.jwks != nil {
		sets[1] = v.jwks.current()
	}
	for _, set := range sets {
		for _, k := range set {
			if hasKid && k.ID != kid {
				continue
			}
			if fits(k, alg) {
				keys = append(keys, k.Public)
			} else if hasKid {
				named = true
			}
		}
	}
	return keys, named && len(keys) == 0
}

func fits(k Key, alg string) bool {
	return (k.Algorithm == "" || k.Algorithm == alg) && keyFits(alg, k.Public)
}

// classify turns a jwt error into the reason callers act on.
func (v *Verifier) classify(tok *jwt.Token, tc *tokenClaims, err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	alg := ""
	if tok != nil {
		alg, _ = tok.Header["alg"].(string)
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(ReasonMalformed, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		if alg != "" {
			return failf(ReasonAlgorithm, "algorithm %q is not supported", alg)
		}
		return failf(ReasonMalformed, "no alg header")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if alg != "" && !slices.Contains(v.algs, alg) {
			return failf(ReasonAlgorithm, "algorithm %q is not allowed", alg)
		}
		return fail(ReasonSignature, err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// exp, or iss/aud when configured: tell which.
		switch {
		case tc.ExpiresAt == nil:
			return fail(ReasonMissingExpiry, nil)
		case v.cfg.Issuer != "" && tc.Issuer == "":
			return fail(ReasonIssuer, nil)
		case v.cfg.Audience != "" && len(tc.Audience) == 0:
			return fail(ReasonAudience, nil)
		}
		return fail(ReasonMalformed, err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fail(ReasonIssuer, nil)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fail(ReasonAudience, nil)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(ReasonExpired, nil)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return fail(ReasonNotYetValid, nil)
	}
	return fail(ReasonMalformed, err)
}

// sameMediaType compares typ values as RFC 7515 §4.1.9 says: case-
// insensitively, with "application/" optional.
func sameMediaType(a, b string) bool {
	trim := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		return strings.TrimPrefix(s, "application/")
	}
	return a != "" && trim(a) == trim(b)
}
