package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/engineio"
	"github.com/wardline/wardline/transport/native"
	"github.com/wardline/wardline/transport/socketio"
)

// endTimeout bounds recording a session's end after its connection is gone.
const endTimeout = 5 * time.Second

// methodSocketIOAuth and methodNativeAuth name the credentials read by the
// codecs themselves (domain.AuthenticationSucceeded.Method).
const (
	methodSocketIOAuth auth.Method = "socketio-auth"
	methodNativeAuth   auth.Method = "native-auth"
	// methodRefresh names an auth:refresh in AuthenticationFailed.
	methodRefresh = "refresh"
)

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// authError is what a client is told about a refused credential.
func authError(err error) *domain.Error {
	var ae *auth.Error
	if errors.As(err, &ae) {
		return &domain.Error{Code: domain.ErrorCode(ae.Code()), Message: ae.Message()}
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	return errBadToken
}

// recordAuthFailure counts a refused credential and appends
// AuthenticationFailed (to the anonymous auth stream: the subject is not
// verified).
func (g *Gateway) recordAuthFailure(ctx context.Context, transport, addr, method string, err error) {
	reason := "refused"
	if r, ok := auth.ReasonOf(err); ok {
		reason = r.String()
	}
	g.metrics.authFailures.WithLabelValues(transport, reason).Inc()
	c := g.svc.decisionContext(domain.Actor{ClientAddr: addr})
	ev := domain.AuthenticationFailed{Code: string(authError(err).Code), Reason: reason, ClientAddr: addr, Method: method}
	if ctx.Err() != nil {
		ctx = g.ctx
	}
	ctx, cancel := context.WithTimeout(ctx, endTimeout)
	defer cancel()
	if _, aerr := g.svc.appendAny(ctx, c, []domain.Event{ev}); aerr != nil {
		g.cfg.Logger.Warn("gateway: record authentication failure", "err", aerr)
	}
}

// checkSubject refuses tokens whose sub cannot be a Wardline user id.
func checkSubject(c auth.Claims) error {
	if err := domain.ValidateUserID(c.Subject); err != nil {
		return &auth.Error{Reason: auth.ReasonMalformed, Err: err}
	}
	return nil
}

// handshakeRequest rebuilds what Authenticator reads from a request: the
// headers and, only when query tokens are allowed, the query.
func (g *Gateway) handshakeRequest(ctx context.Context, h http.Header, q url.Values, addr string) *http.Request {
	u := &url.URL{Path: "/"}
	if g.cfg.AllowQueryToken {
		u.RawQuery = q.Encode()
	}
	r := (&http.Request{Method: http.MethodGet, URL: u, Header: h, RemoteAddr: addr}).WithContext(ctx)
	return r
}

// keepHandshake keeps, of a Socket.IO session's handshake request, only
// the credentials a later namespace CONNECT without an auth token is
// authenticated with (handshakeRequest): the Authorization and Cookie
// headers and, when allowed, ?token=.
func (g *Gateway) keepHandshake(r *http.Request) (http.Header, url.Values) {
	var h http.Header
	for _, name := range [...]string{"Authorization", "Cookie"} {
		if v := r.Header.Values(name); len(v) > 0 {
			if h == nil {
				h = make(http.Header, 2)
			}
			h[name] = slices.Clone(v)
		}
	}
	var q url.Values
	if g.cfg.AllowQueryToken {
		if v := r.URL.Query()["token"]; len(v) > 0 {
			q = url.Values{"token": v}
		}
	}
	return h, q
}

func (g *Gateway) newSession(id string, claims auth.Claims, transport, addr string) *session {
	s := &session{g: g, id: id, userID: claims.Subject, authSession: claims.SessionID, transport: kindOf(transport), addr: addr}
	s.setClaimsLocked(claims)
	return s
}

// openSession records the session (AuthenticationSucceeded, then
// SessionStarted and, on the user's first session, UserOnline) and arms the
// expiry timers.
//
// ctx is the connection's, which lives as long as it does. The appends run
// on a context detached from it and bounded by endTimeout, like a
// session's end: waiting on the connection's own context would make it
// allocate its done channel, which the connection would then keep for its
// whole life (about 100 bytes of every idle connection's heap), only to
// abandon appends that may be committed anyway.
func (g *Gateway) openSession(ctx context.Context, s *session, method auth.Method) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	actor := s.actor()
	c := g.svc.decisionContext(actor)
	if _, err := g.svc.appendAny(ctx, c, []domain.Event{domain.AuthenticationSucceeded{
		UserID: s.userID, SessionID: s.id, Method: string(method), ExpiresAt: s.expires(),
	}}); err != nil {
		return err
	}
	cmd := domain.StartSession{SessionID: s.id, Namespace: chatNamespace, Transport: s.transport.String(), NodeID: g.cfg.NodeID, ClientAddr: s.addr}
	if _, err := g.svc.execute(ctx, actor, domain.PresenceStream(s.userID), newPresence, func(c domain.Context, st folder) ([]domain.Event, error) {
		return cmd.Decide(c, st.(*presenceState).presence())
	}, nil); err != nil {
		return err
	}
	g.metrics.connections.WithLabelValues(chatNamespace, s.transport.String()).Inc()
	s.scheduleExpiry()
	return nil
}

