package socketio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wardline/wardline/transport/socketio"
)

func TestDecodePacketReadsEveryField(t *testing.T) {
	tests := []struct {
		name string
		text string
		want socketio.Packet
	}{
		{"a bare CONNECT is to the main namespace", "0", socketio.Packet{Type: socketio.PacketConnect, Namespace: "/"}},
		{"a CONNECT carries its auth object", `0/admin,{"token":"123"}`,
			socketio.Packet{Type: socketio.PacketConnect, Namespace: "/admin", Data: json.RawMessage(`{"token":"123"}`)}},
		{"a namespace without trailing comma ends the packet", "0/random",
			socketio.Packet{Type: socketio.PacketConnect, Namespace: "/random"}},
		{"a DISCONNECT of a custom namespace", "1/admin,", socketio.Packet{Type: socketio.PacketDisconnect, Namespace: "/admin"}},
		{"an EVENT with an ack id", `212["foo"]`,
			socketio.Packet{Type: socketio.PacketEvent, Namespace: "/", HasID: true, ID: 12, Data: json.RawMessage(`["foo"]`)}},
		{"an ACK in a namespace", `3/admin,13["bar"]`,
			socketio.Packet{Type: socketio.PacketAck, Namespace: "/admin", HasID: true, ID: 13, Data: json.RawMessage(`["bar"]`)}},
		{"a CONNECT_ERROR with a message", `4{"message":"Not authorized"}`,
			socketio.Packet{Type: socketio.PacketConnectError, Namespace: "/", Data: json.RawMessage(`{"message":"Not authorized"}`)}},
		{"a BINARY_EVENT announces its attachments", `52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			socketio.Packet{Type: socketio.PacketBinaryEvent, Namespace: "/admin", Attachments: 2,
				Data: json.RawMessage(`["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)}},
		{"a BINARY_ACK has attachments then an id", `61-789[{"_placeholder":true,"num":0}]`,
			socketio.Packet{Type: socketio.PacketBinaryAck, Namespace: "/", Attachments: 1, HasID: true, ID: 789,
				Data: json.RawMessage(`[{"_placeholder":true,"num":0}]`)}},
		{"an event name may be a number", `2[1,"x"]`, socketio.Packet{Type: socketio.PacketEvent, Namespace: "/", Data: json.RawMessage(`[1,"x"]`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := socketio.DecodePacket([]byte(tc.text))
			if err != nil {
				t.Fatalf("DecodePacket(%q): %v", tc.text, err)
			}
			if got.Type != tc.want.Type || got.Namespace != tc.want.Namespace || got.HasID != tc.want.HasID ||
				got.ID != tc.want.ID || got.Attachments != tc.want.Attachments || !bytes.Equal(got.Data, tc.want.Data) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if enc := got.AppendEncode(nil); string(enc) != strings.Replace(tc.text, "0/random", "0/random,", 1) {
				t.Errorf("re-encoded as %q", enc)
			}
		})
	}
}

func TestDecodePacketRefusesWhatTheReferenceParserRefuses(t *testing.T) {
	tests := []struct{ name, text string }{
		{"an empty packet", ""},
		{"an unknown packet type", "abc"},
		{"type 7", "7[]"},
		{"an event whose payload is an object", "2{}"},
		{"an event with a non-numeric ack id", `2abc["message-with-ack",1]`},
		{"an event with an empty array", "2[]"},
		{"an event whose name is an object", `2[{}]`},
		{"an event with a reserved name", `2["disconnect"]`},
		{"an event with a reserved name in escapes", `2["\u0063onnect"]`},
		{"an event without payload", "2"},
		{"a CONNECT with an array", "0[1]"},
		{"a DISCONNECT with a payload", `1{"a":1}`},
		{"a CONNECT_ERROR with a number", "41"},
		{"an ACK with an object", `31{}`},
		{"a payload that is not JSON", `2["a"`},
		{"a binary event without attachment count", `5["a"]`},
		{"a binary event with a bad count", `5x-["a"]`},
		{"an ack id beyond 2^53", `29007199254740992["a"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := socketio.DecodePacket([]byte(tc.text)); !errors.Is(err, socketio.ErrInvalidPacket) {
				t.Errorf("DecodePacket(%q) = %+v, %v; want ErrInvalidPacket", tc.text, p, err)
			}
		})
	}
}

func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{
		"0", `0{"token":"x"}`, "0/chat,", `2["a",1,{"b":[true]}]`, `2/chat,7["a"]`, `3/chat,7[]`,
		`451-["m",{"_placeholder":true,"num":0}]`, `61-9[{"_placeholder":true,"num":0}]`, `4{"message":"x"}`,
		"1/x,", `2[" \"]\\" , {"x":"]"}]`, "2abc", "5-", `2[1]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		p, err := socketio.DecodePacket(text)
		if err != nil {
			if !errors.Is(err, socketio.ErrInvalidPacket) {
				t.Fatalf("error %v does not wrap ErrInvalidPacket", err)
			}
			return
		}
		if p.Data != nil && !json.Valid(p.Data) {
			t.Fatalf("accepted invalid JSON %q", p.Data)
		}
		again, err := socketio.DecodePacket(p.AppendEncode(nil))
		if err != nil {
			t.Fatalf("re-encoding %+v of %q does not decode: %v", p, text, err)
		}
		if again.Type != p.Type || again.Namespace != p.Namespace || again.HasID != p.HasID || again.ID != p.ID ||
			again.Attachments != p.Attachments || !bytes.Equal(again.Data, p.Data) {
			t.Fatalf("round trip changed %+v into %+v", p, again)
		}
		if p.Type == socketio.PacketEvent || p.Type == socketio.PacketBinaryEvent {
			// The array splitting used for dispatch agrees with encoding/json.
			var elems []json.RawMessage
			if err := json.Unmarshal(p.Data, &elems); err != nil || len(elems) == 0 {
				t.Fatalf("accepted event data %q: %v", p.Data, err)
			}
		}
	})
}
