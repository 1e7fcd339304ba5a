package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// The tool decodes only what it measures, with a scanner instead of
// encoding/json: at 100k+ deliveries/s on the two cores the server also
// uses, reflection and allocation per message would make the load
// generator, not the server, the bottleneck.

// errDecode is returned for any frame payload the tool cannot read.
var errDecode = errors.New("decode")

// eachField calls fn with every top-level key and raw value of the JSON
// object b (strings keep their quotes). fn returns false to stop early. Keys
// are compared raw: the server writes plain ASCII keys.
func eachField(b []byte, fn func(key, val []byte) bool) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return fmt.Errorf("%w: not an object", errDecode)
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return fmt.Errorf("%w: expected a key at %d", errDecode, i)
		}
		end := skipString(b, i)
		if end < 0 {
			return fmt.Errorf("%w: unterminated key", errDecode)
		}
		key := b[i+1 : end-1]
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("%w: expected ':' at %d", errDecode, i)
		}
		i = skipWS(b, i+1)
		vend := skipValue(b, i)
		if vend < 0 {
			return fmt.Errorf("%w: bad value for %q", errDecode, key)
		}
		if !fn(key, b[i:vend]) {
			return nil
		}
		i = skipWS(b, vend)
		if i >= len(b) {
			return fmt.Errorf("%w: unterminated object", errDecode)
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return nil
		default:
			return fmt.Errorf("%w: expected ',' or '}' at %d", errDecode, i)
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"', or -1.
func skipString(b []byte, i int) int {
	// The closing quote is the first one after an even run of backslashes.
	// IndexByte rather than a byte loop: the loop was 12% of the tool's CPU
	// at 100k deliveries/s, CPU the server under test then lacked.
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index just past the value starting at b[i], or -1.
// Nesting is tracked only by depth: the tool never reads inside it.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := skipString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

// delivery is what the tool reads from a message:new payload.
type delivery struct {
	MessageID []byte // aliases the frame buffer
	Seq       uint64
	PubSeq    uint64 // the publisher's own per-room counter, from the content
	SentNanos int64  // send time in nanoseconds since the run's base time
}

// parseDelivery reads a message:new payload
// {messageId, roomId, senderId, content, seq, ...} whose content the tool wrote.
func parseDelivery(data []byte) (delivery, error) {
	var d delivery
	var seen, bad int
	var content []byte
	err := eachField(data, func(k, v []byte) bool {
		switch string(k) {
		case "messageId":
			if len(v) < 2 || v[0] != '"' {
				bad++
				return false
			}
			d.MessageID = v[1 : len(v)-1]
			seen |= 1
		case "seq":
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				bad++
				return false
			}
			d.Seq = n
			seen |= 2
		case "content":
			if len(v) < 2 || v[0] != '"' {
				bad++
				return false
			}
			content = v[1 : len(v)-1]
			seen |= 4
		}
		return true
	})
	switch {
	case err != nil:
		return d, err
	case bad > 0:
		return d, fmt.Errorf("%w: message:new field of the wrong type", errDecode)
	case seen != 7:
		return d, fmt.Errorf("%w: message:new lacks messageId, seq or content", errDecode)
	}
	d.PubSeq, d.SentNanos, err = parseContent(content)
	return d, err
}

// contentPrefix marks the tool's messages, so a message another client
// posts to a bench room is told apart instead of skewing the latencies.
const contentPrefix = "wlb "

// appendContent writes the content of publisher message pubSeq sent at
// sentNanos, padded with 'x' to at least size bytes.
func appendContent(b []byte, pubSeq uint64, sentNanos int64, size int) []byte {
	start := len(b)
	b = append(b, contentPrefix...)
	b = strconv.AppendUint(b, pubSeq, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sentNanos, 10)
	if pad := size - (len(b) - start); pad > 0 {
		b = append(b, ' ')
		for range pad - 1 {
			b = append(b, 'x')
		}
	}
	return b
}

// parseContent reads what appendContent wrote.
func parseContent(c []byte) (pubSeq uint64, sentNanos int64, err error) {
	rest, ok := bytes.CutPrefix(c, []byte(contentPrefix))
	if !ok {
		return 0, 0, fmt.Errorf("%w: content not written by the bench tool", errDecode)
	}
	seqB, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return 0, 0, fmt.Errorf("%w: content lacks a send time", errDecode)
	}
	tsB, _, _ := bytes.Cut(rest, []byte{' '})
	if pubSeq, err = strconv.ParseUint(string(seqB), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%w: content sequence: %v", errDecode, err)
	}
	if sentNanos, err = strconv.ParseInt(string(tsB), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%w: content send time: %v", errDecode, err)
	}
	return pubSeq, sentNanos, nil
}

// ackResult is what the tool reads from a reply's data (the ack envelope).
type ackResult struct {
	Success bool
	Seq     uint64
	Code    string // error.code when Success is false
}

// parseAck reads an ack envelope {"success": bool, "seq"?: n, "error"?: {"code"}}.
func parseAck(data []byte) (ackResult, error) {
	var a ackResult
	var sawSuccess bool
	var inner error
	err := eachField(data, func(k, v []byte) bool {
		switch string(k) {
		case "success":
			switch string(v) {
			case "true":
				a.Success, sawSuccess = true, true
			case "false":
				sawSuccess = true
			default:
				inner = fmt.Errorf("%w: success is %s", errDecode, v)
				return false
			}
		case "seq":
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				inner = fmt.Errorf("%w: seq: %v", errDecode, err)
				return false
			}
			a.Seq = n
		case "error":
			inner = eachField(v, func(k, v []byte) bool {
				if string(k) == "code" && len(v) >= 2 && v[0] == '"' {
					a.Code = string(v[1 : len(v)-1])
					return false
				}
				return true
			})
			if inner != nil {
				return false
			}
		}
		return true
	})
	switch {
	case err != nil:
		return a, err
	case inner != nil:
		return a, inner
	case !sawSuccess:
		return a, fmt.Errorf("%w: ack without success", errDecode)
	}
	return a, nil
}

// isDecode reports whether err is a frame the tool could not read (the
// connection itself is fine).
func isDecode(err error) bool { return errors.Is(err, errDecode) }

// frame is a protocol frame's envelope. The slices alias the read buffer.
type frame struct {
	ID    int64
	HasID bool // false when "id" is absent or null
	Event []byte
	Data  []byte // raw JSON value
}

// parseFrame reads {"id"?, "event"?, "data"?, "offset"?}. It checks only
// the envelope's structure, not the JSON inside data: the tool's own
// decoders read what they need from data and refuse what they cannot.
// (transport/native.DecodeFrame validates the whole frame; profiling showed
// that validation as a fifth of the tool's CPU at 50k deliveries/s.)
func parseFrame(b []byte) (frame, error) {
	var f frame
	var inner error
	err := eachField(b, func(k, v []byte) bool {
		switch string(k) {
		case "id":
			if string(v) == "null" {
				f.ID, f.HasID = 0, false // a later key wins, as in encoding/json
				return true
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				inner = fmt.Errorf("%w: id %s", errDecode, v)
				return false
			}
			f.ID, f.HasID = n, true
		case "event":
			if len(v) < 2 || v[0] != '"' {
				inner = fmt.Errorf("%w: event is not a string", errDecode)
				return false
			}
			f.Event = v[1 : len(v)-1]
		case "data":
			f.Data = v
		}
		return true
	})
	if err != nil {
		return f, err
	}
	return f, inner
}