// Session end reasons recorded in SessionEnded.
const (
	reasonDisconnect   = "disconnect"
	reasonSlowConsumer = "slow consumer"
	reasonRevoked      = "revoked"
)

// endSession stops delivery to s at once and records its end (SessionEnded
// and, for the user's last session, UserOffline) after the presence grace.
// Only the first call for a session does anything.
func (g *Gateway) endSession(s *session, reason string) {
	s.endOnce.Do(func() { g.recordEnd(s, reason) })
}

func (g *Gateway) recordEnd(s *session, reason string) {
	g.hub.unregister(s)
	s.closeGone()
	g.metrics.connections.WithLabelValues(chatNamespace, s.transport.String()).Dec()
	g.grace.end(s, reason)
}

// closeAuthSession closes the sockets of a browser session that DELETE
// /api/v1/sessions ended.
func (g *Gateway) closeAuthSession(sessionID string) {
	if sessionID == "" {
		return
	}
	g.revokedMu.Lock()
	now := g.cfg.Now()
	for id, at := range g.revokedAt {
		if now.Sub(at) > auth.DefaultSessionTTL {
			delete(g.revokedAt, id) // every cookie of it has expired
		}
	}
	g.revokedAt[sessionID] = now
	g.revokedMu.Unlock()
	for _, s := range g.hub.sessions(func(s *session) bool { return s.authSessionID() == sessionID }) {
		s.end(native.CloseUnauthorized, errorPayload{Code: domain.CodeUnauthorized, Message: "session ended"}, "")
	}
}

// revoked reports whether the browser session sessionID was ended here.
func (g *Gateway) revoked(sessionID string) bool {
	if sessionID == "" {
		return false
	}
	g.revokedMu.Lock()
	defer g.revokedMu.Unlock()
	_, ok := g.revokedAt[sessionID]
	return ok
}

// resumeNotice tells a client why its resume attempt was refused and it
// starts fresh.
func resumeNotice(err error) exceptionPayload {
	msg := "cannot resume: the offset is malformed; starting fresh"
	switch {
	case errors.Is(err, eventstore.ErrForeignOffset):
		msg = "cannot resume: the offset belongs to another store epoch; starting fresh"
	case errors.Is(err, errResumeRefused):
		msg = "cannot resume this session; starting fresh"
	}
	return exceptionPayload{Code: domain.CodeInvalid, Message: msg, Event: "resume"}
}

// --- Socket.IO ---

func (g *Gateway) sioCredentials(ctx context.Context, c *socketio.Conn, raw json.RawMessage) (auth.Claims, auth.Method, error) {
	var a struct {
		Token json.RawMessage `json:"token"`
	}
	_ = json.Unmarshal(raw, &a)
	if len(a.Token) > 0 && string(a.Token) != "null" {
		var tok string
		if err := json.Unmarshal(a.Token, &tok); err != nil || tok == "" {
			return auth.Claims{}, methodSocketIOAuth, &auth.Error{Reason: auth.ReasonMalformed}
		}
		claims, err := g.cfg.Verifier.Verify(ctx, tok)
		if err == nil {
			err = checkSubject(claims)
		}
		return claims, methodSocketIOAuth, err
	}
	sock := c.Socket()
	claims, method, err := g.authn.Authenticate(ctx, g.handshakeRequest(ctx, sock.Header(), sock.Query(), sock.RemoteAddr()))
	if err == nil {
		err = checkSubject(claims)
	}
	return claims, method, err
}

