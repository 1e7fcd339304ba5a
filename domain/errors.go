package domain

import (
	"errors"
	"fmt"
)

// ErrorCode classifies a refusal. The values are exactly the wire ack codes
// (DESIGN.md "Ack envelope"), so the transport maps them one to one and never
// has to guess. The zero value is not a valid code.
type ErrorCode string

// The ack codes.
const (
	CodeInvalid      ErrorCode = "invalid"
	CodeUnauthorized ErrorCode = "unauthorized"
	CodeForbidden    ErrorCode = "forbidden"
	CodeNotFound     ErrorCode = "not_found"
	CodeConflict     ErrorCode = "conflict"
	CodeRateLimited  ErrorCode = "rate_limited"
	CodeTooLarge     ErrorCode = "too_large"
	CodeUnavailable  ErrorCode = "unavailable"
	CodeInternal     ErrorCode = "internal"
)

// ErrorCodes lists every code, in the order of DESIGN.md.
func ErrorCodes() []ErrorCode {
	return []ErrorCode{
		CodeInvalid, CodeUnauthorized, CodeForbidden, CodeNotFound, CodeConflict,
		CodeRateLimited, CodeTooLarge, CodeUnavailable, CodeInternal,
	}
}

func (c ErrorCode) valid() bool {
	switch c {
	case CodeInvalid, CodeUnauthorized, CodeForbidden, CodeNotFound, CodeConflict,
		CodeRateLimited, CodeTooLarge, CodeUnavailable, CodeInternal:
		return true
	}
	return false
}

// Error is a refusal a client may see: a code and a message safe to show.
//
// Rule errors (the Err... sentinels) are *Error values; a decision that needs
// to say more returns a detailed copy made with Withf, which still matches
// the sentinel with errors.Is.
type Error struct {
	Code    ErrorCode
	Message string

	rule *Error // the sentinel this error details, if any
}

// Error returns the message, prefixed with the code for logs.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is makes a detailed error (Withf) match the sentinel it was made from.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && e.rule != nil && e.rule == t
}

// Withf returns a copy of e whose message carries detail; errors.Is(copy, e)
// holds.
func (e *Error) Withf(format string, args ...any) *Error {
	rule := e
	if e.rule != nil {
		rule = e.rule
	}
	return &Error{Code: e.Code, Message: e.Message + ": " + fmt.Sprintf(format, args...), rule: rule}
}

// Errorf returns a coded error for a refusal that no sentinel names.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCodeOf returns the code of the first *Error in err's chain, and
// CodeInternal for any other error (so that an unexpected failure is never
// reported to a client as its own fault). It returns "" for a nil err.
func ErrorCodeOf(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code.valid() {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, and a generic text for anything else, whose details belong in logs,
// not on the wire. It returns "" for a nil err.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code.valid() {
		return e.Message
	}
	return "internal error"
}

// AccessDeniedError is a refusal of a room action that the audit trail must
// record. Decide functions return it (wrapping the rule, so errors.Is and
// ErrorCodeOf see through it); the caller should append Denial to
// AccessStream(Denial.UserID) and then answer the client with the error.
// Denials are not returned as events because an error return must never
// look like a decision to the caller.
type AccessDeniedError struct {
	Denial RoomAccessDenied
	Err    error
}

func (e *AccessDeniedError) Error() string {
	return fmt.Sprintf("%s denied on room %q for user %q: %v", e.Denial.Action, e.Denial.RoomID, e.Denial.UserID, e.Err)
}

// Unwrap returns the rule that refused the action.
func (e *AccessDeniedError) Unwrap() error { return e.Err }

