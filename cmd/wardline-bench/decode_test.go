package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseDelivery(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    delivery
		wantErr bool
	}{
		{
			name: "a message:new payload yields id, seq and the content's send time",
			data: `{"messageId":"m-1","roomId":"r","senderId":"u","content":"wlb 7 123456789","seq":42,"clientMsgId":"r-7","createdAt":"2026-01-01T00:00:00.000Z"}`,
			want: delivery{MessageID: []byte("m-1"), Seq: 42, PubSeq: 7, SentNanos: 123456789},
		},
		{
			name: "padding after the send time is ignored",
			data: `{"seq":1,"content":"wlb 1 99 xxxxxxxx","messageId":"a"}`,
			want: delivery{MessageID: []byte("a"), Seq: 1, PubSeq: 1, SentNanos: 99},
		},
		{
			name: "whitespace and nested values are skipped",
			data: ` { "extra" : {"a":[1,"}",{"b":null}]}, "messageId" : "x\"y" , "seq" : 3 , "content" : "wlb 2 5" } `,
			want: delivery{MessageID: []byte(`x\"y`), Seq: 3, PubSeq: 2, SentNanos: 5},
		},
		{name: "content another client wrote is refused", data: `{"messageId":"m","seq":1,"content":"hello"}`, wantErr: true},
		{name: "a payload without seq is refused", data: `{"messageId":"m","content":"wlb 1 2"}`, wantErr: true},
		{name: "a string seq is refused", data: `{"messageId":"m","seq":"1","content":"wlb 1 2"}`, wantErr: true},
		{name: "a numeric messageId is refused", data: `{"messageId":5,"seq":1,"content":"wlb 1 2"}`, wantErr: true},
		{name: "content without a send time is refused", data: `{"messageId":"m","seq":1,"content":"wlb 1"}`, wantErr: true},
		{name: "a truncated object is refused", data: `{"messageId":"m","seq":1`, wantErr: true},
		{name: "an array is refused", data: `[1,2]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDelivery([]byte(tt.data))
			if tt.wantErr {
				if !errors.Is(err, errDecode) {
					t.Fatalf("err = %v, want errDecode", err)
				}
				return
			}
			if err != nil || string(got.MessageID) != string(tt.want.MessageID) || got.Seq != tt.want.Seq || got.PubSeq != tt.want.PubSeq || got.SentNanos != tt.want.SentNanos {
				t.Fatalf("parseDelivery = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseAck(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    ackResult
		wantErr bool
	}{
		{"a successful send ack carries its seq", `{"success":true,"messageId":"m","seq":9,"offset":"e.1"}`, ackResult{Success: true, Seq: 9}, false},
		{"a failure carries the error code", `{"success":false,"error":{"message":"slow down","code":"rate_limited"}}`, ackResult{Code: "rate_limited"}, false},
		{"an auth ack without seq is a success", `{"success":true,"userId":"u","sessionId":"s"}`, ackResult{Success: true}, false},
		{"an ack without success is refused", `{"seq":1}`, ackResult{}, true},
		{"a non-boolean success is refused", `{"success":"yes"}`, ackResult{}, true},
		{"a malformed error object is refused", `{"success":false,"error":{"code"}}`, ackResult{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAck([]byte(tt.data))
			if tt.wantErr != (err != nil) || (!tt.wantErr && got != tt.want) {
				t.Fatalf("parseAck = %+v, %v; want %+v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestContentRoundTrips(t *testing.T) {
	for _, size := range []int{0, 10, 64, 1000} {
		c := appendContent(nil, 123, 456789, size)
		if len(c) < size {
			t.Fatalf("content %q shorter than %d", c, size)
		}
		seq, ts, err := parseContent(c)
		if err != nil || seq != 123 || ts != 456789 {
			t.Fatalf("size %d: parseContent(%q) = %d, %d, %v", size, c, seq, ts, err)
		}
	}
}

func TestRequestFrameIsValidJSON(t *testing.T) {
	b := appendRequest(nil, 105, "message:send", []byte(`{"roomId":"r","content":"wlb 5 1"}`))
	var f struct {
		ID    int64           `json:"id"`
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.ID != 105 || f.Event != "message:send" || !strings.Contains(string(f.Data), `"roomId":"r"`) {
		t.Fatalf("frame %s decoded as %+v, %v", b, f, err)
	}
}

// The scanner must never panic or loop on any input, and must read every
// object encoding/json considers valid.
func FuzzEachField(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":"b\"c","d":[1,{"e":2}],"f":null}`, `{"a":`, `{"a":"\`, `[`, ``, `{"a":1,}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := eachField(b, func(k, v []byte) bool {
			n++
			if len(v) == 0 {
				t.Fatalf("empty value for key %q", k)
			}
			return true
		})
		if err == nil && n > len(b) {
			t.Fatalf("%d fields from %d bytes", n, len(b))
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) == nil && obj != nil && err != nil {
			t.Fatalf("valid object %q refused: %v", b, err)
		}
	})
}

