package engineio

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// packetType is the first character of an Engine.IO text packet.
type packetType byte

const (
	packetOpen    packetType = '0'
	packetClose   packetType = '1'
	packetPing    packetType = '2'
	packetPong    packetType = '3'
	packetMessage packetType = '4'
	packetUpgrade packetType = '5'
	packetNoop    packetType = '6'
)

// recordSeparator joins packets in a long-polling payload.
const recordSeparator = '\x1e'

// packet is one decoded Engine.IO packet. data aliases the input.
type packet struct {
	typ    packetType
	data   []byte
	binary bool // a binary message (typ is packetMessage)
}

// parseTextPacket decodes one text packet: a type digit then its data.
func parseTextPacket(b []byte) (packet, error) {
	if len(b) == 0 {
		return packet{}, fmt.Errorf("%w: empty packet", ErrInvalidPacket)
	}
	t := packetType(b[0])
	if t < packetOpen || t > packetNoop {
		return packet{}, fmt.Errorf("%w: unknown packet type %q", ErrInvalidPacket, b[0])
	}
	return packet{typ: t, data: b[1:]}, nil
}

// parsePayloadSegment decodes one record of a long-polling payload, where a
// binary message is "b" followed by its base64 encoding.
func parsePayloadSegment(seg []byte) (packet, error) {
	if len(seg) > 0 && seg[0] == 'b' {
		raw := make([]byte, base64.StdEncoding.DecodedLen(len(seg)-1))
		n, err := base64.StdEncoding.Decode(raw, seg[1:])
		if err != nil {
			return packet{}, fmt.Errorf("%w: bad base64 binary packet: %v", ErrInvalidPacket, err)
		}
		return packet{typ: packetMessage, data: raw[:n], binary: true}, nil
	}
	return parseTextPacket(seg)
}

// decodePayload decodes a long-polling POST body into its packets. The
// whole body is validated first, so an invalid payload delivers nothing.
func decodePayload(body []byte) ([]packet, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrInvalidPacket)
	}
	packets := make([]packet, 0, 1+bytes.Count(body, []byte{recordSeparator}))
	for rest := body; ; {
		seg, tail, more := bytes.Cut(rest, []byte{recordSeparator})
		p, err := parsePayloadSegment(seg)
		if err != nil {
			return nil, err
		}
		packets = append(packets, p)
		if !more {
			return packets, nil
		}
		rest = tail
	}
}

// appendPolling appends one queued item in long-polling encoding.
func appendPolling(dst []byte, it item) []byte {
	switch it.kind {
	case kindBinary:
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, it.data)
	case kindMessage:
		dst = append(dst, byte(packetMessage))
	}
	return append(dst, it.data...)
}

// pollingLen is the encoded size of appendPolling's output.
func pollingLen(it item) int {
	switch it.kind {
	case kindBinary:
		return 1 + base64.StdEncoding.EncodedLen(len(it.data))
	case kindMessage:
		return 1 + len(it.data)
	}
	return len(it.data)
}

// AppendMessage appends the Engine.IO text packet that carries msg ("4" then
// msg) to dst. Encode a message once with it and hand the result to
// Socket.SendPacket of many sockets to share one allocation.
func AppendMessage(dst, msg []byte) []byte {
	dst = append(dst, byte(packetMessage))
	return append(dst, msg...)
}
