package gateway

import (
	"slices"
	"time"

	"github.com/wardline/wardline/domain"
)

// presenceState is the cached state of a user's presence stream, in the
// small form the cache keeps: every connected user has one, and a cached
// domain.Presence (a map of open sessions, about 1.2 KB with one session)
// was the largest part of an idle connection's heap. Folding afresh for
// each decision instead made a session's start and end read the user's
// whole presence stream, which grows by two to four events per session.
// presence rebuilds the domain state the decisions take.
type presenceState struct {
	user   string // "" before any event
	online bool
	open   []openSession // in start order
}

// openSession is an open session's SessionStarted and its envelope time,
// all the domain's fold keeps of it.
type openSession struct {
	started domain.SessionStarted
	at      time.Time
}

// Apply folds one event of the presence stream as domain.Presence.Apply
// does (TestPresenceStateDecidesLikeTheDomainFold holds them together).
func (p *presenceState) Apply(env domain.Envelope) {
	switch e := env.Event.(type) {
	case domain.SessionStarted:
		p.user = e.UserID
		p.end(e.SessionID)
		p.open = append(p.open, openSession{started: e, at: env.Time})
	case domain.SessionEnded:
		p.user = e.UserID
		p.end(e.SessionID)
	case domain.UserOnline:
		p.user, p.online = e.UserID, true
	case domain.UserOffline:
		p.user, p.online = e.UserID, false
	}
}

// rebasesAt is true for UserOffline: the domain appends it only with the
// SessionEnded of the user's last open session (EndSession.Decide), so
// after it no session is open and the user is offline, whatever came
// before. An evicted presence state is reloaded from the stream's last
// UserOffline on, which for a user connecting or disconnecting is the
// last few events, not every session the user ever had.
func (p *presenceState) rebasesAt(typ string) bool { return typ == "UserOffline" }

func (p *presenceState) end(sessionID string) {
	for i := range p.open {
		if p.open[i].started.SessionID == sessionID {
			p.open = slices.Delete(p.open, i, i+1)
			if len(p.open) == 0 {
				p.open = nil // release the array of a user with no session
			}
			return
		}
	}
}

// presence is the domain's state for a decision, folded from events that
// give the same user, open sessions and online flag. Its Version differs
// from the stream's; the gateway appends with the cache entry's version.
func (p *presenceState) presence() *domain.Presence {
	d := &domain.Presence{}
	if p.user == "" {
		return d
	}
	d.Apply(domain.Envelope{Type: "UserOffline", Event: domain.UserOffline{UserID: p.user}})
	for _, o := range p.open {
		d.Apply(domain.Envelope{Type: "SessionStarted", Time: o.at, Event: o.started})
	}
	if p.online {
		d.Apply(domain.Envelope{Type: "UserOnline", Event: domain.UserOnline{UserID: p.user}})
	}
	return d
}
