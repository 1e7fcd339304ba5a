package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/presence"
	"github.com/wardline/wardline/projections/rooms"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/guard"
)

// Defaults of Config.
const (
	// DefaultExpiryWarning is how long before a token's exp the client gets
	// auth:expiring (DESIGN "Sessions and tokens").
	DefaultExpiryWarning = time.Minute
	// DefaultTypingMaxAge is the retention of a room's typing stream: typing
	// is only interesting for a moment.
	DefaultTypingMaxAge = time.Minute
	// DefaultMaxRetries bounds the re-decisions after version conflicts.
	DefaultMaxRetries = 8
	// DefaultStateCacheSize bounds the idle folded stream states kept in
	// memory (least recently used first out); states with a decision in
	// flight are kept besides.
	DefaultStateCacheSize = 10_000
	// DefaultPresenceCacheSize bounds the idle folded presence states
	// (one per user) kept in memory apart from the others: a presence
	// state is decided on only when a session starts or ends and reloads
	// from the stream's last UserOffline on, so holding one for every
	// user with an idle connection (about 300 bytes of live heap each,
	// twice that in RSS) bought nothing but the reload of a few events.
	DefaultPresenceCacheSize = 1024
	// DefaultMaxQueueMessages and DefaultMaxQueueBytes bound each
	// connection's send queue (DESIGN "Slow consumer").
	DefaultMaxQueueMessages = 1024
	DefaultMaxQueueBytes    = 4 << 20
	// DefaultMaxFrameSize is the largest frame or Engine.IO payload.
	DefaultMaxFrameSize = 64 << 10
	// DefaultPresenceGrace is how long a session's end waits before it is
	// recorded, to absorb a quick reconnect; MaxPresenceGrace is the most
	// DESIGN allows (user:offline within 5 s of the last session ending).
	DefaultPresenceGrace = 2 * time.Second
	MaxPresenceGrace     = 3 * time.Second
	// DefaultUserRateFactor scales the per-connection rate limit into the
	// per-user one when UserRateLimit leaves Rate or Burst unset: a user
	// with a phone, a workstation and a tablet open is not throttled before
	// any one connection would be, yet a user cannot multiply their budget
	// without bound by opening more connections.
	DefaultUserRateFactor = 3
	// replayPage is how many events one ReadAll of a resume reads.
	replayPage = 512
)

// ErrInvalidConfig is matched by every error New returns for a bad Config.
var ErrInvalidConfig = errors.New("gateway: invalid config")

