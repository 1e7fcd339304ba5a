// Drives a Wardline Socket.IO server with the real socket.io-client.
// Usage: node socketio-client.mjs <base-url> <default|websocket|polling>
// The Go test transport/socketio/socketio_e2e_test.go starts the server
// (namespace /chat, see that file for what it does) and runs this script.
// It prints one JSON line with what it observed and exits 0, or prints the
// failed step on stderr and exits 1.
import { io } from "socket.io-client";

const [base, mode] = process.argv.slice(2);
const options = { auth: { token: "x" }, reconnectionDelay: 50, reconnectionDelayMax: 100 };
if (mode === "websocket") options.transports = ["websocket"];
if (mode === "polling") options.transports = ["polling"];

const timer = setTimeout(() => fail("timed out"), 20000);
const seen = { mode };

function fail(step) {
  console.error(`step failed: ${step}`, JSON.stringify(seen));
  process.exit(1);
}

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

function check(cond, step) {
  if (!cond) fail(step);
}

async function main() {
  const socket = io(`${base}/chat`, options);
  const welcome = once(socket, "welcome");
  await once(socket, "connect");
  seen.firstRecovered = socket.recovered;
  const [info, offset1] = await welcome;
  check(info.socketId === socket.id, "welcome carries the socket id");
  check(info.token === "x", "the server saw the auth token");
  check(offset1 === "off-1", "welcome ends with its offset");

  if (mode === "default") {
    // Polling first, then the upgrade to WebSocket.
    const engine = socket.io.engine;
    if (engine.transport.name !== "websocket") await once(engine, "upgrade");
  }
  seen.transport = socket.io.engine.transport.name;

  const echoed = await socket.timeout(5000).emitWithAck("echo", { n: 1, s: "héllo <&>" }, [true, null]);
  check(JSON.stringify(echoed) === JSON.stringify({ args: [{ n: 1, s: "héllo <&>" }, [true, null]] }), "emitWithAck echo");

  const file = once(socket, "file");
  const reversed = await socket.timeout(5000).emitWithAck("upload", Uint8Array.from([1, 2, 3]), { name: "a.bin" });
  check(Buffer.from(reversed).equals(Buffer.from([3, 2, 1])), "binary ack");
  const [fileBytes, fileName, offset2] = await file;
  check(Buffer.from(fileBytes).equals(Buffer.from([1, 2, 3])) && fileName === "a.bin", "binary event");
  check(offset2 === "off-2", "binary event ends with its offset");

  // Connection state recovery: drop the transport, let the client reconnect.
  const replay = once(socket, "replayed");
  socket.io.engine.close();
  await once(socket, "connect");
  seen.recovered = socket.recovered;
  const [offsetSeenByServer] = await replay;
  seen.offsetSeenByServer = offsetSeenByServer;
  check(socket.recovered === true, "socket.recovered after reconnect");
  check(offsetSeenByServer === "off-2", "the client sent its last offset");

  // A refused connection reports the server's message and data.
  const refused = io(`${base}/chat`, { ...options, auth: { token: "bad" }, reconnection: false });
  const [err] = await once(refused, "connect_error");
  check(err.message === "unauthorized" && err.data && err.data.code === "unauthorized", "connect_error");
  refused.close();

  const unknown = io(`${base}/nowhere`, { ...options, reconnection: false });
  const [err2] = await once(unknown, "connect_error");
  check(err2.message === "Invalid namespace", "unknown namespace");
  unknown.close();

  // A server DISCONNECT is final: the client does not reconnect.
  const gone = once(socket, "disconnect");
  socket.emit("kick-me");
  const [reason] = await gone;
  seen.disconnectReason = reason;
  check(reason === "io server disconnect", "server disconnect reason");
  check(socket.connected === false, "disconnected");

  clearTimeout(timer);
  socket.close();
  console.log(JSON.stringify(seen));
  process.exit(0);
}

main().catch((e) => fail(String(e && e.stack ? e.stack : e)));
