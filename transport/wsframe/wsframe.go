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
	"errors"
	"net"
	"sync"
	"syscall"
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
	iov    []iovec     // TryWriteTo's system call argument, kept between batches
	// try is w.tryWrite, made once per Writer: a closure made at each
	// TryWriteTo (it escapes into RawConn.Write) cost three allocations
	// per write, a tenth of the server's allocated bytes at 100k
	// deliveries/s. tryN and tryErr are its results.
	try    func(fd uintptr) bool
	tryN   int
	tryErr error
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
	// Only the used part can hold references (consuming a batch reslices
	// w.vec, never w.bufs); clearing the whole capacity for a one-frame
	// batch was 4% of the server's CPU at 50k deliveries/s.
	clear(w.frames)
	clear(w.bufs)
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
	w.assemble()
	if _, ok := conn.(*net.TCPConn); ok {
		w.vec = w.bufs
		_, err := w.vec.WriteTo(conn)
		return err
	}
	w.flat = w.flat[:0]
	for _, b := range w.bufs {
		w.flat = append(w.flat, b...)
	}
	_, err := conn.Write(w.flat)
	return err
}

// TryWriteTo writes the queued frames to the socket of rc with one writev
// that never waits: a connection whose socket has room (nearly always)
// is written by the caller's goroutine without parking it, so one
// goroutine can write many connections in turn. done reports that
// everything was written and w emptied. When the socket was full, the rest
// stays in w: finish it with WriteRest, and do not reset or reuse w
// before. ErrUnsupported means rc's platform has no such write; nothing
// was written then.
func (w *Writer) TryWriteTo(rc syscall.RawConn) (done bool, err error) {
	w.assemble()
	total := 0
	for _, b := range w.bufs {
		total += len(b)
	}
	if w.try == nil {
		w.try = w.tryWrite
	}
	if err := rc.Write(w.try); err != nil {
		w.reset()
		return false, err
	}
	n, werr := w.tryN, w.tryErr
	w.tryErr = nil
	if werr != nil && !errors.Is(werr, errWouldBlock) {
		w.reset()
		return false, werr
	}
	if n == total {
		w.reset()
		return true, nil
	}
	w.vec = consume(w.bufs, n)
	return false, nil
}

// tryWrite is TryWriteTo's one writev on the socket.
func (w *Writer) tryWrite(fd uintptr) bool {
	w.tryN, w.tryErr = writevNow(fd, w.bufs, &w.iov)
	return true // never wait for the socket: the caller does that elsewhere
}

// WriteRest writes, waiting as long as conn's write deadline allows, what
// TryWriteTo left, and empties w.
func (w *Writer) WriteRest(conn net.Conn) error {
	defer w.reset()
	_, err := w.vec.WriteTo(conn)
	return err
}

// assemble lays the frames' headers and payloads out in w.bufs.
func (w *Writer) assemble() {
	start := 0
	for _, f := range w.frames {
		w.bufs = append(w.bufs, w.hdr[start:f.hdrEnd:f.hdrEnd])
		if len(f.data) > 0 {
			w.bufs = append(w.bufs, f.data)
		}
		start = f.hdrEnd
	}
}

// consume returns what is left of bufs after its first n bytes.
func consume(bufs net.Buffers, n int) net.Buffers {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
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
