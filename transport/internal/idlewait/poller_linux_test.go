//go:build linux

package idlewait_test

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardline/wardline/transport/internal/idlewait"
)

func rawOf(t *testing.T, c net.Conn) syscall.RawConn {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// calls counts a handle's ready calls.
func calls() (chan struct{}, func()) {
	ch := make(chan struct{}, 16)
	return ch, func() { ch <- struct{}{} }
}

func expectCall(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("no ready call %s", what)
	}
}

func expectNoCall(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("ready called %s", what)
	case <-time.After(100 * time.Millisecond):
	}
}

// watched registers server with a new Poller, both undone at the end of
// the test, and returns the handle and its ready calls.
func watched(t *testing.T, server net.Conn) (*idlewait.Handle, chan struct{}) {
	t.Helper()
	p := idlewait.NewPoller()
	t.Cleanup(p.Stop)
	ch, ready := calls()
	h, err := p.Register(rawOf(t, server), ready)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, ch
}

func TestARegisteredSocketIsReportedOncePerArmWhileItHasDataToRead(t *testing.T) {
	client, server := pair(t)
	h, ch := watched(t, server)
	if _, err := client.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	expectNoCall(t, ch, "before the first Arm")
	if err := h.Arm(); err != nil {
		t.Fatal(err)
	}
	expectCall(t, ch, "after Arm with data waiting")
	expectNoCall(t, ch, "twice for one Arm")
	// Unread data is reported again at the next Arm.
	if err := h.Arm(); err != nil {
		t.Fatal(err)
	}
	expectCall(t, ch, "after a second Arm with the data still unread")
	buf := make([]byte, 2)
	if _, err := server.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := h.Arm(); err != nil {
		t.Fatal(err)
	}
	expectNoCall(t, ch, "with nothing to read")
	if _, err := client.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	expectCall(t, ch, "when more data arrives")
}

func TestThePeersCloseIsReportedAsReady(t *testing.T) {
	client, server := pair(t)
	h, ch := watched(t, server)
	if err := h.Arm(); err != nil {
		t.Fatal(err)
	}
	client.Close()
	expectCall(t, ch, "after the peer closed")
}

func TestArmFailsOnceTheSocketIsClosedOrTheHandleIs(t *testing.T) {
	_, server := pair(t)
	p := idlewait.NewPoller()
	defer p.Stop()
	raw := rawOf(t, server)
	h, err := p.Register(raw, func() {})
	if err != nil {
		t.Fatal(err)
	}
	server.Close()
	if err := h.Arm(); err == nil {
		t.Fatal("Arm of a closed socket succeeded")
	}
	h.Close()
	if err := h.Arm(); !errors.Is(err, idlewait.ErrStopped) {
		t.Fatalf("Arm of a closed handle: %v, want ErrStopped", err)
	}
}

func TestThePollerHoldsAGoroutineOnlyWhileASocketIsRegistered(t *testing.T) {
	_, server := pair(t)
	p := idlewait.NewPoller()
	defer p.Stop()
	before := goleak.IgnoreCurrent()
	for round := 0; round < 2; round++ { // it starts over after stopping
		h, err := p.Register(rawOf(t, server), func() {})
		if err != nil {
			t.Fatal(err)
		}
		if err := goleak.Find(before); err == nil {
			t.Fatal("no goroutine waits on the poller while a socket is registered")
		}
		h.Close()
		if err := goleak.Find(before); err != nil {
			t.Fatalf("round %d: the poller's goroutine outlived its last handle: %v", round, err)
		}
	}
}

func TestStopEndsTheGoroutineAndRefusesNewSockets(t *testing.T) {
	client, server := pair(t)
	p := idlewait.NewPoller()
	ch, ready := calls()
	h, err := p.Register(rawOf(t, server), ready)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Arm(); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if _, err := client.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	expectNoCall(t, ch, "after Stop")
	if err := h.Arm(); !errors.Is(err, idlewait.ErrStopped) {
		t.Fatalf("Arm after Stop: %v, want ErrStopped", err)
	}
	h.Close() // harmless after Stop
	if _, err := p.Register(rawOf(t, server), ready); !errors.Is(err, idlewait.ErrStopped) {
		t.Fatalf("Register after Stop: %v, want ErrStopped", err)
	}
}

func TestARegisterThatFailsOnAClosedSocketLeavesThePollerStoppable(t *testing.T) {
	_, server := pair(t)
	raw := rawOf(t, server)
	server.Close()
	p := idlewait.NewPoller()
	if _, err := p.Register(raw, func() {}); err == nil {
		t.Fatal("Register of a closed socket succeeded")
	}
	stopsInTime(t, p)
}

func TestRegisteringAndClosingAtOnceNeverStrandsThePollersGoroutine(t *testing.T) {
	p := idlewait.NewPoller()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				_, server := pair(t)
				raw := rawOf(t, server)
				if i%2 == 1 {
					server.Close() // Register fails, maybe while the goroutine starts or stops
				}
				if h, err := p.Register(raw, func() {}); err == nil {
					_ = h.Arm()
					h.Close()
				}
			}
		}()
	}
	wg.Wait()
	stopsInTime(t, p)
}

// stopsInTime fails the test when p.Stop does not return within 5 s.
func stopsInTime(t *testing.T, p *idlewait.Poller) {
	t.Helper()
	stopped := make(chan struct{})
	go func() {
		p.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop hangs")
	}
}
