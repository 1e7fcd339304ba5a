package engineio_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/engineio"
)

// payloadOf makes the i-th test message: its index then filler up to size,
// so a reader can tell a lost, reordered or corrupted frame apart.
func payloadOf(i, size int) []byte {
	b := fmt.Appendf(nil, "%06d:", i)
	for len(b) < size {
		b = append(b, byte('a'+len(b)%26))
	}
	return b[:max(size, 7)]
}

// sizeOf walks across the three header forms (7-bit, 16-bit, 64-bit
// length) and their boundaries; a "4" is added to text messages.
func sizeOf(i int) int {
	sizes := []int{7, 100, 124, 125, 126, 127, 300, 65534, 65535, 65536, 70000, 20}
	if i%89 == 0 {
		return sizes[(i/89)%len(sizes)]
	}
	return sizes[i%len(sizes)] % 1000
}

func TestManyQueuedPacketsArriveAsOneFrameEachIntactAndInOrder(t *testing.T) {
	const n = 3000
	h := newHarness(t, false, func(c *engineio.Config) {
		c.MaxQueueMessages = 10 * n
		c.MaxQueueBytes = 256 << 20
	})
	ws := h.dial("EIO=4&transport=websocket")
	parseOpen(t, readText(t, ws))
	s := recv(t, h.opened, "OnConnection")

	type want struct {
		typ  int
		data []byte
	}
	wants := make([]want, 0, n)
	for i := range n {
		p := payloadOf(i, sizeOf(i))
		var err error
		switch i % 3 {
		case 0:
			err = s.Send(p)
			wants = append(wants, want{websocket.TextMessage, append([]byte("4"), p...)})
		case 1:
			err = s.SendBinary(p)
			wants = append(wants, want{websocket.BinaryMessage, p})
		case 2:
			pkt := engineio.AppendMessage(nil, p)
			err = s.SendPacket(pkt)
			wants = append(wants, want{websocket.TextMessage, pkt})
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	// A ping while frames stream: the pong must not split a data frame.
	if err := ws.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i, w := range wants {
		typ, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if typ != w.typ || !bytes.Equal(got, w.data) {
			t.Fatalf("frame %d: type %d, %d bytes %.20q…, want type %d, %d bytes %.20q…", i, typ, len(got), got, w.typ, len(w.data), w.data)
		}
	}
}

func TestWebSocketPingIsAnsweredWithItsPayload(t *testing.T) {
	h := newHarness(t, true)
	ws := h.dial("EIO=4&transport=websocket")
	parseOpen(t, readText(t, ws))
	pong := make(chan string, 1)
	ws.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := ws.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4x")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "4x" { // reading runs the pong handler
		t.Fatalf("echo %q", got)
	}
	select {
	case got := <-pong:
		if got != "are you there" {
			t.Fatalf("pong %q", got)
		}
	default:
		t.Fatal("no pong before the echo")
	}
}

func TestAWebSocketCloseFrameIsEchoedWithItsCode(t *testing.T) {
	h := newHarness(t, false)
	ws := h.dial("EIO=4&transport=websocket")
	parseOpen(t, readText(t, ws))
	recv(t, h.opened, "OnConnection")
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if code := readClose(t, ws); code != 4000 {
		t.Fatalf("close reply code %d, want 4000", code)
	}
	recv(t, h.closed, "close")
}

func TestSocketsWhoseWriteLockIsHeldDoNotHoldUpOthersPackets(t *testing.T) {
	h := newHarness(t, false)
	// More such sockets than there are shared writers, so that a writer
	// waiting on any of them would leave none for the others.
	n := runtime.GOMAXPROCS(0) + 1
	held := make([]*websocket.Conn, n)
	unlocks := make([]func(), n)
	for i := range held {
		held[i] = h.dial("EIO=4&transport=websocket")
		parseOpen(t, readText(t, held[i]))
		s := recv(t, h.opened, "OnConnection")
		unlocks[i] = engineio.LockWrites(s)
		if err := s.Send([]byte("held")); err != nil {
			t.Fatal(err)
		}
	}
	ws := h.dial("EIO=4&transport=websocket")
	parseOpen(t, readText(t, ws))
	s := recv(t, h.opened, "OnConnection")
	start := time.Now()
	if err := s.Send([]byte("fast")); err != nil {
		t.Fatal(err)
	}
	got := readText(t, ws)
	took := time.Since(start)
	for _, unlock := range unlocks {
		unlock()
	}
	if got != "4fast" {
		t.Fatalf("got %q, want 4fast", got)
	}
	if took > 2*time.Second {
		t.Fatalf("a packet to a reading client took %v while others' write locks were held", took)
	}
	for i, c := range held {
		if got := readText(t, c); got != "4held" {
			t.Fatalf("held socket %d got %q, want 4held", i, got)
		}
	}
}

func TestAPushToAStreamingSocketIsHeldUntilCompanyButNeverAnotherPacket(t *testing.T) {
	const window = time.Second
	h := newHarness(t, false, func(c *engineio.Config) { c.CoalesceWindow = window })
	ws := h.dial("EIO=4&transport=websocket")
	parseOpen(t, readText(t, ws)) // just written: the socket is in a stream
	s := recv(t, h.opened, "OnConnection")
	time.Sleep(100 * time.Millisecond)

	// A packet that is not a push goes at once and takes the held push
	// with it, in order.
	start := time.Now()
	if err := s.PushPacket(engineio.AppendMessage(nil, []byte("push1"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Send([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "4push1" {
		t.Fatalf("got %q, want the held push first", got)
	}
	if got := readText(t, ws); got != "4reply" {
		t.Fatalf("got %q, want the reply", got)
	}
	if took := time.Since(start); took > window/2 {
		t.Errorf("the reply took %v, want it not held", took)
	}

	// Alone, a push waits out two windows (once the writer that wrote the
	// reply has gone: a push queued while it runs goes out with it).
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	if err := s.PushPacket(engineio.AppendMessage(nil, []byte("push2"))); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "4push2" {
		t.Fatalf("got %q, want push2", got)
	}
	if held := time.Since(start); held < 2*window-window/2 {
		t.Errorf("a lone push arrived after %v, want it held about %v", held, 2*window)
	}
}
