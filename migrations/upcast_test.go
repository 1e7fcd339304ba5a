package migrations_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/migrations"
)

const v1Message = `{"messageId":"m-1","room":"icu-1","senderId":"alice","text":"BP 120/80 ✓","seq":3,"clientMsgId":"c-1"}`

var v1Meta = []byte(`{"time":"2024-11-02T08:15:00.123Z","actor":{"userId":"alice","roles":["nurse"]},"correlationId":"k"}`)

func TestAMessagePostedStoredAsV1IsReadBackAsV2(t *testing.T) {
	raw := domain.RawEvent{ID: "e-1", Stream: "room-icu-1", Type: "MessagePosted", SchemaVersion: 1, Data: []byte(v1Message), Metadata: v1Meta}
	env, err := migrations.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Envelope{
		ID: "e-1", Stream: "room-icu-1", Type: "MessagePosted", SchemaVersion: 2,
		Time:          time.Date(2024, 11, 2, 8, 15, 0, 123e6, time.UTC),
		Actor:         domain.Actor{UserID: "alice", Roles: []domain.Role{domain.RoleNurse}},
		CorrelationID: "k",
		Event:         domain.MessagePosted{MessageID: "m-1", RoomID: "icu-1", SenderID: "alice", Content: "BP 120/80 ✓", Seq: 3, ClientMsgID: "c-1"},
	}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("decoded:\n got %#v\nwant %#v", env, want)
	}
	if string(raw.Data) != v1Message || raw.SchemaVersion != 1 {
		t.Fatal("decoding modified the stored event")
	}
}

func TestACurrentEventDecodesUnchanged(t *testing.T) {
	in := domain.Envelope{ID: "e", Stream: "room-r", Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Event: domain.MessagePosted{MessageID: "m", RoomID: "r", SenderID: "a", Content: "c", Seq: 1}}
	in.Type, in.SchemaVersion = "MessagePosted", 2
	raw, err := domain.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	up, err := migrations.Upcast(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(up, raw) {
		t.Fatalf("a current event was changed: %+v", up)
	}
	out, err := migrations.Decode(raw)
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Fatalf("decode = %#v, %v", out, err)
	}
}

