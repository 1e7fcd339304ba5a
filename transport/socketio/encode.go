package socketio

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/wardline/wardline/transport/engineio"
)

// Binary is an argument sent as a binary attachment (a JavaScript
// ArrayBuffer/Buffer on the client) instead of JSON. It is recognised as a
// top-level argument and inside []any and map[string]any values; elsewhere
// (struct fields) it is JSON, like []byte: a base64 string.
type Binary []byte

// Frame is an event encoded once, ready to be sent to many connections of
// one namespace with Conn.SendEncoded: its bytes are shared, not copied.
// The zero Frame is not valid.
type Frame struct {
	namespace string
	packet    []byte   // the Engine.IO message packet: "4" + Socket.IO packet
	binary    [][]byte // attachments, sent as binary messages after packet
}

// Namespace is the namespace the frame was encoded for.
func (f Frame) Namespace() string { return f.namespace }

// Bytes is the encoded Engine.IO packet ("42..."), without attachments. It
// must not be modified.
func (f Frame) Bytes() []byte { return f.packet }

// EncodeEvent encodes event with args for namespace, once, for sending to
// many connections with Conn.SendEncoded. Arguments are JSON (encoding/json,
// without HTML escaping); json.RawMessage is used as is after validation;
// Binary values become attachments. For connection state recovery, pass the
// event's offset as the last argument, a string (see the package doc).
func EncodeEvent(namespace, event string, args ...any) (Frame, error) {
	if namespace == "" {
		namespace = "/"
	}
	b := getBuffer()
	defer putBuffer(b)
	var bins [][]byte
	buf := append(b.buf[:0], '4')
	p := Packet{Type: PacketEvent, Namespace: namespace}
	if hasBinary(args) {
		p.Type = PacketBinaryEvent
		p.Attachments = countBinary(args)
		bins = make([][]byte, 0, p.Attachments)
	}
	buf = p.AppendEncode(buf)
	buf = append(buf, '[')
	buf = appendString(buf, event)
	var err error
	for _, a := range args {
		buf = append(buf, ',')
		if buf, err = appendValue(buf, a, &bins, b); err != nil {
			b.buf = buf
			return Frame{}, fmt.Errorf("socketio: encoding %q: %w", event, err)
		}
	}
	buf = append(buf, ']')
	b.buf = buf
	return Frame{namespace: namespace, packet: bytes.Clone(buf), binary: bins}, nil
}

// encodeAck encodes the ACK (or BINARY_ACK) for id with args.
func encodeAck(namespace string, id uint64, args []any) (Frame, error) {
	b := getBuffer()
	defer putBuffer(b)
	var bins [][]byte
	p := Packet{Type: PacketAck, Namespace: namespace, HasID: true, ID: id}
	if hasBinary(args) {
		p.Type = PacketBinaryAck
		p.Attachments = countBinary(args)
		bins = make([][]byte, 0, p.Attachments)
	}
	buf := p.AppendEncode(append(b.buf[:0], '4'))
	buf = append(buf, '[')
	var err error
	for i, a := range args {
		if i > 0 {
			buf = append(buf, ',')
		}
		if buf, err = appendValue(buf, a, &bins, b); err != nil {
			b.buf = buf
			return Frame{}, fmt.Errorf("socketio: encoding ack: %w", err)
		}
	}
	buf = append(buf, ']')
	b.buf = buf
	return Frame{namespace: namespace, packet: bytes.Clone(buf), binary: bins}, nil
}

// encodePacket encodes a control packet (CONNECT, CONNECT_ERROR,
// DISCONNECT) or a raw packet whose Data is already final.
func encodePacket(p Packet, binary [][]byte) Frame {
	buf := p.AppendEncode(make([]byte, 0, 16+len(p.Namespace)+len(p.Data)))
	pkt := engineio.AppendMessage(make([]byte, 0, len(buf)+1), buf)
	return Frame{namespace: p.Namespace, packet: pkt, binary: binary}
}

// encodeRawEvent encodes an event from arguments that are already JSON,
// keeping their placeholders; binary are their attachments.
func encodeRawEvent(namespace, event string, args []json.RawMessage, binary [][]byte) Frame {
	data := append(make([]byte, 0, 64), '[')
	data = appendString(data, event)
	for _, a := range args {
		data = append(data, ',')
		data = append(data, a...)
	}
	data = append(data, ']')
	p := Packet{Type: PacketEvent, Namespace: namespace, Data: data}
	if len(binary) > 0 {
		p.Type, p.Attachments = PacketBinaryEvent, len(binary)
	}
	return encodePacket(p, binary)
}

// encodeRawAck is encodeRawEvent for an acknowledgement.
func encodeRawAck(namespace string, id uint64, args []json.RawMessage, binary [][]byte) Frame {
	data := append(make([]byte, 0, 64), '[')
	for i, a := range args {
		if i > 0 {
			data = append(data, ',')
		}
		data = append(data, a...)
	}
	data = append(data, ']')
	p := Packet{Type: PacketAck, Namespace: namespace, HasID: true, ID: id, Data: data}
	if len(binary) > 0 {
		p.Type, p.Attachments = PacketBinaryAck, len(binary)
	}
	return encodePacket(p, binary)
}

