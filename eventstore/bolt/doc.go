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
// When fsyncs are fast, appends from independent callers (a room's messages,
// another room's) still come one at a time between commits. WithCommitInterval
// paces the writer: a commit begins no sooner than the interval after the
// previous one began, for as long as those pauses gather company (pace.go).
//
// Measured on the 2-core development VM with 256 writers of 1 KiB events:
// 150-200 events per commit; without the writer's brief yield after
// answering a batch (regroup), batches alternated between full and nearly
// empty and averaged half the writers.
//
// # Layout
//
// Buckets (FormatVersion 1): "log" maps a big-endian position to a compact
// binary record (record.go); "streams" maps stream+version to a position;
// "ids" maps an event ID to its position, for idempotent retries;
// "streammeta" holds retention; "meta" holds the format marker, the random
// epoch made when the store was created, and "indexed", the position up to
// which "streams" and "ids" are complete.
//
// Only the log is written with every commit. The index entries of recent
// events stay in memory; every DefaultIndexFlushEvents events they are
// frozen and written sorted, a chunk with each of the following group
// commits (flush.go): writing them per commit dirtied one B+tree page per
// stream touched and tripled the bytes each fsync had to flush, and writing
// a whole generation in one commit stalled every append for ~200 ms.
// Nothing durable depends on the lazy part: Open rebuilds it from the log
// after "indexed".
//
// # bbolt options
//
// FreelistType map (stays fast when the file is large and fragmented);
// InitialMmapSize 1 GiB of address space, so the file grows a long way
// before bbolt must remap, since a remap waits for every read transaction;
// AllocSize 64 MiB, so growing the file (which costs an extra fsync) is
// rare; NoFreelistSync off, because with an append-only log the freelist is
// a page or two per commit while skipping it makes every Open scan the
// whole file. The log bucket fills pages completely (its keys only grow).
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
