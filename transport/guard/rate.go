package guard

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Verdict is a rate limiter's answer for one event. The zero value is not
// a verdict.
type Verdict int

// Verdicts, in rising severity.
const (
	// Allowed: handle the event.
	Allowed Verdict = iota + 1
	// Refused: answer the event `rate_limited` (after the checks that come
	// before rate in DESIGN.md's order: schema, existence, permission).
	Refused
	// Disconnect: the sender has been over the limit for DisconnectAfter;
	// send an `exception` rate_limited, then disconnect (Socket.IO server
	// DISCONNECT; native close 4429).
	Disconnect
)

func (v Verdict) String() string {
	switch v {
	case Allowed:
		return "allowed"
	case Refused:
		return "refused"
	case Disconnect:
		return "disconnect"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Defaults from DESIGN.md "Order of checks and errors".
const (
	DefaultRate            = 100 // events per second
	DefaultBurst           = 200
	DefaultDisconnectAfter = 5 * time.Second
	DefaultResetAfter      = time.Second
)

// LimitConfig is a token bucket plus the rule for giving up on a sender.
//
// Every incoming event calls Allow once, whatever else becomes of it (an
// invalid or forbidden event costs a token too), so a client cannot probe
// for free. A refused event takes no token: the bucket does not go into
// debt, so a client slowing to the rate is served again at once.
//
// "Over the limit" is a streak of refusals: it starts with a refusal and
// lasts while refusals keep coming less than ResetAfter apart. A refusal
// that arrives DisconnectAfter or more after the streak began is
// Disconnect. So a client sending steadily above the rate is disconnected
// about DisconnectAfter after its burst runs out, while one that bursts and
// then pauses for ResetAfter only ever sees Refused.
type LimitConfig struct {
	Rate            float64       // tokens per second; default 100
	Burst           int           // bucket size; default 200
	DisconnectAfter time.Duration // default 5 s
	ResetAfter      time.Duration // default 1 s
}

func (c *LimitConfig) setDefaults() {
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.DisconnectAfter == 0 {
		c.DisconnectAfter = DefaultDisconnectAfter
	}
	if c.ResetAfter == 0 {
		c.ResetAfter = DefaultResetAfter
	}
}

// Validate reports the first thing wrong with c, after defaults.
func (c LimitConfig) Validate() error {
	c.setDefaults()
	return c.validate()
}

func (c *LimitConfig) validate() error {
	switch {
	case !(c.Rate > 0) || c.Rate > 1e9:
		return fmt.Errorf("guard: rate %v: want a positive number of events per second", c.Rate)
	case c.Burst < 1:
		return fmt.Errorf("guard: burst %d: want at least 1", c.Burst)
	case c.DisconnectAfter < 0 || c.ResetAfter < 0:
		return errors.New("guard: negative duration")
	}
	return nil
}

// bucket is the shared arithmetic; not safe for concurrent use.
type bucket struct {
	tokens      float64
	last        time.Time // last event; zero before the first
	streakStart time.Time
	lastRefusal time.Time
	inStreak    bool
}

func (b *bucket) allow(c *LimitConfig, now time.Time) Verdict {
	if b.last.IsZero() {
		b.tokens = float64(c.Burst)
		b.last = now
	} else if now.After(b.last) {
		// A clock that steps back refills nothing rather than draining.
		b.tokens = min(float64(c.Burst), b.tokens+now.Sub(b.last).Seconds()*c.Rate)
		b.last = now
	}
	if b.inStreak && now.Sub(b.lastRefusal) >= c.ResetAfter {
		b.inStreak = false
	}
	if b.tokens >= 1 {
		b.tokens--
		return Allowed
	}
	if !b.inStreak {
		b.inStreak = true
		b.streakStart = now
	}
	b.lastRefusal = now
	if now.Sub(b.streakStart) >= c.DisconnectAfter {
		return Disconnect
	}
	return Refused
}

// Limiter is one connection's rate limit. It is safe for concurrent use
// (a polling transport may handle two requests of one session at once).
// Disconnect is final: once returned, every later call returns it too.
type Limiter struct {
	cfg LimitConfig

	mu           sync.Mutex
	b            bucket
	disconnected bool
}

// NewLimiter returns a full bucket.
func NewLimiter(cfg LimitConfig) (*Limiter, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Limiter{cfg: cfg}, nil
}

// Allow takes a token for one event at now.
func (l *Limiter) Allow(now time.Time) Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.disconnected {
		return Disconnect
	}
	v := l.b.allow(&l.cfg, now)
	if v == Disconnect {
		l.disconnected = true
	}
	return v
}
