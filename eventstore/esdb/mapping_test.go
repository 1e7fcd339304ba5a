package esdb

// White-box tests: the mappings are unexported so that the package's API
// stays Open and the Store; they need no server and run everywhere.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/wardline/wardline/eventstore"
)

func TestExpectedVersionsMapOntoZeroBasedRevisions(t *testing.T) {
	for _, c := range []struct {
		name     string
		expected eventstore.ExpectedVersion
		want     kurrentdb.StreamState
	}{
		{"any version is Any", eventstore.AnyVersion, kurrentdb.Any{}},
		{"no stream is NoStream", eventstore.NoStream, kurrentdb.NoStream{}},
		{"exact zero is NoStream", eventstore.Exact(0), kurrentdb.NoStream{}},
		{"stream exists is StreamExists", eventstore.StreamExists, kurrentdb.StreamExists{}},
		{"version 1 is revision 0", eventstore.Exact(1), kurrentdb.StreamRevision{Value: 0}},
		{"version 42 is revision 41", eventstore.Exact(42), kurrentdb.StreamRevision{Value: 41}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := streamState(c.expected)
			if err != nil || got != c.want {
				t.Errorf("streamState(%s) = %#v, %v; want %#v", c.expected, got, err, c.want)
			}
		})
	}
	if _, err := streamState(eventstore.ExpectedVersion(-3)); !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Errorf("streamState(-3) error = %v, want ErrInvalidArgument", err)
	}
	if versionOf(0) != 1 || versionOf(9) != 10 {
		t.Errorf("versionOf(0), versionOf(9) = %d, %d; want 1, 10", versionOf(0), versionOf(9))
	}
}

func TestStreamReadsStartAtTheRevisionBeforeTheVersion(t *testing.T) {
	for _, c := range []struct {
		name    string
		from    uint64
		dir     eventstore.Direction
		want    kurrentdb.StreamPosition
		wantDir kurrentdb.Direction
	}{
		{"forward from zero starts at the start", 0, eventstore.Forward, kurrentdb.Start{}, kurrentdb.Forwards},
		{"forward from version 1 starts at revision 0", 1, eventstore.Forward, kurrentdb.Revision(0), kurrentdb.Forwards},
		{"forward from version 7 starts at revision 6", 7, eventstore.Forward, kurrentdb.Revision(6), kurrentdb.Forwards},
		{"backward from zero starts at the end", 0, eventstore.Backward, kurrentdb.End{}, kurrentdb.Backwards},
		{"backward from version 3 starts at revision 2", 3, eventstore.Backward, kurrentdb.Revision(2), kurrentdb.Backwards},
		{"backward from beyond int64 starts at the end", 1 << 63, eventstore.Backward, kurrentdb.End{}, kurrentdb.Backwards},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, dir, err := readStart(c.from, c.dir)
			if err != nil || got != c.want || dir != c.wantDir {
				t.Errorf("readStart(%d, %v) = %#v, %v, %v; want %#v, %v", c.from, c.dir, got, dir, err, c.want, c.wantDir)
			}
		})
	}
	if _, _, err := readStart(1, eventstore.Direction(0)); !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Errorf("readStart with no direction: error = %v, want ErrInvalidArgument", err)
	}
}

func TestPositionsAreCommitPositions(t *testing.T) {
	if got := allPosition(0); got != (kurrentdb.Start{}) {
		t.Errorf("allPosition(0) = %#v, want Start", got)
	}
	p := eventstore.Position(123456)
	got, ok := allPosition(p).(kurrentdb.Position)
	if !ok || got.Commit != 123456 || got.Prepare != 123456 {
		t.Errorf("allPosition(%d) = %#v, want commit and prepare %d", p, allPosition(p), p)
	}
	if back := positionOf(got); back != p {
		t.Errorf("positionOf(allPosition(%d)) = %d", p, back)
	}
}

