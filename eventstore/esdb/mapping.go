package esdb

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/wardline/wardline/eventstore"
)

// This file holds the pure translations between the eventstore contract and
// KurrentDB's model, kept apart from I/O so that they are tested everywhere.

// schemes are the URL schemes Open accepts (those of the KurrentDB client).
var schemes = map[string]bool{
	"esdb": true, "esdb+discover": true,
	"kurrentdb": true, "kurrentdb+discover": true,
	"kurrent": true, "kurrent+discover": true,
	"kdb": true, "kdb+discover": true,
}

// parseURL reads a connection string such as
// "esdb://admin:changeit@localhost:2113?tls=false" or
// "kurrentdb+discover://node1:2113,node2:2113". Anything that is not one is
// eventstore.ErrInvalidArgument. The client's own logging is turned off:
// failures reach the caller as errors.
func parseURL(raw string) (*kurrentdb.Configuration, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || !schemes[strings.ToLower(scheme)] {
		return nil, fmt.Errorf("%w: %q is not an esdb:// or kurrentdb:// URL", eventstore.ErrInvalidArgument, redact(raw))
	}
	cfg, err := kurrentdb.ParseConnectionString(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: connection string %q: %s", eventstore.ErrInvalidArgument, redact(raw), scrub(err.Error(), raw))
	}
	cfg.Logger = kurrentdb.NoopLogging()
	return cfg, nil
}

// scrub removes the password of connection string raw from msg (parse
// errors quote the string they failed on).
func scrub(msg, raw string) string {
	_, rest, _ := strings.Cut(raw, "://")
	userinfo, _, ok := strings.Cut(rest, "@")
	if !ok {
		return msg
	}
	if _, password, ok := strings.Cut(userinfo, ":"); ok && password != "" {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	return msg
}

// redact hides a password in a URL that goes into an error message.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.Index(raw, "@"); i >= 0 {
			return "…" + raw[i:]
		}
		return raw
	}
	return u.Redacted()
}

// streamState maps an expected version onto KurrentDB's: stream revisions
// count from 0 where our versions count from 1, so version v is revision
// v-1, and NoStream (version 0) is KurrentDB's NoStream.
func streamState(expected eventstore.ExpectedVersion) (kurrentdb.StreamState, error) {
	switch {
	case expected == eventstore.AnyVersion:
		return kurrentdb.Any{}, nil
	case expected == eventstore.StreamExists:
		return kurrentdb.StreamExists{}, nil
	case expected == eventstore.NoStream:
		return kurrentdb.NoStream{}, nil
	case expected > 0:
		return kurrentdb.StreamRevision{Value: uint64(expected) - 1}, nil
	}
	return nil, fmt.Errorf("%w: expected version %d", eventstore.ErrInvalidArgument, int64(expected))
}

// versionOf is the eventstore version of the event at a KurrentDB revision.
func versionOf(revision uint64) uint64 { return revision + 1 }

// readStart is where a stream read begins: version from (inclusive) in
// direction dir, where 0 means the first event forward and the newest
// backward.
func readStart(from uint64, dir eventstore.Direction) (kurrentdb.StreamPosition, kurrentdb.Direction, error) {
	switch dir {
	case eventstore.Forward:
		if from == 0 {
			return kurrentdb.Start{}, kurrentdb.Forwards, nil
		}
		return kurrentdb.Revision(from - 1), kurrentdb.Forwards, nil
	case eventstore.Backward:
		if from == 0 || from > math.MaxInt64 {
			return kurrentdb.End{}, kurrentdb.Backwards, nil
		}
		return kurrentdb.Revision(from - 1), kurrentdb.Backwards, nil
	}
	return nil, 0, fmt.Errorf("%w: direction %d", eventstore.ErrInvalidArgument, dir)
}

// allPosition maps a Position onto $all. A Position is the event's commit
// position in KurrentDB's transaction log: increasing with commit order but
// not contiguous (it is a byte offset). Events appended through the gRPC
// API are committed one record each, so their commit and prepare positions
// are equal and the commit position alone identifies them. Reads from a
// position include the event at it; callers drop it (see after).
func allPosition(p eventstore.Position) kurrentdb.AllPosition {
	if p == 0 {
		return kurrentdb.Start{}
	}
	return kurrentdb.Position{Commit: uint64(p), Prepare: uint64(p)}
}

// positionOf is the eventstore Position of a $all position.
func positionOf(p kurrentdb.Position) eventstore.Position { return eventstore.Position(p.Commit) }

// actualVersion is the stream version a KurrentDB stream state reports.
func actualVersion(state kurrentdb.StreamState) (uint64, bool) {
	switch s := state.(type) {
	case kurrentdb.NoStream:
		return 0, true
	case kurrentdb.StreamRevision:
		if s.Value > math.MaxInt64 {
			return 0, false
		}
		return versionOf(s.Value), true
	}
	return 0, false
}

// wrongVersionText matches the client's wrong-expected-version message,
// "wrong expected version: expecting '<x>' but got '<revision|no_stream>'".
var wrongVersionText = regexp.MustCompile(`but got '(no_stream|-?[0-9]+)'`)