func (g *Gateway) sioConnect(ctx context.Context, c *socketio.Conn, raw json.RawMessage) error {
	addr := c.Socket().RemoteAddr()
	claims, method, err := g.sioCredentials(ctx, c, raw)
	if err != nil {
		g.recordAuthFailure(ctx, transportSocketIO, addr, string(method), err)
		e := authError(err)
		return &socketio.ConnectError{Message: e.Message, Data: map[string]string{"code": string(e.Code)}}
	}
	s := g.newSession(c.ID(), claims, transportSocketIO, addr)
	s.sio = c
	epoch := g.cfg.Store.Epoch()
	var (
		resume bool
		from   eventstore.Position
		notice error
	)
	if rec, ok := socketio.ParseRecovery(raw); ok {
		start, err := g.pids.verify(rec.PID, s.userID, epoch)
		from = start
		if err == nil && rec.Offset != "" {
			from, err = eventstore.ParseOffset(epoch, rec.Offset)
		}
		if err == nil {
			resume = true
			c.SetPID(rec.PID)
		} else {
			notice = err
		}
	}
	if !resume {
		head, err := g.cfg.Store.Head(ctx)
		if err != nil {
			return err
		}
		from = head
		c.SetPID(g.pids.sign(s.userID, epoch, head))
	}
	if err := g.openSession(ctx, s, method); err != nil {
		return err
	}
	c.SetValue(s)
	s.emit("connected", map[string]string{"socketId": c.ID(), "userId": s.userID, "timestamp": formatTime(g.cfg.Now())})
	if notice != nil {
		s.emit("exception", resumeNotice(notice))
	}
	if !g.startDelivery(c.Context(), s, from) {
		g.endSession(s, reasonRevoked)
		return &socketio.ConnectError{Message: "session ended", Data: map[string]string{"code": string(domain.CodeUnauthorized)}}
	}
	return nil
}

func (g *Gateway) sioEvent(c *socketio.Conn, ev *socketio.Event) {
	s, _ := c.Value().(*session)
	if s == nil {
		return
	}
	var raw json.RawMessage
	if len(ev.Args) > 0 {
		raw = ev.Args[0]
	}
	res, err, disconnect := g.dispatch(c.Context(), s, ev.Name, raw)
	if p, ok := res.(pending); ok && err == nil {
		if !disconnect && ev.HasAck() && g.sioPipeline(s, func() { g.sioAnswer(c, ev, p) }) {
			return
		}
		res, err = p()
	}
	g.sioReply(c, ev, res, err)
	if disconnect {
		s.end(closeRateLimited, wireError(errRateLimited), ev.Name)
	}
}

// maxSIOPipelined bounds the requests of one Socket.IO connection answered
// off its reader, like native.DefaultMaxPendingReplies.
const maxSIOPipelined = 64

// sioPipeline runs answer on a goroutine of the gateway so that the
// connection's reader goes on to the next packet while a message:send waits
// for its append: its decision is already queued, in the order read. At
// maxSIOPipelined in flight the reader waits for one to finish. It reports
// false when the gateway is shutting down; the caller then answers in place.
func (g *Gateway) sioPipeline(s *session, answer func()) bool {
	if s.inFlight == nil { // only the connection's reader gets here
		s.inFlight = make(chan struct{}, maxSIOPipelined)
	}
	s.inFlight <- struct{}{}
	ok := g.spawn(func() {
		defer func() { <-s.inFlight }()
		answer()
	})
	if !ok {
		<-s.inFlight
	}
	return ok
}

// sioAnswer waits for a pipelined request's outcome and acks it.
func (g *Gateway) sioAnswer(c *socketio.Conn, ev *socketio.Event, p pending) {
	res, err := p()
	g.sioReply(c, ev, res, err)
}

// sioReply acks ev with res or err, or emits an exception for a failed
// event without ack.
func (g *Gateway) sioReply(c *socketio.Conn, ev *socketio.Event, res any, err error) {
	switch {
	case err != nil && ev.HasAck():
		_ = ev.Ack(failure{Error: wireError(err)})
	case err != nil:
		e := wireError(err)
		_ = c.Emit("exception", exceptionPayload{Code: e.Code, Message: e.Message, Event: ev.Name})
	case ev.HasAck():
		b, err := withSuccess(res)
		if err != nil {
			_ = ev.Ack(failure{Error: wireError(err)})
			break
		}
		_ = ev.Ack(b)
	}
}

func (g *Gateway) sioDisconnect(c *socketio.Conn, reason error) {
	s, _ := c.Value().(*session)
	if s == nil {
		return
	}
	if errors.Is(reason, engineio.ErrQueueFull) || errors.Is(reason, engineio.ErrWriteTimeout) {
		s.markSlow()
	}
	g.endSession(s, s.endReason())
}

// --- native ---

// eventSessionOffset is the native push, right after connected, whose
// offset is where the session's delivery starts.
const eventSessionOffset = "session:offset"

// nativeState is the gateway's per-connection value in native.Session.
// The transport keeps it as long as the connection lives, so what only the
// connect needs is dropped once the session holds its part: what is left
// for the connection's life is 16 bytes.
type nativeState struct {
	connect *nativeConnect // nil once the session is open
	s       *session
}

// nativeConnect is what the connect needs of the authentication.
type nativeConnect struct {
	claims auth.Claims
	method auth.Method
	// head is the log's head when the credentials were accepted, before
	// the client is told it is connected: a fresh session's start.
	head eventstore.Position
}

func nativeError(err error) *native.Error {
	e := wireError(err)
	return &native.Error{Code: native.Code(e.Code), Message: e.Message}
}

