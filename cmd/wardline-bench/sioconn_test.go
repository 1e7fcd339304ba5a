package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeSIOServer serves one Engine.IO WebSocket session at /socket.io/ and
// runs script on it after the open packet; what script returns is reported
// on the returned channel.
func fakeSIOServer(t *testing.T, script func(ws *websocket.Conn) error) (addr string, result <-chan error) {
	t.Helper()
	done := make(chan error, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/socket.io/" || r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("transport") != "websocket" {
			http.NotFound(w, r)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer func() { _ = ws.Close() }()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}`)); err != nil {
			done <- err
			return
		}
		done <- script(ws)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), done
}

// expectText reads one text message and checks it is want.
func expectText(ws *websocket.Conn, want string) error {
	_, b, err := ws.ReadMessage()
	if err != nil {
		return err
	}
	if string(b) != want {
		return errors.New("got " + string(b) + ", want " + want)
	}
	return nil
}

func TestSocketIOClientConnectsAnswersPingsAndReadsAcksAndPushes(t *testing.T) {
	addr, result := fakeSIOServer(t, func(ws *websocket.Conn) error {
		if err := expectText(ws, `40/chat,{"token":"tok"}`); err != nil {
			return err
		}
		for _, m := range []string{`2`, `42/chat,["connected",{"socketId":"s"}]`, `40/chat,{"sid":"s","pid":"p"}`} {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				return err
			}
		}
		if err := expectText(ws, `3`); err != nil {
			return err
		}
		if err := expectText(ws, `42/chat,2["room:join",{"roomId":"r"}]`); err != nil {
			return err
		}
		for _, m := range []string{`2`, `42/chat,["message:new",{"seq":1},"e.1"]`, `43/chat,2[{"success":true,"roomId":"r"}]`, `42/chat,["message:new",{"seq":2},"e.2"]`, `41/chat,`} {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				return err
			}
		}
		return expectText(ws, `3`)
	})
	ctx := context.Background()
	c, err := dialSIO(ctx, newDialer(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.authenticate(ctx, "tok"); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	if _, err := c.request(ctx, 2, "room:join", map[string]string{"roomId": "r"}); err != nil {
		t.Fatalf("room:join: %v", err)
	}
	f, err := c.next()
	if err != nil || string(f.Event) != "message:new" || string(f.Data) != `{"seq":2}` {
		t.Fatalf("next = %+v (event %q data %s), %v", f, f.Event, f.Data, err)
	}
	if _, err := c.next(); !errors.Is(err, errSIODisconnected) {
		t.Fatalf("after the server's DISCONNECT next = %v, want errSIODisconnected", err)
	}
	if err := <-result; err != nil {
		t.Fatalf("server side: %v", err)
	}
}

func TestSocketIOConnectErrorIsARefusal(t *testing.T) {
	addr, result := fakeSIOServer(t, func(ws *websocket.Conn) error {
		if _, _, err := ws.ReadMessage(); err != nil {
			return err
		}
		return ws.WriteMessage(websocket.TextMessage, []byte(`44/chat,{"message":"invalid token","data":{"code":"unauthorized"}}`))
	})
	ctx := context.Background()
	c, err := dialSIO(ctx, newDialer(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.authenticate(ctx, "bad"); !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("authenticate = %v, want a refusal naming the code", err)
	}
	if err := <-result; err != nil {
		t.Fatalf("server side: %v", err)
	}
}

func TestSocketIODialWithoutTheEndpointSaysSo(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := dialSIO(context.Background(), newDialer(), strings.TrimPrefix(srv.URL, "http://")); !errors.Is(err, errSIONotMounted) {
		t.Fatalf("dialSIO = %v, want errSIONotMounted", err)
	}
}
