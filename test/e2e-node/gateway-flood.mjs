// Floods Wardline's /chat gateway with the real socket.io-client.
// Usage: node gateway-flood.mjs <base-url> <default|websocket>
// Environment: TOKEN (a nurse). The Go test in
// transport/gateway/socketio_e2e_test.go starts a server with a tiny rate
// limit and runs this script. It sends acked requests one after another
// until the server disconnects it, and prints one JSON line of what it
// saw: the acks in order, the exception, and the disconnect reason. It
// exits 1 with the failed step on stderr otherwise.
import { io } from "socket.io-client";

const [base, mode] = process.argv.slice(2);
const seen = { mode, acks: [] };
const timer = setTimeout(() => fail("timed out"), 15000);

function fail(step) {
  console.error(`step failed: ${step}`, JSON.stringify(seen));
  process.exit(1);
}

const options = { auth: { token: process.env.TOKEN }, reconnection: false };
if (mode === "websocket") options.transports = ["websocket"];
const socket = io(`${base}/chat`, options);
socket.on("exception", (e) => {
  seen.exception = e;
});
const gone = new Promise((resolve) => socket.on("disconnect", resolve));
socket.on("connect_error", (e) => fail(`connect_error ${e.message}`));

async function main() {
  await new Promise((resolve) => socket.once("connect", resolve));
  let disconnected = false;
  gone.then(() => {
    disconnected = true;
  });
  for (let i = 0; i < 10000 && !disconnected; i++) {
    try {
      const ack = await socket.timeout(1000).emitWithAck("presence:query", { userIds: ["alice"] });
      seen.acks.push(ack.success ? "ok" : ack.error.code);
    } catch {
      break; // no ack: the server disconnected meanwhile
    }
  }
  seen.reason = await gone;
  clearTimeout(timer);
  console.log(JSON.stringify(seen));
  process.exit(0);
}

main().catch((e) => fail(String(e && e.stack ? e.stack : e)));
