// Package wsframe writes a batch of server-to-client WebSocket frames in one
// system call. Both WebSocket transports (native and Engine.IO) queue frames
// per connection; gorilla/websocket's WriteMessage flushes every frame with
// its own write(2), which was ~60% of the server's CPU at 50k deliveries/s.
// A Writer frames the queued payloads itself (RFC 6455 section 5.2, unmasked,
// final frames) and hands headers and payloads to one writev, without copying
// the payloads, which are often broadcast bytes shared by many connections.
//
// The caller must make sure nothing else writes data frames to the
// connection meanwhile (control frames written whole by one Write are fine:
// the runtime never interleaves two writes on one socket).
package wsframe

import (
	"encoding/binary"
	"net"
	"sync"
)

// MaxFrames bounds the frames of one Writer batch. The kernel's limit is
// 1024 iovecs, but the bound matters for memory: the runtime keeps each
// socket's largest iovec array for reuse (16 bytes per iovec, two per
// frame), so a burst of 1,000 frames would leave 32 KiB on an idle
// connection. 64 frames per system call keeps that at 2 KiB and still cuts
// the system calls of a burst 64-fold.
const MaxFrames = 64

// Opcodes of RFC 6455 section 5.2.
const (
	OpText   byte = 0x1
	OpBinary byte = 0x2
)

const (
	finBit = 0x80
	// maxHeader is a frame header with a 64-bit length plus a short prefix.
	maxHeader = 10 + 2
	// maxPooledFlat keeps a rare huge batch's copy buffer out of the pool.
	maxPooledFlat = 64 << 10
)

type frame struct {
	hdrEnd int // end of this frame's header (and prefix) in hdr
	data   []byte
}

// Writer collects at most MaxFrames frames and writes them at once. It is
// not safe for concurrent use; get one from a Pool per batch.
type Writer struct {
	hdr    []byte
	frames []frame
	bufs   net.Buffers // header and payload slices of the batch
	vec    net.Buffers // what WriteTo consumes; the backing array is bufs'
	flat   []byte      // for connections that cannot writev (TLS): one copy, one Write
}

// Pool keeps Writers between batches, so an idle connection holds none.
type Pool struct{ p sync.Pool }

// Get returns an empty Writer.
func (p *Pool) Get() *Writer {
	if w, ok := p.p.Get().(*Writer); ok {
		return w
	}
	return &Writer{
		hdr:    make([]byte, 0, MaxFrames*maxHeader),
		frames: make([]frame, 0, MaxFrames),
		bufs:   make(net.Buffers, 0, 2*MaxFrames),
	}
}

// Put returns w to the pool, dropping its references to payloads.
func (p *Pool) Put(w *Writer) {
	w.reset()
	if cap(w.flat) > maxPooledFlat {
		w.flat = nil
	}
	p.p.Put(w)
}

func (w *Writer) reset() {
	clear(w.frames[:cap(w.frames)])
	clear(w.bufs[:cap(w.bufs)])
	w.hdr, w.frames, w.bufs, w.vec = w.hdr[:0], w.frames[:0], w.bufs[:0], nil
}

// Len is the number of frames added since the last write.
func (w *Writer) Len() int { return len(w.frames) }

// Add queues one frame of opcode op whose payload is prefix followed by
// data. prefix (at most 2 bytes, e.g. Engine.IO's packet type) is copied;
// data is written as is and must not change until WriteTo returns.
func (w *Writer) Add(op byte, prefix, data []byte) {
	w.hdr = AppendHeader(w.hdr, op, len(prefix)+len(data))
	w.hdr = append(w.hdr, prefix...)
	w.frames = append(w.frames, frame{hdrEnd: len(w.hdr), data: data})
}

// WriteTo writes the queued frames to conn, in one writev where conn is a
// TCP connection, and empties w.
func (w *Writer) WriteTo(conn net.Conn) error {
	defer w.reset()
	start := 0
	for _, f := range w.frames {
		w.bufs = append(w.bufs, w.hdr[start:f.hdrEnd:f.hdrEnd])
		if len(f.data) > 0 {
			w.bufs = append(w.bufs, f.data)
		}
		start = f.hdrEnd
	}
	if _, ok := conn.(*net.TCPConn); ok {
		w.vec = w.bufs
		_, err := w.vec.WriteTo(conn)
		return err
	}
	// net.Buffers would fall back to one Write per slice here.
	w.flat = w.flat[:0]
	for _, b := range w.bufs {
		w.flat = append(w.flat, b...)
	}
	_, err := conn.Write(w.flat)
	return err
}

// AppendHeader appends the header of an unmasked, final frame of opcode op
// carrying n payload bytes, with the shortest length form.
func AppendHeader(dst []byte, op byte, n int) []byte {
	switch {
	case n <= 125:
		return append(dst, finBit|op, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, finBit|op, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, finBit|op, 127), uint64(n))
	}
}
