package engineio

import (
	"errors"
	"fmt"
)

// Reasons a Socket closes, passed to its close callback and returned by Err.
// Compare with errors.Is: transport failures wrap them with detail.
var (
	// ErrClosed is returned by Send* once the socket is closing or closed.
	ErrClosed = errors.New("engineio: socket closed")
	// ErrQueueFull means the client did not read fast enough: the bounded
	// send queue overflowed. The socket is closed (WebSocket close 1013); the
	// client is expected to reconnect and resume from its last offset.
	ErrQueueFull = errors.New("engineio: send queue full")
	// ErrWriteTimeout means one WebSocket write did not complete within
	// WriteTimeout: the client stopped reading, the other way of being a
	// slow consumer. The connection is dropped.
	ErrWriteTimeout = errors.New("engineio: write timed out")
	// ErrPingTimeout means the client did not answer a ping in time.
	ErrPingTimeout = errors.New("engineio: ping timeout")
	// ErrTransportClosed means the client went away: the WebSocket closed or
	// failed, or a long-polling request was aborted.
	ErrTransportClosed = errors.New("engineio: transport closed")
	// ErrClientClose means the client sent an Engine.IO close packet.
	ErrClientClose = errors.New("engineio: closed by client")
	// ErrInvalidPacket means the client sent something that is not Engine.IO v4.
	ErrInvalidPacket = errors.New("engineio: invalid packet")
	// ErrPayloadTooLarge means a message or POST body exceeded MaxPayload.
	ErrPayloadTooLarge = errors.New("engineio: payload too large")
	// ErrServerShutdown is the reason given to every socket by Shutdown.
	ErrServerShutdown = errors.New("engineio: server shutting down")
	// ErrClosedByServer is the reason when Close is called with nil.
	ErrClosedByServer = errors.New("engineio: closed by server")
)

// CloseError lets the owner choose the WebSocket close code and text when it
// closes a socket (for example 4401 for an expired token). Long-polling
// clients only see an Engine.IO close packet.
type CloseError struct {
	Code int    // RFC 6455 close code, 1000–4999
	Text string // close reason sent to the client; at most 123 bytes are sent
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("engineio: closed by server: %d %s", e.Code, e.Text)
}

// errorCode is the {"code":…} of an HTTP error answer, as the reference
// server numbers them.
type errorCode int

const (
	codeUnknownTransport    errorCode = 0
	codeUnknownSID          errorCode = 1
	codeBadHandshakeMethod  errorCode = 2
	codeBadRequest          errorCode = 3
	codeForbidden           errorCode = 4
	codeUnsupportedProtocol errorCode = 5
)

func (c errorCode) message() string {
	switch c {
	case codeUnknownTransport:
		return "Transport unknown"
	case codeUnknownSID:
		return "Session ID unknown"
	case codeBadHandshakeMethod:
		return "Bad handshake method"
	case codeForbidden:
		return "Forbidden"
	case codeUnsupportedProtocol:
		return "Unsupported protocol version"
	}
	return "Bad request"
}
