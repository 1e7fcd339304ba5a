package socketio_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/socketio"
)

// The official suites run against `wardline conformance` by hand (they are
// fetched, not vendored); this test pins the behaviour they rely on.
func TestConformanceServerEchoesAsTheSuitesExpect(t *testing.T) {
	cs, err := socketio.NewConformanceServer()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(cs)
	httpClient := &http.Client{Transport: &http.Transport{}}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := cs.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		httpClient.CloseIdleConnections()
		ts.Close()
	}()

	resp, err := httpClient.Get(ts.URL + "/engine.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"pingInterval":300,"pingTimeout":200,"maxPayload":1000000`) {
		t.Errorf("engine.io handshake %s", body)
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(body[1:], &open); err != nil {
		t.Fatalf("open packet %s: %v", body, err)
	}
	// Leave as a client does, so Shutdown need not wait for a next poll.
	resp, err = httpClient.Post(ts.URL+"/engine.io/?EIO=4&transport=polling&sid="+open.SID, "text/plain", strings.NewReader("1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/engine.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	eio := &client{t: t, ws: ws}
	eio.read() // open
	eio.send("4hello")
	if got := eio.read(); got != "4hello" {
		t.Errorf("engine.io echo %q", got)
	}

	ws2, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.Close()
	sio := &client{t: t, ws: ws2}
	sio.read() // open
	sio.send(`40/custom,{"token":"abc"}`)
	parseConnect(t, sio.read(), "40/custom,")
	if got := sio.read(); got != `42/custom,["auth",{"token":"abc"}]` {
		t.Errorf("auth echo %s", got)
	}
	sio.send("40")
	parseConnect(t, sio.read(), "40")
	if got := sio.read(); got != `42["auth",{}]` {
		t.Errorf("auth echo %s", got)
	}
	sio.send(`452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	sio.sendBinary([]byte{1, 2, 3})
	sio.sendBinary([]byte{4, 5, 6})
	if got := sio.read(); got != `462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]` {
		t.Errorf("binary ack %s", got)
	}
	for _, want := range []string{"\x01\x02\x03", "\x04\x05\x06"} {
		if typ, b := sio.readAny(); typ != websocket.BinaryMessage || string(b) != want {
			t.Errorf("attachment %d %x", typ, b)
		}
	}
	sio.send(`42["message",1,"2",{"3":[true]}]`)
	if got := sio.read(); got != `42["message-back",1,"2",{"3":[true]}]` {
		t.Errorf("message-back %s", got)
	}
	sio.send("40/random")
	if got := sio.read(); got != `44/random,{"message":"Invalid namespace"}` {
		t.Errorf("unknown namespace %s", got)
	}
}