// Rule errors. Each names the rule that refused a command; check them with
// errors.Is and map them to the wire with ErrorCodeOf.
var (
	// Schema: CodeInvalid / CodeTooLarge.
	ErrInvalidRoomID      = &Error{Code: CodeInvalid, Message: "roomId must match [A-Za-z0-9._:-]{1,128}"}
	ErrInvalidID          = &Error{Code: CodeInvalid, Message: "id must match [A-Za-z0-9._:-]{1,128}"}
	ErrInvalidUserID      = &Error{Code: CodeInvalid, Message: "user id must be 1 to 256 bytes of printable UTF-8 without spaces or '~'"}
	ErrInvalidName        = &Error{Code: CodeInvalid, Message: "name must be 1 to 200 bytes of UTF-8"}
	ErrEmptyContent       = &Error{Code: CodeInvalid, Message: "content must not be empty"}
	ErrInvalidUTF8        = &Error{Code: CodeInvalid, Message: "content must be valid UTF-8"}
	ErrContentTooLarge    = &Error{Code: CodeTooLarge, Message: "content is too large"}
	ErrInvalidClientMsgID = &Error{Code: CodeInvalid, Message: "clientMsgId must be 1 to 128 bytes of printable UTF-8"}
	ErrInvalidLimit       = &Error{Code: CodeInvalid, Message: "limit is out of range"}
	ErrDMToSelf           = &Error{Code: CodeInvalid, Message: "a direct message needs another user"}
	ErrInvalidKind        = &Error{Code: CodeInvalid, Message: "kind must match [A-Za-z0-9._:-]{1,128}"}
	ErrInvalidPayload     = &Error{Code: CodeInvalid, Message: "payload must be JSON"}
	ErrInvalidSeverity    = &Error{Code: CodeInvalid, Message: "severity must be low, medium, high or critical"}
	ErrNoAudience         = &Error{Code: CodeInvalid, Message: "an alert needs userIds, roles or a roomId"}
	ErrInvalidRole        = &Error{Code: CodeInvalid, Message: "unknown role"}
	ErrInvalidDuration    = &Error{Code: CodeInvalid, Message: "duration must not be negative"}
	ErrInvalidSession     = &Error{Code: CodeInvalid, Message: "sessionId must be 1 to 128 bytes of printable UTF-8"}
	ErrMissingField       = &Error{Code: CodeInvalid, Message: "a required field is missing"}
	ErrInvalidText        = &Error{Code: CodeInvalid, Message: "text is too long or not UTF-8"}

	// Authentication: CodeUnauthorized.
	ErrUnauthenticated = &Error{Code: CodeUnauthorized, Message: "no authenticated user"}

	// Existence: CodeNotFound.
	ErrRoomNotFound         = &Error{Code: CodeNotFound, Message: "room not found"}
	ErrNotificationNotFound = &Error{Code: CodeNotFound, Message: "notification not found"}
	ErrAlertNotFound        = &Error{Code: CodeNotFound, Message: "alert not found"}

	// Permission: CodeForbidden.
	ErrCannotCreateRoom = &Error{Code: CodeForbidden, Message: "your roles may not create rooms"}
	ErrNotMember        = &Error{Code: CodeForbidden, Message: "you are not a member of this room"}
	ErrPrivateRoom      = &Error{Code: CodeForbidden, Message: "this room is private; a member must add you"}
	ErrLeftPrivateRoom  = &Error{Code: CodeForbidden, Message: "you left this private room; a member must add you back"}
	ErrNotRecipient     = &Error{Code: CodeForbidden, Message: "only the recipient may do this"}
	ErrNotInAudience    = &Error{Code: CodeForbidden, Message: "you are not among this alert's recipients"}
	ErrCannotNotify     = &Error{Code: CodeForbidden, Message: "your roles may not issue notifications"}
	ErrCannotRaiseAlert = &Error{Code: CodeForbidden, Message: "your roles may not raise or escalate alerts"}
	ErrCannotEndSession = &Error{Code: CodeForbidden, Message: "you may not end another user's session"}

	// State: CodeConflict.
	ErrRoomExists          = &Error{Code: CodeConflict, Message: "a room with this id exists"}
	ErrNotificationExists  = &Error{Code: CodeConflict, Message: "a notification with this id exists"}
	ErrAlertExists         = &Error{Code: CodeConflict, Message: "an alert with this id exists"}
	ErrClientMsgIDReused   = &Error{Code: CodeConflict, Message: "clientMsgId was already used for different content"}
	ErrAlertAcknowledged   = &Error{Code: CodeConflict, Message: "the alert was acknowledged"}
	ErrEscalationNotDue    = &Error{Code: CodeConflict, Message: "the alert is not due for escalation"}
	ErrEscalationExhausted = &Error{Code: CodeConflict, Message: "the alert is at its highest escalation level"}

	// Wiring mistakes of the caller: CodeInternal.
	ErrNoIDGenerator        = &Error{Code: CodeInternal, Message: "no id generator in the decision context"}
	ErrWrongStateForCommand = &Error{Code: CodeInternal, Message: "state does not belong to the command's entity"}
)
