package native

import (
	"encoding/binary"
	"net"
	"sync"
)

// maxWritevFrames bounds the frames of one writev. The kernel's limit is
// 1024 iovecs, but the bound matters for memory: the runtime keeps each
// socket's largest iovec array for reuse (16 bytes per iovec, two per
// frame), so a burst of 1,000 frames would leave 32 KiB on an idle
// connection. 64 frames per syscall keeps that at 2 KiB and still cuts the
// syscalls of a burst 64-fold.
const maxWritevFrames = 64

// Opcodes and the FIN bit of RFC 6455 section 5.2.
const (
	finBit     = 0x80
	opText     = 0x1
	maxHdrSize = 10 // FIN/opcode byte, 127, 64-bit length; a server never masks
)

// frameWriter frames queued text messages itself, so that a whole batch
// goes to the socket in one writev: gorilla's WriteMessage flushes every
// frame with its own write(2), which was ~60% of the server's CPU at 50k
// deliveries/s. The payloads are written from the shared broadcast slices
// without a copy; only the headers live in hdr. One frameWriter serves one
// batch at a time and is pooled between batches, so an idle connection
// holds none.
type frameWriter struct {
	hdr  []byte
	bufs net.Buffers // header and payload slices of the frames being written
	vec  net.Buffers // what WriteTo consumes; the backing array is bufs'
	flat []byte      // for connections that cannot writev (TLS): one copy, one Write
}

type frameWriterPool struct{ p sync.Pool }

func (p *frameWriterPool) get() *frameWriter {
	if fw, ok := p.p.Get().(*frameWriter); ok {
		return fw
	}
	return &frameWriter{
		hdr:  make([]byte, 0, maxWritevFrames*maxHdrSize),
		bufs: make(net.Buffers, 0, 2*maxWritevFrames),
	}
}

// maxPooledFlat keeps a rare huge batch's copy buffer out of the pool.
const maxPooledFlat = 64 << 10

func (p *frameWriterPool) put(fw *frameWriter) {
	clear(fw.bufs[:cap(fw.bufs)]) // drop references to shared broadcast frames
	fw.bufs, fw.vec = fw.bufs[:0], nil
	if cap(fw.flat) > maxPooledFlat {
		fw.flat = nil
	}
	p.p.Put(fw)
}

// appendFrameHeader appends the header of an unmasked, final frame of
// opcode op carrying n payload bytes.
func appendFrameHeader(dst []byte, op byte, n int) []byte {
	switch {
	case n <= 125:
		return append(dst, finBit|op, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, finBit|op, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, finBit|op, 127), uint64(n))
	}
}

// write sends frames (at most maxWritevFrames) as text frames to conn in
// one system call where conn supports writev.
func (fw *frameWriter) write(conn net.Conn, frames [][]byte) error {
	fw.hdr, fw.bufs = fw.hdr[:0], fw.bufs[:0]
	for _, f := range frames {
		fw.hdr = appendFrameHeader(fw.hdr, opText, len(f))
	}
	// fw.hdr is not appended to below, so these sub-slices stay valid.
	off := 0
	for _, f := range frames {
		n := 2
		switch {
		case len(f) > 0xffff:
			n = 10
		case len(f) > 125:
			n = 4
		}
		fw.bufs = append(fw.bufs, fw.hdr[off:off+n:off+n])
		off += n
		if len(f) > 0 {
			fw.bufs = append(fw.bufs, f)
		}
	}
	if _, ok := conn.(*net.TCPConn); ok {
		fw.vec = fw.bufs
		_, err := fw.vec.WriteTo(conn)
		return err
	}
	// net.Buffers would fall back to one Write per slice here.
	fw.flat = fw.flat[:0]
	for _, b := range fw.bufs {
		fw.flat = append(fw.flat, b...)
	}
	_, err := conn.Write(fw.flat)
	return err
}
