package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
)

// samples holds one fully populated payload of every registered event type.
func samples() []domain.Event {
	at := time.Date(2025, 3, 4, 10, 30, 0, 0, time.UTC)
	return []domain.Event{
		domain.RoomCreated{RoomID: "icu-1", Name: "ICU", Private: true, PHI: true, CreatedBy: "alice", Members: []string{"alice", "bob"}},
		domain.MemberJoined{RoomID: "icu-1", UserID: "carol", AddedBy: "alice"},
		domain.MemberLeft{RoomID: "icu-1", UserID: "bob", RemovedBy: "alice"},
		domain.RoomAccessDenied{RoomID: "icu-1", UserID: "mallory", Action: "join", Reason: "private_room"},
		domain.MessagePosted{MessageID: "m1", RoomID: "icu-1", SenderID: "alice", Content: "BP 120/80 ✓", Seq: 7, ClientMsgID: "c1"},
		domain.DirectMessageSent{MessageID: "m2", SenderID: "alice", ToUserID: "bob", Content: "hi", ClientMsgID: "c2"},
		domain.TypingStarted{RoomID: "icu-1", UserID: "alice"},
		domain.TypingStopped{RoomID: "icu-1", UserID: "alice"},
		domain.SessionStarted{SessionID: "s1", UserID: "alice", Namespace: "/chat", Transport: "native", NodeID: "n1", ClientAddr: "127.0.0.1:5000"},
		domain.SessionEnded{SessionID: "s1", UserID: "alice", Reason: "disconnect"},
		domain.UserOnline{UserID: "alice"},
		domain.UserOffline{UserID: "alice"},
		domain.NotificationIssued{NotificationID: "n1", UserID: "bob", Kind: "medication_reminder", Payload: json.RawMessage(`{"drug":"heparin"}`), DeliverAt: at},
		domain.NotificationAcknowledged{NotificationID: "n1", UserID: "bob"},
		domain.EmergencyAlertRaised{AlertID: "a1", Severity: domain.SeverityCritical, Message: "code blue", Location: "bed 4", UserIDs: []string{"bob"}, Roles: []domain.Role{domain.RoleNurse}, RoomID: "icu-1", EscalateAfter: time.Minute},
		domain.EmergencyAlertAcknowledged{AlertID: "a1", UserID: "bob"},
		domain.EmergencyAlertEscalated{AlertID: "a1", Level: 1, Reason: "unacknowledged"},
		domain.AuthenticationSucceeded{UserID: "alice", SessionID: "s1", Method: "bearer", ExpiresAt: at},
		domain.AuthenticationFailed{Code: "unauthorized", Reason: "expired", Subject: "alice", ClientAddr: "127.0.0.1:5000", Method: "bearer"},
		domain.TokenRefreshed{UserID: "alice", SessionID: "s1", ExpiresAt: at},
		domain.SessionRevoked{SessionID: "s1", UserID: "alice", By: "admin", Reason: "kicked"},
		domain.HistoryViewed{RoomID: "icu-1", UserID: "alice", FromSeq: 1, ToSeq: 7, Count: 7, Via: "history:fetch"},
	}
}

func TestSamplesCoverEveryRegisteredType(t *testing.T) {
	var got []string
	for _, ev := range samples() {
		got = append(got, ev.EventType())
	}
	want := domain.EventTypes()
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sample types %v\nregistered   %v", got, want)
	}
}

func TestEveryEventTypeRoundTripsThroughEncodeAndDecode(t *testing.T) {
	for _, ev := range samples() {
		t.Run(ev.EventType(), func(t *testing.T) {
			c := domain.Context{
				Now: t0, Actor: domain.Actor{UserID: "alice", Roles: []domain.Role{domain.RoleNurse}, SessionID: "s1", ClientAddr: "127.0.0.1:1"},
				NewID: counter("ev"), CorrelationID: "corr", CausationID: "cause", NodeID: "node-a",
			}
			envs, err := c.Wrap([]domain.Event{ev})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := domain.Encode(envs[0])
			if err != nil {
				t.Fatal(err)
			}
			back, err := domain.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, envs[0]) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", back, envs[0])
			}
		})
	}
}

