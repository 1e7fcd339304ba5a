package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/engineio"
	"github.com/wardline/wardline/transport/guard"
	"github.com/wardline/wardline/transport/native"
	"github.com/wardline/wardline/transport/socketio"
)

const (
	transportSocketIO = "socketio"
	transportNative   = "native"
	chatNamespace     = "/chat"
)

// transportKind is a session's transport; the zero value is none (a
// session of a test without a connection).
type transportKind uint8

const (
	kindSocketIO transportKind = iota + 1
	kindNative
)

// kindOf returns the kind named transport (transportSocketIO or
// transportNative), none for another name.
func kindOf(transport string) transportKind {
	switch transport {
	case transportSocketIO:
		return kindSocketIO
	case transportNative:
		return kindNative
	}
	return 0
}

// String is the transport's name, as metrics label it.
func (k transportKind) String() string {
	switch k {
	case kindSocketIO:
		return transportSocketIO
	case kindNative:
		return transportNative
	}
	return "none"
}

// session is one authenticated connection, of either transport. Every
// idle connection holds one, so it is kept small: what only the connect
// needs (the auth method, the token's other claims) is not kept, the
// transport is a byte, and the replay's buffer exists only during a
// replay.
type session struct {
	g         *Gateway
	id        string
	userID    string
	addr      string
	transport transportKind
	sio       *socketio.Conn
	nat       *native.Conn
	// limiter is the connection's token bucket, made at the first event:
	// a bucket starts full and stays full until then, so an idle
	// connection need not hold one.
	limiter atomic.Pointer[guard.Limiter]
	// inFlight holds a slot per Socket.IO request answered off the reader
	// (a pipelined message:send); made at the first.
	inFlight chan struct{}

	// overflowed is set once the session is known to be a slow consumer,
	// so it is counted once whichever path (a send, the replay buffer, the
	// transport's close) finds out first.
	overflowed atomic.Bool
	// endOnce makes recording the session's end happen once, whether the
	// gateway ends it early (slow consumer) or the transport reports the
	// close.
	endOnce sync.Once

	mu sync.Mutex
	// roles, expiresAt and authSession are what the session needs of its
	// token's claims; the rest (issuer, audience, jti, ...) is not kept:
	// an idle connection should hold as little as possible. roles is an
	// interned list (Gateway.roles), shared and never modified.
	roles       *[]domain.Role
	expiresAt   time.Time
	authSession string
	// expiryGen numbers the arming of the token's expiry timer (in the
	// gateway's expiry queue): armed first for the auth:expiring warning,
	// then re-armed for the automatic logoff.
	expiryGen uint32
	// expiryIdx is the session's place in the expiry queue (index + 1, 0
	// when not queued); guarded by the queue's lock, not mu.
	expiryIdx int32
	warned    bool
	// replay, while the session's replay runs, buffers the live pushes
	// for after it; nil once the session is live.
	replay *replayBuffer
	// after is the position of the last event from the log this session was
	// given (or decided it need not be given): only later ones are delivered.
	after  eventstore.Position
	closed bool
}

// replayBuffer holds the live pushes offered to a session during its
// replay.
type replayBuffer struct {
	pushes []*push
}

// rateLimiter returns the session's token bucket, making it on first use.
func (s *session) rateLimiter() (*guard.Limiter, error) {
	if l := s.limiter.Load(); l != nil {
		return l, nil
	}
	l, err := guard.NewLimiter(s.g.cfg.RateLimit)
	if err != nil {
		return nil, fmt.Errorf("gateway: rate limiter: %w", err)
	}
	if !s.limiter.CompareAndSwap(nil, l) {
		l = s.limiter.Load() // a concurrent first event made it
	}
	return l, nil
}

func (s *session) actor() domain.Actor {
	s.mu.Lock()
	roles := s.roles
	s.mu.Unlock()
	a := domain.Actor{UserID: s.userID, SessionID: s.id, ClientAddr: s.addr}
	if roles != nil {
		a.Roles = *roles
	}
	return a
}

