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
