package engineio_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/transport/engineio"
	"github.com/wardline/wardline/transport/internal/idlewait"
)

// idleConns is how many sessions BenchmarkIdleConnMemory holds open:
// enough that per-connection costs dwarf noise, few enough for a shared
// 2-core machine (each needs two file descriptors in this process).
const idleConns = 2000

// rawDial opens a WebSocket session with a bare TCP client (one net.Conn,
// no goroutine, so that the memory measured is almost all the server's),
// sends one message, as a Socket.IO client sends its CONNECT, and reads
// the open packet and the answer.
func rawDial(addr string, i int) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("upgrade: %v %v", resp, err)
	}
	msg := fmt.Appendf(nil, `40{"token":"eyJhbGciOiJIUzI1NiJ9.%d","pid":"x","offset":"01J.1"}`, i)
	// A client frame must be masked; a zero key leaves the payload as is.
	frame := append([]byte{0x81, 0x80 | byte(len(msg)), 0, 0, 0, 0}, msg...)
	if _, err := c.Write(frame); err != nil {
		c.Close()
		return nil, err
	}
	for range 2 { // the open packet and the answer
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

// BenchmarkIdleConnMemory opens idleConns WebSocket sessions, each of which
// sends one message that the owner decodes with encoding/json and answers
// (as Socket.IO's CONNECT), then stays idle; it reports the heap and stack
// they hold per connection (runtime.MemStats HeapInuse and StackInuse
// deltas). It measures memory, not time: run it with -benchtime=1x. The
// bare clients add about 0.3 KiB per connection to heap-B/conn.
func BenchmarkIdleConnMemory(b *testing.B) {
	srv, err := engineio.NewServer(engineio.Config{
		PingInterval: time.Hour, // idle means idle: no heartbeat traffic while measuring
		PingTimeout:  time.Minute,
		OnConnection: func(s *engineio.Socket) {
			s.OnMessage(func(data []byte, _ bool) {
				var v map[string]any
				if json.Unmarshal(data[1:], &v) == nil {
					_ = s.Send([]byte(`0{"sid":"abc"}`))
				}
			})
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	for b.Loop() {
		heap0, stack0 := settledMemory()
		conns := make([]net.Conn, 0, idleConns)
		for i := range idleConns {
			c, err := rawDial(addr, i)
			if err != nil {
				b.Fatalf("conn %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		time.Sleep(idlewait.ParkAfter + 500*time.Millisecond) // idle readers park
		heap1, stack1 := settledMemory()
		b.ReportMetric(float64(int64(heap1)-int64(heap0))/idleConns, "heap-B/conn")
		b.ReportMetric(float64(int64(stack1)-int64(stack0))/idleConns, "stack-B/conn")
		b.ReportMetric(float64(int64(heap1+stack1)-int64(heap0+stack0))/idleConns, "B/conn")
		for _, c := range conns {
			c.Close()
		}
		for srv.Len() > 0 {
			time.Sleep(10 * time.Millisecond) // the readers are still noticing the closes
		}
	}
}
