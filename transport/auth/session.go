package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wardline/wardline/domain"
)

// Session cookie format, version 1:
//
//	v1.<base64url(JSON payload)>.<base64url(HMAC-SHA256(k, "v1." + payload))>
//
// where the payload is {"sid","sub","roles","iat","exp"} (times in Unix
// seconds) and k = HMAC-SHA256(SessionConfig.Key, "wardline/session-cookie/v1").
// Deriving k keeps cookie MACs apart from JWT MACs even when an operator
// reuses the JWT secret as the session key, so a cookie is never a valid
// bearer token or the reverse. The cookie is readable by nobody but the
// server (HttpOnly) but not secret: it holds no more than the JWT did.
const (
	cookieVersion    = "v1"
	cookieKeyContext = "wardline/session-cookie/v1"
	// maxCookieValue keeps name, value and attributes under the 4096 bytes
	// every browser stores.
	maxCookieValue = 3800
)

// DefaultCookieName uses the __Host- prefix, so browsers accept the cookie
// only when Secure, with Path=/ and no Domain: no sibling subdomain can
// plant or overwrite it.
const DefaultCookieName = "__Host-wardline_session"

// DefaultSessionTTL caps a session's life at one shift, whatever the JWT says.
const DefaultSessionTTL = 12 * time.Hour

// Revoker records ended sessions. It is declared here, where it is used;
// the gateway implements it over the event log (SessionRevoked events) so
// that a revocation holds on every node. Implementations must be safe for
// concurrent use and honour ctx. Revoked must fail (not answer false) when
// it cannot tell: Verify then refuses the session with ReasonUnavailable.
type Revoker interface {
	// Revoke ends sessionID. Until is when every cookie of that session
	// has expired anyway, so the record may be dropped after it.
	Revoke(ctx context.Context, sessionID string, until time.Time) error
	// Revoked reports whether sessionID was ended.
	Revoked(ctx context.Context, sessionID string) (bool, error)
}

// SessionConfig configures browser sessions.
type SessionConfig struct {
	// Key signs cookies; at least 32 bytes, and the same on every node.
	Key []byte
	// CookieName defaults to DefaultCookieName.
	CookieName string
	// MaxTTL caps a session's life; default DefaultSessionTTL. A session
	// never outlives the JWT it was created from.
	MaxTTL time.Duration
	// Revoker defaults to a MemoryRevoker, which only suits one node.
	Revoker Revoker
	// OnCreate, when set, is called after POST /api/v1/sessions issued a
	// cookie (to record AuthenticationSucceeded, for instance).
	OnCreate func(ctx context.Context, c Claims)
	// OnRevoke, when set, is called after DELETE /api/v1/sessions ended a
	// session, so the gateway can close that session's sockets.
	OnRevoke func(ctx context.Context, c Claims)
	// OnRefused, when set, is called when either handler refuses a
	// credential (to record AuthenticationFailed, for instance).
	OnRefused func(ctx context.Context, r *http.Request, err error)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *SessionConfig) setDefaults() {
	if c.CookieName == "" {
		c.CookieName = DefaultCookieName
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultSessionTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Revoker == nil {
		c.Revoker = NewMemoryRevoker(c.Now)
	}
}

// Validate reports the first thing wrong with c, after defaults.
func (c SessionConfig) Validate() error {
	c.setDefaults()
	return c.validate()
}

func (c *SessionConfig) validate() error {
	if len(c.Key) < minSecretLen {
		return fmt.Errorf("auth: session config: key is %d bytes, need at least %d", len(c.Key), minSecretLen)
	}
	if c.MaxTTL < 0 {
		return errors.New("auth: session config: negative MaxTTL")
	}
	if !validCookieName(c.CookieName) {
		return fmt.Errorf("auth: session config: bad cookie name %q", c.CookieName)
	}
	return nil
}

func validCookieName(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	return s != ""
}

// Sessions issues and checks signed session cookies. It is safe for
// concurrent use and starts no goroutines.
type Sessions struct {
	cfg SessionConfig
	key []byte
}

// NewSessions validates cfg and derives the cookie key.
func NewSessions(cfg SessionConfig) (*Sessions, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, cfg.Key)
	m.Write([]byte(cookieKeyContext))
	return &Sessions{cfg: cfg, key: m.Sum(nil)}, nil
}

