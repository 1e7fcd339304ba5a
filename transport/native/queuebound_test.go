package native_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardline/wardline/transport/native"
)

// stallListener hands out connections whose writes can be stalled. A
// stalled write waits until the connection is released or its write
// deadline passes, as a write to a client that stopped reading waits on a
// full socket; unlike a real full socket, exactly what the writer took
// before the stall is known. (Its connections are not TCP connections, so
// the server writes them from a goroutine that may wait, writeLoop.)
type stallListener struct {
	net.Listener
	conns chan *stallConn
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &stallConn{Conn: c, blocked: make(chan struct{}, 1), release: make(chan struct{})}
	select {
	case l.conns <- sc:
	default:
	}
	return sc, nil
}

type stallConn struct {
	net.Conn
	stalled  atomic.Bool
	deadline atomic.Int64  // the write deadline, Unix ns; 0: none
	blocked  chan struct{} // a write has started waiting
	release  chan struct{} // closed: stalled writes go through
	once     sync.Once
}

func (c *stallConn) SetDeadline(t time.Time) error {
	c.setDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *stallConn) SetWriteDeadline(t time.Time) error {
	c.setDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallConn) setDeadline(t time.Time) {
	if t.IsZero() {
		c.deadline.Store(0)
	} else {
		c.deadline.Store(t.UnixNano())
	}
}

func (c *stallConn) Write(p []byte) (int, error) {
	if c.stalled.Load() {
		select {
		case c.blocked <- struct{}{}:
		default:
		}
		var expired <-chan time.Time
		if d := c.deadline.Load(); d != 0 {
			timer := time.NewTimer(time.Until(time.Unix(0, d)))
			defer timer.Stop()
			expired = timer.C
		}
		select {
		case <-c.release:
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		}
	}
	return c.Conn.Write(p)
}

func (c *stallConn) unstall() { c.once.Do(func() { close(c.release) }) }

func TestTheQueueBoundCountsTheBatchAWriterIsStuckWriting(t *testing.T) {
	frame := func(t *testing.T, n int) []byte {
		f, err := native.EncodePush("tick", map[string]any{"n": n, "pad": strings.Repeat("p", 1000)}, "")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	size := len(frame(t, 0))
	for _, tc := range []struct {
		name   string
		adjust func(*native.Config)
		// what Send accepts once the writer is stuck on the first frame
		wantAccepted int
	}{
		{"bound in frames", func(c *native.Config) { c.SendQueueMessages = 8 }, 7},
		{"bound in bytes", func(c *native.Config) { c.SendQueueMessages, c.SendQueueBytes = 1000, 4*size+size/2 }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := make(chan *stallConn, 1)
			h := newHarnessOn(t, tc.adjust, func(l net.Listener) net.Listener {
				return &stallListener{Listener: l, conns: ln}
			})
			client := h.dial("chat", nil)
			client.authenticate("stuck")
			conn := h.waitConnect().conn
			sc := <-ln
			t.Cleanup(sc.unstall) // before the harness's shutdown

			sc.stalled.Store(true)
			if err := conn.Send(frame(t, 0)); err != nil {
				t.Fatalf("first Send: %v", err)
			}
			select {
			case <-sc.blocked:
			case <-time.After(5 * time.Second):
				t.Fatal("the writer never wrote the first frame")
			}
			accepted := 0
			for i := 1; ; i++ {
				err := conn.Send(frame(t, i))
				if errors.Is(err, native.ErrSlowConsumer) {
					break
				}
				if err != nil {
					t.Fatalf("Send %d: %v", i, err)
				}
				if accepted++; accepted > 100 {
					t.Fatal("the queue never overflowed")
				}
			}
			if accepted != tc.wantAccepted {
				t.Fatalf("Send accepted %d frames while the writer was stuck on one, want %d", accepted, tc.wantAccepted)
			}

			// The stuck frame still arrives whole, then the 1013 close;
			// the queue behind it was dropped.
			sc.unstall()
			if f := client.next(); f.Event != "tick" || !strings.Contains(string(f.Data), `"n":0`) {
				t.Fatalf("got %s %s, want tick 0", f.Event, f.Data)
			}
			client.expectClose(native.CloseTryAgain)
			got := h.waitClose()
			if got.conn != conn || got.info.Code != native.CloseTryAgain || !errors.Is(got.info.Err, native.ErrSlowConsumer) {
				t.Fatalf("OnClose %+v, want 1013 with ErrSlowConsumer", got.info)
			}
		})
	}
}

func TestASendWaitBehindAStuckWriterGoesOnceTheWriterFinishes(t *testing.T) {
	ln := make(chan *stallConn, 1)
	h := newHarnessOn(t, func(c *native.Config) { c.SendQueueMessages = 1 }, func(l net.Listener) net.Listener {
		return &stallListener{Listener: l, conns: ln}
	})
	client := h.dial("chat", nil)
	client.authenticate("stuck")
	conn := h.waitConnect().conn
	sc := <-ln
	t.Cleanup(sc.unstall)

	sc.stalled.Store(true)
	pushTick(t, conn, 0)
	select {
	case <-sc.blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer never wrote the first frame")
	}
	second, err := native.EncodePush("tick", map[string]int{"n": 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- conn.SendWait(t.Context(), second) }()
	select {
	case err := <-done:
		t.Fatalf("SendWait returned %v while the only slot was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	sc.unstall()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("SendWait: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SendWait still waits after the writer finished")
	}
	for want := range 2 {
		if f := client.next(); f.Event != "tick" || string(f.Data) != fmt.Sprintf(`{"n":%d}`, want) {
			t.Fatalf("got %s %s, want tick %d", f.Event, f.Data, want)
		}
	}
}
