package main

import (
	"fmt"
	"math"
	"strconv"
)

// The Socket.IO transport: Socket.IO v5 packets over Engine.IO v4, WebSocket
// only (no polling, no upgrade), on the /chat namespace. Like decode.go it
// reads the framing with a scanner and hands the JSON payloads, unparsed, to
// the same decoders the native path uses (parseAck, parseDelivery): the
// Socket.IO envelope is only a prefix and an array around them.
//
// One WebSocket text message is one Engine.IO packet: a type digit and its
// data. Message packets ('4') carry one Socket.IO packet: a type digit, the
// namespace ("/chat,"), an optional ack id, and a JSON value.
//
//	server: 0{"sid":...,"pingInterval":25000,...}   Engine.IO open
//	client: 40/chat,{"token":"..."}                 CONNECT with auth
//	server: 40/chat,{"sid":"...","pid":"..."}       CONNECT reply (44 = CONNECT_ERROR)
//	client: 42/chat,7["message:send",{...}]         EVENT asking for ack 7
//	server: 43/chat,7[{"success":true,...}]         ACK 7
//	server: 42/chat,["message:new",{...},"offset"]  EVENT pushed
//	server: 2 / client: 3                           ping / pong

// sioNamespace is the only namespace the tool joins.
const sioNamespace = "/chat"

// Engine.IO v4 packet types (the first byte of a WebSocket text message).
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
	eioNoop    = '6'
)

// Socket.IO v5 packet types (the first byte after eioMessage).
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
	sioBinaryEvent  = '5'
	sioBinaryAck    = '6'
)

// sioPacket is a Socket.IO packet on /chat. Data aliases the read buffer.
type sioPacket struct {
	Type  byte // sioConnect … sioAck, sioConnectError
	ID    int64
	HasID bool
	Data  []byte // the raw JSON after the id; empty when the packet has none
}

// maxAckID keeps a parsed id within int64 (the tool's ids are small).
const maxAckID = (math.MaxInt64 - 9) / 10

// parseSIOPacket reads the Socket.IO packet in b, the text of an Engine.IO
// message packet after its '4'. It checks the framing only: the type, the
// /chat namespace, the id; Data is whatever follows (its JSON is read by
// sioArgs and the payload decoders). Binary packets are refused: the tool
// sends none, so the server sends none back.
func parseSIOPacket(b []byte) (sioPacket, error) {
	var p sioPacket
	if len(b) == 0 {
		return p, fmt.Errorf("%w: empty socket.io packet", errDecode)
	}
	p.Type = b[0]
	switch p.Type {
	case sioConnect, sioDisconnect, sioEvent, sioAck, sioConnectError:
	case sioBinaryEvent, sioBinaryAck:
		return p, fmt.Errorf("%w: binary socket.io packet", errDecode)
	default:
		return p, fmt.Errorf("%w: socket.io packet type %q", errDecode, p.Type)
	}
	// The namespace: "/chat" then ',' (or the end, for a packet with no
	// data). A packet without one is for "/", which the tool never joins.
	rest := b[1:]
	if len(rest) < len(sioNamespace) || string(rest[:len(sioNamespace)]) != sioNamespace {
		return p, fmt.Errorf("%w: socket.io packet not for %s", errDecode, sioNamespace)
	}
	rest = rest[len(sioNamespace):]
	if len(rest) > 0 {
		if rest[0] != ',' {
			return p, fmt.Errorf("%w: socket.io packet not for %s", errDecode, sioNamespace)
		}
		rest = rest[1:]
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		if p.ID > maxAckID {
			return p, fmt.Errorf("%w: socket.io ack id too long", errDecode)
		}
		p.ID = p.ID*10 + int64(rest[i]-'0')
		i++
	}
	p.HasID = i > 0
	p.Data = rest[i:]
	return p, nil
}

// sioArgs reads the first two elements of the JSON array b: an event's name
// (quotes stripped, escapes left as they are: the server writes plain ASCII
// names) and its first argument, or an ack's first argument (as first). It
// checks the array's structure up to the end of the second element, not the
// JSON inside the elements, like parseFrame. A missing element is nil.
func sioArgs(b []byte) (first, second []byte, err error) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, nil, fmt.Errorf("%w: socket.io data is not an array", errDecode)
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil, nil, nil
	}
	for n := 0; n < 2; n++ {
		end := skipValue(b, i)
		if end < 0 {
			return nil, nil, fmt.Errorf("%w: bad socket.io argument %d", errDecode, n)
		}
		if n == 0 {
			first = b[i:end]
		} else {
			second = b[i:end]
		}
		i = skipWS(b, end)
		if i >= len(b) {
			return nil, nil, fmt.Errorf("%w: unterminated socket.io array", errDecode)
		}
		switch b[i] {
		case ']':
			return first, second, nil
		case ',':
			i = skipWS(b, i+1)
		default:
			return nil, nil, fmt.Errorf("%w: expected ',' or ']' at %d", errDecode, i)
		}
	}
	return first, second, nil
}

// sioFrame turns an EVENT or ACK packet into the frame the scenarios read:
// an event's name and first argument (a push's offset, its last argument, is
// not read), or an ack's id and first argument (the ack envelope).
func sioFrame(p sioPacket) (frame, error) {
	first, second, err := sioArgs(p.Data)
	if err != nil {
		return frame{}, err
	}
	switch p.Type {
	case sioEvent:
		if len(first) < 2 || first[0] != '"' {
			return frame{}, fmt.Errorf("%w: socket.io event name is not a string", errDecode)
		}
		return frame{ID: p.ID, HasID: p.HasID, Event: first[1 : len(first)-1], Data: second}, nil
	case sioAck:
		if !p.HasID {
			return frame{}, fmt.Errorf("%w: socket.io ack without an id", errDecode)
		}
		return frame{ID: p.ID, HasID: true, Data: first}, nil
	}
	return frame{}, fmt.Errorf("%w: socket.io packet type %q where an event or ack was due", errDecode, p.Type)
}

// parseSIOOpen checks an Engine.IO open packet's data (after the '0'): an
// object with a string sid.
func parseSIOOpen(b []byte) error {
	var sid bool
	err := eachField(b, func(k, v []byte) bool {
		if string(k) == "sid" {
			sid = len(v) >= 2 && v[0] == '"'
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	if !sid {
		return fmt.Errorf("%w: engine.io open packet without a sid", errDecode)
	}
	return nil
}

// appendSIOEvent writes the Engine.IO message carrying the /chat EVENT
// [event, data] with ack id; data must be a JSON value.
func appendSIOEvent(b []byte, id int64, event string, data []byte) []byte {
	b = append(b, eioMessage, sioEvent)
	b = append(b, sioNamespace...)
	b = append(b, ',')
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `["`...)
	b = append(b, event...)
	b = append(b, `",`...)
	b = append(b, data...)
	return append(b, ']')
}

// appendSIOConnect writes the Engine.IO message carrying the /chat CONNECT
// with the auth object auth (JSON).
func appendSIOConnect(b []byte, auth []byte) []byte {
	b = append(b, eioMessage, sioConnect)
	b = append(b, sioNamespace...)
	b = append(b, ',')
	return append(b, auth...)
}
