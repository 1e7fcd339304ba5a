package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/wardline/wardline/domain"
)

// endGrace delays recording session ends by the presence grace, so that a
// user who reconnects at once (a network blip, a Socket.IO transport
// upgrade, a slow consumer resuming) shows roommates no user:offline then
// user:online.
//
// Only the append of SessionEnded is delayed; the connection, its delivery
// and its metrics end at once. The offline decision stays the domain's:
// when the timer fires, EndSession on the user's presence stream emits
// UserOffline only if no other session of the user is open by then — one
// started meanwhile on any node counts, since every node appends to the
// same stream with an exact expected version. A node that dies during a
// grace leaves the end unrecorded, as it does for its open sessions.
//
// Every timer is owned here: Shutdown stops the pending ones and records
// their ends at once, and ends that come after it are recorded without
// delay.
type endGrace struct {
	delay  time.Duration
	record func(s *session, reason string)
	wg     *sync.WaitGroup // the Gateway's: a timer counts until its end is recorded

	mu      sync.Mutex
	flushed bool
	pending map[*session]*time.Timer
}

func newEndGrace(delay time.Duration, wg *sync.WaitGroup, record func(*session, string)) *endGrace {
	return &endGrace{delay: delay, wg: wg, record: record, pending: map[*session]*time.Timer{}}
}

// end records s's end after the grace (at once when there is none or
// after flush).
func (e *endGrace) end(s *session, reason string) {
	e.mu.Lock()
	if e.delay <= 0 || e.flushed {
		e.mu.Unlock()
		e.record(s, reason)
		return
	}
	e.wg.Add(1)
	e.pending[s] = time.AfterFunc(e.delay, func() {
		if e.take(s) {
			defer e.wg.Done()
			e.record(s, reason)
		}
	})
	e.mu.Unlock()
}

// take removes s's timer; false when flush has taken it already.
func (e *endGrace) take(s *session) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.pending[s]; !ok {
		return false
	}
	delete(e.pending, s)
	return true
}

// flush ends the grace for good: every pending end fires now, and later
// ones are recorded without delay. It does not wait for the records (the
// Gateway's wait group does).
func (e *endGrace) flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.flushed = true
	for _, t := range e.pending {
		t.Reset(0)
	}
}

// appendEnd appends EndSession for s (SessionEnded and, for the user's
// last open session, UserOffline).
func (g *Gateway) appendEnd(s *session, reason string) {
	ctx, cancel := context.WithTimeout(g.ctx, endTimeout)
	defer cancel()
	cmd := domain.EndSession{UserID: s.userID, SessionID: s.id, Reason: reason}
	if _, err := g.svc.execute(ctx, s.actor(), domain.PresenceStream(s.userID), newPresence, func(c domain.Context, st folder) ([]domain.Event, error) {
		return cmd.Decide(c, st.(*presenceState).presence())
	}, nil); err != nil {
		g.cfg.Logger.Warn("gateway: record session end", "session", s.id, "err", err)
	}
}
