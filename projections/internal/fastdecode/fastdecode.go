// Package fastdecode decodes the hot event types of the log (the ones the
// rooms and presence projections fold, and typing) without reflection.
//
// A rebuild spends most of its time turning stored JSON into envelopes:
// profiling showed encoding/json's reflective Unmarshal at several
// microseconds per event (data and metadata), which alone capped a rebuild
// far below its target rate. This package parses the shape domain.Encode
// writes, in one pass, with one string allocation for each of Data and
// Metadata (plain strings are substrings of it). It gives up (ok == false) on
// anything else: unknown or differently-cased keys, duplicate keys, numbers
// that are not plain unsigned integers, times not in the canonical UTC form,
// malformed input. The caller then uses the full decoder, so whatever Decode
// accepts it decodes exactly as encoding/json would; the fuzz test checks
// that claim against domain.Decode.
package fastdecode

import (
	"time"
	"unicode"
	"unicode/utf16"
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
	s := newScanner(r.Data)
	switch r.Type {
	case "MessagePosted":
		ev, ok = messagePosted(&s)
	case "MemberJoined":
		ev, ok = memberJoined(&s)
	case "MemberLeft":
		ev, ok = memberLeft(&s)
	case "RoomCreated":
		ev, ok = roomCreated(&s)
	case "SessionStarted":
		ev, ok = sessionStarted(&s)
	case "SessionEnded":
		ev, ok = sessionEnded(&s)
	case "SessionRevoked":
		ev, ok = sessionRevoked(&s)
	case "UserOnline":
		var u string
		u, ok = userOnly(&s)
		ev = domain.UserOnline{UserID: u}
	case "UserOffline":
		var u string
		u, ok = userOnly(&s)
		ev = domain.UserOffline{UserID: u}
	case "TypingStarted":
		var room, user string
		room, user, ok = roomUser(&s)
		ev = domain.TypingStarted{RoomID: room, UserID: user}
	case "TypingStopped":
		var room, user string
		room, user, ok = roomUser(&s)
		ev = domain.TypingStopped{RoomID: room, UserID: user}
	default:
		return domain.Envelope{}, false
	}
	if !ok || !s.end() {
		return domain.Envelope{}, false
	}
	var m domain.Metadata
	if len(r.Metadata) > 0 {
		ms := newScanner(r.Metadata)
		if !metadata(&ms, &m) || !ms.end() {
			return domain.Envelope{}, false
		}
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
	s string // a copy of b, made at most once; plain strings are its substrings
	i int
}

func newScanner(b []byte) scanner { return scanner{b: b} }

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

func (s *scanner) word(w string) bool {
	s.ws()
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

// null consumes a null literal. encoding/json leaves a field untouched for
// null (a slice becomes nil); since every field here starts at its zero
// value and appears at most once, null decodes to the zero value.
func (s *scanner) null() bool { return s.word("null") }

// rawString consumes a string token and returns its contents (without
// quotes) and whether they are plain: no escapes and only ASCII, or
// non-ASCII that is valid UTF-8. It checks what encoding/json's scanner
// checks: no control characters and valid escapes.
func (s *scanner) rawString() (inner []byte, start int, plain, ok bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, 0, false, false
	}
	start = s.i + 1
	plain = true
	ascii := true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		if plainASCII[c] {
			continue
		}
		switch {
		case c == '"':
			s.i = j + 1
			inner = s.b[start:j]
			if plain && !ascii && !utf8.Valid(inner) {
				plain = false
			}
			return inner, start, plain, true
		case c == '\\':
			plain = false
			j++
			if j >= len(s.b) {
				return nil, 0, false, false
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return nil, 0, false, false
				}
				for _, h := range s.b[j+1 : j+5] {
					if !isHex(h) {
						return nil, 0, false, false
					}
				}
				j += 4
			default:
				return nil, 0, false, false
			}
		case c < 0x20:
			return nil, 0, false, false // invalid JSON: leave the error to the full decoder
		default: // c >= utf8.RuneSelf
			ascii = false
		}
	}
	return nil, 0, false, false
}

// plainASCII marks the bytes a string can hold with no further thought:
// printable ASCII other than the quote and the backslash. A table lookup
// keeps the scanning loop tight (it is the decoder's hottest loop).
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// str reads a JSON string the way encoding/json decodes it into a Go string.
func (s *scanner) str(dst *string) bool {
	if s.null() {
		return true
	}
	inner, start, plain, ok := s.rawString()
	if !ok {
		return false
	}
	if plain {
		if s.s == "" {
			s.s = string(s.b)
		}
		*dst = s.s[start : start+len(inner)]
		return true
	}
	out, ok := unquote(inner)
	*dst = string(out)
	return ok
}

