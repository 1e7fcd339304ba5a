package native

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// maxID is the largest request id accepted: 2^53-1, the largest integer a
// JavaScript client can hold exactly, so an id always round-trips.
const maxID = 1<<53 - 1

// NoID, given to EncodeRequest, sends a request that wants no ack.
const NoID int64 = -1

// Frame is one decoded protocol frame. Data and the strings are the only
// parts decoded: Data stays raw JSON for the gateway to decode into its own
// types, so a frame costs one validation pass and no reflection.
type Frame struct {
	ID     int64  // the request or reply id; meaningful only when HasID
	HasID  bool   // false when "id" is absent or null: no ack wanted
	Event  string // empty in replies
	Offset string // pushes from the log only
	// Data is the raw "data" value, nil when absent. It aliases the decoded
	// buffer: copy it to keep it beyond the buffer's life.
	Data json.RawMessage
}

// DecodeFrame decodes any frame of the protocol, in either direction. Keys
// are matched exactly (case-sensitive, unlike encoding/json); a repeated
// id, event, data or offset key is refused, so two parsers can never read
// one frame differently; unknown keys are ignored for forward compatibility.
// On error, the returned Frame holds what was read (Event, for the
// exception's "event" field) and the error matches ErrInvalidFrame.
func DecodeFrame(b []byte) (Frame, error) {
	f, _, err := decode(b)
	return f, err
}

// DecodeRequest decodes a client→server frame: DecodeFrame plus the rule
// that a request names its event with a non-empty string.
func DecodeRequest(b []byte) (Frame, error) {
	f, seen, err := decode(b)
	switch {
	case err != nil:
		return f, err
	case seen&bitEvent == 0:
		return f, invalidFrame(`missing "event"`)
	case f.Event == "":
		return f, invalidFrame("event must not be empty")
	}
	return f, nil
}

// decode is DecodeFrame reporting which known keys were present.
func decode(b []byte) (f Frame, seen uint8, err error) {
	if !utf8.Valid(b) {
		return f, 0, invalidFrame("not valid UTF-8")
	}
	if !json.Valid(b) {
		return f, 0, invalidFrame("not valid JSON")
	}
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return f, 0, invalidFrame("not a JSON object")
	}
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return f, 0, nil
	}
	var idErr error
	for {
		// json.Valid has vouched for the syntax, so the scan below only
		// needs to find boundaries, not to check them.
		kStart := i
		kEnd := skipString(b, i)
		key := b[kStart+1 : kEnd-1]
		i = skipSpace(b, kEnd)
		i = skipSpace(b, i+1) // ':'
		vEnd := skipValue(b, i)
		val := b[i:vEnd]
		var bit uint8
		if bytes.IndexByte(key, '\\') >= 0 {
			// An escaped key ("\u0065vent") is legal JSON; decode it
			// rather than let it slip past the duplicate check.
			var k string
			_ = json.Unmarshal(b[kStart:kEnd], &k)
			bit = keyBit(k)
			key = []byte(k)
		} else {
			bit = keyBit(string(key))
		}
		if bit != 0 {
			if seen&bit != 0 {
				return f, seen, invalidFrame(fmt.Sprintf("duplicate key %q", key))
			}
			seen |= bit
			switch bit {
			case bitID:
				if err := f.setID(val); err != nil && idErr == nil {
					idErr = err
				}
			case bitEvent:
				if val[0] != '"' {
					return f, seen, invalidFrame("event must be a string")
				}
				f.Event = unquote(val)
			case bitData:
				f.Data = json.RawMessage(val)
			case bitOffset:
				if val[0] != '"' {
					return f, seen, invalidFrame("offset must be a string")
				}
				f.Offset = unquote(val)
			}
		}
		i = skipSpace(b, vEnd)
		if b[i] == '}' {
			break
		}
		i = skipSpace(b, i+1) // ','
	}
	// The id error is reported after the whole object is read, so the
	// exception can still name the event.
	return f, seen, idErr
}

const (
	bitID uint8 = 1 << iota
	bitEvent
	bitData
	bitOffset
)

func keyBit(k string) uint8 {
	switch k {
	case "id":
		return bitID
	case "event":
		return bitEvent
	case "data":
		return bitData
	case "offset":
		return bitOffset
	}
	return 0
}

// setID accepts a non-negative integer literal up to maxID, or null (no id).
// String ids are refused: one id type keeps replies unambiguous and matches
// what the Socket.IO side uses.
func (f *Frame) setID(v []byte) error {
	switch v[0] {
	case 'n':
		return nil
	case '"':
		return invalidFrame("id must be an integer, not a string")
	case '-':
		return invalidFrame("id must not be negative")
	}
	if v[0] < '0' || v[0] > '9' {
		return invalidFrame("id must be an integer")
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return invalidFrame("id must be an integer")
		}
		if n > (maxID-int64(c-'0'))/10 {
			return invalidFrame("id is larger than 2^53-1")
		}
		n = n*10 + int64(c-'0')
	}
	f.ID, f.HasID = n, true
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the (valid) JSON value at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// unquote decodes a valid JSON string literal; the common case without
// escapes is a plain copy.
func unquote(v []byte) string {
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1])
	}
	var s string
	_ = json.Unmarshal(v, &s)
	return s
}

