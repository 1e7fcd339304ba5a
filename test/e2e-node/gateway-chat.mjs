// Drives Wardline's /chat gateway with the real socket.io-client.
// Usage: node gateway-chat.mjs <base-url> <default|websocket>
// Environment: TOKEN_ALICE, TOKEN_BOB (nurses), BAD_TOKEN, ROOM, and
// TOKEN_SHORT (alice, expiring about two seconds after the script starts).
// The Go test transport/gateway/socketio_e2e_test.go starts the server and
// runs this script. Protocol on stdio: the script prints "DROP" when it wants
// the server to cut every connection (a network failure); the test cuts them,
// posts a message to ROOM through the HTTP API and writes "DROPPED". At the
// end the script prints one JSON line of what it saw and exits 0, or prints
// the failed step on stderr and exits 1.
import { io } from "socket.io-client";
import readline from "node:readline";

const [base, mode] = process.argv.slice(2);
const { TOKEN_ALICE, TOKEN_BOB, BAD_TOKEN, ROOM, TOKEN_SHORT } = process.env;
const url = `${base}/chat`;
const seen = { mode };
const timer = setTimeout(() => fail("timed out"), 25000);

function options(token) {
  const o = { auth: { token }, reconnectionDelay: 500, reconnectionDelayMax: 800 };
  if (mode === "websocket") o.transports = ["websocket"];
  return o;
}

function fail(step) {
  console.error(`step failed: ${step}`, JSON.stringify(seen));
  process.exit(1);
}

function check(cond, step) {
  if (!cond) fail(step);
}

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

const lines = readline.createInterface({ input: process.stdin });
const lineWaiters = new Map();
lines.on("line", (line) => {
  const w = lineWaiters.get(line.trim());
  if (w) w();
});
function waitLine(text) {
  return new Promise((resolve) => lineWaiters.set(text, resolve));
}

async function connected(socket) {
  const hello = once(socket, "connected");
  await once(socket, "connect");
  const [info] = await hello;
  if (mode === "default" && socket.io.engine.transport.name !== "websocket") {
    await once(socket.io.engine, "upgrade");
  }
  return info;
}

async function main() {
  // A refused token: CONNECT_ERROR {message, data:{code}}.
  const bad = io(url, { ...options(BAD_TOKEN), reconnection: false });
  const [err] = await once(bad, "connect_error");
  check(err.data && err.data.code === "unauthorized" && typeof err.message === "string", "bad token gets connect_error unauthorized");
  seen.badToken = err.data.code;
  bad.close();

  const alice = io(url, options(TOKEN_ALICE));
  const info = await connected(alice);
  check(info.socketId === alice.id && info.userId === "alice" && /Z$/.test(info.timestamp), "connected payload");
  seen.transport = alice.io.engine.transport.name;

  const created = await alice.timeout(5000).emitWithAck("room:create", { roomId: ROOM, name: "E2E", private: false });
  check(created.success === true && created.roomId === ROOM, "room:create ack");

  const bob = io(url, options(TOKEN_BOB));
  await connected(bob);
  const joined = await bob.timeout(5000).emitWithAck("room:join", { roomId: ROOM });
  check(joined.success === true && joined.members.length === 2 && Array.isArray(joined.messages) && typeof joined.offset === "string", "room:join ack");

  const incoming = once(bob, "message:new");
  const sent = await alice.timeout(5000).emitWithAck("message:send", { roomId: ROOM, content: "hello", clientMsgId: "m-1" });
  check(sent.success === true && sent.seq === 1 && typeof sent.messageId === "string", "message:send ack");
  const [msg, offset] = await incoming;
  check(msg.messageId === sent.messageId && msg.content === "hello" && msg.senderId === "alice", "message:new payload");
  check(offset === sent.offset, "message:new carries the ack's offset as its last argument");

  const invalid = await alice.timeout(5000).emitWithAck("room:join", { roomId: "no such room" });
  check(invalid.success === false && invalid.error.code === "invalid", "invalid room id is answered invalid");
  const unknown = await alice.timeout(5000).emitWithAck("room:destroy", { roomId: ROOM });
  check(unknown.success === false && unknown.error.code === "invalid", "an unknown event is answered invalid");
  const exception = once(alice, "exception");
  alice.emit("room:join", { roomId: "nowhere" });
  const [exc] = await exception;
  check(exc.code === "not_found" && exc.event === "room:join", "a failure without ack is an exception");

  // Connection state recovery after the server cuts the connections.
  check(bob.recovered === false, "a first connection is not recovered");
  const missed = once(bob, "message:new");
  const back = once(bob, "connect");
  console.log("DROP");
  await waitLine("DROPPED");
  await back;
  check(bob.recovered === true, "bob reconnects with socket.recovered === true");
  const [m2, offset2] = await missed;
  check(m2.content === "while you were away" && m2.seq === 2 && typeof offset2 === "string", "the missed message is replayed");
  seen.recovered = bob.recovered;
  seen.missedSeq = m2.seq;

  // A resume attempt the server cannot honour starts fresh and says why.
  const foreign = io(url, { ...options(TOKEN_ALICE), auth: { token: TOKEN_ALICE, pid: alice._pid, offset: "another-epoch.1" } });
  const notice = once(foreign, "exception");
  await connected(foreign);
  const [n] = await notice;
  check(foreign.recovered === false && n.code === "invalid" && n.event === "resume", "an offset of another epoch is refused with a notice");
  foreign.close();

  // Automatic logoff at exp: auth:expiring, auth:expired {reason}, then a
  // server DISCONNECT (the client does not reconnect by itself).
  const short = io(url, options(TOKEN_SHORT));
  const expiring = once(short, "auth:expiring");
  const expired = once(short, "auth:expired");
  const gone = once(short, "disconnect");
  await once(short, "connect");
  const [warn] = await expiring;
  check(typeof warn.expiresAt === "string", "auth:expiring carries expiresAt");
  const [why] = await expired;
  check(why.reason === "token expired", "auth:expired says why");
  const [reason] = await gone;
  check(reason === "io server disconnect", "the server disconnects at exp");
  seen.expiry = reason;

  alice.close();
  bob.close();
  clearTimeout(timer);
  lines.close();
  console.log(JSON.stringify(seen));
}

main().catch((e) => fail(String(e && e.stack ? e.stack : e)));
