package socketio_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wardline/wardline/transport/socketio"
)

func TestEncodeEventWritesTheWireFormat(t *testing.T) {
	type payload struct {
		RoomID  string `json:"roomId"`
		Content string `json:"content"`
	}
	tests := []struct {
		name  string
		ns    string
		event string
		args  []any
		want  string
	}{
		{"an event without arguments", "/", "ping", nil, `42["ping"]`},
		{"the main namespace is not written", "", "a", []any{1}, `42["a",1]`},
		{"a custom namespace is written with a comma", "/chat", "a", []any{"x"}, `42/chat,["a","x"]`},
		{"structs are JSON without HTML escaping", "/chat", "message:new",
			[]any{payload{"r1", "<b>&</b>"}, "0000000000000042"},
			`42/chat,["message:new",{"roomId":"r1","content":"<b>&</b>"},"0000000000000042"]`},
		{"raw JSON is kept as is", "/", "m", []any{json.RawMessage(`{"3":[true]}`)}, `42["m",{"3":[true]}]`},
		{"scalars and nil", "/", "m", []any{true, int64(-3), uint64(7), nil, 2.5}, `42["m",true,-3,7,null,2.5]`},
		{"names needing escapes are escaped", "/", "a\"b\n", nil, `42["a\"b\n"]`},
		{"binary becomes numbered placeholders", "/", "file", []any{socketio.Binary{1}, map[string]any{"b": socketio.Binary{2}, "a": 1}},
			`452-["file",{"_placeholder":true,"num":0},{"a":1,"b":{"_placeholder":true,"num":1}}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := socketio.EncodeEvent(tc.ns, tc.event, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if string(f.Bytes()) != tc.want {
				t.Errorf("got  %s\nwant %s", f.Bytes(), tc.want)
			}
			// What we encode, the decoder accepts.
			if _, err := socketio.DecodePacket(f.Bytes()[1:]); err != nil {
				t.Errorf("own encoding does not decode: %v", err)
			}
		})
	}
}

func TestEncodeEventRefusesInvalidArguments(t *testing.T) {
	if _, err := socketio.EncodeEvent("/", "m", json.RawMessage(`{"a":`)); err == nil {
		t.Error("invalid json.RawMessage was accepted")
	}
	if _, err := socketio.EncodeEvent("/", "m", func() {}); err == nil {
		t.Error("a func argument was accepted")
	}
}

func TestParseRecoveryReadsWhatTheClientMergesIntoAuth(t *testing.T) {
	tests := []struct {
		name   string
		auth   string
		want   socketio.Recovery
		wantOK bool
	}{
		{"a first connect has no pid", `{"token":"x"}`, socketio.Recovery{}, false},
		{"a reconnect carries pid and offset", `{"pid":"p1","offset":"o9","token":"x"}`, socketio.Recovery{PID: "p1", Offset: "o9"}, true},
		{"a reconnect before any event has no offset", `{"pid":"p1","token":"x"}`, socketio.Recovery{PID: "p1"}, true},
		{"a non-string pid is ignored", `{"pid":5}`, socketio.Recovery{}, false},
		{"garbage is no recovery", `[1]`, socketio.Recovery{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := socketio.ParseRecovery(json.RawMessage(tc.auth))
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("got %+v %v, want %+v %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func FuzzParseRecovery(f *testing.F) {
	for _, s := range []string{`{"pid":"a","offset":"b"}`, `{}`, `null`, `{"pid":1}`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, auth []byte) {
		r, ok := socketio.ParseRecovery(auth)
		if ok != (r.PID != "") {
			t.Fatalf("ok %v with pid %q", ok, r.PID)
		}
		if ok && !strings.Contains(string(auth), "pid") {
			t.Fatalf("pid %q from %q", r.PID, auth)
		}
	})
}

func TestConnectErrorMessage(t *testing.T) {
	err := error(&socketio.ConnectError{Message: "unauthorized"})
	var ce *socketio.ConnectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("ConnectError %v", err)
	}
}
