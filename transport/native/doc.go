// Package native is the wire layer of Wardline's plain WebSocket protocol,
// served at /ws/{namespace}: one JSON object per text frame.
//
//	client → server  {"id": 7, "event": "message:send", "data": {...}}
//	reply            {"id": 7, "data": {"success": true, ...}}
//	push             {"event": "message:new", "data": {...}, "offset": "..."}
//	exception        {"event": "exception", "data": {"code", "message", "event"}}
//
// The package owns framing, the connection lifecycle (handshake checks,
// authentication handshake, pings, bounded send queues, close codes) and
// nothing else. What a token means, what an event does and who may do it are
// decided by the gateway, which plugs in through the hooks of Config. That
// split keeps this layer testable without a store or a JWT verifier, and keeps
// the domain out of the socket code.
//
// Processing model: each connection has one reader goroutine. It waits for
// the next frame on a small stack, then has one of the Server's shared deep
// workers read the message and call Config.OnEvent, and waits for it, so the
// requests of one connection are started strictly in the order they were
// sent. OnEvent may return a Pending for work that goes on after it returns
// (a message waiting for its append): the reader then reads on and the
// reply is written when the Pending returns, at most MaxPendingReplies per
// connection. A slow command therefore delays only its own connection (TCP
// back-pressure reaches that client); connections run in parallel, which is
// what lets the store group-commit many clients' appends. Writing is done
// by a few writer goroutines the Server shares (one per CPU, gone after 250
// ms without work): a connection with frames queued goes on their list, and
// a writer writes its whole queue with one writev that never waits for the
// socket, then takes the next connection. A connection whose socket is full
// (a client that reads slowly), and the ping and close frames, get a
// goroutine of their own that may wait, so a slow client holds up nobody.
// An idle connection costs one goroutine; a burst costs no goroutine
// hand-off per connection.
// With Config.CoalesceWindow, pushes to a connection in a stream are held
// until they have company (or have waited two windows), so a busy stream
// costs one write per two or more pushes rather than one per push.
//
// Writing: the writer frames text messages itself and writes a whole batch
// (up to 64 frames) with one writev over the hijacked connection, the
// shared broadcast bytes uncopied; gorilla's WriteMessage would cost one
// write(2) per frame. gorilla still writes the control frames (ping, close,
// and, under a lock shared with the writer, the reader's pong and close
// replies). Memory of an idle connection: the reader runs on a goroutine
// of its own so that net/http's request buffers are released after the
// upgrade, gorilla keeps a 512-byte read buffer and no write buffer, message
// buffers are pooled, and the reader waits on a 2 KiB stack while the deep
// work (reading through gorilla, authentication, handlers) runs on shared
// workers (about 5.4 KB of heap and stack per idle connection,
// BenchmarkIdleConnMemory).
//
// Frames before authentication never reach the gateway (so no gateway rate
// limit sees them): each is answered unauthorized or invalid, bounded by the
// auth timeout and by the send queue, whose overflow closes with 1013 like
// any slow consumer.
//
// The package subdirectory client holds the Go client for the protocol.
package native