// encodeBuffer is a pooled scratch buffer with a JSON encoder writing to it.
type encodeBuffer struct {
	buf []byte
	out bytes.Buffer
	enc *json.Encoder
}

var bufferPool = sync.Pool{New: func() any {
	b := &encodeBuffer{buf: make([]byte, 0, 512)}
	b.enc = json.NewEncoder(&b.out)
	b.enc.SetEscapeHTML(false) // as JSON.stringify: <, > and & stay as they are
	return b
}}

func getBuffer() *encodeBuffer { return bufferPool.Get().(*encodeBuffer) }

func putBuffer(b *encodeBuffer) {
	if cap(b.buf) > 64<<10 || b.out.Cap() > 64<<10 {
		return // let a huge one go rather than pin it
	}
	b.out.Reset()
	bufferPool.Put(b)
}

func hasBinary(args []any) bool {
	for _, a := range args {
		if containsBinary(a) {
			return true
		}
	}
	return false
}

func containsBinary(v any) bool {
	switch v := v.(type) {
	case Binary:
		return true
	case []any:
		return slices.ContainsFunc(v, containsBinary)
	case map[string]any:
		for _, e := range v {
			if containsBinary(e) {
				return true
			}
		}
	}
	return false
}

func countBinary(args []any) int {
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case Binary:
			n++
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	for _, a := range args {
		walk(a)
	}
	return n
}

// appendValue appends v as JSON, turning Binary values into placeholders
// numbered in the order of bins.
func appendValue(dst []byte, v any, bins *[][]byte, b *encodeBuffer) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, v), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case uint64:
		return strconv.AppendUint(dst, v, 10), nil
	case json.RawMessage:
		if !json.Valid(v) {
			return dst, fmt.Errorf("json.RawMessage argument is not valid JSON")
		}
		return append(dst, v...), nil
	case Binary:
		dst = append(dst, `{"_placeholder":true,"num":`...)
		dst = strconv.AppendInt(dst, int64(len(*bins)), 10)
		*bins = append(*bins, v)
		return append(dst, '}'), nil
	case []any:
		if !containsBinary(v) {
			break
		}
		dst = append(dst, '[')
		var err error
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendValue(dst, e, bins, b); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		if !containsBinary(v) {
			break
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // as encoding/json orders map keys
		dst = append(dst, '{')
		var err error
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			if dst, err = appendValue(dst, v[k], bins, b); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}
	b.out.Reset()
	if err := b.enc.Encode(v); err != nil {
		return dst, err
	}
	return append(dst, bytes.TrimSuffix(b.out.Bytes(), []byte{'\n'})...), nil
}

// appendString appends s as a JSON string. Plain printable ASCII, the usual
// case for event names and ids, is copied; anything else goes through
// encoding/json for its escaping of control characters, invalid UTF-8 and
// U+2028/U+2029.
func appendString(dst []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(dst, q...)
}

// placeholderNum reports whether raw is a binary placeholder and its index.
func placeholderNum(raw []byte) (int, bool) {
	if jsonKind(raw) != '{' || !bytes.Contains(raw, []byte(`"_placeholder"`)) {
		return 0, false
	}
	var ph struct {
		Placeholder *bool    `json:"_placeholder"`
		Num         *float64 `json:"num"`
	}
	if json.Unmarshal(raw, &ph) != nil || ph.Placeholder == nil || !*ph.Placeholder || ph.Num == nil {
		return 0, false
	}
	n := *ph.Num
	if n < 0 || n != float64(int(n)) {
		return 0, false
	}
	return int(n), true
}

// reassemble replaces every placeholder in raw by the base64 JSON string of
// its attachment, so that it unmarshals into []byte fields. It fails when a
// placeholder points past the attachments, as socket.io-parser does.
func reassemble(raw json.RawMessage, binary [][]byte) (json.RawMessage, error) {
	if len(binary) == 0 || !bytes.Contains(raw, []byte(`"_placeholder"`)) {
		return raw, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPacket, err)
	}
	v, err := replacePlaceholders(v, binary)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("socketio: re-encoding attachments: %w", err)
	}
	return out, nil
}

func replacePlaceholders(v any, binary [][]byte) (any, error) {
	switch v := v.(type) {
	case []any:
		for i, e := range v {
			r, err := replacePlaceholders(e, binary)
			if err != nil {
				return nil, err
			}
			v[i] = r
		}
	case map[string]any:
		if ph, ok := v["_placeholder"].(bool); ok && ph {
			num, ok := v["num"].(json.Number)
			n, err := strconv.Atoi(string(num))
			if !ok || err != nil || n < 0 || n >= len(binary) {
				return nil, fmt.Errorf("%w: placeholder %v has no attachment", ErrInvalidPacket, v["num"])
			}
			return base64.StdEncoding.EncodeToString(binary[n]), nil
		}
		for k, e := range v {
			r, err := replacePlaceholders(e, binary)
			if err != nil {
				return nil, err
			}
			v[k] = r
		}
	}
	return v, nil
}

// checkPlaceholders fails when a placeholder of data points past the n
// attachments that arrived.
func checkPlaceholders(data json.RawMessage, n int) error {
	if !bytes.Contains(data, []byte(`"_placeholder"`)) {
		return nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPacket, err)
	}
	_, err := replacePlaceholders(v, make([][]byte, n))
	return err
}