func FuzzParseDelivery(f *testing.F) {
	f.Add([]byte(`{"messageId":"m-1","roomId":"r","senderId":"u","content":"wlb 7 123456789","seq":42}`))
	f.Add([]byte(`{"messageId":"m","seq":1,"content":"wlb 1 2 xxx"}`))
	f.Add([]byte(`{"messageId":"m","seq":-1,"content":"wlb -1 2"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDelivery(b)
		if err == nil && d.MessageID == nil {
			t.Fatalf("accepted %q without a messageId", b)
		}
	})
}

func FuzzParseAck(f *testing.F) {
	f.Add([]byte(`{"success":true,"seq":9}`))
	f.Add([]byte(`{"success":false,"error":{"code":"invalid","message":"x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAck(b)
		// Where encoding/json reads an unambiguous envelope (no escapes
		// that could spell a key differently, no seq or error to
		// disagree on), both must agree on success.
		var m map[string]json.RawMessage
		if strings.ContainsRune(string(b), '\\') || json.Unmarshal(b, &m) != nil || m == nil {
			return
		}
		s, ok := m["success"]
		_, hasSeq := m["seq"]
		_, hasErr := m["error"]
		if !ok || hasSeq || hasErr || (string(s) != "true" && string(s) != "false") {
			return
		}
		if err != nil || a.Success != (string(s) == "true") {
			t.Fatalf("%q: parseAck = %+v, %v; encoding/json says success %s", b, a, err, s)
		}
	})
}

func BenchmarkParseDelivery(b *testing.B) {
	data := []byte(`{"messageId":"01JD5Z8Q9V7W3X2Y1Z0A9B8C7D","roomId":"bench-abc-r3","senderId":"bench-abc-r3-pub","content":"wlb 1234 987654321012","seq":1234,"clientMsgId":"bench-abc-r3-1234","createdAt":"2026-11-26T21:00:00.000Z"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseDelivery(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

func TestParseFrame(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantID    int64
		wantHasID bool
		wantEvent string
		wantData  string
		wantErr   bool
	}{
		{"a reply carries its id and data", `{"id":7,"data":{"success":true}}`, 7, true, "", `{"success":true}`, false},
		{"a push carries its event, data and offset", `{"event":"message:new","data":{"seq":1},"offset":"e.5"}`, 0, false, "message:new", `{"seq":1}`, false},
		{"a null id means no id", `{"id":null,"event":"x"}`, 0, false, "x", "", false},
		{"a fractional id is refused", `{"id":1.5}`, 0, false, "", "", true},
		{"a non-string event is refused", `{"event":3}`, 0, false, "", "", true},
		{"a frame that is not an object is refused", `"hello"`, 0, false, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseFrame([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, errDecode) {
					t.Fatalf("err = %v, want errDecode", err)
				}
				return
			}
			if err != nil || f.ID != tt.wantID || f.HasID != tt.wantHasID || string(f.Event) != tt.wantEvent || string(f.Data) != tt.wantData {
				t.Fatalf("parseFrame = %+v (event %q data %s), %v", f, f.Event, f.Data, err)
			}
		})
	}
}

// Whatever frame the server sends, the envelope decoder must not panic,
// and it must agree with encoding/json on the id of a valid frame.
func FuzzParseFrame(f *testing.F) {
	f.Add([]byte(`{"id":7,"data":{"success":true,"seq":1}}`))
	f.Add([]byte(`{"event":"message:new","data":{"messageId":"m","seq":1,"content":"wlb 1 2"},"offset":"e.1"}`))
	f.Add([]byte(`{"id":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseFrame(b)
		var ref struct {
			ID *int64 `json:"id"`
		}
		if err != nil || strings.ContainsRune(string(b), '\\') || json.Unmarshal(b, &ref) != nil {
			return
		}
		var keys map[string]json.RawMessage
		if json.Unmarshal(b, &keys) != nil || keys["id"] == nil || len(keys) == 0 {
			return
		}
		if _, exact := keys["id"]; exact && (ref.ID == nil) == fr.HasID {
			t.Fatalf("%q: HasID %v, encoding/json id %v", b, fr.HasID, ref.ID)
		}
	})
}

func TestSkipStringEndsAtTheFirstUnescapedQuote(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`"abc",`, 5},
		{`"a\"b",`, 6},
		{`"a\\",`, 5},
		{`"a\\\"b"x`, 8},
		{`""`, 2},
		{`"\\\\"`, 6},
		{`"abc`, -1},
		{`"a\"`, -1},
	} {
		if got := skipString([]byte(tc.in), 0); got != tc.want {
			t.Errorf("skipString(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