// setClaimsLocked keeps what the session needs of claims; authSession (the
// browser session a cookie names) is only set when the session starts, as
// a refreshed token does not carry it.
func (s *session) setClaimsLocked(c auth.Claims) {
	s.roles, s.expiresAt = s.g.roles.intern(c.Roles), c.ExpiresAt
}

// authSessionID is the browser session the connection authenticated with
// (empty for a bearer token).
func (s *session) authSessionID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authSession
}

// expires is the current token's expiry.
func (s *session) expires() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiresAt
}

// deliver offers a push from the hub: sent at once, buffered while the
// session replays, or skipped if it is not after the watermark.
func (s *session) deliver(p *push) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || p.pos <= s.after {
		return
	}
	if s.replay != nil {
		if len(s.replay.pushes) >= s.g.cfg.MaxQueueMessages {
			// Live traffic outran the replay: the client is a slow consumer.
			s.closed = true
			s.slowConsumer()
			s.g.spawn(s.closeTryAgain)
			return
		}
		s.replay.pushes = append(s.replay.pushes, p)
		return
	}
	s.after = p.pos
	s.sendLocked(p)
}

// sendLocked hands p to the transport queue without blocking.
func (s *session) sendLocked(p *push) {
	var err error
	switch s.transport {
	case kindSocketIO:
		var f socketio.Frame
		if f, err = p.socketIO(); err == nil {
			err = s.sio.Push(f)
		}
	case kindNative:
		var b []byte
		if b, err = p.native(); err == nil {
			err = s.nat.Send(b)
		}
	}
	s.countSend(p.event, err)
}

func (s *session) countSend(event string, err error) {
	switch {
	case err == nil:
		s.g.metrics.eventsOut.WithLabelValues(s.transport.String(), event).Inc()
	case isOverflow(err):
		s.slowConsumer()
	}
}

// isOverflow reports whether err is a transport's send queue overflowing.
func isOverflow(err error) bool {
	return errors.Is(err, engineio.ErrQueueFull) || errors.Is(err, native.ErrSlowConsumer)
}

// slowConsumer counts the overflow once and records the session's end at
// once, without waiting for the transport: its writer may sit in a blocked
// write until the write deadline before it reports the close, and
// roommates should not see the user online that long. It never blocks
// (it may run under the hub's lock).
func (s *session) slowConsumer() {
	if s.markSlow() {
		// Once Shutdown waits, the transport's close handler ends it.
		s.g.spawn(func() { s.g.endSession(s, reasonSlowConsumer) })
	}
}

// markSlow counts the overflow; only the first call for a session counts
// and returns true.
func (s *session) markSlow() bool {
	if !s.overflowed.CompareAndSwap(false, true) {
		return false
	}
	s.g.metrics.queueOverflows.WithLabelValues(s.transport.String()).Inc()
	return true
}

// endReason is why a session whose connection closed ended.
func (s *session) endReason() string {
	if s.overflowed.Load() {
		return reasonSlowConsumer
	}
	return reasonDisconnect
}

// sendReplay sends one replayed push, waiting for room where the transport
// allows it (native), so that a long replay is paced by the client.
func (s *session) sendReplay(ctx context.Context, p *push) error {
	var err error
	switch s.transport {
	case kindSocketIO:
		var f socketio.Frame
		if f, err = p.socketIO(); err == nil {
			err = s.sio.SendEncoded(f)
		}
	case kindNative:
		var b []byte
		if b, err = p.native(); err == nil {
			err = s.nat.SendWait(ctx, b)
		}
	}
	s.countSend(p.event, err)
	return err
}

// finishReplay flushes what the hub buffered during the replay and goes live.
func (s *session) finishReplay() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replay == nil {
		return
	}
	for _, p := range s.replay.pushes {
		if p.pos <= s.after || s.closed {
			continue
		}
		s.after = p.pos
		s.sendLocked(p)
	}
	s.replay = nil
}

