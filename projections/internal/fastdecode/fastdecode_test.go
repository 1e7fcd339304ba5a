package fastdecode_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/projections/internal/fastdecode"
)

func sampleEnvelopes() []domain.Envelope {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.UTC)
	actor := domain.Actor{UserID: "u1", Roles: []domain.Role{domain.RoleNurse, "custom"}, SessionID: "s1", ClientAddr: "127.0.0.1:5000"}
	evs := []domain.Event{
		domain.MessagePosted{MessageID: "m1", RoomID: "icu-1", SenderID: "u1", Content: "BP 120/80 & HR <90> \"ok\"\n\u00e9\u2028", Seq: 18446744073709551615, ClientMsgID: "c1"},
		domain.MessagePosted{MessageID: "m2", RoomID: "icu-1", SenderID: "u1", Content: "plain", Seq: 1},
		domain.MemberJoined{RoomID: "icu-1", UserID: "u2", AddedBy: "u1"},
		domain.MemberJoined{RoomID: "icu-1", UserID: "u2"},
		domain.MemberLeft{RoomID: "icu-1", UserID: "u2", RemovedBy: "u1"},
		domain.RoomCreated{RoomID: "icu-1", Name: "ICU 1", Private: true, PHI: true, CreatedBy: "u1", Members: []string{"u1", "u2"}},
		domain.RoomCreated{RoomID: "r", Name: "", Members: []string{}},
		domain.RoomCreated{RoomID: "r", Name: "n"},
		domain.SessionStarted{SessionID: "s1", UserID: "u1", Namespace: "/chat", Transport: "socketio", NodeID: "n1", ClientAddr: "[::1]:1"},
		domain.SessionEnded{SessionID: "s1", UserID: "u1", Reason: "client gone"},
		domain.SessionRevoked{SessionID: "s1", UserID: "u1", By: "admin", Reason: "kick"},
		domain.UserOnline{UserID: "u1"},
		domain.UserOffline{UserID: "u1"},
		domain.TypingStarted{RoomID: "icu-1", UserID: "u1"},
		domain.TypingStopped{RoomID: "icu-1", UserID: "u1"},
	}
	out := make([]domain.Envelope, 0, 2*len(evs))
	for i, ev := range evs {
		out = append(out,
			domain.Envelope{ID: "id", Stream: "room-icu-1", Time: at, Actor: actor, CorrelationID: "corr", CausationID: "cause", NodeID: "node", Event: ev},
			domain.Envelope{ID: "id2", Stream: "s", Time: at.Add(time.Duration(i) * time.Hour).In(time.FixedZone("x", 3600)), Event: ev},
		)
	}
	return out
}

func encode(t testing.TB, e domain.Envelope) domain.RawEvent {
	t.Helper()
	r, err := domain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDecodeMatchesDomainDecodeForEncodedEvents(t *testing.T) {
	for _, e := range sampleEnvelopes() {
		raw := encode(t, e)
		t.Run(raw.Type, func(t *testing.T) {
			got, ok := fastdecode.Decode(raw)
			if !ok {
				t.Fatalf("fast path refused an event as domain.Encode writes it: %s %s", raw.Data, raw.Metadata)
			}
			want, err := domain.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("fast decode differs:\n got %#v\nwant %#v", got, want)
			}
		})
	}
}

