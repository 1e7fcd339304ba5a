package auth

import (
	"errors"
	"fmt"
)

// Reason says why a token or session was refused. The zero value is not a
// reason, so a forgotten field is caught.
type Reason int

// Reasons a token or session cookie is refused.
const (
	ReasonNoToken        Reason = iota + 1 // nothing to verify was presented
	ReasonMalformed                        // not a JWT / session cookie at all
	ReasonAlgorithm                        // alg not allowed, unknown, or not fitting the key
	ReasonUnknownKey                       // no configured key for this kid / algorithm
	ReasonSignature                        // signature does not verify
	ReasonExpired                          // exp (plus leeway) has passed
	ReasonNotYetValid                      // nbf (minus leeway) is in the future
	ReasonMissingExpiry                    // no exp claim
	ReasonMissingSubject                   // no sub claim
	ReasonIssuer                           // iss differs from the configured issuer
	ReasonAudience                         // aud lacks the configured audience
	ReasonType                             // typ header differs from the configured one
	ReasonRevoked                          // the session was ended
	ReasonUnavailable                      // revocation state could not be read; fail closed
)

var reasonText = [...]string{
	ReasonNoToken:        "no token",
	ReasonMalformed:      "malformed token",
	ReasonAlgorithm:      "signing algorithm not allowed",
	ReasonUnknownKey:     "unknown signing key",
	ReasonSignature:      "invalid token signature",
	ReasonExpired:        "token expired",
	ReasonNotYetValid:    "token not valid yet",
	ReasonMissingExpiry:  "token has no expiry",
	ReasonMissingSubject: "token has no subject",
	ReasonIssuer:         "wrong token issuer",
	ReasonAudience:       "wrong token audience",
	ReasonType:           "wrong token type",
	ReasonRevoked:        "session revoked",
	ReasonUnavailable:    "session state unavailable",
}

// String is the short, client-safe description of the reason; it is also
// the natural value for domain.AuthenticationFailed.Reason.
func (r Reason) String() string {
	if r > 0 && int(r) < len(reasonText) {
		return reasonText[r]
	}
	return fmt.Sprintf("auth reason %d", int(r))
}

// Wire error codes of the ack envelope that this package produces.
const (
	CodeUnauthorized = "unauthorized"
	CodeUnavailable  = "unavailable"
)

// Error is every refusal this package returns. Err carries detail for logs
// (a library error, a fetch failure); it never holds key material or the
// token itself, but it may name the token's alg or kid.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "auth: " + e.Reason.String()
	}
	return "auth: " + e.Reason.String() + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Code maps the refusal to its ack-envelope code: "unauthorized" for every
// reason except ReasonUnavailable, which is "unavailable" because the token
// may be fine and the client should retry rather than re-authenticate.
func (e *Error) Code() string {
	if e.Reason == ReasonUnavailable {
		return CodeUnavailable
	}
	return CodeUnauthorized
}

// Message is the text to show a client: the reason only, no detail.
func (e *Error) Message() string { return e.Reason.String() }

// Is makes errors.Is(err, &Error{Reason: R}) match any *Error with reason R,
// so callers can test for one reason without errors.As.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Err == nil && t.Reason == e.Reason
}

// ReasonOf returns the reason of the first *Error in err's chain.
func ReasonOf(err error) (Reason, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason, true
	}
	return 0, false
}

func fail(r Reason, err error) *Error { return &Error{Reason: r, Err: err} }

func failf(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Err: fmt.Errorf(format, args...)}
}
