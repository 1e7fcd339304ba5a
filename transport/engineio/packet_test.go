package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestDecodePayloadSplitsRecordsAndDecodesBinary(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []packet
	}{
		{"one message is one packet", "4hello", []packet{{typ: packetMessage, data: []byte("hello")}}},
		{"records are split on the separator", "4a\x1e3\x1e4", []packet{
			{typ: packetMessage, data: []byte("a")}, {typ: packetPong, data: []byte{}}, {typ: packetMessage, data: []byte{}},
		}},
		{"a b record is base64 binary", "bAQIDBA==", []packet{{typ: packetMessage, data: []byte{1, 2, 3, 4}, binary: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodePayload([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d packets, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i].typ != tc.want[i].typ || got[i].binary != tc.want[i].binary || !bytes.Equal(got[i].data, tc.want[i].data) {
					t.Errorf("packet %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestDecodePayloadRefusesMalformedBodies(t *testing.T) {
	for _, body := range []string{"", "abc", "4ok\x1e", "4ok\x1e9", "b!!!", "bAQI"} {
		if _, err := decodePayload([]byte(body)); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("decodePayload(%q) = %v, want ErrInvalidPacket", body, err)
		}
	}
}

func TestPollingEncodingRoundTrips(t *testing.T) {
	items := []item{
		{data: []byte("2"), kind: kindPacket},
		{data: []byte("hello"), kind: kindMessage},
		{data: []byte{0, 255, 7}, kind: kindBinary},
	}
	var body []byte
	for i, it := range items {
		if i > 0 {
			body = append(body, recordSeparator)
		}
		n := len(body)
		body = appendPolling(body, it)
		if len(body)-n != pollingLen(it) {
			t.Errorf("pollingLen(%+v) = %d, encoded %d", it, pollingLen(it), len(body)-n)
		}
	}
	if string(body) != "2\x1e4hello\x1eb"+base64.StdEncoding.EncodeToString([]byte{0, 255, 7}) {
		t.Fatalf("encoded %q", body)
	}
	got, err := decodePayload(body)
	if err != nil || len(got) != 3 || !got[2].binary || !bytes.Equal(got[2].data, []byte{0, 255, 7}) {
		t.Errorf("decoded %+v, %v", got, err)
	}
}

func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"4hello", "4a\x1e4b", "bAQIDBA==", "1", "2probe", "abc", "4\x1e", "b", "6\x1ebAA=="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		packets, err := decodePayload(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("error %v does not wrap ErrInvalidPacket", err)
			}
			return
		}
		if want := bytes.Count(body, []byte{recordSeparator}) + 1; len(packets) != want {
			t.Fatalf("%d packets from %d records", len(packets), want)
		}
		// Re-encoding text packets gives back their records.
		var out []byte
		for i, p := range packets {
			if i > 0 {
				out = append(out, recordSeparator)
			}
			if p.binary {
				out = appendPolling(out, item{data: p.data, kind: kindBinary})
				continue
			}
			out = append(out, byte(p.typ))
			out = append(out, p.data...)
		}
		again, err := decodePayload(out)
		if err != nil || len(again) != len(packets) {
			t.Fatalf("re-encoded %q does not decode: %v", out, err)
		}
		for i := range again {
			if again[i].typ != packets[i].typ || !bytes.Equal(again[i].data, packets[i].data) {
				t.Fatalf("packet %d changed: %+v then %+v", i, packets[i], again[i])
			}
		}
	})
}

func FuzzParseTextPacket(f *testing.F) {
	for _, s := range []string{"0{}", "2probe", "3", "4héllo", "5", "6", "7", "", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseTextPacket(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("error %v does not wrap ErrInvalidPacket", err)
			}
			return
		}
		if p.typ < packetOpen || p.typ > packetNoop || byte(p.typ) != b[0] || !bytes.Equal(p.data, b[1:]) {
			t.Fatalf("parseTextPacket(%q) = %+v", b, p)
		}
	})
}
