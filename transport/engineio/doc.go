// Package engineio is an Engine.IO protocol v4 server: the transport layer
// under Socket.IO. It owns sessions (sid), HTTP long-polling, WebSocket, the
// polling→WebSocket upgrade, the server-initiated heartbeat and maxPayload;
// it knows nothing about Socket.IO packets, namespaces or authentication.
//
// A Server is an http.Handler. The owner decides who may connect with
// Config.AllowRequest (refusal is HTTP 403 before any upgrade or session) and
// receives each new session in Config.OnConnection as a *Socket.
//
// Delivery model, chosen for fan-out of hundreds of thousands of messages per
// second on few cores:
//   - each Socket has a bounded send queue (messages and bytes); Send never
//     blocks, and an overflow closes the socket with ErrQueueFull (WebSocket
//     close 1013) so the owner can let the client resume from its offset;
//   - a socket has a WebSocket writer only while its queue is non-empty:
//     Send hands the socket to an idle writer goroutine of the Server (or
//     starts one), which drains the queue batch by batch and goes back to
//     wait for another socket (a writer idle for 250 ms exits);
//     each Engine.IO packet is one WebSocket frame, but the writer frames
//     them itself and writes a whole batch (up to 64 frames) with one writev,
//     where gorilla's WriteMessage costs a write(2) per frame;
//   - a long-polling GET takes everything queued and joins it in one response;
//   - one reader goroutine per WebSocket connection, started after the
//     upgrade so that the HTTP handler returns and net/http releases its
//     request buffers; gorilla keeps a 512-byte read buffer and no write
//     buffer, message buffers are pooled, and the reader waits for each
//     message in the poller (internal/idlewait) and has it read and handled
//     on a shared worker, so its own stack stays at 2 KiB: about 7.4 KB of
//     heap and stack per idle session (BenchmarkIdleConnMemory; 9.5 KB when
//     the reader read and handled messages itself);
//     message callbacks of one Socket never run concurrently;
//   - heartbeat timers are runtime timers, not goroutines.
//
// Bytes given to Send* are retained until written and never modified, so one
// encoded packet can be shared by many sockets.
//
// Wire behaviour follows the reference Node.js server (socketio/engine.io),
// including its error answers: HTTP 400 with {"code":N,"message":"..."} for
// an unknown transport (0), unknown sid (1), bad handshake method (2), bad
// request (3) and unsupported protocol version (5), and HTTP 403 with code 4
// when AllowRequest refuses.
package engineio
