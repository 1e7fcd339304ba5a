package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Config says which tokens a Verifier accepts. The zero value is invalid:
// at least one of Secret, PublicKeyFiles, PublicKeys or JWKSURL is needed.
type Config struct {
	// Secret is the HS256/384/512 shared secret, at least 32 bytes.
	Secret []byte
	// PublicKeyFiles are PEM files read by LoadPublicKeysPEM.
	PublicKeyFiles []string
	// PublicKeys are keys given directly (after or instead of the files).
	PublicKeys []Key
	// JWKSURL is fetched for more keys: https, or http on a loopback host.
	JWKSURL string
	// JWKSRefreshInterval is how often the JWKS is fetched in the
	// background. Default 10 minutes.
	JWKSRefreshInterval time.Duration
	// JWKSMinRefreshInterval is the least time between two fetches caused
	// by tokens naming an unknown kid, so a stream of junk tokens cannot
	// turn into a stream of requests to the identity provider. Default 30 s.
	JWKSMinRefreshInterval time.Duration
	// JWKSFetchTimeout bounds one fetch. Default 10 s.
	JWKSFetchTimeout time.Duration
	// HTTPClient fetches the JWKS. Default: a client with a transport of
	// its own (closed by Verifier.Close) and JWKSFetchTimeout as timeout.
	HTTPClient *http.Client

	// Algorithms is the allow-list. Default: HS256 when Secret is set, plus
	// the natural algorithm of each configured key type (RS256, ES256,
	// ES384, ES512, EdDSA), plus RS256, ES256 and EdDSA when JWKSURL is set.
	// "none" is always refused.
	Algorithms []string
	// Issuer, when set, must equal `iss`.
	Issuer string
	// Audience, when set, must be one of `aud`.
	Audience string
	// Type, when set, must equal the `typ` header (case-insensitive, an
	// "application/" prefix ignored, per RFC 7515 §4.1.9).
	Type string
	// Leeway is the clock skew allowed on exp and nbf. Zero means the
	// default of 5 s; negative is invalid.
	Leeway time.Duration
	// AllowQueryToken lets VerifyRequest read `?token=`. Off by default
	// because URLs end up in logs.
	AllowQueryToken bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives JWKS refresh outcomes. Default: discard.
	Logger *slog.Logger
}

// DefaultLeeway is the clock skew allowed on exp and nbf.
const DefaultLeeway = 5 * time.Second

// Defaults for the JWKS cache.
const (
	DefaultJWKSRefreshInterval    = 10 * time.Minute
	DefaultJWKSMinRefreshInterval = 30 * time.Second
	DefaultJWKSFetchTimeout       = 10 * time.Second
)

func (c *Config) setDefaults() {
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.JWKSRefreshInterval == 0 {
		c.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if c.JWKSMinRefreshInterval == 0 {
		c.JWKSMinRefreshInterval = DefaultJWKSMinRefreshInterval
	}
	if c.JWKSFetchTimeout == 0 {
		c.JWKSFetchTimeout = DefaultJWKSFetchTimeout
	}
	if c.HTTPClient == nil {
		// A transport of its own, so Close can drop its idle connections
		// without touching anyone else's.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		c.HTTPClient = &http.Client{Timeout: c.JWKSFetchTimeout, Transport: tr}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first thing wrong with c, after defaults. It does
// not read key files; NewVerifier does.
func (c Config) Validate() error {
	c.setDefaults()
	return c.validate(len(c.PublicKeyFiles) > 0 || len(c.PublicKeys) > 0)
}

func (c *Config) validate(haveKeys bool) error {
	if len(c.Secret) == 0 && !haveKeys && c.JWKSURL == "" {
		return errors.New("auth: config: no secret, public key or JWKS URL")
	}
	if len(c.Secret) > 0 && len(c.Secret) < minSecretLen {
		return fmt.Errorf("auth: config: secret is %d bytes, need at least %d", len(c.Secret), minSecretLen)
	}
	if c.Leeway < 0 {
		return errors.New("auth: config: negative leeway")
	}
	if c.JWKSRefreshInterval < 0 || c.JWKSMinRefreshInterval < 0 || c.JWKSFetchTimeout < 0 {
		return errors.New("auth: config: negative JWKS interval")
	}
	for _, k := range c.PublicKeys {
		if err := checkPublicKey(k.Public); err != nil {
			return fmt.Errorf("auth: config: key %q: %w", k.ID, err)
		}
		if k.Algorithm != "" && !keyFits(k.Algorithm, k.Public) {
			return fmt.Errorf("auth: config: key %q: algorithm %s does not fit a %s key", k.ID, k.Algorithm, keyKind(k.Public))
		}
	}
	if c.JWKSURL != "" {
		if err := checkJWKSURL(c.JWKSURL); err != nil {
			return fmt.Errorf("auth: config: %w", err)
		}
	}
	for _, a := range c.Algorithms {
		if !knownAlgs[a] {
			return fmt.Errorf("auth: config: algorithm %q is not supported", a)
		}
		if isHMAC(a) && len(c.Secret) == 0 {
			return fmt.Errorf("auth: config: algorithm %s needs a secret", a)
		}
		if !isHMAC(a) && !haveKeys && c.JWKSURL == "" {
			return fmt.Errorf("auth: config: algorithm %s needs a public key or JWKS URL", a)
		}
	}
	return nil
}

// defaultAlgorithms derives the allow-list from what is configured.
func defaultAlgorithms(secret bool, keys []Key, jwks bool) []string {
	var algs []string
	add := func(a string) {
		if a != "" && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	if secret {
		add("HS256")
	}
	for _, k := range keys {
		if k.Algorithm != "" {
			add(k.Algorithm)
		} else {
			add(defaultAlg(k.Public))
		}
	}
	if jwks {
		add("RS256")
		add("ES256")
		add("EdDSA")
	}
	return algs
}

// checkJWKSURL insists on TLS except on loopback, where a development
// identity provider or a test server lives.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("JWKS URL: %w", err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("JWKS URL must use https unless the host is loopback")
		}
	default:
		return fmt.Errorf("JWKS URL scheme %q: want https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("JWKS URL has no host")
	}
	return nil
}

func keyKind(pub any) string { return fmt.Sprintf("%T", pub) }
