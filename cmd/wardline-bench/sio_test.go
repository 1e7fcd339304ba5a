package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/wardline/wardline/transport/socketio"
)

func TestParseSIOPacket(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantType  byte
		wantID    int64
		wantHasID bool
		wantData  string
		wantErr   bool
	}{
		{"a CONNECT reply carries its object", `0/chat,{"sid":"s1","pid":"p"}`, sioConnect, 0, false, `{"sid":"s1","pid":"p"}`, false},
		{"a CONNECT_ERROR carries its message", `4/chat,{"message":"bad token","data":{"code":"unauthorized"}}`, sioConnectError, 0, false, `{"message":"bad token","data":{"code":"unauthorized"}}`, false},
		{"a pushed event has no id", `2/chat,["message:new",{"seq":1},"e.5"]`, sioEvent, 0, false, `["message:new",{"seq":1},"e.5"]`, false},
		{"an ack carries its id", `3/chat,107[{"success":true,"seq":7}]`, sioAck, 107, true, `[{"success":true,"seq":7}]`, false},
		{"an event asking for an ack carries its id", `2/chat,9["x",{}]`, sioEvent, 9, true, `["x",{}]`, false},
		{"a DISCONNECT may end with the namespace's comma", `1/chat,`, sioDisconnect, 0, false, ``, false},
		{"a DISCONNECT may end with the namespace", `1/chat`, sioDisconnect, 0, false, ``, false},
		{"a packet for the main namespace is refused", `2["message:new",{}]`, 0, 0, false, "", true},
		{"a packet for another namespace is refused", `2/admin,["x"]`, 0, 0, false, "", true},
		{"a namespace that only starts with /chat is refused", `2/chatty,["x"]`, 0, 0, false, "", true},
		{"a binary event is refused", `51-/chat,["x",{"_placeholder":true,"num":0}]`, 0, 0, false, "", true},
		{"an unknown type is refused", `9/chat,[]`, 0, 0, false, "", true},
		{"an ack id too long for int64 is refused", `3/chat,12345678901234567890[{}]`, 0, 0, false, "", true},
		{"an empty packet is refused", ``, 0, 0, false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseSIOPacket([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, errDecode) {
					t.Fatalf("err = %v, want errDecode", err)
				}
				return
			}
			if err != nil || p.Type != tt.wantType || p.ID != tt.wantID || p.HasID != tt.wantHasID || string(p.Data) != tt.wantData {
				t.Fatalf("parseSIOPacket = %+v (data %s), %v", p, p.Data, err)
			}
		})
	}
}

func TestSIOArgs(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		first, want string
		wantErr     bool
	}{
		{"an event yields its name and first argument", `["message:new",{"seq":1,"content":"a]b"},"e.1"]`, `"message:new"`, `{"seq":1,"content":"a]b"}`, false},
		{"an ack yields its envelope", `[{"success":true}]`, `{"success":true}`, ``, false},
		{"whitespace between elements is skipped", ` [ "x" , [1,2] , 3 ] `, `"x"`, `[1,2]`, false},
		{"numbers end at the comma", `[12,34]`, `12`, `34`, false},
		{"an empty array has no elements", `[]`, ``, ``, false},
		{"elements after the second are not read", `["x",1,{`, `"x"`, `1`, false},
		{"a non-array is refused", `{"a":1}`, ``, ``, true},
		{"a truncated array is refused", `["x"`, ``, ``, true},
		{"a missing comma is refused", `["x" 1]`, ``, ``, true},
		{"an unterminated string is refused", `["x]`, ``, ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, second, err := sioArgs([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, errDecode) {
					t.Fatalf("err = %v, want errDecode", err)
				}
				return
			}
			if err != nil || string(first) != tt.first || string(second) != tt.want {
				t.Fatalf("sioArgs = %s, %s, %v; want %s, %s", first, second, err, tt.first, tt.want)
			}
		})
	}
}

