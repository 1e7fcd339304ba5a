package native_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wardline/wardline/transport/native"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    native.Frame
		wantErr string // substring of the error; "" for success
	}{
		{name: "a request with id, event and data decodes", in: `{"id": 7, "event": "message:send", "data": {"roomId":"r1"}}`,
			want: native.Frame{ID: 7, HasID: true, Event: "message:send", Data: json.RawMessage(`{"roomId":"r1"}`)}},
		{name: "a request without id wants no ack", in: `{"event":"typing:start","data":{}}`,
			want: native.Frame{Event: "typing:start", Data: json.RawMessage(`{}`)}},
		{name: "a null id is the same as no id", in: `{"id":null,"event":"e"}`, want: native.Frame{Event: "e"}},
		{name: "id zero is an id", in: `{"id":0,"event":"e"}`, want: native.Frame{ID: 0, HasID: true, Event: "e"}},
		{name: "the largest safe integer id is accepted", in: `{"id":9007199254740991,"event":"e"}`,
			want: native.Frame{ID: 9007199254740991, HasID: true, Event: "e"}},
		{name: "keys in any order and unknown keys are fine", in: ` {"x":[1,{"y":"}"}],"data":[1,2],"event":"e","id":3} `,
			want: native.Frame{ID: 3, HasID: true, Event: "e", Data: json.RawMessage(`[1,2]`)}},
		{name: "an escaped event name is decoded", in: `{"event":"a\"b\u00e9"}`, want: native.Frame{Event: "a\"bé"}},
		{name: "an escaped key is recognised", in: `{"\u0065vent":"e"}`, want: native.Frame{Event: "e"}},
		{name: "data null is kept as null", in: `{"event":"e","data":null}`, want: native.Frame{Event: "e", Data: json.RawMessage(`null`)}},

		{name: "text that is not JSON is refused", in: `hello`, wantErr: "not valid JSON"},
		{name: "truncated JSON is refused", in: `{"event":"e"`, wantErr: "not valid JSON"},
		{name: "an empty frame is refused", in: ``, wantErr: "not valid JSON"},
		{name: "invalid UTF-8 is refused", in: "{\"event\":\"\xff\"}", wantErr: "not valid UTF-8"},
		{name: "a JSON array is refused", in: `[1,2]`, wantErr: "not a JSON object"},
		{name: "a JSON string is refused", in: `"auth"`, wantErr: "not a JSON object"},
		{name: "an empty object has no event", in: `{}`, wantErr: `missing "event"`},
		{name: "a frame without event is refused", in: `{"id":1,"data":{}}`, wantErr: `missing "event"`},
		{name: "an event that is a number is refused", in: `{"event":5}`, wantErr: "event must be a string"},
		{name: "an event that is null is refused", in: `{"event":null}`, wantErr: "event must be a string"},
		{name: "an empty event is refused", in: `{"event":""}`, wantErr: "event must not be empty"},
		{name: "a string id is refused", in: `{"id":"7","event":"e"}`, wantErr: "id must be an integer, not a string"},
		{name: "a fractional id is refused", in: `{"id":7.5,"event":"e"}`, wantErr: "id must be an integer"},
		{name: "an exponent id is refused", in: `{"id":7e2,"event":"e"}`, wantErr: "id must be an integer"},
		{name: "a negative id is refused", in: `{"id":-1,"event":"e"}`, wantErr: "id must not be negative"},
		{name: "a boolean id is refused", in: `{"id":true,"event":"e"}`, wantErr: "id must be an integer"},
		{name: "an id beyond 2^53-1 is refused", in: `{"id":9007199254740992,"event":"e"}`, wantErr: "larger than 2^53-1"},
		{name: "a repeated event key is refused", in: `{"event":"a","event":"b"}`, wantErr: `duplicate key "event"`},
		{name: "a repeated key hidden by an escape is refused", in: `{"event":"a","\u0065vent":"b"}`, wantErr: `duplicate key "event"`},
		{name: "a repeated id key is refused", in: `{"id":1,"id":2,"event":"e"}`, wantErr: `duplicate key "id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := native.DecodeRequest([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if !errors.Is(err, native.ErrInvalidFrame) {
					t.Fatalf("err = %v does not match ErrInvalidFrame", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got.ID != tt.want.ID || got.HasID != tt.want.HasID || got.Event != tt.want.Event || !bytes.Equal(got.Data, tt.want.Data) {
				t.Fatalf("got %+v (data %s), want %+v (data %s)", got, got.Data, tt.want, tt.want.Data)
			}
		})
	}
}

func TestDecodeRequestKeepsTheEventOfAFrameWithABadID(t *testing.T) {
	f, err := native.DecodeRequest([]byte(`{"id":"x","event":"message:send"}`))
	if err == nil || f.Event != "message:send" {
		t.Fatalf("got %+v, %v; want the event name and an error", f, err)
	}
}

func TestDecodeFrameReadsServerFrames(t *testing.T) {
	f, err := native.DecodeFrame([]byte(`{"event":"message:new","data":{"seq":1},"offset":"e1.a"}`))
	if err != nil || f.Event != "message:new" || f.Offset != "e1.a" || string(f.Data) != `{"seq":1}` {
		t.Fatalf("push: got %+v, %v", f, err)
	}
	f, err = native.DecodeFrame([]byte(`{"id":7,"data":{"success":true}}`))
	if err != nil || !f.HasID || f.ID != 7 || f.Event != "" {
		t.Fatalf("reply: got %+v, %v", f, err)
	}
	if _, err := native.DecodeFrame([]byte(`{"event":"e","offset":1}`)); err == nil {
		t.Fatal("a numeric offset was accepted")
	}
}

func TestEncodePush(t *testing.T) {
	tests := []struct {
		name   string
		event  string
		data   any
		offset string
		want   string
	}{
		{"a push from the log carries its offset", "message:new", map[string]int{"seq": 1}, "e.1", `{"event":"message:new","data":{"seq":1},"offset":"e.1"}`},
		{"a push not from the log has no offset", "connected", json.RawMessage(`{"a":1}`), "", `{"event":"connected","data":{"a":1}}`},
		{"nil data is null", "ping", nil, "", `{"event":"ping","data":null}`},
		{"an event name is escaped", "a\"\n\u2028\x01", nil, "", `{"event":"a\"\n\u2028\u0001","data":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := native.EncodePush(tt.event, tt.data, tt.offset)
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	if _, err := native.EncodePush("e", json.RawMessage(`{`), ""); err == nil {
		t.Fatal("invalid raw data was encoded")
	}
}

func TestEncodeAck(t *testing.T) {
	tests := []struct {
		name   string
		result any
		fail   error
		want   string
	}{
		{"a nil result is plain success", nil, nil, `{"id":3,"data":{"success":true}}`},
		{"an empty object is plain success", struct{}{}, nil, `{"id":3,"data":{"success":true}}`},
		{"result fields are merged after success", struct {
			RoomID string `json:"roomId"`
		}{"r1"}, nil, `{"id":3,"data":{"success":true,"roomId":"r1"}}`},
		{"raw results are merged too", json.RawMessage(` {"a":1} `), nil, `{"id":3,"data":{"success":true,"a":1}}`},
		{"a coded error is the failure envelope", nil, native.Errorf(native.CodeNotFound, "room %s", "r1"),
			`{"id":3,"data":{"success":false,"error":{"code":"not_found","message":"room r1"}}}`},
		{"an uncoded error is internal without details", nil, errors.New("pq: connection refused"),
			`{"id":3,"data":{"success":false,"error":{"code":"internal","message":"internal error"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := native.EncodeAck(3, tt.result, tt.fail)
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	if _, err := native.EncodeAck(3, []int{1}, nil); err == nil {
		t.Fatal("a non-object result was encoded")
	}
}

func TestEncodeException(t *testing.T) {
	got := native.EncodeException(&native.Error{Code: native.CodeRateLimited, Message: "slow down"}, "message:send")
	want := `{"event":"exception","data":{"code":"rate_limited","message":"slow down","event":"message:send"}}`
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestEncodeRequestRoundTrips(t *testing.T) {
	b, err := native.EncodeRequest(42, "room:join", map[string]string{"roomId": "r"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := native.DecodeRequest(b)
	if err != nil || f.ID != 42 || !f.HasID || f.Event != "room:join" || string(f.Data) != `{"roomId":"r"}` {
		t.Fatalf("got %+v, %v", f, err)
	}
	b, _ = native.EncodeRequest(native.NoID, "typing:start", nil)
	if f, err := native.DecodeRequest(b); err != nil || f.HasID {
		t.Fatalf("a NoID request decoded as %+v, %v", f, err)
	}
}

func TestErrorOf(t *testing.T) {
	if e := native.ErrorOf(&native.Error{Code: "weird", Message: "m"}); e.Code != native.CodeInternal {
		t.Fatalf("an unknown code became %q", e.Code)
	}
	if e := native.ErrorOf(fmt.Errorf("append: %w", context.DeadlineExceeded)); e.Code != native.CodeUnavailable {
		t.Fatalf("a deadline became %q", e.Code)
	}
	wrapped := fmt.Errorf("room: %w", native.Errorf(native.CodeForbidden, "not a member"))
	if e := native.ErrorOf(wrapped); e.Code != native.CodeForbidden || e.Message != "not a member" {
		t.Fatalf("a wrapped coded error became %+v", e)
	}
}

// FuzzDecodeRequest checks that the decoder never panics, agrees with
// encoding/json on what is an object, and that what it accepts re-encodes to
// an equivalent request.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":7,"event":"message:send","data":{"roomId":"r","content":"hi"}}`,
		`{"event":"auth","data":{"token":"t","offset":"e.1"}}`,
		`{"id":"7","event":"e"}`, `{"id":7.0,"event":"e"}`, `{"event":"a","event":"b"}`,
		`{"\u0065vent":"x","data":[{"}":"{"}]}`, `[]`, `null`, `{`, "\xff", `{"event":"\ud800"}`,
		` { "id" : 1 , "event" : "e" , "data" : "s\"\\" } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := native.DecodeRequest(b)
		if err != nil {
			if !errors.Is(err, native.ErrInvalidFrame) {
				t.Fatalf("error %v does not match ErrInvalidFrame", err)
			}
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) != nil {
			t.Fatalf("accepted %q, which is not a JSON object", b)
		}
		var data any
		if fr.Data != nil {
			if err := json.Unmarshal(fr.Data, &data); err != nil {
				t.Fatalf("data %q of %q is not JSON: %v", fr.Data, b, err)
			}
		}
		id := native.NoID
		if fr.HasID {
			id = fr.ID
		}
		enc, err := native.EncodeRequest(id, fr.Event, json.RawMessage(fr.Data))
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", fr, err)
		}
		again, err := native.DecodeRequest(enc)
		if err != nil || again.Event != fr.Event || again.HasID != fr.HasID || again.ID != fr.ID {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", b, again, err, fr)
		}
	})
}

// FuzzEncodePush checks that any event name and offset encode to a frame that
// decodes back to them.
func FuzzEncodePush(f *testing.F) {
	f.Add("message:new", "e.1", `{"a":1}`)
	f.Add("\x00\"\\\u2028\xff", "", `null`)
	f.Fuzz(func(t *testing.T, event, offset, data string) {
		if data != "" && (!json.Valid([]byte(data)) || !utf8.ValidString(data)) {
			if _, err := native.EncodePush(event, json.RawMessage(data), offset); err == nil {
				t.Fatalf("invalid data %q was encoded", data)
			}
			return
		}
		b, err := native.EncodePush(event, json.RawMessage(data), offset)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := native.DecodeFrame(b)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if fr.Event != viaJSON(event) || fr.Offset != viaJSON(offset) {
			t.Fatalf("round trip: got %q/%q from %q", fr.Event, fr.Offset, b)
		}
	})
}

// viaJSON is what encoding/json makes of s: invalid bytes become U+FFFD.
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}