func TestDecodeLeavesUnusualInputToTheFullDecoder(t *testing.T) {
	base := domain.RawEvent{ID: "x", Stream: "room-r", Type: "MessagePosted", SchemaVersion: 2}
	tests := []struct {
		name string
		typ  string
		ver  int
		data string
		meta string
	}{
		{name: "an older schema version needs upcasting", ver: 1, data: `{"seq":1}`},
		{name: "a type outside the hot set", typ: "HistoryViewed", data: `{}`},
		{name: "a key in another case", data: `{"SEQ":1}`},
		{name: "an unknown key", data: `{"seq":1,"extra":true}`},
		{name: "a duplicate key", data: `{"seq":1,"seq":2}`},
		{name: "null data", data: `null`},
		{name: "a negative seq", data: `{"seq":-1}`},
		{name: "a seq with an exponent", data: `{"seq":1e3}`},
		{name: "a seq past uint64", data: `{"seq":18446744073709551616}`},
		{name: "a seq with a leading zero", data: `{"seq":01}`},
		{name: "trailing garbage", data: `{"seq":1} x`},
		{name: "a control character in a string", data: "{\"content\":\"a\x01\"}"},
		{name: "an escaped key", data: `{"se\u0071":1}`},
		{name: "a duplicate actor in metadata", data: `{}`, meta: `{"actor":{"userId":"a"},"actor":{"roles":["x"]}}`},
		{name: "an unparsable time", data: `{}`, meta: `{"time":"yesterday"}`},
		{name: "a string where a number belongs", data: `{"seq":"1"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			if tc.typ != "" {
				r.Type = tc.typ
				r.SchemaVersion = 1
			}
			if tc.ver != 0 {
				r.SchemaVersion = tc.ver
			}
			r.Data, r.Metadata = []byte(tc.data), []byte(tc.meta)
			if env, ok := fastdecode.Decode(r); ok {
				t.Fatalf("fast path accepted %q / %q as %#v", tc.data, tc.meta, env)
			}
		})
	}
}

func TestDecodeHandlesEscapesAndInvalidUTF8LikeEncodingJSON(t *testing.T) {
	tests := []struct{ name, data string }{
		{"escapes", `{"content":"a\"b\\c\/d\n\u00e9\ud83d\ude00\u003c"}`},
		{"a lone surrogate", `{"content":"\ud800x"}`},
		{"invalid UTF-8", "{\"content\":\"a\xffb\"}"},
		{"whitespace everywhere", " {\n\t\"seq\" : 7 ,\r\"content\" :\"x\" } \n"},
		{"an empty object", `{}`},
		{"null fields", `{"content":null,"seq":null,"messageId":null}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := domain.RawEvent{ID: "x", Type: "MessagePosted", SchemaVersion: 2, Data: []byte(tc.data)}
			got, ok := fastdecode.Decode(r)
			if !ok {
				t.Fatal("refused")
			}
			want, err := domain.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %#v, want %#v", got, want)
			}
		})
	}
}

// FuzzDecode checks the package's one promise: whatever the fast path
// accepts, domain.Decode (encoding/json) decodes identically.
func FuzzDecode(f *testing.F) {
	for _, e := range sampleEnvelopes() {
		r := encode(f, e)
		f.Add(r.Type, r.Data, r.Metadata)
	}
	f.Add("MessagePosted", []byte(`{"seq":01}`), []byte(`{"actor":{"roles":[]}}`))
	f.Add("RoomCreated", []byte(`{"members":["a",""],"private":false}`), []byte(nil))
	f.Add("UserOnline", []byte(`{"userId":"a\ud83d\ude00\ud800\u0041"}`), []byte(`{"time":"2024-02-29T23:59:59.123456789Z"}`))
	f.Add("UserOnline", []byte(`{"userId":"\u00e9"}`), []byte(`{"time":"2026-02-29T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, typ string, data, meta []byte) {
		ver, _ := domain.CurrentSchemaVersion(typ)
		r := domain.RawEvent{ID: "id", Stream: "st", Type: typ, SchemaVersion: ver, Data: data, Metadata: meta}
		got, ok := fastdecode.Decode(r)
		if !ok {
			return
		}
		want, err := domain.Decode(r)
		if err != nil {
			t.Fatalf("fast path accepted what domain.Decode refuses (%v): %q %q", err, data, meta)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast decode differs for %q %q:\n got %#v\nwant %#v", data, meta, got, want)
		}
	})
}

func TestDecodeReadsTimesAsTimeUnmarshalJSONDoes(t *testing.T) {
	tests := []struct {
		time   string
		wantOK bool // whether the fast path must take it
	}{
		{"2026-03-04T05:06:07Z", true},
		{"2026-03-04T05:06:07.5Z", true},
		{"2026-03-04T05:06:07.123456789Z", true},
		{"2024-02-29T23:59:59.000001Z", true},
		{"0000-01-01T00:00:00Z", true},
		{"2026-02-29T00:00:00Z", false},
		{"2026-13-01T00:00:00Z", false},
		{"2026-01-01T24:00:00Z", false},
		{"2026-01-01T00:00:60Z", false},
		{"2026-01-01T00:00:00.1234567891Z", false},
		{"2026-01-01T00:00:00.Z", false},
		{"2026-01-01T00:00:00+01:00", false},
		{"2026-01-01t00:00:00Z", false},
		{"2026-01-01T00:00:00z", false},
	}
	for _, tc := range tests {
		t.Run(tc.time, func(t *testing.T) {
			r := domain.RawEvent{Type: "UserOnline", SchemaVersion: 1, Data: []byte(`{}`), Metadata: []byte(`{"time":"` + tc.time + `"}`)}
			got, ok := fastdecode.Decode(r)
			if ok != tc.wantOK {
				t.Fatalf("fast path ok = %v, want %v", ok, tc.wantOK)
			}
			if !ok {
				return
			}
			want, err := domain.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, want %v", got.Time, want.Time)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	raw := encode(b, sampleEnvelopes()[2])
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := fastdecode.Decode(raw); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := domain.Decode(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
