package socketio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// PacketType is the Socket.IO v5 packet type.
type PacketType uint8

// Packet types, numbered as on the wire.
const (
	PacketConnect      PacketType = 0
	PacketDisconnect   PacketType = 1
	PacketEvent        PacketType = 2
	PacketAck          PacketType = 3
	PacketConnectError PacketType = 4
	PacketBinaryEvent  PacketType = 5
	PacketBinaryAck    PacketType = 6
)

func (t PacketType) String() string {
	switch t {
	case PacketConnect:
		return "CONNECT"
	case PacketDisconnect:
		return "DISCONNECT"
	case PacketEvent:
		return "EVENT"
	case PacketAck:
		return "ACK"
	case PacketConnectError:
		return "CONNECT_ERROR"
	case PacketBinaryEvent:
		return "BINARY_EVENT"
	case PacketBinaryAck:
		return "BINARY_ACK"
	}
	return "PacketType(" + strconv.Itoa(int(t)) + ")"
}

func (t PacketType) binary() bool { return t == PacketBinaryEvent || t == PacketBinaryAck }

// maxAckID is the largest id a JavaScript peer can represent exactly.
const maxAckID = 1<<53 - 1

// maxAnnouncedAttachments bounds the attachment count the decoder accepts;
// the server applies its own, smaller Config.MaxAttachments.
const maxAnnouncedAttachments = 1 << 16

// reservedEvents may not be sent as events: socket.io-parser refuses them.
var reservedEvents = [...]string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}

// Packet is one Socket.IO packet as it travels in an Engine.IO message
// (without the Engine.IO "4" prefix). Binary attachments travel as the
// Engine.IO binary messages that follow; Data holds their placeholders
// {"_placeholder":true,"num":N}.
type Packet struct {
	Type        PacketType
	Namespace   string // "/" is the main namespace; "" encodes as "/"
	HasID       bool   // an acknowledgement id is present
	ID          uint64
	Attachments int             // binary attachments announced (BINARY_* only)
	Data        json.RawMessage // the JSON payload; nil when absent
}

// AppendEncode appends the packet's text encoding to dst:
// <type>[<attachments>-][<namespace>,][<id>][<data>].
func (p *Packet) AppendEncode(dst []byte) []byte {
	dst = append(dst, '0'+byte(p.Type))
	if p.Type.binary() {
		dst = strconv.AppendInt(dst, int64(p.Attachments), 10)
		dst = append(dst, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		dst = append(dst, p.Namespace...)
		dst = append(dst, ',')
	}
	if p.HasID {
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}

// DecodePacket parses the text part of a packet and checks its payload the
// way socket.io-parser does: CONNECT carries an object or nothing,
// DISCONNECT nothing, CONNECT_ERROR an object or a string, EVENT a non-empty
// array whose first element is a string event name (not a reserved one) or
// a number, ACK an array. Data aliases text. Errors wrap ErrInvalidPacket.
func DecodePacket(text []byte) (Packet, error) {
	var p Packet
	if len(text) == 0 {
		return p, fmt.Errorf("%w: empty", ErrInvalidPacket)
	}
	if text[0] < '0' || text[0] > '6' {
		return p, fmt.Errorf("%w: unknown type %q", ErrInvalidPacket, text[0])
	}
	p.Type = PacketType(text[0] - '0')
	i := 1
	if p.Type.binary() {
		j := i
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		if j == i || j >= len(text) || text[j] != '-' || j-i > 6 {
			return p, fmt.Errorf("%w: bad attachment count", ErrInvalidPacket)
		}
		n, _ := strconv.Atoi(string(text[i:j]))
		if n > maxAnnouncedAttachments {
			return p, fmt.Errorf("%w: %d attachments", ErrInvalidPacket, n)
		}
		p.Attachments = n
		i = j + 1
	}
	p.Namespace = "/"
	if i < len(text) && text[i] == '/' {
		j := bytes.IndexByte(text[i:], ',')
		if j < 0 {
			p.Namespace = string(text[i:])
			i = len(text)
		} else {
			p.Namespace = string(text[i : i+j])
			i += j + 1
		}
	}
	if i < len(text) && text[i] >= '0' && text[i] <= '9' {
		j := i
		var id uint64
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			id = id*10 + uint64(text[j]-'0')
			if id > maxAckID {
				return p, fmt.Errorf("%w: ack id out of range", ErrInvalidPacket)
			}
			j++
		}
		p.HasID, p.ID = true, id
		i = j
	}
	if i < len(text) {
		p.Data = text[i:]
		if !json.Valid(p.Data) {
			return p, fmt.Errorf("%w: payload is not JSON", ErrInvalidPacket)
		}
	}
	if err := checkPayload(&p); err != nil {
		return p, err
	}
	return p, nil
}

func checkPayload(p *Packet) error {
	kind := jsonKind(p.Data)
	switch p.Type {
	case PacketConnect:
		if p.Data == nil || kind == '{' {
			return nil
		}
	case PacketDisconnect:
		if p.Data == nil {
			return nil
		}
	case PacketConnectError:
		if kind == '{' || kind == '"' {
			return nil
		}
	case PacketEvent, PacketBinaryEvent:
		if kind != '[' {
			break
		}
		first, ok := firstElement(p.Data)
		if !ok {
			break
		}
		switch jsonKind(first) {
		case '"':
			name, err := unquote(first)
			if err != nil {
				return err
			}
			for _, r := range reservedEvents {
				if name == r {
					return fmt.Errorf("%w: reserved event name %q", ErrInvalidPacket, name)
				}
			}
			return nil
		case '0':
			return nil
		}
	case PacketAck, PacketBinaryAck:
		if kind == '[' {
			return nil
		}
	}
	return fmt.Errorf("%w: bad payload for %v", ErrInvalidPacket, p.Type)
}

// jsonKind classifies valid JSON by its first significant byte: '{', '[',
// '"', '0' (a number), 't'/'f'/'n' (literals), or 0 for nil.
func jsonKind(b []byte) byte {
	b = trimSpace(b)
	if len(b) == 0 {
		return 0
	}
	switch c := b[0]; {
	case c == '-' || (c >= '0' && c <= '9'):
		return '0'
	default:
		return c
	}
}

func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// firstElement returns the first element of a valid JSON array.
func firstElement(arr []byte) ([]byte, bool) {
	arr = trimSpace(arr)
	i := skipSpace(arr, 1)
	if i >= len(arr) || arr[i] == ']' {
		return nil, false
	}
	return arr[i:valueEnd(arr, i)], true
}

// splitArray returns the elements of a valid JSON array, aliasing arr.
func splitArray(arr []byte) []json.RawMessage {
	arr = trimSpace(arr)
	out := make([]json.RawMessage, 0, 4)
	i := skipSpace(arr, 1)
	for i < len(arr) && arr[i] != ']' {
		end := valueEnd(arr, i)
		out = append(out, json.RawMessage(arr[i:end]))
		i = skipSpace(arr, end)
		if i < len(arr) && arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
	}
	return out
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value that starts at i.
// b must be valid JSON: brackets inside strings are skipped, so counting
// depth is enough.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != ']' && b[j] != '}' {
		j++
	}
	return j
}

// stringEnd returns the index just past the JSON string that starts at i.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// unquote decodes a JSON string, without allocating when it has no escapes.
func unquote(b []byte) (string, error) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b[1:len(b)-1], '\\') < 0 {
		return string(b[1 : len(b)-1]), nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", fmt.Errorf("%w: bad string: %v", ErrInvalidPacket, err)
	}
	return s, nil
}
