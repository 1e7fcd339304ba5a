// Package fastdecode decodes the hot event types of the log (the ones the
// rooms and presence projections fold) without reflection.
//
// A rebuild spends most of its time turning stored JSON into envelopes;
// encoding/json's reflective decoder costs several microseconds per event,
// which alone would cap a rebuild below its target rate. This package parses
// the exact shape domain.Encode writes and gives up (ok == false) on anything
// else: unknown or differently-cased keys, duplicate keys, numbers that
// are not plain unsigned integers, malformed input. The caller then uses the
// full decoder, so whatever Decode accepts it decodes exactly as
// encoding/json would; the fuzz test checks that claim against domain.Decode.
package fastdecode

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/wardline/wardline/domain"
)

// Decode decodes r if it is an event of a supported type at its current
// schema version in the plain form domain.Encode writes. When ok is true the
// envelope equals what domain.Decode(r) returns; when false, nothing is
// known and the caller must use the full decoder (which also reports errors).
// Strings in the result never alias r's byte slices.
func Decode(r domain.RawEvent) (env domain.Envelope, ok bool) {
	cur, known := domain.CurrentSchemaVersion(r.Type)
	if !known || cur != r.SchemaVersion {
		return domain.Envelope{}, false
	}
	var ev domain.Event
	switch r.Type {
	case "MessagePosted":
		ev, ok = messagePosted(r.Data)
	case "MemberJoined":
		ev, ok = memberJoined(r.Data)
	case "MemberLeft":
		ev, ok = memberLeft(r.Data)
	case "RoomCreated":
		ev, ok = roomCreated(r.Data)
	case "SessionStarted":
		ev, ok = sessionStarted(r.Data)
	case "SessionEnded":
		ev, ok = sessionEnded(r.Data)
	case "SessionRevoked":
		ev, ok = sessionRevoked(r.Data)
	case "UserOnline":
		var u domain.UserOnline
		ok = userOnly(r.Data, &u.UserID)
		ev = u
	case "UserOffline":
		var u domain.UserOffline
		ok = userOnly(r.Data, &u.UserID)
		ev = u
	case "TypingStarted":
		var t domain.TypingStarted
		ok = roomUser(r.Data, &t.RoomID, &t.UserID)
		ev = t
	case "TypingStopped":
		var t domain.TypingStopped
		ok = roomUser(r.Data, &t.RoomID, &t.UserID)
		ev = t
	default:
		return domain.Envelope{}, false
	}
	if !ok {
		return domain.Envelope{}, false
	}
	var m domain.Metadata
	if len(r.Metadata) > 0 && !metadata(r.Metadata, &m) {
		return domain.Envelope{}, false
	}
	return domain.Envelope{
		ID: r.ID, Stream: r.Stream, Type: r.Type, SchemaVersion: r.SchemaVersion,
		Time: m.Time, Actor: m.Actor, CorrelationID: m.CorrelationID, CausationID: m.CausationID,
		NodeID: m.NodeID, Event: ev,
	}, true
}

// scanner reads a strict subset of JSON. Every method returns false when the
// input leaves that subset; nothing is then claimed about the input.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// end reports whether only whitespace remains.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

func (s *scanner) lit(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// rawString returns a string token including its quotes, and whether it
// contains escapes or bytes that need encoding/json's treatment.
func (s *scanner) rawString() (tok []byte, plain bool, ok bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	start := s.i
	plain = true
	for j := s.i + 1; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return s.b[start:s.i], plain, true
		case c == '\\':
			plain = false
			j++ // the escaped byte cannot end the string
		case c < 0x20:
			return nil, false, false // invalid JSON: leave the error to the full decoder
		case c >= utf8.RuneSelf:
			plain = false // checked for valid UTF-8 below, once
		}
	}
	return nil, false, false
}

