package native_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/native"
)

// payloadOf makes the i-th test frame: its index then filler up to size,
// so a reader can tell a lost, reordered or corrupted frame apart.
func payloadOf(i, size int) []byte {
	b := fmt.Appendf(nil, "%06d:", i)
	for len(b) < size {
		b = append(b, byte('a'+len(b)%26))
	}
	return b[:max(size, 7)]
}

// sizeOf walks across the three header forms (7-bit, 16-bit, 64-bit
// length) and their boundaries.
func sizeOf(i int) int {
	sizes := []int{7, 100, 125, 126, 127, 300, 65535, 65536, 70000, 20}
	if i%97 == 0 {
		return sizes[(i/97)%len(sizes)]
	}
	return sizes[i%len(sizes)] % 1000
}

func TestManyQueuedFramesArriveIntactAndInOrder(t *testing.T) {
	const frames = 3000
	h := newHarness(t, func(c *native.Config) {
		c.SendQueueMessages = 100_000
		c.SendQueueBytes = 64 << 20
	})
	w := h.dial("chat", http.Header{"Authorization": {"Bearer good:u1"}})
	if f := w.next(); f.Event != "connected" {
		t.Fatalf("first frame %+v, want connected", f)
	}
	conn := h.waitConnect().conn

	// Queue everything before the client reads, so the writer drains
	// large batches, then once more while it reads.
	want := make([][]byte, frames)
	for i := range want {
		want[i] = payloadOf(i, sizeOf(i))
	}
	for _, p := range want[:frames/2] {
		if err := conn.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		for _, p := range want[frames/2:] {
			if err := conn.SendWait(context.Background(), p); err != nil {
				return // the test has failed and closed the connection
			}
		}
	}()
	// A ping while frames stream: the pong must not split a data frame.
	if err := w.c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_ = w.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range want {
		typ, got, err := w.c.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if typ != websocket.TextMessage || !bytes.Equal(got, want[i]) {
			t.Fatalf("frame %d: type %d, %d bytes %.20q…, want %d bytes %.20q…", i, typ, len(got), got, len(want[i]), want[i])
		}
	}
}

func TestPingIsAnsweredWithItsPayload(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.authenticate("u1")
	pong := make(chan string, 1)
	w.c.SetPongHandler(func(s string) error { pong <- s; return nil })
	// The longest control payload must fit the server's small read buffer.
	for _, payload := range []string{"are you there", strings.Repeat("p", 125)} {
		if err := w.c.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		w.echoes(1) // reading runs the pong handler
		select {
		case got := <-pong:
			if got != payload {
				t.Fatalf("pong %q, want %q", got, payload)
			}
		default:
			t.Fatal("no pong before the ack")
		}
	}
}

func TestAClientCloseIsEchoedWithItsCode(t *testing.T) {
	h := newHarness(t, nil)
	w := h.dial("chat", nil)
	w.authenticate("u1")
	msg := websocket.FormatCloseMessage(4000, "bye")
	if err := w.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	ce := w.expectClose(4000)
	if ce.Text != "" {
		t.Fatalf("close reply text %q", ce.Text)
	}
	h.waitClose()
}

// Over TLS the writer cannot writev the socket and copies a batch into one
// buffer for a single Write instead; the frames must be the same.
func TestQueuedFramesArriveIntactOverTLS(t *testing.T) {
	const frames = 500
	connects := make(chan *native.Conn, 1)
	srv, err := native.NewServer(native.Config{
		Namespaces: []string{"chat"},
		Authenticate: func(*http.Request) (native.Session, error) {
			return native.Session{UserID: "u1"}, nil
		},
		OnAuth: func(context.Context, *native.Conn, string, string) (native.Session, error) {
			return native.Session{}, native.ErrNoCredentials
		},
		OnConnect: func(_ context.Context, c *native.Conn, _ string) { connects <- c },
		OnEvent: func(context.Context, *native.Conn, string, json.RawMessage) (any, error) {
			return nil, nil
		},
		SendQueueMessages: 10 * frames,
		SendQueueBytes:    64 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws/{namespace}", srv)
	ts := httptest.NewTLSServer(mux)
	defer ts.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	d := websocket.Dialer{TLSClientConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig}
	ws, _, err := d.Dial("wss"+strings.TrimPrefix(ts.URL, "https")+"/ws/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil { // the connected push
		t.Fatal(err)
	}
	conn := <-connects
	want := make([][]byte, frames)
	for i := range want {
		want[i] = payloadOf(i, sizeOf(i))
		if err := conn.Send(want[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range want {
		typ, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if typ != websocket.TextMessage || !bytes.Equal(got, want[i]) {
			t.Fatalf("frame %d: type %d, %d bytes, want %d bytes", i, typ, len(got), len(want[i]))
		}
	}
}
