// Drives Wardline's /chat gateway with the real socket.io-client.
// Usage: node gateway-chat.mjs <base-url> <default|websocket>
// Environment: TOKEN_ALICE, TOKEN_BOB, TOKEN_CAROL (nurses), BAD_TOKEN and
// ROOM.
// The Go test transport/gateway/socketio_e2e_test.go starts the server and
// runs this script. Protocol on stdio: the script prints "DROP" when it wants
// the server to cut every connection (a network failure); the test cuts them,
// posts a message to ROOM through the HTTP API and writes "DROPPED". It
// prints "SHORT" when it wants a token of alice's that expires in about two
// seconds; the test answers "SHORT <token>". At the
// end the script prints one JSON line of what it saw and exits 0, or prints
// the failed step on stderr and exits 1.
import { io } from "socket.io-client";
import readline from "node:readline";

const [base, mode] = process.argv.slice(2);
const { TOKEN_ALICE, TOKEN_BOB, TOKEN_CAROL, BAD_TOKEN, ROOM } = process.env;
const url = `${base}/chat`;
const seen = { mode };
const timer = setTimeout(() => fail("timed out"), 30000);

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
  const [word, ...rest] = line.trim().split(" ");
  const w = lineWaiters.get(word);
  if (w) w(rest.join(" "));
});
// waitLine resolves with the rest of the next line whose first word is
// word.
function waitLine(word) {
  return new Promise((resolve) => lineWaiters.set(word, resolve));
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

  // Two sessions of one user: both receive the room's messages and DMs,
  // and the sender's sessions receive their own DM too.
  const alice2 = io(url, options(TOKEN_ALICE));
  await connected(alice2);
  const toBoth = [once(alice, "message:new"), once(alice2, "message:new")];
  const fromBob = await bob.timeout(5000).emitWithAck("message:send", { roomId: ROOM, content: "to both" });
  check(fromBob.success === true && fromBob.seq === 2, "bob's message:send ack");
  for (const p of toBoth) {
    const [m, o] = await p;
    check(m.messageId === fromBob.messageId && o === fromBob.offset, "every session of a member receives message:new");
  }
  const dms = [once(alice, "dm:new"), once(alice2, "dm:new"), once(bob, "dm:new")];
  const dm = await bob.timeout(5000).emitWithAck("dm:send", { toUserId: "alice", content: "call me" });
  check(dm.success === true && typeof dm.messageId === "string" && typeof dm.offset === "string", "dm:send ack");
  for (const p of dms) {
    const [d, o] = await p;
    check(d.messageId === dm.messageId && d.senderId === "bob" && d.toUserId === "alice" && o === dm.offset, "dm:new to both parties' sessions");
  }
  alice2.close();

  // Typing reaches the other members, with its offset.
  const typing = once(bob, "typing:user-typing");
  const typed = await alice.timeout(5000).emitWithAck("typing:start", { roomId: ROOM });
  check(typed.success === true, "typing:start ack");
  const [ty, tyOffset] = await typing;
  check(ty.roomId === ROOM && ty.userId === "alice" && typeof tyOffset === "string", "typing:user-typing payload");
  const stopped = once(bob, "typing:user-stopped");
  await alice.timeout(5000).emitWithAck("typing:stop", { roomId: ROOM });
  await stopped;

  // History, ascending by seq.
  const history = await bob.timeout(5000).emitWithAck("history:fetch", { roomId: ROOM });
  check(history.success === true && history.messages.length === 2 && history.messages[0].seq === 1 && history.messages[1].seq === 2, "history:fetch ascending");

  // Presence edges: carol joins, goes away (user:offline within 5 s) and
  // comes back (user:online), each seen by bob with an offset.
  const carol = io(url, { ...options(TOKEN_CAROL), reconnection: false });
  await connected(carol);
  const carolJoined = once(bob, "room:user-joined");
  check((await carol.timeout(5000).emitWithAck("room:join", { roomId: ROOM })).success === true, "carol joins");
  const [cj] = await carolJoined;
  check(cj.userId === "carol" && cj.roomId === ROOM, "room:user-joined payload");
  const offline = new Promise((resolve) => bob.on("user:offline", (p, o) => p.userId === "carol" && resolve([p, o])));
  const wentAt = Date.now();
  carol.close();
  const [, offOffset] = await offline;
  check(Date.now() - wentAt < 5000 && typeof offOffset === "string", "user:offline within 5 s, with an offset");
  const online = new Promise((resolve) => bob.on("user:online", (p, o) => p.userId === "carol" && resolve([p, o])));
  const carolBack = io(url, { ...options(TOKEN_CAROL), reconnection: false });
  await connected(carolBack);
  await online;
  const who = await bob.timeout(5000).emitWithAck("presence:query", { userIds: ["alice", "bob", "carol", "dave"] });
  check(who.success === true && JSON.stringify(who.online) === JSON.stringify(["alice", "bob", "carol"]), "presence:query");
  const carolLeft = once(bob, "room:user-left");
  check((await carolBack.timeout(5000).emitWithAck("room:leave", { roomId: ROOM })).success === true, "room:leave ack");
  const [cl] = await carolLeft;
  check(cl.userId === "carol" && cl.roomId === ROOM, "room:user-left payload");
  carolBack.close();

  // auth:refresh keeps the session and answers the new expiry.
  const refreshed = await alice.timeout(5000).emitWithAck("auth:refresh", { token: TOKEN_ALICE });
  check(refreshed.success === true && typeof refreshed.expiresAt === "string", "auth:refresh ack");

  // Connection state recovery after the server cuts the connections.
  check(bob.recovered === false, "a first connection is not recovered");
  const missed = once(bob, "message:new");
  const back = once(bob, "connect");
  console.log("DROP");
  await waitLine("DROPPED");
  await back;
  check(bob.recovered === true, "bob reconnects with socket.recovered === true");
  const [m2, offset2] = await missed;
  check(m2.content === "while you were away" && m2.seq === 3 && typeof offset2 === "string", "the missed message is replayed");
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
  console.log("SHORT");
  const short = io(url, options(await waitLine("SHORT")));
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
