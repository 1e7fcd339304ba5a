package gateway

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
)

// maxAPIBody bounds an HTTP API request body, like a frame.
const maxAPIBody = 64 << 10

var errServiceOnly = &domain.Error{Code: domain.CodeForbidden, Message: "a service or admin token is required"}

func (g *Gateway) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", g.sio)
	mux.Handle("/ws/{namespace}", g.nat)
	mux.Handle("POST /api/v1/sessions", g.sessions.CreateHandler(g.cfg.Verifier))
	mux.Handle("DELETE /api/v1/sessions", g.sessions.DeleteHandler())
	mux.HandleFunc("GET /api/v1/presence", g.httpPresence)
	mux.HandleFunc("POST /api/v1/rooms/{id}/messages", g.httpPostMessage)
	return mux
}

// httpStatus is the one table from ack codes to HTTP statuses.
func httpStatus(code domain.ErrorCode) int {
	switch code {
	case domain.CodeInvalid:
		return http.StatusBadRequest
	case domain.CodeUnauthorized:
		return http.StatusUnauthorized
	case domain.CodeForbidden:
		return http.StatusForbidden
	case domain.CodeNotFound:
		return http.StatusNotFound
	case domain.CodeConflict:
		return http.StatusConflict
	case domain.CodeRateLimited:
		return http.StatusTooManyRequests
	case domain.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case domain.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeFailure(w http.ResponseWriter, err error) {
	e := wireError(err)
	if e.Code == domain.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	writeJSON(w, httpStatus(e.Code), mustJSON(failure{Error: e}))
}

func writeSuccess(w http.ResponseWriter, result any) {
	b, err := withSuccess(result)
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// serviceActor authenticates an API request with a bearer token of the
// service, admin or super_admin role.
func (g *Gateway) serviceActor(r *http.Request) (domain.Actor, error) {
	claims, _, err := g.cfg.Verifier.VerifyRequest(r.Context(), r)
	if err == nil {
		err = checkSubject(claims)
	}
	if err != nil {
		g.recordAuthFailure(r.Context(), "http", r.RemoteAddr, string(auth.MethodBearer), err)
		return domain.Actor{}, authError(err)
	}
	if !claims.HasRole(domain.RoleService, domain.RoleAdmin, domain.RoleSuperAdmin) {
		return domain.Actor{}, errServiceOnly
	}
	a := claims.Actor()
	a.ClientAddr = r.RemoteAddr
	return a, nil
}

// httpPresence serves GET /api/v1/presence?userIds=a,b →
// {success, online:[...]}.
func (g *Gateway) httpPresence(w http.ResponseWriter, r *http.Request) {
	if _, err := g.serviceActor(r); err != nil {
		writeFailure(w, err)
		return
	}
	var ids []string
	for _, v := range r.URL.Query()["userIds"] {
		for id := range strings.SplitSeq(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	if err := validateUserIDs(ids); err != nil {
		writeFailure(w, err)
		return
	}
	writeSuccess(w, presenceRes{Online: g.online(ids)})
}

// httpPostMessage serves POST /api/v1/rooms/{id}/messages {content,
// clientMsgId?} → {success, messageId, seq, offset}, like message:send.
func (g *Gateway) httpPostMessage(w http.ResponseWriter, r *http.Request) {
	actor, err := g.serviceActor(r)
	if err != nil {
		writeFailure(w, err)
		return
	}
	var req messageSendReq
	body := http.MaxBytesReader(w, r.Body, maxAPIBody)
	raw, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeFailure(w, domain.ErrContentTooLarge)
			return
		}
		writeFailure(w, domain.Errorf(domain.CodeInvalid, "unreadable body"))
		return
	}
	if err := decodeData(raw, &req); err != nil {
		writeFailure(w, err)
		return
	}
	res, err := g.postMessage(r.Context(), actor, domain.PostMessage{RoomID: r.PathValue("id"), Content: req.Content, ClientMsgID: req.ClientMsgID})
	if err != nil {
		if domain.ErrorCodeOf(err) == domain.CodeInternal {
			g.cfg.Logger.Error("gateway: API post message", "err", err)
		}
		writeFailure(w, err)
		return
	}
	writeSuccess(w, res)
}