// parseWrongVersion reads the stream's actual version from the client's
// wrong-expected-version message (the only place the v1 append API reports
// it).
func parseWrongVersion(msg string) (uint64, bool) {
	m := wrongVersionText.FindStringSubmatch(msg)
	if m == nil {
		return 0, false
	}
	if m[1] == "no_stream" {
		return 0, true
	}
	rev, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || rev < -1 {
		return 0, false
	}
	if rev == -1 { // the server's encoding of "no stream"
		return 0, true
	}
	return versionOf(uint64(rev)), true
}

// sentinelFor names the eventstore error a KurrentDB error code means to a
// caller, or nil when callers need not tell it apart.
func sentinelFor(code kurrentdb.ErrorCode) error {
	switch code {
	case kurrentdb.ErrorCodeResourceNotFound, kurrentdb.ErrorCodeStreamDeleted, kurrentdb.ErrorCodeStreamTombstoned:
		return eventstore.ErrStreamNotFound
	case kurrentdb.ErrorCodeWrongExpectedVersion, kurrentdb.ErrorCodeStreamRevisionConflict,
		kurrentdb.ErrorCodeAppendConsistencyViolation:
		return eventstore.ErrWrongExpectedVersion
	case kurrentdb.ErrorCodeConnectionClosed:
		return eventstore.ErrClosed
	}
	return nil
}

// errorCode is the KurrentDB error code in err's chain.
func errorCode(err error) (kurrentdb.ErrorCode, bool) {
	var kerr *kurrentdb.Error
	if errors.As(err, &kerr) {
		return kerr.Code(), true
	}
	return 0, false
}

// Reserved names: KurrentDB keeps names starting with '$' for itself (and
// filters such events out of $all reads), and the store's own stream holds
// its epoch.
const (
	metaStream   = "wardline-meta"
	epochType    = "WardlineStoreCreated"
	systemPrefix = "$"
	envelopeMark = 1
	maxAgeCustom = "wardlineMaxAge"
)

func validateStream(stream string) error {
	switch {
	case stream == "":
		return fmt.Errorf("%w: empty stream name", eventstore.ErrInvalidArgument)
	case strings.HasPrefix(stream, systemPrefix):
		return fmt.Errorf("%w: stream names starting with %q are KurrentDB system streams", eventstore.ErrInvalidArgument, systemPrefix)
	case stream == metaStream:
		return fmt.Errorf("%w: stream %q is reserved for the store", eventstore.ErrInvalidArgument, metaStream)
	case !utf8.ValidString(stream):
		return fmt.Errorf("%w: stream name is not valid UTF-8", eventstore.ErrInvalidArgument)
	}
	return nil
}

func validateAppend(stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) error {
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return err
	}
	if err := validateStream(stream); err != nil {
		return err
	}
	for i, e := range events {
		switch {
		case !utf8.ValidString(e.Type):
			return fmt.Errorf("%w: event %d: type is not valid UTF-8 (KurrentDB sends it as a protobuf string)", eventstore.ErrInvalidArgument, i)
		case strings.HasPrefix(e.Type, systemPrefix):
			return fmt.Errorf("%w: event %d: types starting with %q are KurrentDB system events", eventstore.ErrInvalidArgument, i, systemPrefix)
		}
	}
	return nil
}

// idNamespace derives KurrentDB event UUIDs from IDs that are not UUIDs.
var idNamespace = uuid.MustParse("6f1d1c52-56a3-4c59-9c1e-3f6e0b1e6d5a")

// eventUUID is the KurrentDB event ID for an eventstore event ID: the UUID
// itself when it is one (Wardline's UUIDv7s), else a name-based UUID (v5),
// so that a retry maps to the same UUID and KurrentDB's idempotency applies.
func eventUUID(id string) uuid.UUID {
	if u, err := uuid.Parse(id); err == nil {
		return u
	}
	return uuid.NewSHA1(idNamespace, []byte(id))
}

// envelope is the KurrentDB event metadata Wardline writes: the caller's
// exact event ID and schema version, which KurrentDB has no field for, and
// the caller's metadata bytes, base64-encoded so that any bytes round-trip.
// An ID that is not valid UTF-8 (JSON would mangle it) travels in base64.
type envelope struct {
	Wardline      int     `json:"wardline"`
	ID            string  `json:"id,omitempty"`
	IDBase64      string  `json:"idBase64,omitempty"`
	SchemaVersion int     `json:"schemaVersion"`
	Metadata      *string `json:"metadata,omitempty"`
}

func encodeEnvelope(e eventstore.EventData) []byte {
	env := envelope{Wardline: envelopeMark, ID: e.ID, SchemaVersion: e.SchemaVersion}
	if !utf8.ValidString(e.ID) {
		env.ID, env.IDBase64 = "", base64.StdEncoding.EncodeToString([]byte(e.ID))
	}
	if e.Metadata != nil {
		m := base64.StdEncoding.EncodeToString(e.Metadata)
		env.Metadata = &m
	}
	b, err := json.Marshal(env)
	if err != nil {
		panic(fmt.Sprintf("esdb: marshal envelope: %v", err)) // strings and ints always marshal
	}
	return b
}