func (g *Gateway) nativeAuthenticate(r *http.Request) (native.Session, error) {
	claims, method, err := g.authn.Authenticate(r.Context(), g.handshakeRequest(r.Context(), r.Header, r.URL.Query(), r.RemoteAddr))
	if errors.Is(err, &auth.Error{Reason: auth.ReasonNoToken}) {
		return native.Session{}, native.ErrNoCredentials
	}
	if err == nil {
		err = checkSubject(claims)
	}
	if err != nil {
		g.recordAuthFailure(r.Context(), transportNative, r.RemoteAddr, string(method), err)
		return native.Session{}, nativeError(authError(err))
	}
	head, err := g.cfg.Store.Head(r.Context())
	if err != nil {
		return native.Session{}, &native.Error{Code: native.CodeUnavailable, Message: "try again"}
	}
	return native.Session{UserID: claims.Subject, Value: &nativeState{connect: &nativeConnect{claims: claims, method: method, head: head}}}, nil
}

func (g *Gateway) nativeAuth(ctx context.Context, c *native.Conn, token, _ string) (native.Session, error) {
	claims, err := g.cfg.Verifier.Verify(ctx, token)
	if err == nil {
		err = checkSubject(claims)
	}
	if err != nil {
		g.recordAuthFailure(ctx, transportNative, c.RemoteAddr(), string(methodNativeAuth), err)
		return native.Session{}, nativeError(authError(err))
	}
	head, err := g.cfg.Store.Head(ctx)
	if err != nil {
		return native.Session{}, &native.Error{Code: native.CodeUnavailable, Message: "try again"}
	}
	return native.Session{UserID: claims.Subject, Value: &nativeState{connect: &nativeConnect{claims: claims, method: methodNativeAuth, head: head}}}, nil
}

func (g *Gateway) nativeConnect(ctx context.Context, c *native.Conn, offset string) {
	sess, _ := c.Session()
	st, _ := sess.Value.(*nativeState)
	if st == nil || st.connect == nil {
		c.Close(native.CloseInternal, "no session")
		return
	}
	conn := st.connect
	s := g.newSession(c.ID(), conn.claims, transportNative, c.RemoteAddr())
	s.nat = c
	if err := g.openSession(ctx, s, conn.method); err != nil {
		g.cfg.Logger.Warn("gateway: open native session", "err", err)
		c.Close(native.CloseTryAgain, "unavailable")
		return
	}
	st.s, st.connect = s, nil
	from := conn.head
	if offset != "" {
		pos, err := eventstore.ParseOffset(g.cfg.Store.Epoch(), offset)
		if err != nil {
			n := resumeNotice(err)
			_ = c.Send(native.EncodeException(&native.Error{Code: native.Code(n.Code), Message: n.Message}, n.Event))
		} else {
			from = pos
		}
	}
	// Tell the client where its delivery starts, as an offset it can
	// resume from: without it a fresh session that drops before its first
	// push from the log would reconnect fresh and miss what came between.
	// It goes out before any push of the session, so a client that keeps
	// the offset of every push it receives never goes backwards.
	if b, err := native.EncodePush(eventSessionOffset, map[string]string{"offset": g.offset(from)}, g.offset(from)); err == nil {
		_ = c.Send(b)
	}
	if !g.startDelivery(c.Context(), s, from) {
		s.end(native.CloseUnauthorized, errorPayload{Code: domain.CodeUnauthorized, Message: "session ended"}, "")
	}
}

func (g *Gateway) nativeEvent(ctx context.Context, c *native.Conn, event string, data json.RawMessage) (any, error) {
	sess, _ := c.Session()
	st, _ := sess.Value.(*nativeState)
	if st == nil || st.s == nil {
		return nil, &native.Error{Code: native.CodeUnauthorized, Message: "not authenticated"}
	}
	res, err, disconnect := g.dispatch(ctx, st.s, event, data)
	if disconnect {
		// The reply of this request is written before the close.
		st.s.end(closeRateLimited, wireError(errRateLimited), event)
	}
	if err != nil {
		return nil, nativeError(err)
	}
	if p, ok := res.(pending); ok {
		return native.Pending(func() (any, error) {
			res, err := p()
			if err != nil {
				return nil, nativeError(err)
			}
			return res, nil
		}), nil
	}
	return res, nil
}

func (g *Gateway) nativeClose(c *native.Conn, info native.CloseInfo) {
	sess, _ := c.Session()
	st, _ := sess.Value.(*nativeState)
	if st == nil || st.s == nil {
		return
	}
	if errors.Is(info.Err, native.ErrSlowConsumer) || errors.Is(info.Err, native.ErrWriteTimeout) {
		st.s.markSlow()
	}
	g.endSession(st.s, st.s.endReason())
}