// EncodePush encodes a server→client push. It is meant to be called once per
// broadcast and the result handed to every Conn.Send, which never modifies
// it. An empty offset is left out (pushes that are not from the log).
func EncodePush(event string, data any, offset string) ([]byte, error) {
	raw, err := marshalData(data)
	if err != nil {
		return nil, fmt.Errorf("native: encode push %q: %w", event, err)
	}
	b := make([]byte, 0, len(`{"event":,"data":,"offset":}`)+len(event)+len(raw)+len(offset)+8)
	b = append(b, `{"event":`...)
	b = appendString(b, event)
	b = append(b, `,"data":`...)
	b = append(b, raw...)
	if offset != "" {
		b = append(b, `,"offset":`...)
		b = appendString(b, offset)
	}
	return append(b, '}'), nil
}

// EncodeRequest encodes a client→server frame; id NoID (or any negative id)
// leaves "id" out, asking for no ack.
func EncodeRequest(id int64, event string, data any) ([]byte, error) {
	raw, err := marshalData(data)
	if err != nil {
		return nil, fmt.Errorf("native: encode request %q: %w", event, err)
	}
	b := make([]byte, 0, len(`{"id":,"event":,"data":}`)+20+len(event)+len(raw))
	b = append(b, '{')
	if id >= 0 {
		b = append(b, `"id":`...)
		b = appendInt(b, id)
		b = append(b, ',')
	}
	b = append(b, `"event":`...)
	b = appendString(b, event)
	b = append(b, `,"data":`...)
	b = append(b, raw...)
	return append(b, '}'), nil
}

// EncodeAck encodes the reply to request id. With fail == nil the envelope is
// {"success":true} merged with result, which must encode as a JSON object
// (or be nil); result must not have its own "success" field. With fail != nil
// the envelope is {"success":false,"error":{code,message}} as mapped by ErrorOf.
func EncodeAck(id int64, result any, fail error) ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, `{"id":`...)
	b = appendInt(b, id)
	b = append(b, `,"data":`...)
	if fail != nil {
		b = appendFailure(b, ErrorOf(fail))
		return append(b, '}'), nil
	}
	raw, err := marshalData(result)
	if err != nil {
		return nil, fmt.Errorf("native: encode ack %d: %w", id, err)
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case string(raw) == "null" || isEmptyObject(raw):
		b = append(b, `{"success":true}`...)
	case len(raw) > 0 && raw[0] == '{':
		b = append(b, `{"success":true,`...)
		b = append(b, raw[1:]...)
	default:
		return nil, fmt.Errorf("native: encode ack %d: result must encode as a JSON object, got %.20q", id, raw)
	}
	return append(b, '}'), nil
}

// EncodeException encodes the exception frame that answers a failed request
// sent without an id, or a frame that could not be read; event is the event
// that failed ("" when unknown).
func EncodeException(e *Error, event string) []byte {
	b := make([]byte, 0, 64+len(e.Message)+len(event))
	b = append(b, `{"event":"exception","data":{"code":`...)
	b = appendString(b, string(e.Code))
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	b = append(b, `,"event":`...)
	b = appendString(b, event)
	return append(b, `}}`...)
}

// encodeConnected encodes the push that confirms authentication; its
// socketId is the session id (DESIGN "Sessions and tokens").
func encodeConnected(sessionID, userID string, now time.Time) []byte {
	b := make([]byte, 0, 96+len(sessionID)+len(userID))
	b = append(b, `{"event":"connected","data":{"socketId":`...)
	b = appendString(b, sessionID)
	b = append(b, `,"userId":`...)
	b = appendString(b, userID)
	b = append(b, `,"timestamp":"`...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	return append(b, `"}}`...)
}

// encodeAuthAck encodes the success reply to an auth frame.
func encodeAuthAck(id int64, userID, sessionID string) []byte {
	b := make([]byte, 0, 80+len(sessionID)+len(userID))
	b = append(b, `{"id":`...)
	b = appendInt(b, id)
	b = append(b, `,"data":{"success":true,"userId":`...)
	b = appendString(b, userID)
	b = append(b, `,"sessionId":`...)
	b = appendString(b, sessionID)
	return append(b, `}}`...)
}

func appendFailure(b []byte, e *Error) []byte {
	b = append(b, `{"success":false,"error":{"code":`...)
	b = appendString(b, string(e.Code))
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	return append(b, `}}`...)
}

var errInvalidRaw = errors.New("json.RawMessage is not valid UTF-8 JSON")

// marshalData encodes a data value; json.RawMessage is trusted after a
// validity check, so pre-encoded payloads are not re-marshalled.
func marshalData(v any) ([]byte, error) {
	switch d := v.(type) {
	case nil:
		return []byte("null"), nil
	case json.RawMessage:
		if len(d) == 0 {
			return []byte("null"), nil
		}
		// Invalid UTF-8 passes json.Valid but would make a text frame
		// the client must refuse.
		if !json.Valid(d) || !utf8.Valid(d) {
			return nil, errInvalidRaw
		}
		return d, nil
	}
	return json.Marshal(v)
}

func isEmptyObject(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return false
	}
	return len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0
}

func appendInt(b []byte, n int64) []byte {
	if n == 0 {
		return append(b, '0')
	}
	var tmp [20]byte
	i := len(tmp)
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n)
	}
	for u > 0 {
		i--
		tmp[i] = byte('0' + u%10)
		u /= 10
	}
	if neg {
		i--
		tmp[i] = '-'
	}
	return append(b, tmp[i:]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD and
// U+2028/U+2029 are escaped, as encoding/json does, so the output is valid
// JSON and safe to embed in JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