// Config wires a Gateway. Store, Runner, Rooms, Presence, Verifier and
// Secret are required.
type Config struct {
	Store    eventstore.Store
	Runner   *projections.Runner
	Rooms    *rooms.Model
	Presence *presence.Model
	Verifier *auth.Verifier
	// Secret keys the resume tokens (pids) and the session cookies; every
	// node of a deployment must share it. At least 32 bytes.
	Secret []byte
	// Decoder decodes events read back from the store (the binary wires
	// migrations.Decode); nil means domain.Decode.
	Decoder projections.Decoder
	// AllowedOrigins are the origins allowed besides the request's own.
	AllowedOrigins []string
	// AllowQueryToken lets a handshake carry ?token= (URLs end up in logs).
	AllowQueryToken bool
	// NodeID names this node in SessionStarted and envelopes.
	NodeID string
	// Registry receives the gateway's metrics; nil registers nothing.
	Registry prometheus.Registerer
	Logger   *slog.Logger
	// Limits are the domain's bounds (content size, history limits).
	Limits domain.Limits
	// RateLimit is the per-connection token bucket.
	RateLimit guard.LimitConfig
	// UserRateLimit is the token bucket shared by all of one user's
	// connections on this node. Rate and Burst left zero are
	// DefaultUserRateFactor times RateLimit's; DisconnectAfter and
	// ResetAfter left zero are RateLimit's. Every event takes a token from
	// both buckets (when one is there) and the stricter verdict wins.
	UserRateLimit guard.KeyedConfig
	// MaxQueueMessages and MaxQueueBytes bound each connection's queue.
	MaxQueueMessages int
	MaxQueueBytes    int
	// CoalesceWindow lets a streaming WebSocket connection's pushes wait
	// (up to twice this long) to go out together in one write (see
	// package transport/internal/coalesce), native and Socket.IO alike; 0
	// writes each push at once.
	CoalesceWindow time.Duration
	// MaxFrameSize bounds a frame or Engine.IO payload (1009 above it).
	MaxFrameSize int
	// WriteTimeout bounds one WebSocket write; a client that accepts
	// nothing for this long is dropped (zero: the transports' defaults).
	WriteTimeout time.Duration
	// ExpiryWarning is how long before exp auth:expiring is sent.
	ExpiryWarning time.Duration
	// PresenceGrace delays recording a session's end (SessionEnded, and
	// UserOffline for the user's last session) so that a reconnect within
	// it shows roommates no user:offline/user:online flap. Zero means
	// DefaultPresenceGrace; negative disables the grace; at most
	// MaxPresenceGrace.
	PresenceGrace time.Duration
	// TypingMaxAge is the retention set on typing streams.
	TypingMaxAge time.Duration
	// PingInterval and PingTimeout tune the Engine.IO heartbeat (zero: the
	// reference server's values).
	PingInterval, PingTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Decoder == nil {
		c.Decoder = projections.DecoderFunc(domain.Decode)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxQueueMessages <= 0 {
		c.MaxQueueMessages = DefaultMaxQueueMessages
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.ExpiryWarning <= 0 {
		c.ExpiryWarning = DefaultExpiryWarning
	}
	switch {
	case c.PresenceGrace == 0:
		c.PresenceGrace = DefaultPresenceGrace
	case c.PresenceGrace < 0:
		c.PresenceGrace = 0
	}
	if c.TypingMaxAge <= 0 {
		c.TypingMaxAge = DefaultTypingMaxAge
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Limits = c.Limits.WithDefaults()
	c.UserRateLimit = userLimit(c.RateLimit, c.UserRateLimit)
}

// maxUserRate is the largest rate guard accepts: a per-connection rate
// near it (a benchmark lifting the limit) is not scaled past it.
const maxUserRate = 1e9

// userLimit fills the per-user bucket's unset fields from the
// per-connection one.
func userLimit(conn guard.LimitConfig, user guard.KeyedConfig) guard.KeyedConfig {
	if conn.Rate == 0 {
		conn.Rate = guard.DefaultRate
	}
	if conn.Burst == 0 {
		conn.Burst = guard.DefaultBurst
	}
	if user.Rate == 0 {
		user.Rate = min(conn.Rate*DefaultUserRateFactor, maxUserRate)
	}
	if user.Burst == 0 {
		user.Burst = conn.Burst * DefaultUserRateFactor
	}
	if user.DisconnectAfter == 0 {
		user.DisconnectAfter = conn.DisconnectAfter
	}
	if user.ResetAfter == 0 {
		user.ResetAfter = conn.ResetAfter
	}
	if user.IdleAfter == 0 && user.Rate > 0 {
		// A bucket may only be forgotten once it would be full again, so a
		// slow refill (a low rate with a big burst) needs a longer idle
		// time than the default.
		refill := time.Duration(float64(user.Burst)/user.Rate*float64(time.Second)) + time.Second
		user.IdleAfter = max(guard.DefaultIdleAfter, refill, user.ResetAfter, guard.DefaultResetAfter)
	}
	return user
}

func (c *Config) validate() error {
	switch {
	case c.Store == nil:
		return fmt.Errorf("%w: Store is required", ErrInvalidConfig)
	case c.Runner == nil:
		return fmt.Errorf("%w: Runner is required", ErrInvalidConfig)
	case c.Rooms == nil || c.Presence == nil:
		return fmt.Errorf("%w: Rooms and Presence read models are required", ErrInvalidConfig)
	case c.Verifier == nil:
		return fmt.Errorf("%w: Verifier is required", ErrInvalidConfig)
	case len(c.Secret) < 32:
		return fmt.Errorf("%w: Secret must be at least 32 bytes", ErrInvalidConfig)
	case c.PresenceGrace > MaxPresenceGrace:
		return fmt.Errorf("%w: PresenceGrace %v is over %v: user:offline must come within 5 s", ErrInvalidConfig, c.PresenceGrace, MaxPresenceGrace)
	}
	if err := c.RateLimit.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.UserRateLimit.Validate(); err != nil {
		return fmt.Errorf("%w: user rate limit: %w", ErrInvalidConfig, err)
	}
	return nil
}
