package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections/rooms"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/guard"
)

// Errors of the pipeline itself (the domain's rule errors cover the rest).
var (
	errUnknownEvent = &domain.Error{Code: domain.CodeInvalid, Message: "unknown event"}
	errRateLimited  = &domain.Error{Code: domain.CodeRateLimited, Message: "too many requests; slow down"}
	errForbiddenSub = &domain.Error{Code: domain.CodeForbidden, Message: "the new token is for another user"}
	errBadToken     = &domain.Error{Code: domain.CodeUnauthorized, Message: "token refused"}
	errTooManyIDs   = &domain.Error{Code: domain.CodeInvalid, Message: "userIds must be a list of 1 to 1000 user ids"}
)

// maxPresenceQuery bounds presence:query's userIds.
const maxPresenceQuery = 1000

// handlerFunc handles one decoded event. verdict is the rate limiter's
// answer, taken before decoding: a handler checks schema, existence and
// permission first and answers rate_limited only after them.
type handlerFunc func(ctx context.Context, s *session, raw json.RawMessage, verdict guard.Verdict) (any, error)

func (g *Gateway) handlers() map[string]handlerFunc {
	return map[string]handlerFunc{
		"room:create":    g.roomCreate,
		"room:join":      g.roomJoin,
		"room:leave":     g.roomLeave,
		"message:send":   g.messageSend,
		"history:fetch":  g.historyFetch,
		"dm:send":        g.dmSend,
		"typing:start":   g.typing(true),
		"typing:stop":    g.typing(false),
		"presence:query": g.presenceQuery,
		"auth:refresh":   g.authRefresh,
	}
}

// dispatch runs one request through the pipeline and returns the ack
// result (without "success") or the error to answer with.
//
// disconnect is true when the sender has been over the rate limit for too
// long: the caller answers the request first, then ends the connection
// with session.end.
func (g *Gateway) dispatch(ctx context.Context, s *session, event string, raw json.RawMessage) (res any, err error, disconnect bool) {
	start := g.cfg.Now()
	lim, err := s.rateLimiter()
	if err != nil {
		return nil, err, false
	}
	// Both buckets are asked, so each event costs the connection and the
	// user a token whatever the other says; the stricter verdict wins.
	verdict := max(lim.Allow(start), g.users.Allow(s.userID, start))
	res, err = g.handle(ctx, s, event, raw, verdict)
	if p, ok := res.(pending); ok && err == nil {
		// Logged and measured when its outcome is known.
		return pending(func() (any, error) {
			res, err := p()
			g.observe(s, event, start, err)
			return res, err
		}), nil, verdict == guard.Disconnect
	}
	g.observe(s, event, start, err)
	return res, err, verdict == guard.Disconnect
}

// observe logs an internal failure and counts and times the event.
func (g *Gateway) observe(s *session, event string, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = string(domain.ErrorCodeOf(err))
		if domain.ErrorCodeOf(err) == domain.CodeInternal {
			g.cfg.Logger.Error("gateway: request failed", "event", event, "user", s.userID, "err", err)
		}
	}
	label := event
	if _, known := g.table[event]; !known {
		label = "unknown"
	}
	g.metrics.eventsIn.WithLabelValues(s.transport.String(), label, outcome).Inc()
	g.metrics.ackLatency.WithLabelValues(label).Observe(g.cfg.Now().Sub(start).Seconds())
}

func (g *Gateway) handle(ctx context.Context, s *session, event string, raw json.RawMessage, verdict guard.Verdict) (any, error) {
	h, ok := g.table[event]
	if !ok {
		return nil, errUnknownEvent.Withf("unknown event %q", event)
	}
	return h(ctx, s, raw, verdict)
}

// decodeData reads a request's data object into v; anything but a JSON
// object of the right field types is invalid.
func decodeData(raw json.RawMessage, v any) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return domain.ErrMissingField.Withf("data must be a JSON object")
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return domain.Errorf(domain.CodeInvalid, "%s must be a %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return domain.Errorf(domain.CodeInvalid, "data is not valid JSON for this event")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice":
		return "list"
	case "struct", "map":
		return "object"
	}
	return "number"
}

// rateGate is the last check before a handler acts: for a refused verdict,
// existence and permission are checked on the read model (they come first
// in the contract's order), then rate_limited.
func (g *Gateway) rateGate(verdict guard.Verdict, pre func() error) error {
	if verdict == guard.Allowed {
		return nil
	}
	if pre != nil {
		if err := pre(); err != nil {
			return err
		}
	}
	return errRateLimited
}