func TestUpcastRefusals(t *testing.T) {
	msg := func(version int, data string) domain.RawEvent {
		return domain.RawEvent{ID: "e", Type: "MessagePosted", SchemaVersion: version, Data: []byte(data)}
	}
	tests := []struct {
		name     string
		registry *migrations.Registry
		raw      domain.RawEvent
		wantErr  error
	}{
		{"an unknown type is ErrUnknownEventType", migrations.Default(), domain.RawEvent{Type: "Teleported", SchemaVersion: 1}, domain.ErrUnknownEventType},
		{"a version newer than this binary is ErrNewerSchema", migrations.Default(), msg(3, `{}`), migrations.ErrNewerSchema},
		{"a negative version is ErrInvalidSchemaVersion", migrations.Default(), msg(-1, `{}`), migrations.ErrInvalidSchemaVersion},
		{"an old version without an upcaster is ErrMissingUpcaster", migrations.NewRegistry(), msg(1, v1Message), migrations.ErrMissingUpcaster},
		{"an unversioned event is read as v1", migrations.NewRegistry(), msg(0, v1Message), migrations.ErrMissingUpcaster},
		{"a v1 payload that is not JSON is ErrUpcastFailed", migrations.Default(), msg(1, `{"room":`), migrations.ErrUpcastFailed},
		{"a v1 payload that is not an object is ErrUpcastFailed", migrations.Default(), msg(1, `null`), migrations.ErrUpcastFailed},
		{"a v1 payload with both text and content is ErrUpcastFailed", migrations.Default(), msg(1, `{"text":"a","content":"b"}`), migrations.ErrUpcastFailed},
		{"a v1 payload with both room and roomId is ErrUpcastFailed", migrations.Default(), msg(1, `{"room":"a","roomId":"b"}`), migrations.ErrUpcastFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.registry.Upcast(tt.raw); !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestAMissingStepSaysWhichOne(t *testing.T) {
	r := migrations.NewRegistryWithVersions(map[string]int{"Thing": 4})
	r.Register("Thing", 1, func(b []byte) ([]byte, error) { return b, nil })
	_, err := r.Upcast(domain.RawEvent{Type: "Thing", SchemaVersion: 1, Data: []byte(`{}`)})
	var missing *migrations.MissingUpcasterError
	if !errors.As(err, &missing) {
		t.Fatalf("error = %v, want *MissingUpcasterError", err)
	}
	if *missing != (migrations.MissingUpcasterError{Type: "Thing", From: 2, Current: 4}) {
		t.Fatalf("missing = %+v", *missing)
	}
}

func TestUpcastersChainUntilTheCurrentVersion(t *testing.T) {
	r := migrations.NewRegistryWithVersions(map[string]int{"Thing": 4})
	for v := 1; v <= 3; v++ {
		r.Register("Thing", v, func(b []byte) ([]byte, error) { return append(b, fmt.Sprintf(">%d", v+1)...), nil })
	}
	tests := []struct {
		name     string
		from     int
		wantData string
	}{
		{"from v1 every step runs in order", 1, "x>2>3>4"},
		{"from v2 the chain starts at v2", 2, "x>3>4"},
		{"from v3 one step runs", 3, "x>4"},
		{"at the current version nothing runs", 4, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := r.Upcast(domain.RawEvent{Type: "Thing", SchemaVersion: tt.from, Data: []byte("x")})
			if err != nil {
				t.Fatal(err)
			}
			if string(up.Data) != tt.wantData || up.SchemaVersion != 4 {
				t.Fatalf("got v%d %q, want v4 %q", up.SchemaVersion, up.Data, tt.wantData)
			}
		})
	}
}

func TestRegisterRefusesImpossibleUpcasters(t *testing.T) {
	id := func(b []byte) ([]byte, error) { return b, nil }
	tests := []struct {
		name string
		do   func(r *migrations.Registry)
	}{
		{"an unknown event type", func(r *migrations.Registry) { r.Register("Nope", 1, id) }},
		{"a nil function", func(r *migrations.Registry) { r.Register("MessagePosted", 1, nil) }},
		{"a version below 1", func(r *migrations.Registry) { r.Register("MessagePosted", 0, id) }},
		{"a step from the current version", func(r *migrations.Registry) { r.Register("MessagePosted", 2, id) }},
		{"a second upcaster for the same step", func(r *migrations.Registry) {
			r.Register("MessagePosted", 1, id)
			r.Register("MessagePosted", 1, id)
		}},
	}
	for _, tt := range tests {
		t.Run("registering "+tt.name+" panics", func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tt.do(migrations.NewRegistry())
		})
	}
}

func TestUpcastKeepsUnknownFields(t *testing.T) {
	up, err := migrations.Upcast(domain.RawEvent{Type: "MessagePosted", SchemaVersion: 1, Data: []byte(`{"room":"r","text":"t","extra":[1,2]}`)})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(up.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got["roomId"] != "r" || got["content"] != "t" || got["extra"] == nil || got["room"] != nil || got["text"] != nil {
		t.Fatalf("upcast data = %s", up.Data)
	}
}

// FuzzDecode feeds arbitrary stored events through the default upcasters
// and the domain decoder: nothing may panic; whatever decodes is at the
// current version and encodes again.
func FuzzDecode(f *testing.F) {
	f.Add("MessagePosted", 1, []byte(v1Message), v1Meta)
	f.Add("MessagePosted", 0, []byte(`{"room":"r","text":"t","seq":1}`), []byte(nil))
	f.Add("MessagePosted", 2, []byte(`{"roomId":"r","content":"t","seq":1}`), []byte(`{}`))
	f.Add("MessagePosted", 1, []byte(`{"text":1}`), []byte(`{"time":1}`))
	f.Add("RoomCreated", 1, []byte(`{"roomId":"r","members":["a"]}`), []byte(nil))
	f.Add("UserOnline", 7, []byte(`{}`), []byte(nil))
	f.Fuzz(func(t *testing.T, typ string, version int, data, meta []byte) {
		raw := domain.RawEvent{ID: "e", Stream: "s", Type: typ, SchemaVersion: version, Data: data, Metadata: meta}
		dataCopy := string(data)
		env, err := migrations.Decode(raw)
		if string(raw.Data) != dataCopy {
			t.Fatal("decode modified the stored bytes")
		}
		if err != nil {
			return
		}
		current, _ := domain.CurrentSchemaVersion(typ)
		if env.SchemaVersion != current {
			t.Fatalf("decoded at v%d, current v%d", env.SchemaVersion, current)
		}
		if _, err := domain.Encode(env); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func BenchmarkDecodeV1MessagePosted(b *testing.B) {
	raw := domain.RawEvent{ID: "e-1", Stream: "room-icu-1", Type: "MessagePosted", SchemaVersion: 1, Data: []byte(v1Message), Metadata: v1Meta}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := migrations.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeCurrentMessagePosted(b *testing.B) {
	raw := domain.RawEvent{ID: "e-1", Stream: "room-icu-1", Type: "MessagePosted", SchemaVersion: 2,
		Data: []byte(strings.NewReplacer(`"room"`, `"roomId"`, `"text"`, `"content"`).Replace(v1Message)), Metadata: v1Meta}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := migrations.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
