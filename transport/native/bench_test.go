package native_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/native"
)

var benchFrame = []byte(`{"id":1234,"event":"message:send","data":{"roomId":"ward-7.icu","content":"Patient in bed 4 needs a repeat ECG at 14:00","clientMsgId":"c-88f1"}}`)

func BenchmarkDecodeRequest(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchFrame)))
	for b.Loop() {
		f, err := native.DecodeRequest(benchFrame)
		if err != nil || f.Event != "message:send" {
			b.Fatal(f, err)
		}
	}
}

// BenchmarkDecodeRequestEncodingJSON is the reflection-based baseline the
// hand-written decoder replaces.
func BenchmarkDecodeRequestEncodingJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchFrame)))
	for b.Loop() {
		var f struct {
			ID    *int64          `json:"id"`
			Event string          `json:"event"`
			Data  json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(benchFrame, &f); err != nil || f.Event != "message:send" {
			b.Fatal(f, err)
		}
	}
}

func BenchmarkEncodePush(b *testing.B) {
	data := json.RawMessage(`{"messageId":"m-1","roomId":"ward-7.icu","senderId":"u-12","content":"Patient in bed 4 needs a repeat ECG","seq":812,"createdAt":"2025-01-02T03:04:05.678Z"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := native.EncodePush("message:new", data, "01J.a1b2"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcast1000 encodes one push and Sends it to 1,000 connected
// clients per op, and waits until every client has read it. The clients run
// in-process, so allocs/op includes their reads (gorilla allocates per
// message read) as well as the server's queueing and writing.
func BenchmarkBroadcast1000(b *testing.B) {
	const conns = 1000
	var mu sync.Mutex
	var server []*native.Conn
	all := make(chan struct{})
	h := newHarness(b, func(c *native.Config) {
		c.OnClose = nil // the harness's buffered channel is for tests with few connections
		c.OnConnect = func(_ context.Context, conn *native.Conn, _ string) {
			mu.Lock()
			server = append(server, conn)
			if len(server) == conns {
				close(all)
			}
			mu.Unlock()
		}
	})
	var delivered sync.WaitGroup
	var readers sync.WaitGroup
	hdr := http.Header{"Authorization": {"Bearer good:bench"}}
	clients := make([]*websocket.Conn, 0, conns)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
		readers.Wait()
	}()
	for i := 0; i < conns; i++ {
		c, _, err := websocket.DefaultDialer.Dial(h.url("chat"), hdr)
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		clients = append(clients, c)
		// Read the connected push before counting deliveries.
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				_, r, err := c.NextReader()
				if err != nil {
					return
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					return
				}
				delivered.Done()
			}
		}()
	}
	<-all
	data := json.RawMessage(`{"messageId":"m-1","roomId":"ward-7.icu","senderId":"u-12","content":"Patient in bed 4 needs a repeat ECG","seq":812,"createdAt":"2025-01-02T03:04:05.678Z"}`)
	cpu0 := processCPU()
	b.ReportAllocs()
	for b.Loop() {
		delivered.Add(conns)
		frame, err := native.EncodePush("message:new", data, "01J.a1b2")
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range server {
			if err := c.Send(frame); err != nil {
				b.Fatal(err)
			}
		}
		delivered.Wait()
	}
	b.ReportMetric(float64(b.N*conns)/b.Elapsed().Seconds(), "events/s")
	// CPU time rather than wall time: on a shared machine it is what a
	// change to the write path moves. It includes the in-process clients'
	// reads, the same for any server-side variant.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*conns), "cpu-ns/delivery")
}

// processCPU is the process's user+system CPU time in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// writeSyscalls reads the process's count of write system calls (write,
// writev, …) from /proc/self/io; ok is false where that is not available.
func writeSyscalls() (n int64, ok bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "syscw: "); found {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// BenchmarkBurst64 queues 64 pushes on one connection per op, as a busy
// room does between two writer runs, and waits until the client has read
// them. write-syscalls/op counts the whole process's write system calls
// (the in-process client only reads), so it shows how many the server
// needed for the 64 frames.
func BenchmarkBurst64(b *testing.B) {
	const burst = 64
	h := newHarness(b, nil)
	w := h.dial("chat", http.Header{"Authorization": {"Bearer good:bench"}})
	if _, _, err := w.c.ReadMessage(); err != nil { // the connected push
		b.Fatal(err)
	}
	conn := h.waitConnect().conn
	read := make(chan error, 1)
	frame, err := native.EncodePush("message:new", json.RawMessage(`{"messageId":"m-1","roomId":"ward-7.icu","senderId":"u-12","content":"Patient in bed 4 needs a repeat ECG","seq":812}`), "01J.a1b2")
	if err != nil {
		b.Fatal(err)
	}
	start, counted := writeSyscalls()
	b.ReportAllocs()
	for b.Loop() {
		go func() {
			for range burst {
				_, r, err := w.c.NextReader()
				if err == nil {
					_, err = io.Copy(io.Discard, r)
				}
				if err != nil {
					read <- err
					return
				}
			}
			read <- nil
		}()
		for range burst {
			if err := conn.Send(frame); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-read; err != nil {
			b.Fatal(err)
		}
	}
	if end, ok := writeSyscalls(); ok && counted {
		b.ReportMetric(float64(end-start)/float64(b.N), "write-syscalls/op")
	}
	b.ReportMetric(float64(b.N*burst)/b.Elapsed().Seconds(), "events/s")
}
