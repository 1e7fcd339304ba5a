// Package projections turns the event log into read models and keeps them
// current: the Runner follows the global log from each projection's
// checkpoint, decodes the events, applies them, and persists each model with
// its checkpoint so that a restart resumes exactly where it stopped.
//
// # Design
//
// Read models live in memory, for fast serving (rooms, presence). Each is
// persisted as a snapshot plus its checkpoint in ONE bbolt transaction in the
// projections db (<dataDir>/projections.db), every Config.SnapshotEvery events
// or Config.SnapshotInterval, and when Run returns or the Runner is closed. On
// start a projection loads its snapshot and resumes after its checkpoint, so
// nothing is applied twice and nothing is missed; after a crash at most the
// events since the last save are applied again, to the state as it was before
// them. The db remembers the store's epoch: a snapshot of another (or a wiped)
// store is never used.
//
// One subscription (eventstore.Store.Subscribe) serves every projection: each
// batch is decoded once, only for the event types some projection folds
// (Projection.EventTypes), and handed to each projection after its own
// checkpoint. A projection's Version names its fold code; a snapshot of
// another version is discarded and the projection is rebuilt from position
// zero in place (StateRebuilding). To avoid serving a partial model after a
// version bump, run RebuildOffline (`wardline projections rebuild NAME`)
// before starting the server.
//
// Failures: a failing Apply is retried with exponential backoff
// (Config.Retry); if it still fails, the projection is parked: Status shows
// StateFailed and "failed at position P: err", WaitFor reports the
// *FailedError, and the other projections go on. An event is never skipped,
// because a model that silently missed one would differ from its rebuild. A
// panicking Apply is parked at once and its torn state is never saved. A
// parked projection resumes after a restart (from its last saved state) or a
// successful Rebuild. An event that a projection folds but the Decoder cannot
// decode parks that projection the same way (decoding is deterministic, so it
// is not retried).
//
// Rebuild fills a new instance (Projection.New) from position zero beside the
// live one, which keeps serving and following the log; when the new one has
// reached the head, the runner finishes the few events in between and
// switches (Projection.Adopt) between two batches, so readers see either the
// old state or the new one. RebuildOffline does the same against a data
// directory no server uses.
//
// Live notifications: Config.OnApplied sees every applied batch, decoded, in
// log order, after the models show it; the transport hub hangs its fan-out
// there. WaitFor lets a caller that appended wait until its write is visible.
//
// # Decoding
//
// Decoding is injected (Config.Decoder), so that this package does not depend
// on package migrations; the binary wires migrations.Decode, which upcasts
// older schema versions. For the hot event types at their current schema
// version (where upcasting is the identity) a reflection-free decoder
// (internal/fastdecode) is tried first; it decodes exactly as encoding/json
// does (fuzzed against domain.Decode), or declines and leaves the event to
// Config.Decoder. Profiling a rebuild (BenchmarkRebuildRooms with
// -cpuprofile) showed encoding/json's reflective Unmarshal of Data and
// Metadata as the dominant cost; with the fast path the same rebuild runs
// 2.5 to 3.5 times faster (compare its two sub-benchmarks in one run).
//
// Rebuilds and long catch-ups read the log through a small pipeline: one
// goroutine reads pages (ReadAll), a few decode them in parallel, and the
// caller applies them in log order, so on two cores the store's reads and
// the decoding overlap with folding. The rooms snapshot is written by a
// reflection-free encoder that produces json.Marshal's exact bytes.
//
// # Watermill
//
// Watermill's Router delivers one message at a time, through a subscriber
// goroutine and an ack per message. Measured here (BenchmarkWatermillRouter:
// GoChannel, Recoverer, a handler that does nothing) it moves 60,000 to
// 130,000 messages per second on this 2-core machine, about 40 allocations
// each: below the rebuild target (300,000 events/s) before any decoding or
// folding, and its []byte payloads would force re-encoding decoded events.
// So the Runner does not route events through a Router: it applies batches
// straight from the store. It does use watermill's middleware where it fits:
// each projection's Apply of a batch runs as a watermill handler wrapped in
// middleware.Recoverer (a panic becomes an error with its stack) and
// middleware.Retry (exponential backoff, context-aware, ShouldRetry refusing
// panics), one message per batch, which does not show in the profile.
// PoisonQueue is not used: moving a failing event aside and going on would
// make the model differ from its rebuild, so a failing projection is parked.
// Fan-out to other nodes or sockets hangs off OnApplied; a watermill
// publisher can be plugged in there.
package projections
