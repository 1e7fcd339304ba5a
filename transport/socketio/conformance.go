package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/wardline/wardline/transport/engineio"
)

// Settings the official test suites (socketio/engine.io-protocol and
// socketio/socket.io-protocol, test-suite/) expect from the server under test.
const (
	conformancePingInterval = 300 * time.Millisecond
	conformancePingTimeout  = 200 * time.Millisecond
	conformanceMaxPayload   = 1_000_000
	// conformanceConnectTimeout is twice the reference configuration's
	// 1000 ms: the suite's long-polling heartbeat case runs three 300 ms
	// ping cycles on a session that never joins a namespace, which leaves
	// about 100 ms of slack under 1000 ms, too little on a loaded machine.
	// No case needs the timeout itself: a raw client that sends no CONNECT
	// also sends no pong and is closed by the ping timeout at 500 ms.
	conformanceConnectTimeout = 2 * time.Second
	// conformanceAuthDelay separates the "auth" event from the CONNECT
	// reply. The suite awaits one WebSocket message at a time and its ws
	// client (8.5) emits every frame of one TCP read synchronously, so a
	// frame that arrives in the same read as the reply is missed. The
	// reference server writes the second packet only after the first
	// write's callback; this delay plays that part.
	conformanceAuthDelay = 50 * time.Millisecond
)

// ConformanceServer serves the echo behaviour the official protocol test
// suites expect on localhost:3000: at /engine.io/ an Engine.IO server that
// sends every message back, and at /socket.io/ a Socket.IO server whose
// namespaces "/" and "/custom" emit "auth" with the CONNECT payload, and
// where "/" answers "message" with "message-back" (same arguments,
// attachments included) and acknowledges "message-with-ack" with its
// arguments. It is what `wardline conformance` runs.
type ConformanceServer struct {
	mux    *http.ServeMux
	engine *engineio.Server
	sio    *Server
}

// NewConformanceServer builds the server; serve it with an http.Server.
func NewConformanceServer() (*ConformanceServer, error) {
	engCfg := engineio.Config{
		PingInterval: conformancePingInterval,
		PingTimeout:  conformancePingTimeout,
		MaxPayload:   conformanceMaxPayload,
	}
	echoCfg := engCfg
	echoCfg.OnConnection = func(s *engineio.Socket) {
		s.OnMessage(func(data []byte, binary bool) {
			if binary {
				_ = s.SendBinary(data)
			} else {
				_ = s.Send(data)
			}
		})
	}
	eng, err := engineio.NewServer(echoCfg)
	if err != nil {
		return nil, err
	}
	sio, err := NewServer(Config{Engine: engCfg, ConnectTimeout: conformanceConnectTimeout})
	if err != nil {
		return nil, err
	}
	echoAuth := func(_ context.Context, c *Conn, auth json.RawMessage) error {
		f := encodeRawEvent(c.Namespace(), "auth", []json.RawMessage{auth}, nil)
		time.AfterFunc(conformanceAuthDelay, func() { _ = c.send(f) }) // fails only once c is gone
		return nil
	}
	main := sio.Of("/")
	main.OnConnect(echoAuth)
	main.On("message", func(c *Conn, ev *Event) {
		_ = c.send(encodeRawEvent(c.Namespace(), "message-back", ev.Args, ev.Binary))
	})
	main.On("message-with-ack", func(c *Conn, ev *Event) {
		if ev.HasAck() && ev.acked.CompareAndSwap(false, true) {
			_ = c.send(encodeRawAck(c.Namespace(), ev.id, ev.Args, ev.Binary))
		}
	})
	sio.Of("/custom").OnConnect(echoAuth)

	mux := http.NewServeMux()
	mux.Handle("/engine.io/", eng)
	mux.Handle("/socket.io/", sio)
	return &ConformanceServer{mux: mux, engine: eng, sio: sio}, nil
}

// ServeHTTP routes /engine.io/ and /socket.io/.
func (cs *ConformanceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cs.mux.ServeHTTP(w, r)
}

// Shutdown closes the sessions of both servers.
func (cs *ConformanceServer) Shutdown(ctx context.Context) error {
	return errors.Join(cs.engine.Shutdown(ctx), cs.sio.Shutdown(ctx))
}
