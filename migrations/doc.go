// Package migrations keeps old data readable: event schema upcasters, and the
// small framework that moves a store's own on-disk format forward.
//
// # Event schemas
//
// Events are immutable, so a payload's shape can only change by adding a new
// schema version (domain's registry holds the current one per type) and an
// upcaster here that turns the previous version's JSON into the next. Readers
// never see old shapes: projections, the audit trail and the gateway read
// every stored event through Decode (or Registry.Decode), which chains the
// upcasters from the stored version to the current one and then calls
// domain.Decode. Stored bytes are never rewritten, so the audit trail's
// hashes stay valid; upcasting happens on every read and must therefore be a
// pure, deterministic function of the bytes.
//
// A stored version of 0 (a writer that did not record one) is read as 1. A
// version newer than this binary knows is ErrNewerSchema: an older binary
// must not guess at a newer shape. A version with no path to the current one
// is a *MissingUpcasterError (ErrMissingUpcaster).
//
// Versions so far:
//   - MessagePosted v1: {messageId, room, senderId, text, seq, clientMsgId?}.
//     v2 renamed room → roomId and text → content to match the wire payloads
//     (DESIGN.md "Payloads"). Upcaster: messagePostedV1ToV2.
//
// # Store formats
//
// Each event store backend owns its on-disk format and carries its own format
// marker: the embedded bbolt store a key in its meta bucket, PostgreSQL a
// schema_version table. `wardline migrate` asks the backend for its marker
// and its ordered Steps, makes a Plan from the marker to the newest version
// this binary knows, and runs it (Run). Each step's Apply changes the format
// and advances the marker atomically (in one bbolt or SQL transaction), so an
// interrupted migration resumes at the first step not applied. A marker newer
// than the binary is ErrNewerFormat and nothing runs. The SQL of a backend's
// steps lives with that backend, next to the code that reads the tables; this
// package holds no SQL of its own, because no read model is stored in
// PostgreSQL outside a backend.
package migrations