// unquote decodes the contents of a valid JSON string exactly as
// encoding/json does (its unquoteBytes): escapes decoded, a lone or
// mismatched surrogate and each byte of invalid UTF-8 replaced by U+FFFD.
func unquote(s []byte) ([]byte, bool) {
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	for r := 0; r < len(s); {
		switch c := s[r]; {
		case c == '\\':
			r++
			if r >= len(s) {
				return nil, false
			}
			switch s[r] {
			case '"', '\\', '/':
				b = append(b, s[r])
				r++
			case 'b':
				b = append(b, '\b')
				r++
			case 'f':
				b = append(b, '\f')
				r++
			case 'n':
				b = append(b, '\n')
				r++
			case 'r':
				b = append(b, '\r')
				r++
			case 't':
				b = append(b, '\t')
				r++
			case 'u':
				rr := getu4(s[r-1:])
				if rr < 0 {
					return nil, false
				}
				r += 5
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
						r += 6
						b = utf8.AppendRune(b, dec)
						break
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
			default:
				return nil, false
			}
		case c == '"', c < ' ':
			return nil, false
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b = utf8.AppendRune(b, rr)
		}
	}
	return b, true
}

func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

func (s *scanner) boolean(dst *bool) bool {
	switch {
	case s.null():
		return true
	case s.word("true"):
		*dst = true
		return true
	case s.word("false"):
		*dst = false
		return true
	}
	return false
}

// uint reads a plain unsigned integer (no sign, fraction or exponent) that
// fits in a uint64; anything else is left to the full decoder.
func (s *scanner) uint(dst *uint64) bool {
	if s.null() {
		return true
	}
	start := s.i
	var n uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if n > (1<<64-1-d)/10 {
			return false
		}
		n = n*10 + d
		s.i++
	}
	switch {
	case s.i == start:
		return false
	case s.b[start] == '0' && s.i-start > 1:
		return false // leading zero: invalid JSON
	case s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E'):
		return false
	}
	*dst = n
	return true
}

// strs reads an array of strings; [] gives an empty non-nil slice and null
// a nil one, as encoding/json does.
func strs[T ~string](s *scanner, dst *[]T) bool {
	if s.null() {
		return true
	}
	if !s.lit('[') {
		return false
	}
	out := make([]T, 0, 2)
	if s.lit(']') {
		*dst = out
		return true
	}
	for {
		var v string
		if !s.str(&v) {
			return false
		}
		out = append(out, T(v))
		if s.lit(']') {
			*dst = out
			return true
		}
		if !s.lit(',') {
			return false
		}
	}
}

// object iterates an object's members: begin, then next until done.
type object struct {
	s     *scanner
	first bool
	seen  uint32
}

func (s *scanner) object() (object, bool) {
	if !s.lit('{') {
		return object{}, false
	}
	return object{s: s, first: true}, true
}

// next reads the next key and its colon. done is true at the closing brace.
// The caller reads the value and calls mark with the key's bit: a key seen
// twice is refused (encoding/json merges repeated objects; left to it).
func (o *object) next() (key []byte, done, ok bool) {
	if o.first {
		o.first = false
		if o.s.lit('}') {
			return nil, true, true
		}
	} else {
		if o.s.lit('}') {
			return nil, true, true
		}
		if !o.s.lit(',') {
			return nil, false, false
		}
	}
	k, _, plain, ok := o.s.rawString()
	if !ok || !plain || !o.s.lit(':') {
		return nil, false, false
	}
	return k, false, true
}

func (o *object) mark(bit uint32) bool {
	if o.seen&bit != 0 {
		return false
	}
	o.seen |= bit
	return true
}

func messagePosted(s *scanner) (domain.Event, bool) {
	var e domain.MessagePosted
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return e, kok
		}
		switch string(k) {
		case "messageId":
			ok = o.mark(1) && s.str(&e.MessageID)
		case "roomId":
			ok = o.mark(2) && s.str(&e.RoomID)
		case "senderId":
			ok = o.mark(4) && s.str(&e.SenderID)
		case "content":
			ok = o.mark(8) && s.str(&e.Content)
		case "seq":
			ok = o.mark(16) && s.uint(&e.Seq)
		case "clientMsgId":
			ok = o.mark(32) && s.str(&e.ClientMsgID)
		default:
			ok = false
		}
	}
	return e, false
}

func memberJoined(s *scanner) (domain.Event, bool) {
	var e domain.MemberJoined
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return e, kok
		}
		switch string(k) {
		case "roomId":
			ok = o.mark(1) && s.str(&e.RoomID)
		case "userId":
			ok = o.mark(2) && s.str(&e.UserID)
		case "addedBy":
			ok = o.mark(4) && s.str(&e.AddedBy)
		default:
			ok = false
		}
	}
	return e, false
}

func memberLeft(s *scanner) (domain.Event, bool) {
	var e domain.MemberLeft
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return e, kok
		}
		switch string(k) {
		case "roomId":
			ok = o.mark(1) && s.str(&e.RoomID)
		case "userId":
			ok = o.mark(2) && s.str(&e.UserID)
		case "removedBy":
			ok = o.mark(4) && s.str(&e.RemovedBy)
		default:
			ok = false
		}
	}
	return e, false
}