// roomPrecheck answers not_found and forbidden from the read model.
func (g *Gateway) roomPrecheck(roomID, user string, join bool) func() error {
	return func() error {
		room, ok := g.cfg.Rooms.Room(roomID)
		if !ok {
			return domain.ErrRoomNotFound
		}
		member := g.cfg.Rooms.IsMember(roomID, user)
		switch {
		case join && room.Private && !member:
			return domain.ErrPrivateRoom
		case !join && !member:
			return domain.ErrNotMember
		}
		return nil
	}
}

func (g *Gateway) offset(p eventstore.Position) string {
	return eventstore.FormatOffset(g.cfg.Store.Epoch(), p)
}

type roomCreateReq struct {
	RoomID  string   `json:"roomId"`
	Name    string   `json:"name"`
	Private *bool    `json:"private"`
	Members []string `json:"members"`
	PHI     *bool    `json:"phi"`
}

type roomCreateRes struct {
	RoomID string `json:"roomId"`
}

func (g *Gateway) roomCreate(ctx context.Context, s *session, raw json.RawMessage, verdict guard.Verdict) (any, error) {
	var req roomCreateReq
	if err := decodeData(raw, &req); err != nil {
		return nil, err
	}
	cmd := domain.CreateRoom{RoomID: req.RoomID, Name: req.Name, Private: req.Private, PHI: req.PHI, Members: req.Members}
	if err := cmd.Validate(g.cfg.Limits); err != nil {
		return nil, err
	}
	actor := s.actor()
	if err := g.rateGate(verdict, func() error {
		if !actor.HasRole(domain.RoleNurse, domain.RolePhysician, domain.RoleStaff, domain.RoleAdmin, domain.RoleSuperAdmin) {
			return domain.ErrCannotCreateRoom
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if cmd.RoomID == "" {
		cmd.RoomID = domain.NewID()
	}
	_, err := g.svc.execute(ctx, actor, domain.RoomStream(cmd.RoomID), newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
		return cmd.Decide(c, st.(*domain.Room))
	}, nil)
	if err != nil {
		return nil, err
	}
	return roomCreateRes{RoomID: cmd.RoomID}, nil
}

type roomReq struct {
	RoomID string `json:"roomId"`
}

type roomJoinRes struct {
	RoomID   string           `json:"roomId"`
	Members  []rooms.Member   `json:"members"`
	Messages []messagePayload `json:"messages"`
	Offset   string           `json:"offset"`
}

func (g *Gateway) roomJoin(ctx context.Context, s *session, raw json.RawMessage, verdict guard.Verdict) (any, error) {
	var req roomReq
	if err := decodeData(raw, &req); err != nil {
		return nil, err
	}
	cmd := domain.JoinRoom{RoomID: req.RoomID}
	if err := cmd.Validate(g.cfg.Limits); err != nil {
		return nil, err
	}
	if err := g.rateGate(verdict, g.roomPrecheck(req.RoomID, s.userID, true)); err != nil {
		return nil, err
	}
	actor := s.actor()
	var served domain.HistoryRange
	res, err := g.svc.execute(ctx, actor, domain.RoomStream(req.RoomID), newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
		return cmd.Decide(c, st.(*domain.Room))
	}, func(st folder) error {
		// The messages a join returns are a PHI read, decided on the state
		// that includes the join.
		c := g.svc.decisionContext(actor)
		rng, events, err := domain.ViewHistory{RoomID: req.RoomID, Limit: rooms.RecentLimit, Via: "room:join"}.Decide(c, st.(*domain.Room))
		if err != nil {
			return err
		}
		served = rng
		if len(events) > 0 {
			if _, err := g.svc.appendAny(ctx, c, events); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := g.cfg.Runner.WaitFor(ctx, res.StreamPos, rooms.Name); err != nil {
		return nil, fmt.Errorf("gateway: wait for the rooms model: %w", err)
	}
	view, ok := g.cfg.Rooms.View(req.RoomID, rooms.RecentLimit)
	if !ok {
		return nil, fmt.Errorf("gateway: room %q decided but not in the read model", req.RoomID)
	}
	msgs := make([]messagePayload, 0, len(view.Messages))
	for _, m := range view.Messages {
		if served.Count > 0 && m.Seq >= served.FromSeq && m.Seq <= served.ToSeq {
			msgs = append(msgs, messageFromModel(m))
		}
	}
	return roomJoinRes{RoomID: req.RoomID, Members: view.Members, Messages: msgs, Offset: g.offset(view.Room.Position)}, nil
}

func (g *Gateway) roomLeave(ctx context.Context, s *session, raw json.RawMessage, verdict guard.Verdict) (any, error) {
	var req roomReq
	if err := decodeData(raw, &req); err != nil {
		return nil, err
	}
	cmd := domain.LeaveRoom{RoomID: req.RoomID}
	if err := cmd.Validate(g.cfg.Limits); err != nil {
		return nil, err
	}
	if err := g.rateGate(verdict, func() error {
		if _, ok := g.cfg.Rooms.Room(req.RoomID); !ok {
			return domain.ErrRoomNotFound
		}
		return nil
	}); err != nil {
		return nil, err
	}
	_, err := g.svc.execute(ctx, s.actor(), domain.RoomStream(req.RoomID), newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
		return cmd.Decide(c, st.(*domain.Room))
	}, nil)
	if err != nil {
		return nil, err
	}
	return roomCreateRes(req), nil
}

type messageSendReq struct {
	RoomID      string `json:"roomId"`
	Content     string `json:"content"`
	ClientMsgID string `json:"clientMsgId"`
}

type messageSendRes struct {
	MessageID string `json:"messageId"`
	Seq       uint64 `json:"seq"`
	Offset    string `json:"offset"`
}

func (g *Gateway) messageSend(ctx context.Context, s *session, raw json.RawMessage, verdict guard.Verdict) (any, error) {
	var req messageSendReq
	if err := decodeData(raw, &req); err != nil {
		return nil, err
	}
	if err := g.rateGate(verdict, func() error {
		if err := (domain.PostMessage{RoomID: req.RoomID, Content: req.Content, ClientMsgID: req.ClientMsgID}).Validate(g.cfg.Limits); err != nil {
			return err
		}
		return g.roomPrecheck(req.RoomID, s.userID, false)()
	}); err != nil {
		return nil, err
	}
	// The send is queued on the room in arrival order; its ack waits for
	// the append on its own, so the connection's next request is read
	// meanwhile (see pending).
	wait, err := g.submitMessage(ctx, s.actor(), domain.PostMessage{RoomID: req.RoomID, Content: req.Content, ClientMsgID: req.ClientMsgID})
	if err != nil {
		return nil, err
	}
	return pending(func() (any, error) { return wait() }), nil
}

// pending is a handler's result whose outcome is not known yet: the
// transports that pipeline requests (native) answer it when it returns and
// read on meanwhile; the others wait for it in place.
type pending func() (any, error)

// postMessage is POST /api/v1/rooms/{id}/messages.
func (g *Gateway) postMessage(ctx context.Context, actor domain.Actor, cmd domain.PostMessage) (messageSendRes, error) {
	wait, err := g.submitMessage(ctx, actor, cmd)
	if err != nil {
		return messageSendRes{}, err
	}
	return wait()
}

// submitMessage queues cmd's decision on its room and returns the wait
// for its ack.
func (g *Gateway) submitMessage(ctx context.Context, actor domain.Actor, cmd domain.PostMessage) (func() (messageSendRes, error), error) {
	if err := cmd.Validate(g.cfg.Limits); err != nil {
		return nil, err
	}
	stream := domain.RoomStream(cmd.RoomID)
	var result domain.MessageResult
	wait := g.svc.submit(ctx, actor, stream, newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
		r, events, err := cmd.Decide(c, st.(*domain.Room))
		result = r
		return events, err
	})
	return func() (messageSendRes, error) {
		res, err := wait()
		if err != nil {
			return messageSendRes{}, err
		}
		pos := res.last()
		if result.Duplicate {
			if pos, err = g.svc.positionOf(ctx, stream, result.StreamVersion); err != nil {
				return messageSendRes{}, err
			}
		}
		return messageSendRes{MessageID: result.MessageID, Seq: result.Seq, Offset: g.offset(pos)}, nil
	}, nil
}

type historyReq struct {
	RoomID    string `json:"roomId"`
	BeforeSeq uint64 `json:"beforeSeq"`
	Limit     int    `json:"limit"`
}

type historyRes struct {
	RoomID   string           `json:"roomId"`
	Messages []messagePayload `json:"messages"`
}

func (g *Gateway) historyFetch(ctx context.Context, s *session, raw json.RawMessage, verdict guard.Verdict) (any, error) {
	var req historyReq
	if err := decodeData(raw, &req); err != nil {
		return nil, err
	}
	cmd := domain.ViewHistory{RoomID: req.RoomID, BeforeSeq: req.BeforeSeq, Limit: req.Limit, Via: "history:fetch"}
	if err := cmd.Validate(g.cfg.Limits); err != nil {
		return nil, err
	}
	if err := g.rateGate(verdict, g.roomPrecheck(req.RoomID, s.userID, false)); err != nil {
		return nil, err
	}
	var served domain.HistoryRange
	_, err := g.svc.execute(ctx, s.actor(), domain.RoomStream(req.RoomID), newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
		rng, events, err := cmd.Decide(c, st.(*domain.Room))
		served = rng
		return events, err
	}, nil)
	if err != nil {
		return nil, err
	}
	msgs, err := g.readMessages(ctx, req.RoomID, served)
	if err != nil {
		return nil, err
	}
	return historyRes{RoomID: req.RoomID, Messages: msgs}, nil
}

// readMessages returns the messages of rng, ascending, from the read
// model's recent messages when they cover it, else from the room stream.
func (g *Gateway) readMessages(ctx context.Context, roomID string, rng domain.HistoryRange) ([]messagePayload, error) {
	out := []messagePayload{}
	if rng.Count == 0 {
		return out, nil
	}
	if recent, ok := g.cfg.Rooms.RecentMessages(roomID, rooms.RecentLimit); ok && len(recent) > 0 && recent[0].Seq <= rng.FromSeq && recent[len(recent)-1].Seq >= rng.ToSeq {
		for _, m := range recent {
			if m.Seq >= rng.FromSeq && m.Seq <= rng.ToSeq {
				out = append(out, messageFromModel(m))
			}
		}
		return out, nil
	}
	const page = 256
	stream := domain.RoomStream(roomID)
	var from uint64 // 0: the newest, backward
	for {
		evs, err := g.cfg.Store.ReadStream(ctx, stream, from, eventstore.Backward, page)
		if err != nil {
			return nil, fmt.Errorf("gateway: read history of %q: %w", roomID, err)
		}
		for _, r := range evs {
			if r.Type != (domain.MessagePosted{}).EventType() {
				continue
			}
			env, err := g.svc.decode(r)
			if err != nil {
				return nil, err
			}
			m := env.Event.(domain.MessagePosted)
			if m.Seq < rng.FromSeq {
				slices.Reverse(out)
				return out, nil
			}
			if m.Seq <= rng.ToSeq {
				out = append(out, messagePayload{
					MessageID: m.MessageID, RoomID: m.RoomID, SenderID: m.SenderID, Content: m.Content,
					Seq: m.Seq, ClientMsgID: m.ClientMsgID, CreatedAt: formatTime(env.Time),
				})
			}
		}
		if len(evs) < page || evs[len(evs)-1].Version <= 1 {
			slices.Reverse(out)
			return out, nil
		}
		from = evs[len(evs)-1].Version - 1
	}
}

type dmSendReq struct {
	ToUserID    string `json:"toUserId"`
	Content     string `json:"content"`
	ClientMsgID string `json:"clientMsgId"`
}

type dmSendRes struct {
	MessageID string `json:"messageId"`
	Offset    string `json:"offset"`
}

func (g *Gateway) dmSend(ctx context.Context, s *session, raw json.RawMessage, verdict guard.Verdict) (any, error) {
	var req dmSendReq
	if err := decodeData(raw, &req); err != nil {
		return nil, err
	}
	cmd := domain.SendDM{ToUserID: req.ToUserID, Content: req.Content, ClientMsgID: req.ClientMsgID}
	if err := cmd.Validate(g.cfg.Limits); err != nil {
		return nil, err
	}
	if req.ToUserID == s.userID {
		return nil, domain.ErrDMToSelf
	}
	if err := g.rateGate(verdict, nil); err != nil {
		return nil, err
	}
	stream := domain.DMStream(s.userID, req.ToUserID)
	var result domain.MessageResult
	res, err := g.svc.execute(ctx, s.actor(), stream, newConv, func(c domain.Context, st folder) ([]domain.Event, error) {
		r, events, err := cmd.Decide(c, st.(*domain.Conversation))
		result = r
		return events, err
	}, nil)
	if err != nil {
		return nil, err
	}
	pos := res.last()
	if result.Duplicate {
		if pos, err = g.svc.positionOf(ctx, stream, result.StreamVersion); err != nil {
			return nil, err
		}
	}
	return dmSendRes{MessageID: result.MessageID, Offset: g.offset(pos)}, nil
}

func (g *Gateway) typing(start bool) handlerFunc {
	return func(ctx context.Context, s *session, raw json.RawMessage, verdict guard.Verdict) (any, error) {
		var req roomReq
		if err := decodeData(raw, &req); err != nil {
			return nil, err
		}
		if err := (domain.StartTyping{RoomID: req.RoomID}).Validate(g.cfg.Limits); err != nil {
			return nil, err
		}
		if err := g.rateGate(verdict, g.roomPrecheck(req.RoomID, s.userID, false)); err != nil {
			return nil, err
		}
		if err := g.svc.ensureTypingRetention(ctx, req.RoomID); err != nil {
			return nil, err
		}
		_, err := g.svc.execute(ctx, s.actor(), domain.RoomStream(req.RoomID), newRoom, func(c domain.Context, st folder) ([]domain.Event, error) {
			if start {
				return domain.StartTyping{RoomID: req.RoomID}.Decide(c, st.(*domain.Room))
			}
			return domain.StopTyping{RoomID: req.RoomID}.Decide(c, st.(*domain.Room))
		}, nil)
		if err != nil {
			return nil, err
		}
		return roomCreateRes(req), nil
	}
}

type presenceReq struct {
	UserIDs []string `json:"userIds"`
}

type presenceRes struct {
	Online []string `json:"online"`
}

func (g *Gateway) presenceQuery(_ context.Context, _ *session, raw json.RawMessage, verdict guard.Verdict) (any, error) {
	var req presenceReq
	if err := decodeData(raw, &req); err != nil {
		return nil, err
	}
	if err := validateUserIDs(req.UserIDs); err != nil {
		return nil, err
	}
	if err := g.rateGate(verdict, nil); err != nil {
		return nil, err
	}
	return presenceRes{Online: g.online(req.UserIDs)}, nil
}

func validateUserIDs(ids []string) error {
	if len(ids) == 0 || len(ids) > maxPresenceQuery {
		return errTooManyIDs
	}
	for _, id := range ids {
		if err := domain.ValidateUserID(id); err != nil {
			return err
		}
	}
	return nil
}

func (g *Gateway) online(ids []string) []string {
	out := g.cfg.Presence.Online(ids)
	if out == nil {
		out = []string{}
	}
	return out
}

type refreshReq struct {
	Token string `json:"token"`
}

type refreshRes struct {
	ExpiresAt string `json:"expiresAt"`
}

func (g *Gateway) authRefresh(ctx context.Context, s *session, raw json.RawMessage, verdict guard.Verdict) (any, error) {
	var req refreshReq
	if err := decodeData(raw, &req); err != nil {
		return nil, err
	}
	if req.Token == "" {
		return nil, domain.ErrMissingField.Withf("token is required")
	}
	if err := g.rateGate(verdict, nil); err != nil {
		return nil, err
	}
	claims, err := g.cfg.Verifier.Verify(ctx, req.Token)
	if err != nil {
		g.metrics.authFailures.WithLabelValues(s.transport.String(), "refresh").Inc()
		reason := "refused"
		if r, ok := auth.ReasonOf(err); ok {
			reason = r.String()
		}
		e := authError(err)
		return nil, g.recordRefreshFailure(ctx, s, e, reason)
	}
	if claims.Subject != s.userID {
		return nil, g.recordRefreshFailure(ctx, s, errForbiddenSub, "subject_mismatch")
	}
	s.mu.Lock()
	s.setClaimsLocked(claims)
	s.scheduleExpiryLocked()
	s.mu.Unlock()
	c := g.svc.decisionContext(s.actor())
	if _, err := g.svc.appendAny(ctx, c, []domain.Event{domain.TokenRefreshed{UserID: s.userID, SessionID: s.id, ExpiresAt: claims.ExpiresAt}}); err != nil {
		return nil, err
	}
	return refreshRes{ExpiresAt: formatTime(claims.ExpiresAt)}, nil
}

// recordRefreshFailure appends AuthenticationFailed for a refused
// auth:refresh (every authentication outcome is an event), attributed to
// the session's user, and returns the refusal to answer with.
func (g *Gateway) recordRefreshFailure(ctx context.Context, s *session, refusal *domain.Error, reason string) error {
	c := g.svc.decisionContext(s.actor())
	ev := domain.AuthenticationFailed{Code: string(refusal.Code), Reason: reason, Subject: s.userID, ClientAddr: s.addr, Method: methodRefresh}
	if _, err := g.svc.appendAny(ctx, c, []domain.Event{ev}); err != nil {
		return errors.Join(refusal, err)
	}
	return refusal
}

// withSuccess makes the ack envelope of a result: {"success":true, ...}.
func withSuccess(result any) (json.RawMessage, error) {
	if result == nil {
		return json.RawMessage(`{"success":true}`), nil
	}
	b, err := json.Marshal(result)
	if err != nil {
		return nil, fmt.Errorf("gateway: encode ack: %w", err)
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("gateway: ack result %T is not an object", result)
	}
	if string(b) == "{}" {
		return json.RawMessage(`{"success":true}`), nil
	}
	return append([]byte(`{"success":true,`), b[1:]...), nil
}
