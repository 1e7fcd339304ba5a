package native_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/internal/idletest"
	"github.com/wardline/wardline/transport/internal/idlewait"
	"github.com/wardline/wardline/transport/native"
)

// idleConns is how many connections BenchmarkIdleConnMemory holds open:
// enough that per-connection costs dwarf noise, few enough for a shared
// 2-core machine (each needs two file descriptors in this process).
const idleConns = 2000

// rawDial opens a connection authenticated by an auth frame, as the load
// tool's clients do, with a bare TCP client, so that the memory measured
// is almost all the server's: the client side is one net.Conn and no
// goroutine.
func rawDial(addr, user string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	auth := fmt.Appendf(nil, `{"id":1,"event":"auth","data":{"token":"good:%s"}}`, user)
	// A client frame must be masked; a zero key leaves the payload as is.
	frame := append([]byte{0x81, 0x80 | byte(len(auth)), 0, 0, 0, 0}, auth...)
	fmt.Fprintf(c, "GET /ws/chat HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("upgrade: %v %v", resp, err)
	}
	// Only now: gorilla refuses a client that talks before the 101.
	if _, err := c.Write(frame); err != nil {
		c.Close()
		return nil, err
	}
	// The auth ack and the connected push: unmasked text frames < 64 KiB.
	for range 2 {
		if err := skipFrame(br); err != nil {
			c.Close()
			return nil, err
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func skipFrame(br *bufio.Reader) error {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:2]); err != nil {
		return err
	}
	n := int(hdr[1] & 0x7f)
	if n == 126 {
		if _, err := io.ReadFull(br, hdr[2:4]); err != nil {
			return err
		}
		n = int(hdr[2])<<8 | int(hdr[3])
	}
	_, err := io.CopyN(io.Discard, br, int64(n))
	return err
}

// settledMemory is heap and stack in use after enough collections for the
// runtime to shrink idle goroutine stacks.
func settledMemory() (heap, stack uint64) {
	var ms runtime.MemStats
	for range 4 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// BenchmarkIdleConnMemory opens idleConns authenticated connections that
// then stay idle, and reports the heap and stack they hold per connection
// (runtime.MemStats HeapInuse and StackInuse deltas). It measures memory,
// not time: run it with -benchtime=1x. The bare clients add about 0.3 KiB
// per connection (their net.Conn) to heap-B/conn.
func BenchmarkIdleConnMemory(b *testing.B) {
	h := newHarness(b, func(c *native.Config) { c.OnClose, c.OnConnect = nil, nil })
	addr := strings.TrimPrefix(h.hs.URL, "http://")
	for b.Loop() {
		heap0, stack0 := settledMemory()
		conns := make([]net.Conn, 0, idleConns)
		for i := range idleConns {
			c, err := rawDial(addr, fmt.Sprint("u", i))
			if err != nil {
				b.Fatalf("conn %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		for h.srv.Len() < idleConns {
			time.Sleep(10 * time.Millisecond) // the last upgrades are still registering
		}
		time.Sleep(idlewait.ParkAfter + 500*time.Millisecond) // idle readers park
		heap1, stack1 := settledMemory()
		b.ReportMetric(float64(int64(heap1)-int64(heap0))/idleConns, "heap-B/conn")
		b.ReportMetric(float64(int64(stack1)-int64(stack0))/idleConns, "stack-B/conn")
		b.ReportMetric(float64(int64(heap1+stack1)-int64(heap0+stack0))/idleConns, "B/conn")
		for _, c := range conns {
			c.Close()
		}
		for h.srv.Len() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// maskedFrame is a client frame with a zero masking key and a payload
// under 126 bytes.
func maskedFrame(op byte, payload string) []byte {
	return append([]byte{0x80 | op, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
}

func readText(br *bufio.Reader) (string, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:2]); err != nil {
		return "", err
	}
	n := int(hdr[1] & 0x7f)
	if n == 126 {
		if _, err := io.ReadFull(br, hdr[2:4]); err != nil {
			return "", err
		}
		n = int(hdr[2])<<8 | int(hdr[3])
	}
	b := make([]byte, n)
	_, err := io.ReadFull(br, b)
	return string(b), err
}

// The reader waits for frames outside gorilla and consumes whole pongs
// itself; requests that arrive in one segment with pongs, or behind a
// pong split across segments, must all still be answered, in order.
func TestRequestsArrivingWithPongsAreAllAnsweredInOrder(t *testing.T) {
	h := newHarness(t, nil)
	addr := strings.TrimPrefix(h.hs.URL, "http://")
	c, err := rawDial(addr, "u1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	const pong = 0xA
	var burst []byte
	burst = append(burst, maskedFrame(pong, "a")...)
	burst = append(burst, maskedFrame(websocket.TextMessage, `{"id":1,"event":"echo","data":1}`)...)
	burst = append(burst, maskedFrame(pong, "")...)
	burst = append(burst, maskedFrame(websocket.TextMessage, `{"id":2,"event":"echo","data":2}`)...)
	if _, err := c.Write(burst); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	readAck := func(id int) {
		t.Helper()
		got, err := readText(br)
		if err != nil {
			t.Fatalf("ack %d: %v", id, err)
		}
		if !strings.Contains(got, fmt.Sprintf(`"id":%d,`, id)) {
			t.Fatalf("frame %q, want the ack of request %d", got, id)
		}
	}
	// Both before anything else is sent: the second request is in the
	// server's read buffer, not in the socket, once the first is read.
	readAck(1)
	readAck(2)
	split := maskedFrame(pong, "split")
	if _, err := c.Write(split[:3]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the reader sees an incomplete pong
	rest := append(split[3:], maskedFrame(websocket.TextMessage, `{"id":3,"event":"echo","data":3}`)...)
	if _, err := c.Write(rest); err != nil {
		t.Fatal(err)
	}
	readAck(3)
}

func TestIdleConnectionsHoldNoGoroutineAndStillAnswer(t *testing.T) {
	h := newHarness(t, nil)
	// Let the harness's own goroutines settle before counting.
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	const n = 40
	conns := make([]*wsConn, n)
	for i := range conns {
		conns[i] = h.dial("chat", nil)
		conns[i].authenticate(fmt.Sprintf("u%d", i))
	}
	// Idle workers leave within a moment (workerIdle); the readers must
	// not be among what stays.
	idletest.ExpectFewGoroutines(t, base, n, "connections")
	// A parked connection wakes for its next request, and parks again.
	for round := 0; round < 3; round++ {
		for i, w := range conns {
			id := int64(10 + round)
			w.send(fmt.Sprintf(`{"id":%d,"event":"echo","data":{"n":%d}}`, id, i))
			if a := decodeAck(t, w.next(), id); !a.Success {
				t.Fatalf("round %d conn %d: ack %+v", round, i, a)
			}
		}
	}
}