func TestActualVersionsFromStreamStates(t *testing.T) {
	for _, c := range []struct {
		name  string
		state kurrentdb.StreamState
		want  uint64
		ok    bool
	}{
		{"no stream is version 0", kurrentdb.NoStream{}, 0, true},
		{"revision 0 is version 1", kurrentdb.StreamRevision{Value: 0}, 1, true},
		{"revision 4 is version 5", kurrentdb.StreamRevision{Value: 4}, 5, true},
		{"a negative raw revision is unknown", kurrentdb.StreamRevision{Value: 1<<64 - 5}, 0, false},
		{"any is unknown", kurrentdb.Any{}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := actualVersion(c.state)
			if got != c.want || ok != c.ok {
				t.Errorf("actualVersion(%#v) = %d, %v; want %d, %v", c.state, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestWrongVersionMessagesGiveTheActualVersion(t *testing.T) {
	for _, c := range []struct {
		name string
		msg  string
		want uint64
		ok   bool
	}{
		{"a revision is one less than the version", "[ErrorCodeWrongExpectedVersion] an append request failed the optimistic concurrency on the server: wrong expected version: expecting '1' but got '2'", 3, true},
		{"no stream is version 0", "wrong expected version: expecting 'stream_exists' but got 'no_stream'", 0, true},
		{"revision -1 is version 0", "wrong expected version: expecting '0' but got '-1'", 0, true},
		{"revision 0 is version 1", "wrong expected version: expecting 'no_stream' but got '0'", 1, true},
		{"another message has no version", "stream revision conflict", 0, false},
		{"a revision below -1 is refused", "but got '-7'", 0, false},
		{"an overflowing revision is refused", "but got '99999999999999999999'", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseWrongVersion(c.msg)
			if got != c.want || ok != c.ok {
				t.Errorf("parseWrongVersion(%q) = %d, %v; want %d, %v", c.msg, got, ok, c.want, c.ok)
			}
		})
	}
}

func FuzzParseWrongVersion(f *testing.F) {
	f.Add("wrong expected version: expecting '1' but got '2'")
	f.Add("but got 'no_stream'")
	f.Add("but got '-1'")
	f.Fuzz(func(t *testing.T, msg string) {
		v, ok := parseWrongVersion(msg)
		if !ok && v != 0 {
			t.Errorf("parseWrongVersion(%q) = %d with ok false", msg, v)
		}
		if ok && v > 1<<63 {
			t.Errorf("parseWrongVersion(%q) = %d: beyond any revision", msg, v)
		}
	})
}

func TestErrorCodesMapToTheContractsSentinels(t *testing.T) {
	for _, c := range []struct {
		code kurrentdb.ErrorCode
		want error
	}{
		{kurrentdb.ErrorCodeResourceNotFound, eventstore.ErrStreamNotFound},
		{kurrentdb.ErrorCodeStreamDeleted, eventstore.ErrStreamNotFound},
		{kurrentdb.ErrorCodeStreamTombstoned, eventstore.ErrStreamNotFound},
		{kurrentdb.ErrorCodeWrongExpectedVersion, eventstore.ErrWrongExpectedVersion},
		{kurrentdb.ErrorCodeStreamRevisionConflict, eventstore.ErrWrongExpectedVersion},
		{kurrentdb.ErrorCodeAppendConsistencyViolation, eventstore.ErrWrongExpectedVersion},
		{kurrentdb.ErrorCodeConnectionClosed, eventstore.ErrClosed},
		{kurrentdb.ErrorUnavailable, nil},
		{kurrentdb.ErrorCodeAccessDenied, nil},
		{kurrentdb.ErrorCodeUnknown, nil},
	} {
		t.Run(fmt.Sprintf("code %d is %v", c.code, c.want), func(t *testing.T) {
			if got := sentinelFor(c.code); got != c.want {
				t.Errorf("sentinelFor(%d) = %v, want %v", c.code, got, c.want)
			}
		})
	}
	if _, ok := errorCode(errors.New("plain")); ok {
		t.Error("errorCode found a KurrentDB code in a plain error")
	}
}

func TestConnectionStrings(t *testing.T) {
	for _, c := range []struct {
		name    string
		url     string
		address string
		noTLS   bool
		user    string
		seeds   int
	}{
		{"an esdb URL with tls off", "esdb://localhost:2113?tls=false", "localhost:2113", true, "", 0},
		{"a kurrentdb URL with credentials", "kurrentdb://admin:changeit@db.internal:2113", "db.internal:2113", false, "admin", 0},
		{"a URL without a port gets 2113", "kurrent://db.internal?tls=false", "db.internal:2113", true, "", 0},
		{"a discover URL with seeds", "esdb+discover://n1:2113,n2:2113,n3:2113?tls=false", "", true, "", 3},
		{"an upper-case scheme", "KurrentDB://localhost:2113?tls=false", "localhost:2113", true, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseURL(c.url)
			if err != nil {
				t.Fatalf("parseURL(%q): %v", c.url, err)
			}
			if cfg.Address != c.address || cfg.DisableTLS != c.noTLS || cfg.Username != c.user || len(cfg.GossipSeeds) != c.seeds {
				t.Errorf("parseURL(%q) = address %q tls-off %v user %q seeds %d; want %q %v %q %d",
					c.url, cfg.Address, cfg.DisableTLS, cfg.Username, len(cfg.GossipSeeds), c.address, c.noTLS, c.user, c.seeds)
			}
			if cfg.Logger == nil {
				t.Error("the client logger is nil; want the no-op logger")
			}
		})
	}
	for _, bad := range []string{
		"postgres://postgres@127.0.0.1:5432/test",
		"embedded",
		"",
		"esdb://",
		"esdb://host:notaport",
		"esdb://host:2113/some/path",
	} {
		t.Run("refuses "+bad, func(t *testing.T) {
			if _, err := parseURL(bad); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("parseURL(%q) error = %v, want ErrInvalidArgument", bad, err)
			}
		})
	}
}

func TestPasswordsStayOutOfErrors(t *testing.T) {
	_, err := parseURL("esdb://admin:s3cret@host:notaport")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v reveals the password", err)
	}
	if got := redact("kurrentdb://admin:s3cret@host:2113"); strings.Contains(got, "s3cret") {
		t.Errorf("redact kept the password: %q", got)
	}
}

func TestEventIDsBecomeStableUUIDs(t *testing.T) {
	u := uuid.Must(uuid.NewV7())
	if got := eventUUID(u.String()); got != u {
		t.Errorf("eventUUID(%s) = %s, want the UUID itself", u, got)
	}
	a, b := eventUUID("msg-1"), eventUUID("msg-1")
	if a != b {
		t.Errorf("eventUUID is not deterministic: %s then %s", a, b)
	}
	if a == eventUUID("msg-2") {
		t.Error("two IDs map to one UUID")
	}
	if a.Version() != 5 {
		t.Errorf("a derived UUID has version %d, want 5", a.Version())
	}
}

func TestEnvelopesKeepIDSchemaVersionAndMetadataExactly(t *testing.T) {
	for _, c := range []struct {
		name string
		e    eventstore.EventData
	}{
		{"a UUID ID and JSON metadata", eventstore.EventData{ID: uuid.NewString(), SchemaVersion: 2, Metadata: []byte(`{"by": "x"}`)}},
		{"a non-UUID ID and no metadata", eventstore.EventData{ID: "msg-1", SchemaVersion: 0}},
		{"empty metadata", eventstore.EventData{ID: "msg-2", SchemaVersion: 1, Metadata: []byte{}}},
		{"binary metadata", eventstore.EventData{ID: "ÜNÏ \"quoted\"", SchemaVersion: -4, Metadata: []byte("\xff\x00\xfe")}},
		{"an ID that is not UTF-8", eventstore.EventData{ID: "id-\xff\xfe", SchemaVersion: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, sv, meta, err := decodeEnvelope(encodeEnvelope(c.e))
			if err != nil || id != c.e.ID || sv != c.e.SchemaVersion || !bytes.Equal(meta, c.e.Metadata) || (meta == nil) != (c.e.Metadata == nil) {
				t.Errorf("round trip = %q, %d, %q (nil %v), %v; want %q, %d, %q (nil %v)",
					id, sv, meta, meta == nil, err, c.e.ID, c.e.SchemaVersion, c.e.Metadata, c.e.Metadata == nil)
			}
		})
	}
	for _, foreign := range []string{``, `{}`, `{"wardline":2,"id":"x"}`, `{"wardline":1}`, `not json`, `{"$correlationId":"abc"}`} {
		if _, _, _, err := decodeEnvelope([]byte(foreign)); !errors.Is(err, errNotEnvelope) {
			t.Errorf("decodeEnvelope(%q) error = %v, want errNotEnvelope", foreign, err)
		}
	}
	if _, _, _, err := decodeEnvelope([]byte(`{"wardline":1,"id":"x","metadata":"%%%"}`)); err == nil || errors.Is(err, errNotEnvelope) {
		t.Errorf("an envelope with bad base64 metadata: error = %v, want a decode error", err)
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"wardline":1,"id":"x","schemaVersion":3,"metadata":"AAE="}`), "id", 1, []byte("m"))
	f.Add([]byte(`{}`), "", 0, []byte(nil))
	f.Fuzz(func(t *testing.T, raw []byte, id string, sv int, meta []byte) {
		_, _, _, _ = decodeEnvelope(raw) // must not panic
		if id == "" {
			return
		}
		e := eventstore.EventData{ID: id, SchemaVersion: sv, Metadata: meta}
		gotID, gotSV, gotMeta, err := decodeEnvelope(encodeEnvelope(e))
		if err != nil || gotID != id || gotSV != sv || !bytes.Equal(gotMeta, meta) {
			t.Fatalf("round trip of %+v = %q, %d, %q, %v", e, gotID, gotSV, gotMeta, err)
		}
	})
}

func TestRecordedEventsFromKurrentDB(t *testing.T) {
	created := time.Date(2025, 3, 1, 12, 0, 0, 123000000, time.FixedZone("CET", 3600))
	data := eventstore.EventData{ID: "msg-1", Type: "MessagePosted", SchemaVersion: 3, Data: []byte(`{"a":1}`), Metadata: []byte("m")}
	kev := toEventData(data)
	stored := &kurrentdb.RecordedEvent{
		EventID: kev.EventID, EventType: kev.EventType, StreamID: "ns:room-1", EventNumber: 4,
		Position: kurrentdb.Position{Commit: 9000, Prepare: 9000}, CreatedDate: created,
		Data: kev.Data, UserMetadata: kev.Metadata,
	}
	got, err := toRecorded(stored, "room-1")
	if err != nil {
		t.Fatal(err)
	}
	want := eventstore.RecordedEvent{ID: "msg-1", Stream: "room-1", Version: 5, Position: 9000, Type: "MessagePosted",
		SchemaVersion: 3, Data: data.Data, Metadata: data.Metadata, RecordedAt: created.UTC()}
	if got.ID != want.ID || got.Stream != want.Stream || got.Version != want.Version || got.Position != want.Position ||
		got.Type != want.Type || got.SchemaVersion != want.SchemaVersion || !bytes.Equal(got.Data, want.Data) ||
		!bytes.Equal(got.Metadata, want.Metadata) || !got.RecordedAt.Equal(want.RecordedAt) || got.RecordedAt.Location() != time.UTC {
		t.Errorf("toRecorded = %+v\nwant %+v", got, want)
	}
	if kev.ContentType != kurrentdb.ContentTypeJson {
		t.Errorf("JSON data has content type %v, want JSON", kev.ContentType)
	}
	if toEventData(eventstore.EventData{ID: "x", Type: "T", Data: []byte("\x00")}).ContentType != kurrentdb.ContentTypeBinary {
		t.Error("binary data is not marked binary")
	}

	// An event another tool wrote keeps KurrentDB's ID and raw metadata.
	stored.UserMetadata = []byte(`{"$correlationId":"c"}`)
	got, err = toRecorded(stored, "room-1")
	if err != nil || got.ID != kev.EventID.String() || got.SchemaVersion != 0 || string(got.Metadata) != `{"$correlationId":"c"}` {
		t.Errorf("foreign event = %+v, %v", got, err)
	}
}

func TestRetentionMapsOntoNativeStreamMetadata(t *testing.T) {
	for _, c := range []struct {
		name       string
		meta       eventstore.StreamMetadata
		wantMaxAge time.Duration // the native $maxAge
	}{
		{"no retention sets nothing", eventstore.StreamMetadata{}, 0},
		{"whole seconds stay as they are", eventstore.StreamMetadata{MaxAge: 90 * time.Second, MaxCount: 7}, 90 * time.Second},
		{"a millisecond rounds up to a second", eventstore.StreamMetadata{MaxAge: time.Millisecond}, time.Second},
		{"1.5 s rounds up to 2 s", eventstore.StreamMetadata{MaxAge: 1500 * time.Millisecond}, 2 * time.Second},
		{"a count alone", eventstore.StreamMetadata{MaxCount: 1}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := toStreamMetadata(c.meta)
			if err != nil {
				t.Fatal(err)
			}
			var native time.Duration
			if a := m.MaxAge(); a != nil {
				native = *a
			}
			if native != c.wantMaxAge {
				t.Errorf("$maxAge = %v, want %v", native, c.wantMaxAge)
			}
			if got := fromStreamMetadata(&m); got != c.meta {
				t.Errorf("round trip = %+v, want %+v", got, c.meta)
			}
		})
	}
	// Another tool changed $maxAge: the native value wins over our note.
	m, _ := toStreamMetadata(eventstore.StreamMetadata{MaxAge: 1500 * time.Millisecond})
	m.SetMaxAge(time.Hour)
	if got := fromStreamMetadata(&m); got.MaxAge != time.Hour {
		t.Errorf("MaxAge after an outside change = %v, want 1h", got.MaxAge)
	}
	if got := fromStreamMetadata(nil); got != (eventstore.StreamMetadata{}) {
		t.Errorf("fromStreamMetadata(nil) = %+v", got)
	}
	if _, err := toStreamMetadata(eventstore.StreamMetadata{MaxAge: -time.Second}); !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Errorf("a negative MaxAge: error = %v, want ErrInvalidArgument", err)
	}
	if _, err := toStreamMetadata(eventstore.StreamMetadata{MaxCount: 1 << 63}); !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Errorf("MaxCount 2^63: error = %v, want ErrInvalidArgument", err)
	}
}

func TestEpochRecords(t *testing.T) {
	if got, err := decodeEpoch([]byte(`{"epoch":"0123abcd"}`)); err != nil || got != "0123abcd" {
		t.Errorf("decodeEpoch = %q, %v", got, err)
	}
	for _, bad := range []string{``, `{}`, `{"epoch":""}`, `{"epoch":"a.b"}`, `{"epoch":"a b"}`, `[1]`} {
		if _, err := decodeEpoch([]byte(bad)); err == nil {
			t.Errorf("decodeEpoch(%q) accepted it", bad)
		}
	}
}

func FuzzDecodeEpoch(f *testing.F) {
	f.Add([]byte(`{"epoch":"0123abcd"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		epoch, err := decodeEpoch(raw)
		if err == nil && (epoch == "" || strings.Contains(epoch, ".")) {
			t.Errorf("decodeEpoch(%q) = %q: not usable in offsets", raw, epoch)
		}
	})
}

