package socketio_test

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/wardline/wardline/transport/engineio"
	"github.com/wardline/wardline/transport/socketio"
)

// A gateway namespace: authenticate on connect, recover the session when
// the client brings back a valid pid, replay what it missed, and push
// events from the log with their offset as the last argument.
func ExampleServer() {
	srv, err := socketio.NewServer(socketio.Config{
		Engine: engineio.Config{
			AllowRequest: func(r *http.Request) error { return nil }, // origin check goes here
		},
	})
	if err != nil {
		panic(err)
	}
	verifyPID := func(pid string) bool { return pid != "" } // e.g. check an HMAC signature
	chat := srv.Of("/chat")
	chat.OnConnect(func(ctx context.Context, c *socketio.Conn, auth json.RawMessage) error {
		var a struct {
			Token string `json:"token"`
		}
		if json.Unmarshal(auth, &a) != nil || a.Token == "" {
			return &socketio.ConnectError{Message: "unauthorized", Data: map[string]string{"code": "unauthorized"}}
		}
		if r, ok := socketio.ParseRecovery(auth); ok && verifyPID(r.PID) {
			c.SetPID(r.PID) // same pid: the client sets socket.recovered = true
			// Replay the events after r.Offset here, each with its offset last:
			_ = c.Emit("message:new", map[string]string{"messageId": "m1"}, "offset-1")
		} else {
			c.SetPID("new-signed-pid")
		}
		return nil
	})
	chat.On("message:send", func(c *socketio.Conn, ev *socketio.Event) {
		_ = ev.Ack(map[string]any{"success": true})
	})
	// Broadcast: encode once, share the bytes.
	frame, _ := socketio.EncodeEvent("/chat", "message:new", map[string]string{"messageId": "m2"}, "offset-2")
	_ = frame // conn.SendEncoded(frame) for every recipient
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv) // serve mux with an http.Server; Shutdown both on SIGTERM
}