func TestSIOFrame(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantID    int64
		wantHasID bool
		wantEvent string
		wantData  string
		wantErr   bool
	}{
		{"a push becomes an event frame with its payload", `2/chat,["message:new",{"seq":3},"e.9"]`, 0, false, "message:new", `{"seq":3}`, false},
		{"an exception push becomes an event frame", `2/chat,["exception",{"code":"invalid"}]`, 0, false, "exception", `{"code":"invalid"}`, false},
		{"an ack becomes a reply frame with its envelope", `3/chat,102[{"success":true,"seq":2}]`, 102, true, "", `{"success":true,"seq":2}`, false},
		{"an event whose name is not a string is refused", `2/chat,[1,{}]`, 0, false, "", "", true},
		{"an ack without an id is refused", `3/chat,[{}]`, 0, false, "", "", true},
		{"a CONNECT is not a frame", `0/chat,{"sid":"x"}`, 0, false, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseSIOPacket([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			f, err := sioFrame(p)
			if tt.wantErr {
				if !errors.Is(err, errDecode) {
					t.Fatalf("err = %v, want errDecode", err)
				}
				return
			}
			if err != nil || f.ID != tt.wantID || f.HasID != tt.wantHasID || string(f.Event) != tt.wantEvent || string(f.Data) != tt.wantData {
				t.Fatalf("sioFrame = %+v (event %q data %s), %v", f, f.Event, f.Data, err)
			}
		})
	}
}

func TestParseSIOOpen(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}`, true},
		{`{"upgrades":[],"sid":"abc"}`, true},
		{`{"pingInterval":25000}`, false},
		{`{"sid":5}`, false},
		{`"abc"`, false},
	} {
		if err := parseSIOOpen([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("parseSIOOpen(%s) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}

func TestSIOEventTheServerCodecReads(t *testing.T) {
	b := appendSIOEvent(nil, 105, "message:send", []byte(`{"roomId":"r","content":"wlb 5 1"}`))
	if b[0] != eioMessage {
		t.Fatalf("%s is not an Engine.IO message", b)
	}
	p, err := socketio.DecodePacket(b[1:])
	if err != nil || p.Type != socketio.PacketEvent || p.Namespace != "/chat" || !p.HasID || p.ID != 105 {
		t.Fatalf("server decodes %s as %+v, %v", b, p, err)
	}
	var args []json.RawMessage
	if err := json.Unmarshal(p.Data, &args); err != nil || len(args) != 2 || string(args[0]) != `"message:send"` || string(args[1]) != `{"roomId":"r","content":"wlb 5 1"}` {
		t.Fatalf("event args %s: %v", p.Data, err)
	}
}

func TestSIOConnectTheServerCodecReads(t *testing.T) {
	b := appendSIOConnect(nil, []byte(`{"token":"a.b.c"}`))
	p, err := socketio.DecodePacket(b[1:])
	if b[0] != eioMessage || err != nil || p.Type != socketio.PacketConnect || p.Namespace != "/chat" || string(p.Data) != `{"token":"a.b.c"}` {
		t.Fatalf("server decodes %s as %+v, %v", b, p, err)
	}
}

func TestAPushTheServerEncodesIsReadAsADelivery(t *testing.T) {
	payload := json.RawMessage(`{"messageId":"m-1","roomId":"r","senderId":"u","content":"wlb 7 123456789","seq":42,"createdAt":"2026-01-01T00:00:00.000Z"}`)
	fr, err := socketio.EncodeEvent("/chat", "message:new", payload, "e.17")
	if err != nil {
		t.Fatal(err)
	}
	b := fr.Bytes()
	p, err := parseSIOPacket(b[1:])
	if b[0] != eioMessage || err != nil {
		t.Fatalf("parseSIOPacket(%s): %v", b, err)
	}
	f, err := sioFrame(p)
	if err != nil || string(f.Event) != "message:new" || f.HasID {
		t.Fatalf("sioFrame(%s) = %+v, %v", b, f, err)
	}
	d, err := parseDelivery(f.Data)
	if err != nil || d.Seq != 42 || d.PubSeq != 7 || d.SentNanos != 123456789 {
		t.Fatalf("parseDelivery(%s) = %+v, %v", f.Data, d, err)
	}
}

// The packet decoder must not panic on any input, and must agree with the
// server's own codec on every packet for /chat that codec accepts.
func FuzzParseSIOPacket(f *testing.F) {
	for _, s := range []string{`0/chat,{"sid":"s"}`, `2/chat,["message:new",{"seq":1},"e.1"]`, `3/chat,107[{"success":true}]`,
		`1/chat,`, `1/chat`, `4/chat,{"message":"x"}`, `2["x"]`, `51-/chat,["x"]`, `3/chat,99999999999999999999[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseSIOPacket(b)
		ref, rerr := socketio.DecodePacket(b)
		if rerr != nil || ref.Namespace != "/chat" || ref.Type == socketio.PacketBinaryEvent || ref.Type == socketio.PacketBinaryAck || ref.ID > maxAckID {
			return
		}
		if err != nil {
			t.Fatalf("%q: refused (%v), the server codec reads %+v", b, err, ref)
		}
		if p.Type-'0' != byte(ref.Type) || p.HasID != ref.HasID || uint64(p.ID) != ref.ID || !bytes.Equal(p.Data, ref.Data) {
			t.Fatalf("%q: parsed %+v (data %s), the server codec %+v (data %s)", b, p, p.Data, ref, ref.Data)
		}
	})
}

