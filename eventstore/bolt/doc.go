// Package bolt is Wardline's embedded event store, the default backend: one
// bbolt file in the data dir, owned by one process, durable on every
// acknowledged append.
//
// # Group commit
//
// An fsync costs about 2 ms on the target disks, and a bbolt commit needs two
// (data pages, then the meta page), so committing each append on its own
// caps the store at a few hundred appends per second. Instead, every Append
// encodes its events in its own goroutine and queues the request; a single
// writer goroutine, owned by the Store, takes everything queued (up to
// WithMaxBatch caps) and applies it in ONE read-write transaction:
//
//   - it assigns gap-free global positions (1, 2, 3, ...) and stream
//     versions in queue order;
//   - it checks each request's expected version and idempotency against the
//     state as of the requests before it in the same batch, so a refused
//     request fails alone and the others still commit;
//   - it commits (and so fsyncs) once, then answers every request, publishes
//     the new durable head and wakes subscribers.
//
// While one batch commits the next one queues up, so the batch size grows
// with the load by itself and a lone writer pays no added latency. bbolt's
// own DB.Batch is not used: it waits up to 10 ms to gather a batch and runs
// a retry-on-error protocol that does not fit per-request outcomes.
//
// # Layout
//
// Buckets (FormatVersion 1): "log" maps a big-endian position to a compact
// binary record (record.go); "streams" maps stream+version to a position;
// "ids" maps an event ID to its position, for idempotent retries;
// "streammeta" holds retention; "meta" holds the format marker and the
// random epoch made when the store was created.
//
// # Reading
//
// Reads use short read transactions and never hold one while waiting:
// bbolt's remap of a growing file waits for every open read transaction.
// A read never goes past the durable head (the newest position whose commit
// returned): bbolt makes a commit visible a moment before its last fsync
// ends, and no reader may see an event a crash could still take back.
// ReadAll copies a batch out with a handful of allocations in total (one
// backing string, one backing array). Subscribe is eventstore.CatchUp over
// ReadAll and the commit notification (Changed).
//
// # Retention
//
// Stream reads honour StreamMetadata (MaxCount, MaxAge judged against the
// injected clock). Expired events are not deleted: they stay in the global
// log, ReadAll and subscriptions, and in the file. Physical scavenging is
// not implemented.
//
// # Failure
//
// If a commit fails (disk full, I/O error), that batch gets the error and
// the store refuses every later append until it is reopened: after a failed
// fsync the file's state is not trusted. Open maps a held lock to
// eventstore.ErrLocked and a newer format marker to eventstore.ErrNewerFormat.
package bolt