func roomCreated(s *scanner) (domain.Event, bool) {
	var e domain.RoomCreated
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return e, kok
		}
		switch string(k) {
		case "roomId":
			ok = o.mark(1) && s.str(&e.RoomID)
		case "name":
			ok = o.mark(2) && s.str(&e.Name)
		case "private":
			ok = o.mark(4) && s.boolean(&e.Private)
		case "phi":
			ok = o.mark(8) && s.boolean(&e.PHI)
		case "createdBy":
			ok = o.mark(16) && s.str(&e.CreatedBy)
		case "members":
			ok = o.mark(32) && strs(s, &e.Members)
		default:
			ok = false
		}
	}
	return e, false
}

func sessionStarted(s *scanner) (domain.Event, bool) {
	var e domain.SessionStarted
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return e, kok
		}
		switch string(k) {
		case "sessionId":
			ok = o.mark(1) && s.str(&e.SessionID)
		case "userId":
			ok = o.mark(2) && s.str(&e.UserID)
		case "namespace":
			ok = o.mark(4) && s.str(&e.Namespace)
		case "transport":
			ok = o.mark(8) && s.str(&e.Transport)
		case "nodeId":
			ok = o.mark(16) && s.str(&e.NodeID)
		case "clientAddr":
			ok = o.mark(32) && s.str(&e.ClientAddr)
		default:
			ok = false
		}
	}
	return e, false
}

func sessionEnded(s *scanner) (domain.Event, bool) {
	var e domain.SessionEnded
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return e, kok
		}
		switch string(k) {
		case "sessionId":
			ok = o.mark(1) && s.str(&e.SessionID)
		case "userId":
			ok = o.mark(2) && s.str(&e.UserID)
		case "reason":
			ok = o.mark(4) && s.str(&e.Reason)
		default:
			ok = false
		}
	}
	return e, false
}

func sessionRevoked(s *scanner) (domain.Event, bool) {
	var e domain.SessionRevoked
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return e, kok
		}
		switch string(k) {
		case "sessionId":
			ok = o.mark(1) && s.str(&e.SessionID)
		case "userId":
			ok = o.mark(2) && s.str(&e.UserID)
		case "by":
			ok = o.mark(4) && s.str(&e.By)
		case "reason":
			ok = o.mark(8) && s.str(&e.Reason)
		default:
			ok = false
		}
	}
	return e, false
}

func userOnly(s *scanner) (user string, _ bool) {
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return user, kok
		}
		ok = string(k) == "userId" && o.mark(1) && s.str(&user)
	}
	return "", false
}

func roomUser(s *scanner) (room, user string, _ bool) {
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return room, user, kok
		}
		switch string(k) {
		case "roomId":
			ok = o.mark(1) && s.str(&room)
		case "userId":
			ok = o.mark(2) && s.str(&user)
		default:
			ok = false
		}
	}
	return "", "", false
}

func metadata(s *scanner, m *domain.Metadata) bool {
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return kok
		}
		switch string(k) {
		case "time":
			ok = o.mark(1) && s.time(&m.Time)
		case "actor":
			ok = o.mark(2) && actor(s, &m.Actor)
		case "correlationId":
			ok = o.mark(4) && s.str(&m.CorrelationID)
		case "causationId":
			ok = o.mark(8) && s.str(&m.CausationID)
		case "nodeId":
			ok = o.mark(16) && s.str(&m.NodeID)
		default:
			ok = false
		}
	}
	return false
}

func actor(s *scanner, a *domain.Actor) bool {
	if s.null() {
		return true
	}
	o, ok := s.object()
	for ok {
		k, done, kok := o.next()
		if done || !kok {
			return kok
		}
		switch string(k) {
		case "userId":
			ok = o.mark(1) && s.str(&a.UserID)
		case "roles":
			ok = o.mark(2) && strs(s, &a.Roles)
		case "sessionId":
			ok = o.mark(4) && s.str(&a.SessionID)
		case "clientAddr":
			ok = o.mark(8) && s.str(&a.ClientAddr)
		default:
			ok = false
		}
	}
	return false
}

// time reads the canonical form time.Time marshals a UTC time to,
// "2006-01-02T15:04:05[.fraction]Z" with 1 to 9 fraction digits, giving the
// value time.Time.UnmarshalJSON would. Other forms (offsets, lower case,
// escapes, longer fractions) are refused and left to the full decoder.
func (s *scanner) time(dst *time.Time) bool {
	if s.null() {
		return true
	}
	b, _, plain, ok := s.rawString()
	if !ok || !plain || len(b) < len("2006-01-02T15:04:05Z") || b[len(b)-1] != 'Z' {
		return false
	}
	if b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 ||
		day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return false
	}
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' {
			return false
		}
		n, ok := digits(frac[1:])
		if !ok {
			return false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	*dst = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
