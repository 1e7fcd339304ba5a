package auth

import (
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinterConfig says how `wardline token` signs. Set Secret for HS256
// tokens that a Verifier with the same secret accepts, or PrivateKey for
// RS256/ES256/ES384/ES512/EdDSA tokens.
type MinterConfig struct {
	Secret     []byte
	PrivateKey crypto.Signer // *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey
	// Algorithm defaults to the private key's natural algorithm when
	// PrivateKey is set, else HS256.
	Algorithm string
	// KeyID is put in the `kid` header when set.
	KeyID string
	// Issuer and Audience are stamped on every token unless the claims
	// given to Mint carry their own.
	Issuer   string
	Audience string
	// Type is the `typ` header; default "JWT".
	Type string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Minter signs tokens. It is safe for concurrent use.
type Minter struct {
	cfg    MinterConfig
	method jwt.SigningMethod
	key    any
}

// NewMinter validates cfg.
func NewMinter(cfg MinterConfig) (*Minter, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Type == "" {
		cfg.Type = "JWT"
	}
	var key any
	switch {
	case cfg.PrivateKey != nil:
		if err := checkPublicKey(cfg.PrivateKey.Public()); err != nil {
			return nil, fmt.Errorf("auth: minter: %w", err)
		}
		if cfg.Algorithm == "" {
			cfg.Algorithm = defaultAlg(cfg.PrivateKey.Public())
		}
		if !keyFits(cfg.Algorithm, cfg.PrivateKey.Public()) {
			return nil, fmt.Errorf("auth: minter: algorithm %q does not fit the private key", cfg.Algorithm)
		}
		key = cfg.PrivateKey
	case len(cfg.Secret) > 0:
		if len(cfg.Secret) < minSecretLen {
			return nil, fmt.Errorf("auth: minter: secret is %d bytes, need at least %d", len(cfg.Secret), minSecretLen)
		}
		if cfg.Algorithm == "" {
			cfg.Algorithm = "HS256"
		}
		if !isHMAC(cfg.Algorithm) {
			return nil, fmt.Errorf("auth: minter: algorithm %q cannot sign with a secret", cfg.Algorithm)
		}
		key = cfg.Secret
	default:
		return nil, errors.New("auth: minter: no secret or private key")
	}
	method := jwt.GetSigningMethod(cfg.Algorithm)
	if method == nil || !knownAlgs[cfg.Algorithm] {
		return nil, fmt.Errorf("auth: minter: unsupported algorithm %q", cfg.Algorithm)
	}
	return &Minter{cfg: cfg, method: method, key: key}, nil
}

// Mint signs a token for c.Subject and c.Roles valid for ttl from now, with
// a fresh `jti` unless c.ID is set. ExpiresAt, IssuedAt and NotBefore in c
// are ignored: the minter owns the token's times.
func (m *Minter) Mint(c Claims, ttl time.Duration) (string, error) {
	if c.Subject == "" {
		return "", errors.New("auth: mint: empty subject")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: mint: ttl %v is not positive", ttl)
	}
	now := m.cfg.Now()
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Subject,
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        c.ID,
			Issuer:    c.Issuer,
			Audience:  jwt.ClaimStrings(c.Audience),
		},
		Roles: roleList(c.Roles),
	}
	if tc.ID == "" {
		tc.ID = rand.Text()
	}
	if tc.Issuer == "" {
		tc.Issuer = m.cfg.Issuer
	}
	if len(tc.Audience) == 0 && m.cfg.Audience != "" {
		tc.Audience = jwt.ClaimStrings{m.cfg.Audience}
	}
	t := jwt.NewWithClaims(m.method, &tc)
	t.Header["typ"] = m.cfg.Type
	if m.cfg.KeyID != "" {
		t.Header["kid"] = m.cfg.KeyID
	}
	s, err := t.SignedString(m.key)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	return s, nil
}
