package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// TokenVerifier is what the session handlers need of a Verifier; the
// gateway may wrap *Verifier to record authentication events.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (Claims, error)
}

var _ TokenVerifier = (*Verifier)(nil)

// timeLayout is the contract's time format: RFC 3339, UTC, milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

type sessionAck struct {
	Success   bool   `json:"success"`
	SessionID string `json:"sessionId,omitempty"`
	UserID    string `json:"userId,omitempty"`
	ExpiresAt string `json:"expiresAt,omitempty"`
}

type errorAck struct {
	Success bool      `json:"success"`
	Error   errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CreateHandler serves POST /api/v1/sessions: it verifies the request's
// `Authorization: Bearer` token (never a query token or an existing cookie:
// creating a session must prove possession of a token), sets the session
// cookie and answers {"success":true,"sessionId","userId","expiresAt"}.
// A refused token is HTTP 401 with the ack-envelope error. Register it on
// a POST route; it does not check the method itself.
func (s *Sessions) CreateHandler(v TokenVerifier) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tok, err := BearerToken(r.Header)
		var c Claims
		if err == nil {
			c, err = v.Verify(ctx, tok)
		}
		var value string
		var sc Claims
		if err == nil {
			value, sc, err = s.Issue(c)
		}
		if err != nil {
			s.refused(ctx, w, r, err)
			return
		}
		http.SetCookie(w, s.Cookie(value, sc.ExpiresAt))
		if s.cfg.OnCreate != nil {
			s.cfg.OnCreate(ctx, sc)
		}
		writeJSON(w, http.StatusOK, sessionAck{
			Success: true, SessionID: sc.SessionID, UserID: sc.Subject,
			ExpiresAt: sc.ExpiresAt.UTC().Format(timeLayout),
		})
	}
}

// DeleteHandler serves DELETE /api/v1/sessions: it always clears the
// cookie; when the cookie named a live session it revokes it, calls
// OnRevoke (so the gateway closes that session's sockets) and answers
// {"success":true,"sessionId"}. Without a live session there is nothing to
// end and it answers {"success":true}: logging out is idempotent. If the
// revocation cannot be recorded it answers 503 "unavailable" so the client
// knows the session may still be usable elsewhere.
func (s *Sessions) DeleteHandler() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		http.SetCookie(w, s.clearCookie())
		ck, err := r.Cookie(s.cfg.CookieName)
		if err != nil {
			writeJSON(w, http.StatusOK, sessionAck{Success: true})
			return
		}
		c, err := s.Verify(ctx, ck.Value)
		if err != nil {
			var ae *Error
			if errors.As(err, &ae) && ae.Reason == ReasonUnavailable {
				s.refused(ctx, w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, sessionAck{Success: true})
			return
		}
		if err := s.Revoke(ctx, c.SessionID); err != nil {
			s.refused(ctx, w, r, fail(ReasonUnavailable, err))
			return
		}
		if s.cfg.OnRevoke != nil {
			s.cfg.OnRevoke(ctx, c)
		}
		writeJSON(w, http.StatusOK, sessionAck{Success: true, SessionID: c.SessionID, UserID: c.Subject})
	}
}

func (s *Sessions) refused(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	if s.cfg.OnRefused != nil {
		s.cfg.OnRefused(ctx, r, err)
	}
	WriteError(w, err)
}

// WriteError answers an HTTP request refused by this package with the ack
// envelope {"success":false,"error":{"code","message"}}: 401 with a Bearer
// challenge for "unauthorized", 503 for "unavailable", 500 "internal" for
// an error that is not an *Error (its text is not sent).
func WriteError(w http.ResponseWriter, err error) {
	var ae *Error
	if !errors.As(err, &ae) {
		writeJSON(w, http.StatusInternalServerError, errorAck{Error: errorBody{Code: "internal", Message: "internal error"}})
		return
	}
	status := http.StatusUnauthorized
	if ae.Code() == CodeUnavailable {
		status = http.StatusServiceUnavailable
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wardline"`)
	}
	writeJSON(w, status, errorAck{Error: errorBody{Code: ae.Code(), Message: ae.Message()}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Session answers carry credentials' metadata: never cache them.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
