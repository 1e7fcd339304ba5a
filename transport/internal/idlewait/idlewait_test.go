package idlewait_test

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardline/wardline/transport/internal/idlewait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestWaitReturnsWhenDataArrivesAndLeavesItToBeRead(t *testing.T) {
	client, server := pair(t)
	br := bufio.NewReaderSize(server, 512)
	returned := make(chan struct{})
	go func() {
		idlewait.Wait(br, server)
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("Wait returned before anything arrived")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := client.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return once data arrived")
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "hi" {
		t.Fatalf("read after Wait: %q, %v", got, err)
	}
}

func TestWaitReturnsAtOnceWhenTheReaderHoldsData(t *testing.T) {
	client, server := pair(t)
	br := bufio.NewReaderSize(server, 512)
	if _, err := client.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	if b, err := br.ReadByte(); err != nil || b != 'a' {
		t.Fatalf("ReadByte: %q %v", b, err)
	}
	// "b" is in br, not in the socket: Wait must not block on the socket.
	done := make(chan struct{})
	go func() {
		idlewait.Wait(br, server)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait blocked although the reader held data")
	}
}

func TestWaitEndsAtTheReadDeadline(t *testing.T) {
	_, server := pair(t)
	_ = server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	done := make(chan struct{})
	go func() {
		idlewait.Wait(bufio.NewReader(server), server)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait ignored the read deadline")
	}
}
