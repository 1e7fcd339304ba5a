//go:build unix

package wsframe_test

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardline/wardline/transport/wsframe"
)

// TestTryWriteToLeavesWhatAFullSocketRefusedForWriteRest fills a loopback
// socket whose peer does not read: TryWriteTo must return without waiting,
// and WriteRest must then deliver every byte it kept back, in order.
func TestTryWriteToLeavesWhatAFullSocketRefusedForWriteRest(t *testing.T) {
	conn, peer, raw := loopbackPair(t)

	var pool wsframe.Pool
	var sent [][]byte
	var w *wsframe.Writer
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the socket never filled")
		}
		w = pool.Get()
		for j := 0; j < wsframe.MaxFrames; j++ {
			p := []byte(fmt.Sprintf("%08d:", len(sent)) + strings.Repeat("y", 4000))
			sent = append(sent, p)
			w.Add(wsframe.OpBinary, nil, p)
		}
		done, err := w.TryWriteTo(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !done {
			break // w holds the rest
		}
		pool.Put(w)
	}

	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(peer)
		got <- buf.Bytes()
	}()
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := w.WriteRest(conn); err != nil {
		t.Fatal(err)
	}
	pool.Put(w)
	conn.Close()
	ops, payloads := parseFrames(t, <-got)
	if len(payloads) != len(sent) {
		t.Fatalf("%d frames arrived, want %d", len(payloads), len(sent))
	}
	for i := range payloads {
		if ops[i] != wsframe.OpBinary || !bytes.Equal(payloads[i], sent[i]) {
			t.Fatalf("frame %d corrupted or out of order", i)
		}
	}
}

// BenchmarkTryWriteTo is a shared writer's write of one connection: two
// pushes in one writev on a loopback socket whose peer drains it.
func BenchmarkTryWriteTo(b *testing.B) {
	conn, peer, raw := loopbackPair(b)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 64<<10)
		for {
			if _, err := peer.Read(buf); err != nil {
				return
			}
		}
	}()
	defer func() { peer.Close(); <-drained }()
	push := []byte(`{"event":"message:new","data":{"messageId":"m-1","roomId":"ward-7.icu","content":"Patient in bed 4 needs a repeat ECG"},"offset":"01J.a1b2"}`)
	var pool wsframe.Pool
	b.ReportAllocs()
	b.SetBytes(int64(2 * len(push)))
	for b.Loop() {
		w := pool.Get()
		w.Add(wsframe.OpText, nil, push)
		w.Add(wsframe.OpText, nil, push)
		done, err := w.TryWriteTo(raw)
		if err != nil {
			b.Fatal(err)
		}
		if !done {
			_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := w.WriteRest(conn); err != nil {
				b.Fatal(err)
			}
		}
		pool.Put(w)
	}
}

// loopbackPair connects two TCP sockets on 127.0.0.1 and returns the
// dialled one, its peer and the dialled one's RawConn; the test's cleanup
// closes both.
func loopbackPair(tb testing.TB) (conn, peer net.Conn, raw syscall.RawConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept() // nil on failure
		accepted <- c
	}()
	conn, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if peer = <-accepted; peer == nil {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { peer.Close() })
	if raw, err = conn.(*net.TCPConn).SyscallConn(); err != nil {
		tb.Fatal(err)
	}
	return conn, peer, raw
}
