package engineio_test

import (
	"io"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wardline/wardline/transport/engineio"
)

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

// BenchmarkBurst64 queues 64 shared packets on one WebSocket session per
// op, as a busy room does between two writer runs, and waits until the
// client has read them. write-syscalls/op counts the process's write
// system calls (the in-process client only reads).
func BenchmarkBurst64(b *testing.B) {
	const burst = 64
	opened := make(chan *engineio.Socket, 1)
	srv, err := engineio.NewServer(engineio.Config{OnConnection: func(s *engineio.Socket) { opened <- s }})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/engine.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.ReadMessage(); err != nil { // the open packet
		b.Fatal(err)
	}
	s := <-opened
	defer func() { s.Close(nil); <-s.Done() }()
	pkt := engineio.AppendMessage(nil, []byte(`2/chat,["message:new",{"messageId":"m-1","roomId":"ward-7.icu","senderId":"u-12","content":"Patient in bed 4 needs a repeat ECG","seq":812},"01J.a1b2"]`))
	read := make(chan error, 1)
	start, counted := writeSyscalls()
	b.ReportAllocs()
	for b.Loop() {
		go func() {
			for range burst {
				_, r, err := ws.NextReader()
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
			if err := s.SendPacket(pkt); err != nil {
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