// CookieName is the name of the session cookie.
func (s *Sessions) CookieName() string { return s.cfg.CookieName }

type sessionPayload struct {
	SID   string   `json:"sid"`
	Sub   string   `json:"sub"`
	Roles []string `json:"roles,omitempty"`
	Iat   int64    `json:"iat"`
	Exp   int64    `json:"exp"`
}

// Issue starts a session for verified token claims and returns the cookie
// value and the session's claims (with SessionID). The session expires at
// the token's exp or after MaxTTL, whichever is first, rounded down to
// the second.
func (s *Sessions) Issue(c Claims) (string, Claims, error) {
	if c.Subject == "" {
		return "", Claims{}, fail(ReasonMissingSubject, nil)
	}
	if c.ExpiresAt.IsZero() {
		return "", Claims{}, fail(ReasonMissingExpiry, nil)
	}
	now := s.cfg.Now()
	exp := c.ExpiresAt
	if limit := now.Add(s.cfg.MaxTTL); limit.Before(exp) {
		exp = limit
	}
	exp = exp.Truncate(time.Second)
	if !now.Before(exp) {
		return "", Claims{}, fail(ReasonExpired, nil)
	}
	p := sessionPayload{
		SID: rand.Text(),
		Sub: c.Subject,
		Iat: now.Unix(),
		Exp: exp.Unix(),
	}
	for _, r := range c.Roles {
		p.Roles = append(p.Roles, string(r))
	}
	body, err := json.Marshal(p)
	if err != nil {
		return "", Claims{}, fmt.Errorf("auth: encode session: %w", err)
	}
	signed := cookieVersion + "." + base64.RawURLEncoding.EncodeToString(body)
	value := signed + "." + base64.RawURLEncoding.EncodeToString(s.mac(signed))
	if len(value) > maxCookieValue {
		return "", Claims{}, failf(ReasonMalformed, "session would exceed the cookie size limit")
	}
	return value, p.claims(), nil
}

