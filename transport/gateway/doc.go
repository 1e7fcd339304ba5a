// Package gateway is Wardline's real-time gateway for the /chat namespace:
// it puts the domain, the event store and the read models behind both wire
// protocols (Socket.IO at /socket.io/ and the native JSON protocol at
// /ws/chat) and the small HTTP API that goes with them.
//
// # Command side
//
// Every client request goes through one pipeline, whatever the transport:
// decode and validate (invalid, too_large), then existence (not_found) and
// permission (forbidden), then the rate limits (rate_limited): one token
// bucket per connection and one per user shared by all of the user's
// connections on this node (by default three times the per-connection rate
// and burst, so a user with a few devices open is not throttled early),
// then the handler. A handler folds the state of the stream it concerns
// (a cache of folded states, caught up with ReadStream from the cached
// version before every decision), calls the domain's Decide, wraps and
// encodes the events and appends them with the exact expected version; a
// version conflict re-reads and decides again (a bounded number of times).
// The client is acknowledged only after the append returned, with the
// offset of the appended event. Refusals the audit trail must see
// (RoomAccessDenied) and PHI reads (HistoryViewed) are appended before the
// answer.
//
// # Delivery
//
// The projections Runner calls Gateway.OnApplied with every applied batch,
// after the read models show it. The hub routes each event to the sessions
// that may see it (room members from the rooms read model, both parties of a
// DM, users sharing a room for presence), encodes the push once per
// transport and hands the same bytes to every recipient without blocking.
// A recipient whose bounded queue overflows is closed by its transport (1013)
// and resumes from its offset; nobody else waits for it. The gateway ends
// such a session as soon as a send reports the overflow (SessionEnded with
// reason "slow consumer", and UserOffline for the user's last session),
// not when the transport gets round to closing the socket, which can take
// until the write deadline. queue_overflows_total counts these sessions.
// A client that accepts no bytes at all until a single write times out
// (WriteTimeout) is dropped by the transport as a failed connection: its
// session ends then, but the transports report that the same as a network
// failure, so it is not counted as an overflow.
//
// Every session has a watermark: the position of the last event it was
// given. A fresh session starts at the log's head at connect; a resuming one
// at its offset. The hub only delivers events after the watermark, which is
// what makes a resume free of duplicates: the session registers for live
// delivery (buffered) at the hub's current position P, replays the log from
// its offset up to P, then flushes the buffer.
//
// The replay is served from memory when it can be: the hub keeps a bounded
// ring of the latest routed pushes (4096 entries, about 8 MiB; events nobody
// may see take no entry) with their recipients and their frames, encoded
// at most once per transport for the live recipients. A window (from, P]
// that lies within the ring is filtered from it without reading, decoding
// or routing anything again; one that starts before the ring reads the log
// until the rest lies within it. A fresh session's window is only what was
// committed between reading the head and registering (a few events, or
// many during a connect storm, when each of hundreds of connecting
// sessions used to re-read all of the others' events); it is empty most of
// the time and then costs no goroutine. Nothing committed after the head
// was read is lost either way: the hub's position and its ring are updated
// under the same lock as registration, so each event after the head either
// is at or before P (in the window) or reaches the registered session
// live. The ring is filled from the batches the hub has seen, so after a
// start its coverage begins at the first event the Runner handed over.
//
// Fan-out lists a batch's recipients under the hub's lock and sends after
// releasing it, so connects and disconnects never wait for a fan-out; the
// gateway's share of a delivery allocates nothing per recipient
// (BenchmarkHubFanOut). Member lists are cached per room and dropped when
// a batch changes the room's membership.
//
// # Presence
//
// A session's connection, delivery and metrics end at once, but its end is
// recorded (EndSession on the user's presence stream: SessionEnded, and
// UserOffline if it was the user's last open session) only after
// Config.PresenceGrace, 2 s by default (at most 3 s, so user:offline still
// comes within 5 s). A reconnect within the grace starts a new session
// before the old one ends, so roommates see neither user:offline nor
// user:online. The decision stays the domain's, on the shared presence
// stream, so a reconnect to another node counts the same. Shutdown
// records the ends still waiting at once.
//
// # Idle footprint
//
// Every connected user costs the gateway a session and a cached presence
// state, so both are kept small (BenchmarkSessionFootprint,
// BenchmarkPresenceStartFootprint): a presence state is cached as the
// user, the online flag and the open sessions, and rebuilt into a
// domain.Presence for each decision; a session keeps only what it needs
// of its token's claims, arms one timer for the expiry warning and the
// logoff, and makes its token bucket at its first event (a bucket is full
// until then). The native handshake's claims are dropped once the session
// holds them.
//
// # Resume tokens
//
// The Socket.IO pid is "v1.<b64(user)>.<epoch>.<start position>.<b64(HMAC)>",
// signed with a key derived from the server secret, so any node sharing the
// secret and the store can verify it without server memory. A pid or offset
// from another store epoch is refused: the client starts a fresh session
// (socket.recovered is false) and is sent an exception
// {code:"invalid", message, event:"resume"} saying so; the native protocol
// does the same for the auth frame's offset.
//
// The native protocol has no pid, so right after connected the gateway
// pushes session:offset {offset} with the same offset on the frame: where
// the session's delivery starts. A client that keeps the offset of every
// push it receives (the Go client does) can then resume even when its
// connection drops before its first push from the log.
package gateway
