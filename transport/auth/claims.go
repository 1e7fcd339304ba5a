package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardline/wardline/domain"
)

// Claims is what a verified token or session cookie says about its holder.
type Claims struct {
	Subject   string        // user id (`sub`), never empty
	Roles     []domain.Role // `roles`, in token order; may be empty
	ExpiresAt time.Time     // `exp`, never zero
	IssuedAt  time.Time     // `iat`, zero when absent
	NotBefore time.Time     // `nbf`, zero when absent
	ID        string        // `jti`, empty when absent
	Issuer    string        // `iss`, empty when absent
	Audience  []string      // `aud`, empty when absent
	KeyID     string        // `kid` header of the verified token, empty when absent
	// SessionID is set on claims read from a session cookie: the id that
	// DELETE /api/v1/sessions and admin:kick end.
	SessionID string
}

// HasRole reports whether the claims hold any of roles.
func (c Claims) HasRole(roles ...domain.Role) bool {
	return c.Actor().HasRole(roles...)
}

// Actor is the domain actor these claims describe. ClientAddr is left for
// the transport, which knows the connection.
func (c Claims) Actor() domain.Actor {
	return domain.Actor{UserID: c.Subject, Roles: c.Roles, SessionID: c.SessionID}
}

// roleList decodes `roles` as an array of strings or a single string.
type roleList []domain.Role

var errRolesShape = errors.New("roles claim must be a string or an array of strings")

func (r *roleList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*r = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errRolesShape
		}
		*r = appendRole(nil, s)
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return errRolesShape
	}
	out := make(roleList, 0, len(ss))
	for _, s := range ss {
		out = appendRole(out, s)
	}
	*r = out
	return nil
}

// appendRole drops empty names: "" can never be a role, and keeping it
// would only make role checks harder to reason about.
func appendRole(out roleList, s string) roleList {
	if s == "" {
		return out
	}
	return append(out, domain.Role(s))
}

// tokenClaims is the JWT body this package reads and writes.
type tokenClaims struct {
	jwt.RegisteredClaims
	Roles roleList `json:"roles,omitempty"`
}

func (tc *tokenClaims) toClaims(kid string) Claims {
	c := Claims{
		Subject:  tc.Subject,
		Roles:    []domain.Role(tc.Roles),
		ID:       tc.ID,
		Issuer:   tc.Issuer,
		Audience: []string(tc.Audience),
		KeyID:    kid,
	}
	if tc.ExpiresAt != nil {
		c.ExpiresAt = tc.ExpiresAt.UTC()
	}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.UTC()
	}
	if tc.NotBefore != nil {
		c.NotBefore = tc.NotBefore.UTC()
	}
	return c
}