// null consumes a null literal. encoding/json leaves a field untouched for
// null (a slice becomes nil); since every field here starts at its zero value
// and appears at most once, null always decodes to the zero value.
func (s *scanner) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// str reads a JSON string the way encoding/json decodes it into a Go string.
func (s *scanner) str() (string, bool) {
	if s.null() {
		return "", true
	}
	tok, plain, ok := s.rawString()
	if !ok {
		return "", false
	}
	inner := tok[1 : len(tok)-1]
	if plain || utf8.Valid(inner) && !hasBackslash(inner) {
		return string(inner), true
	}
	// Escapes and invalid UTF-8 (which encoding/json replaces with U+FFFD)
	// are rare; let encoding/json itself decode this one token.
	var out string
	if err := json.Unmarshal(tok, &out); err != nil {
		return "", false
	}
	return out, true
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// key reads an object key; keys with escapes are left to the full decoder.
func (s *scanner) key() ([]byte, bool) {
	tok, plain, ok := s.rawString()
	if !ok || !plain {
		return nil, false
	}
	if !s.lit(':') {
		return nil, false
	}
	return tok[1 : len(tok)-1], true
}

func (s *scanner) boolean() (bool, bool) {
	s.ws()
	switch {
	case s.null():
		return false, true
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, true
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, true
	}
	return false, false
}

// uint reads a plain unsigned integer (no sign, fraction or exponent) that
// fits in a uint64; anything else is left to the full decoder.
func (s *scanner) uint() (uint64, bool) {
	if s.null() {
		return 0, true
	}
	start := s.i
	var n uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
		s.i++
	}
	switch {
	case s.i == start:
		return 0, false
	case s.b[start] == '0' && s.i-start > 1:
		return 0, false // leading zero: invalid JSON
	case s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E'):
		return 0, false
	}
	return n, true
}

// strings reads an array of strings; [] gives an empty non-nil slice, as
// encoding/json does.
func strs[T ~string](s *scanner) ([]T, bool) {
	if s.null() {
		return nil, true
	}
	if !s.lit('[') {
		return nil, false
	}
	out := make([]T, 0, 4)
	if s.lit(']') {
		return out, true
	}
	for {
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		out = append(out, T(v))
		if s.lit(']') {
			return out, true
		}
		if !s.lit(',') {
			return nil, false
		}
	}
}

// object walks an object's members, calling field with each key; field
// reads the value and returns its bit (a distinct power of two, so duplicate
// keys are detected: encoding/json merges those, which is left to it), or 0
// for an unknown key.
func (s *scanner) object(field func(key []byte) (bit uint32, ok bool)) bool {
	if !s.lit('{') {
		return false
	}
	if s.lit('}') {
		return true
	}
	var seen uint32
	for {
		k, ok := s.key()
		if !ok {
			return false
		}
		bit, ok := field(k)
		if !ok || bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		if s.lit('}') {
			return true
		}
		if !s.lit(',') {
			return false
		}
	}
}

// strField is the common case: a string value stored at p.
func strField(s *scanner, p *string, bit uint32) (uint32, bool) {
	v, ok := s.str()
	*p = v
	return bit, ok
}

func top(b []byte, field func(s *scanner, key []byte) (uint32, bool)) bool {
	s := scanner{b: b}
	return s.object(func(k []byte) (uint32, bool) { return field(&s, k) }) && s.end()
}

func messagePosted(b []byte) (domain.Event, bool) {
	var e domain.MessagePosted
	ok := top(b, func(s *scanner, k []byte) (uint32, bool) {
		switch string(k) {
		case "messageId":
			return strField(s, &e.MessageID, 1)
		case "roomId":
			return strField(s, &e.RoomID, 2)
		case "senderId":
			return strField(s, &e.SenderID, 4)
		case "content":
			return strField(s, &e.Content, 8)
		case "seq":
			v, ok := s.uint()
			e.Seq = v
			return 16, ok
		case "clientMsgId":
			return strField(s, &e.ClientMsgID, 32)
		}
		return 0, false
	})
	return e, ok
}

func memberJoined(b []byte) (domain.Event, bool) {
	var e domain.MemberJoined
	ok := top(b, func(s *scanner, k []byte) (uint32, bool) {
		switch string(k) {
		case "roomId":
			return strField(s, &e.RoomID, 1)
		case "userId":
			return strField(s, &e.UserID, 2)
		case "addedBy":
			return strField(s, &e.AddedBy, 4)
		}
		return 0, false
	})
	return e, ok
}

func memberLeft(b []byte) (domain.Event, bool) {
	var e domain.MemberLeft
	ok := top(b, func(s *scanner, k []byte) (uint32, bool) {
		switch string(k) {
		case "roomId":
			return strField(s, &e.RoomID, 1)
		case "userId":
			return strField(s, &e.UserID, 2)
		case "removedBy":
			return strField(s, &e.RemovedBy, 4)
		}
		return 0, false
	})
	return e, ok
}

