// Package idlewait lets a WebSocket connection's reader goroutine wait for
// the next frame on the smallest goroutine stack.
//
// A goroutine's stack keeps its high-water size, and a reader blocked in
// gorilla's NextReader sits below a call chain that does not fit 2 KiB, so
// every idle connection held a 4 KiB (or, after authentication on the
// reader, 8 KiB) stack. The transports instead wait here, in the poller,
// with a few small frames, and hand each message to a shared worker that
// reads and handles it (workpool.Caller). For that the reader must know
// whether gorilla's read buffer already holds the next frame, so the
// buffer is made here (Hijacker) and handed to gorilla at the upgrade.
//
// On Linux an idle connection goes one step further and gives up its
// goroutine: its socket is watched by the transport's Poller (epoll, one
// goroutine for all of them), and a new reader starts when something
// arrives. Wait remains for where there is no Poller (other systems, TLS).
package idlewait

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"time"
)

// Hijacker wraps the ResponseWriter given to gorilla's Upgrader.Upgrade.
// Its Hijack hands gorilla the connection with a read buffer of Size
// bytes made here, which gorilla keeps as the connection's reader when the
// Upgrader's ReadBufferSize is 0 and Size is over 256 (it must also hold a
// control frame's 125-byte payload). BR is that reader after the upgrade.
type Hijacker struct {
	http.ResponseWriter
	Size int
	BR   *bufio.Reader
}

// Hijack implements http.Hijacker.
func (h *Hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("idlewait: response does not implement http.Hijacker")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Reader.Buffered() > 0 {
		// gorilla refuses this too; it must not go unnoticed in a reader
		// it does not see.
		_ = nc.Close()
		return nil, nil, errors.New("idlewait: client sent data before the handshake was complete")
	}
	h.BR = bufio.NewReaderSize(nc, h.Size)
	return nc, bufio.NewReadWriter(h.BR, brw.Writer), nil
}

// Wait returns once br holds data or nc has something to read (or an
// error, or its read deadline passed), without reading from nc. A nil br
// returns at once.
func Wait(br *bufio.Reader, nc net.Conn) {
	if br != nil && br.Buffered() == 0 {
		waitReadable(nc)
	}
}

// WaitReady is Wait for a plain socket (a *net.TCPConn) under a read
// deadline set for the purpose: it reports whether br or nc has something
// to read, false when the deadline passed first.
func WaitReady(br *bufio.Reader, nc net.Conn) bool {
	if br.Buffered() > 0 {
		return true
	}
	return waitReadable(nc)
}

// ParkAfter is how long a reader between messages waits in the runtime's
// poller before it parks its connection in a Poller. A message arriving
// within it is read at once; through the Poller it would wait for two
// goroutine hand-offs (the Poller's wake, then the new reader), which on a
// saturated machine put ~5 ms on the publishers' ack p50 at 100k
// deliveries/s. An idle connection parks after it. Short, because the
// goroutines of connections that just arrived (a reconnect storm) all live
// this long, and their stacks' memory stays with the process a while
// after: at one second, 10,000 connections opened at ~3,000/s left the
// server ~1 KiB per connection larger.
const ParkAfter = 200 * time.Millisecond