// emit sends a push that is not from the log (no offset).
func (s *session) emit(event string, data any) {
	var err error
	switch s.transport {
	case kindSocketIO:
		err = s.sio.Emit(event, data)
	case kindNative:
		var b []byte
		if b, err = native.EncodePush(event, data, ""); err == nil {
			err = s.nat.Send(b)
		}
	}
	s.countSend(event, err)
}

// closeTryAgain ends a connection whose client cannot keep up (1013); it
// reconnects and resumes from its offset.
func (s *session) closeTryAgain() {
	switch s.transport {
	case kindSocketIO:
		s.sio.Socket().Close(&engineio.CloseError{Code: native.CloseTryAgain, Text: "slow consumer"})
	case kindNative:
		s.nat.Close(native.CloseTryAgain, "slow consumer")
	}
}

// end closes the connection for reason with the transport's own means:
// native gets an exception and the close code; Socket.IO an exception (or
// the given event) and a server DISCONNECT.
func (s *session) end(code int, e errorPayload, event string) {
	switch s.transport {
	case kindSocketIO:
		_ = s.sio.Emit("exception", exceptionPayload{Code: e.Code, Message: e.Message, Event: event})
		_ = s.sio.Disconnect()
	case kindNative:
		s.nat.CloseWithError(code, &native.Error{Code: native.Code(e.Code), Message: e.Message}, event)
	}
}

// scheduleExpiry (re)arms auth:expiring and the automatic logoff at the
// token's expiry, with one timer of the gateway's expiry queue: it fires
// first for the warning and is then re-armed for the logoff.
func (s *session) scheduleExpiry() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scheduleExpiryLocked()
}

// scheduleExpiryLocked is scheduleExpiry for a caller holding s.mu, such as
// a refresh that sets the new expiry in the same critical section: every
// change of expiresAt comes with a new expiryGen, so a timer armed for the
// old expiry that fires meanwhile does nothing.
func (s *session) scheduleExpiryLocked() {
	s.stopTimersLocked()
	if s.closed {
		return
	}
	s.warned = false
	s.expiryGen++
	warnIn := max(s.expiresAt.Sub(s.g.cfg.Now())-s.g.cfg.ExpiryWarning, 0)
	s.g.expiries.add(s, warnIn, s.expiryGen)
}

// expiryTimer is the expiry timer armed with gen firing: the warning the
// first time, the logoff the second. A timer that a refresh or the
// session's close disarmed does nothing.
func (s *session) expiryTimer(gen uint32) {
	s.mu.Lock()
	if s.closed || s.expiryGen != gen {
		s.mu.Unlock()
		return
	}
	exp := s.expiresAt
	if !s.warned {
		s.warned = true
		s.g.expiries.add(s, max(exp.Sub(s.g.cfg.Now()), 0), gen)
		s.mu.Unlock()
		s.emit("auth:expiring", map[string]string{"expiresAt": formatTime(exp)})
		return
	}
	s.mu.Unlock()
	s.expire(exp)
}

func (s *session) stopTimersLocked() {
	s.expiryGen++ // a timer already taken off the queue finds itself stale
	s.g.expiries.remove(s)
}

// expire is the automatic logoff at exp, the expiry the timer was armed
// for.
func (s *session) expire(exp time.Time) {
	if !s.expires().Equal(exp) {
		return // refreshed meanwhile
	}
	switch s.transport {
	case kindSocketIO:
		_ = s.sio.Emit("auth:expired", map[string]string{"reason": "token expired"})
		if err := s.sio.Disconnect(); err != nil && s.sio.Reason() == nil {
			// Not accepted yet (a token inside the leeway expires during
			// the connect handler): end the transport instead.
			s.sio.Socket().Close(&engineio.CloseError{Code: native.CloseUnauthorized, Text: "token expired"})
		}
	case kindNative:
		s.nat.Close(native.CloseUnauthorized, "token expired")
	}
}

// closeGone marks the session ended and stops its timers.
func (s *session) closeGone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.replay = nil
	s.stopTimersLocked()
}