func TestNamesKurrentDBReservesAreRefused(t *testing.T) {
	ok := []eventstore.EventData{{ID: "a", Type: "T"}}
	for _, c := range []struct {
		name   string
		stream string
		events []eventstore.EventData
	}{
		{"a system stream", "$stats", ok},
		{"the store's own stream", metaStream, ok},
		{"a system event type", "room", []eventstore.EventData{{ID: "a", Type: "$metadata"}}},
		{"an empty stream", "", ok},
		{"a duplicate ID", "room", []eventstore.EventData{{ID: "a", Type: "T"}, {ID: "a", Type: "T"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := validateAppend(c.stream, eventstore.AnyVersion, c.events); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("validateAppend error = %v, want ErrInvalidArgument", err)
			}
		})
	}
	if err := validateAppend("room-1", eventstore.Exact(3), ok); err != nil {
		t.Errorf("a valid append was refused: %v", err)
	}
}

func TestOnlyTheStoresOwnEventsAreVisible(t *testing.T) {
	s := &Store{ns: "t1:"}
	for _, c := range []struct {
		stream, typ string
		want        string
		ok          bool
	}{
		{"t1:room-1", "MessagePosted", "room-1", true},
		{"t2:room-1", "MessagePosted", "", false},
		{"t1:" + metaStream, epochType, "", false},
		{"$$t1:room-1", "$metadata", "", false},
		{"$stats-127.0.0.1:2113", "$statsCollected", "", false},
		{"t1:room-1", "$>", "", false},
		{"t1:", "T", "", false},
	} {
		got, ok := s.userStream(&kurrentdb.RecordedEvent{StreamID: c.stream, EventType: c.typ})
		if got != c.want || ok != c.ok {
			t.Errorf("userStream(%q, %q) = %q, %v; want %q, %v", c.stream, c.typ, got, ok, c.want, c.ok)
		}
	}
	if _, ok := s.userStream(nil); ok {
		t.Error("a nil event is visible")
	}
}