func TestDecodeRefusesWhatItCannotRead(t *testing.T) {
	good, err := domain.Encode(domain.Envelope{ID: "e1", Stream: "room-x", Time: t0, Event: domain.MessagePosted{MessageID: "m", RoomID: "x", SenderID: "a", Content: "c", Seq: 1}})
	if err != nil {
		t.Fatal(err)
	}
	unknown := good
	unknown.Type = "MessageTeleported"
	old := good
	old.SchemaVersion = 1
	newer := good
	newer.SchemaVersion = 3
	badData := good
	badData.Data = []byte(`{"seq":"seven"}`)
	tests := []struct {
		name    string
		raw     domain.RawEvent
		wantErr error
	}{
		{"an unknown type is ErrUnknownEventType", unknown, domain.ErrUnknownEventType},
		{"an old schema version is ErrSchemaVersion", old, domain.ErrSchemaVersion},
		{"a newer schema version is ErrSchemaVersion", newer, domain.ErrSchemaVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := domain.Decode(tt.raw); !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	t.Run("data of the wrong shape is an error", func(t *testing.T) {
		if _, err := domain.Decode(badData); err == nil {
			t.Fatal("decoded a string seq")
		}
	})
}

func TestEveryEventHasAStream(t *testing.T) {
	want := map[string]string{
		"RoomCreated": "room-icu-1", "MemberJoined": "room-icu-1", "MemberLeft": "room-icu-1",
		"MessagePosted": "room-icu-1", "RoomAccessDenied": "access-mallory", "HistoryViewed": "access-alice",
		"DirectMessageSent": "dm-alice~bob", "TypingStarted": "typing-icu-1", "TypingStopped": "typing-icu-1",
		"SessionStarted": "presence-alice", "SessionEnded": "presence-alice", "UserOnline": "presence-alice",
		"UserOffline": "presence-alice", "NotificationIssued": "notify-bob", "NotificationAcknowledged": "notify-bob",
		"EmergencyAlertRaised": "alert-a1", "EmergencyAlertAcknowledged": "alert-a1", "EmergencyAlertEscalated": "alert-a1",
		"AuthenticationSucceeded": "auth-alice", "AuthenticationFailed": "auth-anonymous",
		"TokenRefreshed": "auth-alice", "SessionRevoked": "auth-alice",
	}
	for _, ev := range samples() {
		got, err := domain.StreamOf(ev)
		if err != nil {
			t.Errorf("%s: %v", ev.EventType(), err)
			continue
		}
		if got != want[ev.EventType()] {
			t.Errorf("%s goes to %q, want %q", ev.EventType(), got, want[ev.EventType()])
		}
	}
	if _, err := domain.StreamOf(nil); err == nil {
		t.Error("a nil event has a stream")
	}
}

func TestWrapNeedsAnIDGenerator(t *testing.T) {
	c := domain.Context{Now: t0}
	_, err := c.Wrap([]domain.Event{domain.UserOnline{UserID: "a"}})
	if !errors.Is(err, domain.ErrNoIDGenerator) {
		t.Fatalf("error = %v, want ErrNoIDGenerator", err)
	}
}

func TestNewIDMakesDistinctTimeOrderedIDs(t *testing.T) {
	a, b := domain.NewID(), domain.NewID()
	if a == b || len(a) != 36 {
		t.Fatalf("ids %q, %q", a, b)
	}
	if !domain.ValidRoomID(a) {
		t.Fatalf("a generated id %q is not usable as a room id", a)
	}
	if a[:8] > b[:8] {
		t.Fatalf("later id %q sorts before %q", b, a)
	}
}

// FuzzDecode feeds arbitrary stored events to Decode: it must never panic,
// and whatever it accepts must encode and decode to the same envelope.
func FuzzDecode(f *testing.F) {
	for _, ev := range samples() {
		raw, err := domain.Encode(domain.Envelope{ID: "e", Stream: "s", Time: t0, Event: ev})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw.Type, raw.SchemaVersion, raw.Data, raw.Metadata)
	}
	f.Add("MessagePosted", 2, []byte(`{"seq":-1}`), []byte(`{"time":"nope"}`))
	f.Add("Nope", 1, []byte(`null`), []byte(nil))
	f.Fuzz(func(t *testing.T, typ string, version int, data, meta []byte) {
		env, err := domain.Decode(domain.RawEvent{ID: "e", Stream: "s", Type: typ, SchemaVersion: version, Data: data, Metadata: meta})
		if err != nil {
			return
		}
		raw, err := domain.Encode(env)
		if err != nil {
			t.Fatalf("re-encode of a decoded event: %v", err)
		}
		again, err := domain.Decode(raw)
		if err != nil {
			t.Fatalf("decode of a re-encoded event: %v", err)
		}
		// Compare stored forms: JSON keeps neither nil-versus-empty slices
		// nor time zones, and the stored form is what must be stable.
		raw2, err := domain.Encode(again)
		if err != nil {
			t.Fatalf("second re-encode: %v", err)
		}
		if !reflect.DeepEqual(raw, raw2) {
			t.Fatalf("not stable:\n first %+v\nsecond %+v", raw, raw2)
		}
	})
}