func (s *Sessions) mac(signed string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

func (p *sessionPayload) claims() Claims {
	c := Claims{
		Subject:   p.Sub,
		SessionID: p.SID,
		IssuedAt:  time.Unix(p.Iat, 0).UTC(),
		ExpiresAt: time.Unix(p.Exp, 0).UTC(),
	}
	if len(p.Roles) > 0 {
		c.Roles = make([]domain.Role, len(p.Roles))
		for i, r := range p.Roles {
			c.Roles[i] = domain.Role(r)
		}
	}
	return c
}

// Verify checks a session cookie's value: signature, expiry (no leeway:
// this server set it) and revocation.
func (s *Sessions) Verify(ctx context.Context, value string) (Claims, error) {
	p, err := s.decode(value)
	if err != nil {
		return Claims{}, err
	}
	if !s.cfg.Now().Before(time.Unix(p.Exp, 0)) {
		return Claims{}, fail(ReasonExpired, nil)
	}
	revoked, err := s.cfg.Revoker.Revoked(ctx, p.SID)
	if err != nil {
		return Claims{}, fail(ReasonUnavailable, fmt.Errorf("revocation check: %w", err))
	}
	if revoked {
		return Claims{}, fail(ReasonRevoked, nil)
	}
	return p.claims(), nil
}

// decode authenticates before it parses: no JSON from an unsigned cookie
// is ever looked at.
func (s *Sessions) decode(value string) (*sessionPayload, error) {
	if value == "" {
		return nil, fail(ReasonNoToken, nil)
	}
	if len(value) > maxCookieValue {
		return nil, failf(ReasonMalformed, "session cookie too long")
	}
	signed, sig, ok := cutLast(value, '.')
	version, body, ok2 := strings.Cut(signed, ".")
	if !ok || !ok2 || version != cookieVersion || strings.Contains(body, ".") {
		return nil, failf(ReasonMalformed, "not a session cookie")
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(mac) != sha256.Size {
		return nil, failf(ReasonMalformed, "bad session signature encoding")
	}
	if !hmac.Equal(mac, s.mac(signed)) {
		return nil, fail(ReasonSignature, nil)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, failf(ReasonMalformed, "bad session payload encoding")
	}
	var p sessionPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, failf(ReasonMalformed, "bad session payload")
	}
	if p.SID == "" || p.Sub == "" || p.Exp <= 0 {
		return nil, failf(ReasonMalformed, "incomplete session payload")
	}
	return &p, nil
}

func cutLast(s string, sep byte) (before, after string, found bool) {
	if i := strings.LastIndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// Revoke ends a session by id (DELETE /api/v1/sessions, admin:kick). The
// record is kept for MaxTTL, by when every cookie of the session is dead.
func (s *Sessions) Revoke(ctx context.Context, sessionID string) error {
	if err := s.cfg.Revoker.Revoke(ctx, sessionID, s.cfg.Now().Add(s.cfg.MaxTTL)); err != nil {
		return fmt.Errorf("auth: revoke session: %w", err)
	}
	return nil
}

// Cookie is the Set-Cookie for a session value: HttpOnly, Secure,
// SameSite=Strict, Path=/, expiring with the session.
func (s *Sessions) Cookie(value string, expires time.Time) *http.Cookie {
	maxAge := int(expires.Sub(s.cfg.Now()) / time.Second)
	if maxAge <= 0 {
		maxAge = -1
	}
	return &http.Cookie{
		Name:     s.cfg.CookieName,
		Value:    value,
		Path:     "/",
		Expires:  expires.UTC(),
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteStrictMode,
	}
}

// clearCookie tells the browser to forget the session cookie.
func (s *Sessions) clearCookie() *http.Cookie {
	return &http.Cookie{
		Name:     s.cfg.CookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteStrictMode,
	}
}

// MemoryRevoker is a Revoker for one node: revoked session ids kept in
// memory until their cookies would have expired anyway. Expired records are
// pruned during Revoke, so memory stays bounded by the sessions revoked in
// one MaxTTL without a background goroutine.
type MemoryRevoker struct {
	now func() time.Time

	mu        sync.Mutex
	until     map[string]time.Time
	pruneSize int
}

var _ Revoker = (*MemoryRevoker)(nil)

// NewMemoryRevoker returns an empty revocation set; now is its clock.
func NewMemoryRevoker(now func() time.Time) *MemoryRevoker {
	if now == nil {
		now = time.Now
	}
	return &MemoryRevoker{now: now, until: make(map[string]time.Time), pruneSize: 64}
}

// Revoke records sessionID as ended until the given time.
func (m *MemoryRevoker) Revoke(_ context.Context, sessionID string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.until[sessionID]; !ok || old.Before(until) {
		m.until[sessionID] = until
	}
	// Prune when the set has doubled since the last prune: amortised O(1).
	if len(m.until) >= m.pruneSize {
		now := m.now()
		for id, u := range m.until {
			if !now.Before(u) {
				delete(m.until, id)
			}
		}
		m.pruneSize = max(64, 2*len(m.until))
	}
	return nil
}

// Revoked reports whether sessionID is revoked now.
func (m *MemoryRevoker) Revoked(_ context.Context, sessionID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.until[sessionID]
	return ok && m.now().Before(u), nil
}

// Len is the number of records held, expired ones not yet pruned included.
func (m *MemoryRevoker) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.until)
}
