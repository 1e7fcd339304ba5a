package socketio_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardline/wardline/transport/socketio"
)

type benchMessage struct {
	MessageID string `json:"messageId"`
	RoomID    string `json:"roomId"`
	SenderID  string `json:"senderId"`
	Content   string `json:"content"`
	Seq       uint64 `json:"seq"`
	CreatedAt string `json:"createdAt"`
}

var benchPayload = benchMessage{
	MessageID: "01J8Z3K6V6Q9ZB1N2M3P4Q5R6S", RoomID: "icu-4-north", SenderID: "nurse-17",
	Content: "Bed 12 needs a glucose check before lunch, please.", Seq: 4812, CreatedAt: "2025-01-02T03:04:05.678Z",
}

func BenchmarkEncodeEvent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := socketio.EncodeEvent("/chat", "message:new", benchPayload, "0000000000004812"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeEventRawJSON(b *testing.B) {
	raw, _ := json.Marshal(benchPayload)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := socketio.EncodeEvent("/chat", "message:new", json.RawMessage(raw), "0000000000004812"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePacket(b *testing.B) {
	text := []byte(`2/chat,42["message:send",{"roomId":"icu-4-north","content":"Bed 12 needs a glucose check before lunch, please.","clientMsgId":"c-991"}]`)
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := socketio.DecodePacket(text); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcast encodes one event per iteration and sends it to every
// connection of /chat over real WebSockets on loopback; raw clients count
// frames without allocating, so allocs/op is the server's. Every window
// iterations it waits until all clients received everything, so queues
// stay bounded and deliveries/s is what actually reached the sockets.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) { benchBroadcast(b, n) })
	}
}

func benchBroadcast(b *testing.B, n int) {
	const window = 64
	srv, err := socketio.NewServer(socketio.Config{})
	if err != nil {
		b.Fatal(err)
	}
	conns := make(chan *socketio.Conn, n)
	srv.Of("/chat").OnConnect(func(_ context.Context, c *socketio.Conn, _ json.RawMessage) error {
		conns <- c
		return nil
	})
	ts := httptest.NewServer(srv)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	}()
	addr := strings.TrimPrefix(ts.URL, "http://")
	clients := make([]*rawClient, n)
	targets := make([]*socketio.Conn, n)
	for i := range n {
		c, err := dialRaw(addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.conn.Close()
		clients[i] = c
		select {
		case targets[i] = <-conns:
		case <-time.After(10 * time.Second):
			b.Fatal("connection not accepted")
		}
		go c.drain()
	}
	waitAll := func(want int64) {
		deadline := time.Now().Add(30 * time.Second)
		for _, c := range clients {
			for c.frames.Load() < want {
				if time.Now().After(deadline) {
					b.Fatalf("client got %d frames, want %d", c.frames.Load(), want)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for b.Loop() {
		f, err := socketio.EncodeEvent("/chat", "message:new", benchPayload, "0000000000004812")
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range targets {
			if err := c.SendEncoded(f); err != nil {
				b.Fatal(err)
			}
		}
		sent++
		if sent%window == 0 {
			waitAll(int64(sent))
		}
	}
	waitAll(int64(sent))
	elapsed := time.Since(start)
	b.ReportMetric(float64(sent*n)/elapsed.Seconds(), "deliveries/s")
}

// rawClient is a minimal Socket.IO-over-WebSocket client that only counts
// the data frames it receives (and answers pings).
type rawClient struct {
	conn    net.Conn
	br      *bufio.Reader
	frames  atomic.Int64
	scratch [64]byte // frame headers and small payloads, so counting allocates nothing
}

func dialRaw(addr string) (*rawClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rawClient{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	_, err = io.WriteString(conn, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: "+addr+
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if err != nil {
		return nil, err
	}
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
		if line == "\r\n" {
			break
		}
	}
	if _, _, err := c.readFrame(); err != nil { // Engine.IO open
		return nil, err
	}
	if err := c.writeText("40/chat,"); err != nil {
		return nil, err
	}
	if _, payload, err := c.readFrame(); err != nil || !strings.HasPrefix(string(payload), "40/chat,") {
		return nil, fmt.Errorf("connect reply %q: %v", payload, err)
	}
	return c, nil
}

// readFrame reads one unmasked server frame; payloads of data frames longer
// than a ping are discarded without being kept.
func (c *rawClient) readFrame() (opcode byte, small []byte, err error) {
	hdr := c.scratch[:2]
	if _, err = io.ReadFull(c.br, hdr); err != nil {
		return 0, nil, err
	}
	opcode = hdr[0] & 0x0f
	n := int64(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err = io.ReadFull(c.br, c.scratch[:2]); err != nil {
			return 0, nil, err
		}
		n = int64(binary.BigEndian.Uint16(c.scratch[:2]))
	case 127:
		if _, err = io.ReadFull(c.br, c.scratch[:8]); err != nil {
			return 0, nil, err
		}
		n = int64(binary.BigEndian.Uint64(c.scratch[:8]))
	}
	if n <= int64(len(c.scratch)) {
		buf := c.scratch[:n]
		_, err = io.ReadFull(c.br, buf)
		return opcode, buf, err
	}
	_, err = c.br.Discard(int(n))
	return opcode, nil, err
}

// writeText writes a masked text frame (the mask key is zero, which leaves
// the payload as is).
func (c *rawClient) writeText(s string) error {
	frame := append([]byte{0x81, 0x80 | byte(len(s)), 0, 0, 0, 0}, s...)
	_, err := c.conn.Write(frame)
	return err
}

func (c *rawClient) drain() {
	for {
		op, payload, err := c.readFrame()
		if err != nil || op == 8 {
			return
		}
		if op == 1 && string(payload) == "2" {
			if c.writeText("3") != nil {
				return
			}
			continue
		}
		c.frames.Add(1)
	}
}
