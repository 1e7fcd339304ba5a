package native

import (
	"context"
	"errors"
	"fmt"
)

// Code is the machine-readable part of a failed ack or an exception. The set
// is closed: anything the gateway returns that is not one of these constants
// goes on the wire as CodeInternal.
type Code string

// The error codes of the ack envelope (DESIGN "Ack envelope").
const (
	CodeInvalid      Code = "invalid"
	CodeUnauthorized Code = "unauthorized"
	CodeForbidden    Code = "forbidden"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeRateLimited  Code = "rate_limited"
	CodeTooLarge     Code = "too_large"
	CodeUnavailable  Code = "unavailable"
	CodeInternal     Code = "internal"
)

// Valid reports whether c is one of the codes the protocol defines.
func (c Code) Valid() bool {
	switch c {
	case CodeInvalid, CodeUnauthorized, CodeForbidden, CodeNotFound, CodeConflict,
		CodeRateLimited, CodeTooLarge, CodeUnavailable, CodeInternal:
		return true
	}
	return false
}

// Error is the error object of the ack envelope and of exception frames. The
// gateway returns it (directly or wrapped) from its hooks to choose what the
// client sees; the client package returns it for a failed ack.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorOf maps any error to what goes on the wire. An *Error anywhere in the
// chain is used as is (an unknown code becomes internal); a cancelled or
// expired context is unavailable, since the client may retry; anything else
// is internal with a fixed message, so server internals never leak to clients.
func ErrorOf(err error) *Error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		if !e.Code.Valid() {
			return &Error{Code: CodeInternal, Message: e.Message}
		}
		return e
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeUnavailable, Message: "request not completed in time"}
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}

// Close codes used by the protocol (DESIGN "Native protocol").
const (
	CloseNormal       = 1000
	CloseGoingAway    = 1001 // server shutting down; reconnect and resume
	CloseAbnormal     = 1006 // never sent: the connection dropped without a close frame
	CloseTooLarge     = 1009 // a frame over Config.MaxFrameSize
	CloseInternal     = 1011
	CloseTryAgain     = 1013 // slow consumer or server unavailable; reconnect and resume
	CloseUnauthorized = 4401 // refused or expired token
	CloseForbidden    = 4403
	CloseAuthTimeout  = 4408 // no auth frame within Config.AuthTimeout
	CloseRateLimited  = 4429
)

var (
	// ErrInvalidFrame is matched (errors.Is) by every decode error.
	ErrInvalidFrame = errors.New("native: invalid frame")
	// ErrClosed is returned by Send and SendWait once the connection is
	// closing or closed.
	ErrClosed = errors.New("native: connection closed")
	// ErrSlowConsumer is returned by the Send that overflowed the send queue
	// and is CloseInfo.Err of the connection it closed (with 1013).
	ErrSlowConsumer = errors.New("native: send queue full (slow consumer)")
	// ErrWriteTimeout is CloseInfo.Err of a connection dropped because one
	// write did not complete within Config.WriteWait: a client that stopped
	// reading, the other way of being a slow consumer.
	ErrWriteTimeout = errors.New("native: write timed out (slow consumer)")
	// ErrNoCredentials is returned by Config.Authenticate when the handshake
	// carries no credentials, so the connection must authenticate with an
	// auth frame.
	ErrNoCredentials = errors.New("native: no credentials in handshake")
	// ErrAuthTimeout is CloseInfo.Err of a connection closed with 4408.
	ErrAuthTimeout = errors.New("native: no authentication in time")
	// ErrFrameTooLarge is CloseInfo.Err of a connection closed with 1009.
	ErrFrameTooLarge = errors.New("native: frame too large")
)

// frameError carries the client-facing reason of a decode failure.
type frameError struct{ reason string }

func (e *frameError) Error() string        { return "native: invalid frame: " + e.reason }
func (e *frameError) Is(target error) bool { return target == ErrInvalidFrame }

func invalidFrame(reason string) error { return &frameError{reason: reason} }

// frameReason is the text an exception shows for a decode error.
func frameReason(err error) string {
	var fe *frameError
	if errors.As(err, &fe) {
		return "invalid frame: " + fe.reason
	}
	return "invalid frame"
}
