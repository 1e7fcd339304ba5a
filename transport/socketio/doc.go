// Package socketio is the Socket.IO protocol v5 layer (the protocol of
// Socket.IO v3 and v4 clients) over package engineio: the packet codec,
// namespaces with a connect hook, per-event dispatch with acknowledgements,
// emitting, binary attachments, and the wire side of connection state
// recovery. It makes no authentication or domain decisions: the owner does,
// in Namespace.OnConnect and the event handlers.
//
// # Sending to many connections
//
// Encode once with EncodeEvent and hand the Frame to Conn.SendEncoded of
// every recipient: the bytes are shared. Sends never block; each Engine.IO
// session has a bounded queue, and overflowing it closes that session with
// engineio.ErrQueueFull (WebSocket close 1013).
//
// # Connection state recovery (socket.recovered === true)
//
// socket.io-client v4.8 does this, and nothing else (socket.js):
//
//   - On a CONNECT reply whose data has a "pid", it stores it:
//     recovered = (pid && previousPid === pid); _pid = pid.
//   - For every event it receives while it has a pid, if the last argument is
//     a string, it stores it as _lastOffset.
//   - On every later CONNECT it sends {"pid": _pid, "offset": _lastOffset}
//     merged with its auth object (auth wins on a clash).
//
// So the owner must, in its ConnectHandler:
//
//  1. read {pid, offset} with ParseRecovery(auth);
//  2. if the pid is valid (the owner's to verify: Wardline signs it so any
//     node can check it without shared memory) call c.SetPID(samePid) and
//     replay what the client missed after offset with Emit/SendEncoded (held
//     and sent right after the CONNECT reply, in order): the client then sees
//     socket.recovered === true;
//  3. otherwise call c.SetPID(newPid) for a fresh session (recovered is false).
//
// and every event pushed from the log must carry its offset, a string, as the
// last argument. The socket id (c.ID()) is new on every connection; the
// client's recovered flag does not depend on it.
//
// Wire behaviour follows the reference server (socketio/socket.io with
// socket.io-parser): a malformed packet closes the whole connection, an event
// for a namespace the client has not joined is dropped, and a CONNECT to an
// unknown namespace gets CONNECT_ERROR {"message":"Invalid namespace"}.
package socketio
