package engineio

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Defaults. Heartbeat values are the reference server's; MaxPayload is
// Wardline's 64 KiB frame limit; the queue bound is Wardline's slow-consumer
// rule (1,024 messages or 4 MiB).
const (
	DefaultPingInterval     = 25 * time.Second
	DefaultPingTimeout      = 20 * time.Second
	DefaultMaxPayload       = 65536
	DefaultUpgradeTimeout   = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultMaxQueueMessages = 1024
	DefaultMaxQueueBytes    = 4 << 20
)

// Internal timings that are not worth configuring.
const (
	// closeWait bounds how long a closing WebSocket waits for the peer's
	// close frame, and how long a close frame write may take.
	closeWait = time.Second
	// pollingCloseGrace is how long a gracefully closed long-polling session
	// waits for the client's next GET to carry the close packet.
	pollingCloseGrace = 2 * time.Second
	// upgradeNoopDelay mirrors the reference server, which answers polls
	// with noop every 100 ms while an upgrade is in progress. A GET that
	// arrives during the upgrade waits this long, so a GET racing the
	// client's upgrade packet is refused rather than answered.
	upgradeNoopDelay = 100 * time.Millisecond
	// closeReplyGrace is how long a session closed by the client's close
	// packet (sent by POST) stays findable for a GET that raced it.
	closeReplyGrace = time.Second
)

// Config configures a Server. The zero value of every field means its default.
type Config struct {
	// PingInterval is how often the server pings; PingTimeout how long the
	// client has to answer before the session is closed with ErrPingTimeout.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// MaxPayload bounds one WebSocket message and one long-polling POST body,
	// in bytes; it is announced in the handshake. Over it: WebSocket close
	// 1009, or HTTP 413 and the session closed.
	MaxPayload int
	// UpgradeTimeout bounds the polling→WebSocket probe phase.
	UpgradeTimeout time.Duration
	// WriteTimeout bounds one WebSocket frame write.
	WriteTimeout time.Duration
	// MaxQueueMessages and MaxQueueBytes bound each socket's send queue.
	MaxQueueMessages int
	MaxQueueBytes    int
	// CoalesceWindow holds pushes (PushPacket) to a WebSocket session in a
	// stream so that one write carries several (see package coalesce): at
	// most two windows, and only until a packet that is not a push is
	// queued. 0 writes every packet at once; long-polling is never held.
	CoalesceWindow time.Duration

	// AllowRequest, if set, is called for every handshake request (a request
	// without sid) before any session or upgrade. A non-nil error refuses it
	// with HTTP 403 {"code":4,"message":"Forbidden"}; the error text is not
	// sent. Origin and cookie checks go here.
	AllowRequest func(r *http.Request) error
	// KeepHandshake, if set, picks what a session keeps of its handshake
	// request for Socket.Header and Socket.Query (nil for nothing). By
	// default a session keeps a copy of all the request's headers and its
	// whole query for its lifetime: a browser's handshake carries 1-2 KB of
	// headers, most of them of no use once the session is open.
	KeepHandshake func(r *http.Request) (http.Header, url.Values)
	// OnConnection is called once per new session, before any of its
	// messages is delivered; it must register the socket's callbacks
	// (OnMessage, OnClose) before returning. It must not block.
	OnConnection func(*Socket)
}

func (c *Config) setDefaults() {
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.UpgradeTimeout == 0 {
		c.UpgradeTimeout = DefaultUpgradeTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxQueueMessages == 0 {
		c.MaxQueueMessages = DefaultMaxQueueMessages
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
}

// ErrInvalidConfig is matched by every error NewServer returns.
var ErrInvalidConfig = errors.New("engineio: invalid config")

func (c *Config) validate() error {
	switch {
	case c.PingInterval < time.Millisecond:
		return fmt.Errorf("%w: PingInterval %v is below 1ms", ErrInvalidConfig, c.PingInterval)
	case c.PingTimeout < time.Millisecond:
		return fmt.Errorf("%w: PingTimeout %v is below 1ms", ErrInvalidConfig, c.PingTimeout)
	case c.MaxPayload < 16:
		return fmt.Errorf("%w: MaxPayload %d is below 16 bytes", ErrInvalidConfig, c.MaxPayload)
	case c.UpgradeTimeout <= 0, c.WriteTimeout <= 0:
		return fmt.Errorf("%w: timeouts must be positive", ErrInvalidConfig)
	case c.MaxQueueMessages < 1, c.MaxQueueBytes < 1:
		return fmt.Errorf("%w: queue bounds must be positive", ErrInvalidConfig)
	case c.OnConnection == nil:
		return fmt.Errorf("%w: OnConnection is required", ErrInvalidConfig)
	}
	return nil
}
