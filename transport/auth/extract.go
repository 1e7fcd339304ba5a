package auth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Method says where a credential came from; its string is the Method of
// domain.AuthenticationSucceeded.
type Method string

// Where a credential may come from over HTTP. The Socket.IO CONNECT
// auth.token and the native `auth` frame are read by their codecs, which
// name their own methods ("socketio-auth", "native-auth").
const (
	MethodBearer Method = "bearer"
	MethodQuery  Method = "query"
	MethodCookie Method = "cookie"
)

// QueryParam is the URL parameter a token may travel in when allowed.
const QueryParam = "token"

// BearerToken reads `Authorization: Bearer TOKEN`. It fails with
// ReasonNoToken when there is no Authorization header, and ReasonMalformed
// when there is one but it is not a single bearer credential.
func BearerToken(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", fail(ReasonNoToken, nil)
	case 1:
	default:
		return "", failf(ReasonMalformed, "more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", failf(ReasonMalformed, "Authorization scheme is not Bearer")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", failf(ReasonMalformed, "bad bearer credential")
	}
	return tok, nil
}

// QueryToken reads `?token=`; ReasonNoToken when absent, ReasonMalformed
// when given more than once.
func QueryToken(u *url.URL) (string, error) {
	vals := u.Query()[QueryParam]
	switch {
	case len(vals) == 0 || len(vals) == 1 && vals[0] == "":
		return "", fail(ReasonNoToken, nil)
	case len(vals) > 1:
		return "", failf(ReasonMalformed, "more than one %s parameter", QueryParam)
	}
	return vals[0], nil
}

// VerifyRequest verifies the token of an HTTP request: the Authorization
// header when present (a bad header is refused, never passed over for
// another source), else `?token=` when AllowQueryToken is set.
func (v *Verifier) VerifyRequest(ctx context.Context, r *http.Request) (Claims, Method, error) {
	tok, m, err := v.tokenFromRequest(r)
	if err != nil {
		return Claims{}, m, err
	}
	c, err := v.Verify(ctx, tok)
	return c, m, err
}

func (v *Verifier) tokenFromRequest(r *http.Request) (string, Method, error) {
	tok, err := BearerToken(r.Header)
	if !isNoToken(err) {
		return tok, MethodBearer, err
	}
	if v.cfg.AllowQueryToken {
		tok, err = QueryToken(r.URL)
		if !isNoToken(err) {
			return tok, MethodQuery, err
		}
	}
	return "", "", fail(ReasonNoToken, nil)
}

func isNoToken(err error) bool {
	return errors.Is(err, &Error{Reason: ReasonNoToken})
}

// Authenticator reads a request's credential from every HTTP source in a
// fixed order: Authorization header, then `?token=` (when the Verifier
// allows it), then the session cookie (when Sessions is set). The first
// source present decides; a refused credential is not passed over for the
// next one, so a stale header cannot hide behind a valid cookie or the
// reverse.
type Authenticator struct {
	Verifier *Verifier
	Sessions *Sessions // optional
}

// Authenticate returns the request's claims and where they came from.
func (a Authenticator) Authenticate(ctx context.Context, r *http.Request) (Claims, Method, error) {
	tok, m, err := a.Verifier.tokenFromRequest(r)
	if !isNoToken(err) {
		if err != nil {
			return Claims{}, m, err
		}
		c, err := a.Verifier.Verify(ctx, tok)
		return c, m, err
	}
	if a.Sessions != nil {
		if ck, cerr := r.Cookie(a.Sessions.CookieName()); cerr == nil {
			c, err := a.Sessions.Verify(ctx, ck.Value)
			return c, MethodCookie, err
		}
	}
	return Claims{}, "", fail(ReasonNoToken, nil)
}