// errNotEnvelope marks metadata that Wardline did not write.
var errNotEnvelope = errors.New("esdb: not a wardline event envelope")

func decodeEnvelope(b []byte) (id string, schemaVersion int, metadata []byte, err error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil || env.Wardline != envelopeMark || (env.ID == "") == (env.IDBase64 == "") {
		return "", 0, nil, errNotEnvelope
	}
	id = env.ID
	if env.IDBase64 != "" {
		raw, err := base64.StdEncoding.DecodeString(env.IDBase64)
		if err != nil || len(raw) == 0 {
			return "", 0, nil, fmt.Errorf("esdb: envelope ID: %v", err)
		}
		id = string(raw)
	}
	if env.Metadata != nil {
		metadata, err = base64.StdEncoding.DecodeString(*env.Metadata)
		if err != nil {
			return "", 0, nil, fmt.Errorf("esdb: envelope metadata: %w", err)
		}
	}
	return id, env.SchemaVersion, metadata, nil
}

func toEventData(e eventstore.EventData) kurrentdb.EventData {
	ct := kurrentdb.ContentTypeBinary
	if len(e.Data) > 0 && json.Valid(e.Data) {
		ct = kurrentdb.ContentTypeJson
	}
	return kurrentdb.EventData{
		EventID:     eventUUID(e.ID),
		EventType:   e.Type,
		ContentType: ct,
		Data:        e.Data,
		Metadata:    encodeEnvelope(e),
	}
}

// toRecorded converts a stored event whose stream name has had the store's
// namespace removed. Events written by other tools (no envelope) keep their
// KurrentDB ID and raw metadata, with schema version 0.
func toRecorded(e *kurrentdb.RecordedEvent, stream string) (eventstore.RecordedEvent, error) {
	out := eventstore.RecordedEvent{
		ID:         e.EventID.String(),
		Stream:     stream,
		Version:    versionOf(e.EventNumber),
		Position:   positionOf(e.Position),
		Type:       e.EventType,
		Data:       e.Data,
		Metadata:   e.UserMetadata,
		RecordedAt: e.CreatedDate.UTC(),
	}
	id, sv, meta, err := decodeEnvelope(e.UserMetadata)
	switch {
	case errors.Is(err, errNotEnvelope):
		return out, nil
	case err != nil:
		return eventstore.RecordedEvent{}, fmt.Errorf("event %s in %q: %w", e.EventID, e.StreamID, err)
	}
	out.ID, out.SchemaVersion, out.Metadata = id, sv, meta
	return out, nil
}

// toStreamMetadata maps retention onto KurrentDB's native $maxAge (whole
// seconds, rounded up so a short MaxAge still limits) and $maxCount, which
// the server enforces itself. The exact MaxAge is kept in a custom property
// so that StreamMetadata returns what was set.
func toStreamMetadata(meta eventstore.StreamMetadata) (kurrentdb.StreamMetadata, error) {
	var m kurrentdb.StreamMetadata
	if meta.MaxAge < 0 {
		return m, fmt.Errorf("%w: negative MaxAge", eventstore.ErrInvalidArgument)
	}
	if meta.MaxCount > math.MaxInt64 {
		return m, fmt.Errorf("%w: MaxCount too large", eventstore.ErrInvalidArgument)
	}
	if meta.MaxAge > 0 {
		m.SetMaxAge(ceilSeconds(meta.MaxAge))
		m.AddCustomProperty(maxAgeCustom, meta.MaxAge.String())
	}
	if meta.MaxCount > 0 {
		m.SetMaxCount(meta.MaxCount)
	}
	return m, nil
}

func ceilSeconds(d time.Duration) time.Duration {
	if r := d % time.Second; r != 0 {
		if d > math.MaxInt64-time.Second {
			return d - r
		}
		return d - r + time.Second
	}
	return d
}

// fromStreamMetadata reads retention back. The custom exact MaxAge is used
// only while it agrees with $maxAge, so that a $maxAge changed by another
// tool wins.
func fromStreamMetadata(m *kurrentdb.StreamMetadata) eventstore.StreamMetadata {
	var out eventstore.StreamMetadata
	if m == nil {
		return out
	}
	if c := m.MaxCount(); c != nil {
		out.MaxCount = *c
	}
	if a := m.MaxAge(); a != nil && *a > 0 {
		out.MaxAge = *a
		if s, ok := m.CustomProperty(maxAgeCustom).(string); ok {
			if exact, err := time.ParseDuration(s); err == nil && exact > 0 && ceilSeconds(exact) == *a {
				out.MaxAge = exact
			}
		}
	}
	return out
}

// epochRecord is the data of the store's first event.
type epochRecord struct {
	Epoch string `json:"epoch"`
}

func decodeEpoch(b []byte) (string, error) {
	var r epochRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("esdb: epoch record: %w", err)
	}
	if r.Epoch == "" || strings.ContainsAny(r.Epoch, ". \t\r\n") {
		return "", fmt.Errorf("esdb: epoch record: bad epoch %q", r.Epoch)
	}
	return r.Epoch, nil
}
