package native_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
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
}