func roomCreated(b []byte) (domain.Event, bool) {
	var e domain.RoomCreated
	ok := top(b, func(s *scanner, k []byte) (uint32, bool) {
		switch string(k) {
		case "roomId":
			return strField(s, &e.RoomID, 1)
		case "name":
			return strField(s, &e.Name, 2)
		case "private":
			v, ok := s.boolean()
			e.Private = v
			return 4, ok
		case "phi":
			v, ok := s.boolean()
			e.PHI = v
			return 8, ok
		case "createdBy":
			return strField(s, &e.CreatedBy, 16)
		case "members":
			v, ok := strs[string](s)
			e.Members = v
			return 32, ok
		}
		return 0, false
	})
	return e, ok
}

func sessionStarted(b []byte) (domain.Event, bool) {
	var e domain.SessionStarted
	ok := top(b, func(s *scanner, k []byte) (uint32, bool) {
		switch string(k) {
		case "sessionId":
			return strField(s, &e.SessionID, 1)
		case "userId":
			return strField(s, &e.UserID, 2)
		case "namespace":
			return strField(s, &e.Namespace, 4)
		case "transport":
			return strField(s, &e.Transport, 8)
		case "nodeId":
			return strField(s, &e.NodeID, 16)
		case "clientAddr":
			return strField(s, &e.ClientAddr, 32)
		}
		return 0, false
	})
	return e, ok
}

func sessionEnded(b []byte) (domain.Event, bool) {
	var e domain.SessionEnded
	ok := top(b, func(s *scanner, k []byte) (uint32, bool) {
		switch string(k) {
		case "sessionId":
			return strField(s, &e.SessionID, 1)
		case "userId":
			return strField(s, &e.UserID, 2)
		case "reason":
			return strField(s, &e.Reason, 4)
		}
		return 0, false
	})
	return e, ok
}

func sessionRevoked(b []byte) (domain.Event, bool) {
	var e domain.SessionRevoked
	ok := top(b, func(s *scanner, k []byte) (uint32, bool) {
		switch string(k) {
		case "sessionId":
			return strField(s, &e.SessionID, 1)
		case "userId":
			return strField(s, &e.UserID, 2)
		case "by":
			return strField(s, &e.By, 4)
		case "reason":
			return strField(s, &e.Reason, 8)
		}
		return 0, false
	})
	return e, ok
}

func userOnly(b []byte, user *string) bool {
	return top(b, func(s *scanner, k []byte) (uint32, bool) {
		if string(k) == "userId" {
			return strField(s, user, 1)
		}
		return 0, false
	})
}

func roomUser(b []byte, room, user *string) bool {
	return top(b, func(s *scanner, k []byte) (uint32, bool) {
		switch string(k) {
		case "roomId":
			return strField(s, room, 1)
		case "userId":
			return strField(s, user, 2)
		}
		return 0, false
	})
}

func metadata(b []byte, m *domain.Metadata) bool {
	return top(b, func(s *scanner, k []byte) (uint32, bool) {
		switch string(k) {
		case "time":
			if s.null() {
				return 1, true
			}
			tok, _, ok := s.rawString()
			if !ok {
				return 0, false
			}
			// The same method encoding/json calls, on the same bytes.
			var t time.Time
			if err := t.UnmarshalJSON(tok); err != nil {
				return 0, false
			}
			m.Time = t
			return 1, true
		case "actor":
			return 2, actor(s, &m.Actor)
		case "correlationId":
			return strField(s, &m.CorrelationID, 4)
		case "causationId":
			return strField(s, &m.CausationID, 8)
		case "nodeId":
			return strField(s, &m.NodeID, 16)
		}
		return 0, false
	})
}

func actor(s *scanner, a *domain.Actor) bool {
	if s.null() {
		return true
	}
	return s.object(func(k []byte) (uint32, bool) {
		switch string(k) {
		case "userId":
			return strField(s, &a.UserID, 1)
		case "roles":
			v, ok := strs[domain.Role](s)
			a.Roles = v
			return 2, ok
		case "sessionId":
			return strField(s, &a.SessionID, 4)
		case "clientAddr":
			return strField(s, &a.ClientAddr, 8)
		}
		return 0, false
	})
}
