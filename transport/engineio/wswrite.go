package engineio

import (
	"encoding/binary"
	"net"
	"sync"
)

// maxWritevFrames bounds the frames of one writev. The runtime keeps each
// socket's largest iovec array for reuse (16 bytes per iovec, two per
// frame), so an unbounded burst would leave tens of KiB on an idle
// connection; 64 frames per system call keeps that at 2 KiB.
const maxWritevFrames = 64

// Opcodes and the FIN bit of RFC 6455 section 5.2.
const (
	finBit     = 0x80
	opText     = 0x1
	opBinary   = 0x2
	maxHdrSize = 11 // FIN/opcode byte, 127, 64-bit length, and the "4" of a kindMessage
)

// frameWriter frames queued items itself so that a batch goes to the socket
// in one writev; gorilla's WriteMessage flushes every frame with its own
// write(2). Each Engine.IO packet stays one WebSocket frame (the protocol
// allows no other), but the frames share the system call. Payloads are
// written from the queued (possibly shared) slices without a copy; headers,
// and the "4" of plain messages, live in hdr. Pooled between batches, so an
// idle connection holds none.
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
	clear(fw.bufs[:cap(fw.bufs)]) // drop references to shared packets
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

// write sends items (at most maxWritevFrames), one frame each, to conn in
// one system call where conn supports writev.
func (fw *frameWriter) write(conn net.Conn, items []item) error {
	fw.hdr, fw.bufs = fw.hdr[:0], fw.bufs[:0]
	for _, it := range items {
		start := len(fw.hdr)
		switch it.kind {
		case kindMessage:
			fw.hdr = append(appendFrameHeader(fw.hdr, opText, 1+len(it.data)), byte(packetMessage))
		case kindBinary:
			fw.hdr = appendFrameHeader(fw.hdr, opBinary, len(it.data))
		default:
			fw.hdr = appendFrameHeader(fw.hdr, opText, len(it.data))
		}
		// hdr has room for every header of the chunk, so this sub-slice
		// is not moved by later appends.
		fw.bufs = append(fw.bufs, fw.hdr[start:len(fw.hdr):len(fw.hdr)])
		if len(it.data) > 0 {
			fw.bufs = append(fw.bufs, it.data)
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
