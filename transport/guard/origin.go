package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrOriginRefused is matched (errors.Is) by every *OriginError.
var ErrOriginRefused = errors.New("guard: origin refused")

// OriginError says why a request's Origin was refused. Origin is the
// header as sent, for logs.
type OriginError struct {
	Origin string
	Reason string
}

func (e *OriginError) Error() string {
	return fmt.Sprintf("guard: origin %q refused: %s", e.Origin, e.Reason)
}

// Is makes errors.Is(err, ErrOriginRefused) true.
func (e *OriginError) Is(target error) bool { return target == ErrOriginRefused }

// Code is the ack-envelope code of a refused origin.
func (e *OriginError) Code() string { return "forbidden" }

// OriginConfig is the Origin policy (DESIGN.md "Sessions and tokens"):
//
//   - a request without an Origin header is accepted: it is not a browser,
//     and a non-browser can send any Origin it likes anyway;
//   - "null" (sandboxed frames, file: pages, some redirects) is refused,
//     even when "*" is allowed, because every such page shares it;
//   - otherwise the origin must equal an allow-list entry or the request's
//     own scheme://host[:port]. Comparison is exact after normalising case
//     and default ports ("https://a.example:443" = "https://A.example").
//     There are no wildcard subdomains.
type OriginConfig struct {
	// Allowed are exact origins, scheme://host[:port]. "*" allows every
	// origin except "null": for development only, since it lets any web
	// page open sockets with a user's session cookie.
	Allowed []string
	// TrustProxyHeaders takes the request's own scheme and host from the
	// first X-Forwarded-Proto and X-Forwarded-Host values. Set it only
	// behind a proxy that overwrites those headers; otherwise the own
	// origin is r.TLS (https when set, else http) and r.Host.
	TrustProxyHeaders bool
}

// ParseOrigins splits a comma-separated list (WARDLINE_ALLOWED_ORIGINS),
// dropping blanks.
func ParseOrigins(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// OriginChecker applies an OriginConfig. It is immutable and safe for
// concurrent use.
type OriginChecker struct {
	allowAll   bool
	allowed    map[string]struct{}
	trustProxy bool
}

// NewOriginChecker validates and normalises the allow-list.
func NewOriginChecker(cfg OriginConfig) (*OriginChecker, error) {
	c := &OriginChecker{allowed: make(map[string]struct{}, len(cfg.Allowed)), trustProxy: cfg.TrustProxyHeaders}
	for _, a := range cfg.Allowed {
		a = strings.TrimSpace(a)
		if a == "*" {
			c.allowAll = true
			continue
		}
		if strings.EqualFold(a, "null") {
			return nil, errors.New(`guard: allowed origins: "null" cannot be allowed`)
		}
		// Operators paste "https://app.example/"; one trailing slash is harmless.
		n, err := normalizeOrigin(strings.TrimSuffix(a, "/"))
		if err != nil {
			return nil, fmt.Errorf("guard: allowed origin %q: %w", a, err)
		}
		c.allowed[n] = struct{}{}
	}
	return c, nil
}

// Check decides a request's Origin; nil means accepted, else *OriginError.
func (c *OriginChecker) Check(r *http.Request) error {
	vals := r.Header.Values("Origin")
	switch len(vals) {
	case 0:
		return nil
	case 1:
	default:
		return &OriginError{Origin: strings.Join(vals, ", "), Reason: "more than one Origin header"}
	}
	origin := vals[0]
	if strings.EqualFold(strings.TrimSpace(origin), "null") {
		return &OriginError{Origin: origin, Reason: "opaque origin"}
	}
	n, err := normalizeOrigin(origin)
	if err != nil {
		return &OriginError{Origin: origin, Reason: err.Error()}
	}
	if c.allowAll {
		return nil
	}
	if _, ok := c.allowed[n]; ok {
		return nil
	}
	if own, err := c.ownOrigin(r); err == nil && own == n {
		return nil
	}
	return &OriginError{Origin: origin, Reason: "not the server's origin nor in the allowed list"}
}

// ownOrigin is the origin the request was addressed to.
func (c *OriginChecker) ownOrigin(r *http.Request) (string, error) {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if c.trustProxy {
		if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p != "" {
			scheme = strings.ToLower(p)
		}
		if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" {
			host = h
		}
	}
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("unexpected forwarded scheme %q", scheme)
	}
	return normalizeOrigin(scheme + "://" + host)
}

func firstValue(s string) string {
	first, _, _ := strings.Cut(s, ",")
	return strings.TrimSpace(first)
}

// normalizeOrigin returns scheme://host[:port] with scheme and host
// lower-cased and a default port dropped, or an error when s is not an
// origin (a path, query, fragment or user info is not part of one).
func normalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("not a URL")
	}
	if u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return "", errors.New("not scheme://host[:port]")
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", errors.New("origin has more than scheme, host and port")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", errors.New("empty host")
	}
	port := u.Port()
	if strings.HasSuffix(u.Host, ":") && port == "" {
		return "", errors.New("empty port")
	}
	if port == defaultPort(scheme) {
		port = ""
	}
	if port == "" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return scheme + "://" + host, nil
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

// Middleware refuses requests whose Origin fails Check with HTTP 403 and
// the ack-envelope error, before next (the upgrade or polling handler)
// runs.
func (c *OriginChecker) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.Check(r); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"success": false,
				"error":   map[string]string{"code": "forbidden", "message": "origin not allowed"},
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}