// The argument reader must not panic, and must agree with encoding/json on
// the first two elements of every valid array.
func FuzzSIOArgs(f *testing.F) {
	for _, s := range []string{`["message:new",{"seq":1},"e.1"]`, `[{"success":true}]`, `[]`, ` [ 1 , "a\"]" ] `, `["x"`, `[[[`, `["\\"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		first, second, err := sioArgs(b)
		var ref []json.RawMessage
		if json.Unmarshal(b, &ref) != nil || ref == nil {
			return
		}
		if err != nil {
			t.Fatalf("valid array %q refused: %v", b, err)
		}
		var want [2][]byte
		for i := 0; i < len(ref) && i < 2; i++ {
			want[i] = ref[i]
		}
		if !bytes.Equal(first, want[0]) || !bytes.Equal(second, want[1]) {
			t.Fatalf("%q: sioArgs = %s, %s; encoding/json %s, %s", b, first, second, want[0], want[1])
		}
	})
}

// Whatever follows an Engine.IO open packet's '0', the check must not panic,
// and it must accept every object encoding/json reads with a string sid.
func FuzzParseSIOOpen(f *testing.F) {
	f.Add([]byte(`{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}`))
	f.Add([]byte(`{"sid":1}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := parseSIOOpen(b)
		var ref struct {
			SID *string `json:"sid"`
		}
		var keys map[string]json.RawMessage
		if bytes.ContainsRune(b, '\\') || json.Unmarshal(b, &keys) != nil || keys == nil || json.Unmarshal(b, &ref) != nil {
			return
		}
		if _, exact := keys["sid"]; exact && ref.SID != nil && err != nil {
			t.Fatalf("%q: refused (%v), encoding/json reads sid %q", b, err, *ref.SID)
		}
	})
}

func BenchmarkReadSIODelivery(b *testing.B) {
	msg := []byte(`42/chat,["message:new",{"messageId":"01JD5Z8Q9V7W3X2Y1Z0A9B8C7D","roomId":"bench-abc-r3","senderId":"bench-abc-r3-pub","content":"wlb 1234 987654321012","seq":1234,"clientMsgId":"bench-abc-r3-1234","createdAt":"2026-11-26T21:00:00.000Z"},"k3j5.2x9"]`)
	b.ReportAllocs()
	for b.Loop() {
		p, err := parseSIOPacket(msg[1:])
		if err != nil {
			b.Fatal(err)
		}
		f, err := sioFrame(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parseDelivery(f.Data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkReadNativeDelivery is BenchmarkReadSIODelivery's native
// counterpart: the envelope and the payload of the same push.
func BenchmarkReadNativeDelivery(b *testing.B) {
	msg := []byte(`{"event":"message:new","data":{"messageId":"01JD5Z8Q9V7W3X2Y1Z0A9B8C7D","roomId":"bench-abc-r3","senderId":"bench-abc-r3-pub","content":"wlb 1234 987654321012","seq":1234,"clientMsgId":"bench-abc-r3-1234","createdAt":"2026-11-26T21:00:00.000Z"},"offset":"k3j5.2x9"}`)
	b.ReportAllocs()
	for b.Loop() {
		f, err := parseFrame(msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parseDelivery(f.Data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
