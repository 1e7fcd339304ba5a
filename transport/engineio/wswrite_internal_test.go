package engineio

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// captureConn is a net.Conn that is not a *net.TCPConn, so frameWriter
// takes its copy path, which concatenates exactly the slices writev gets.
type captureConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error) { return c.buf.Write(p) }

// parseFrames is an independent reading of RFC 6455 section 5.2 for
// unmasked server frames.
func parseFrames(t *testing.T, b []byte) (ops []byte, payloads [][]byte) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < 2 || b[0]&0x80 == 0 || b[1]&0x80 != 0 {
			t.Fatalf("bad frame start % x", b[:min(len(b), 2)])
		}
		op, n, hdr := b[0]&0x0f, uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			n, hdr = uint64(binary.BigEndian.Uint16(b[2:4])), 4
			if n < 126 {
				t.Fatalf("16-bit length %d is not minimal", n)
			}
		case 127:
			n, hdr = binary.BigEndian.Uint64(b[2:10]), 10
			if n <= 0xffff {
				t.Fatalf("64-bit length %d is not minimal", n)
			}
		}
		if uint64(len(b)-hdr) < n {
			t.Fatalf("frame of %d bytes truncated to %d", n, len(b)-hdr)
		}
		ops = append(ops, op)
		payloads = append(payloads, b[hdr:hdr+int(n)])
		b = b[hdr+int(n):]
	}
	return ops, payloads
}

// FuzzFrameWriter writes items of fuzzed kinds and sizes (around the
// 125/126 and 65535/65536 length boundaries, where a message's "4" moves
// it across) and checks that an independent parser reads back one frame
// per item, in order, with the right opcode and payload.
func FuzzFrameWriter(f *testing.F) {
	f.Add([]byte{0, 1, 124, 125, 126}, uint16(0))
	f.Add([]byte{255, 3, 200}, uint16(65535))
	f.Add([]byte{7}, uint16(65280))
	f.Fuzz(func(t *testing.T, sizes []byte, base uint16) {
		if len(sizes) > maxWritevFrames {
			sizes = sizes[:maxWritevFrames]
		}
		items := make([]item, len(sizes))
		for i, s := range sizes {
			n := int(s)
			if i%2 == 1 {
				n += int(base)
			}
			data := bytes.Repeat([]byte{byte('a' + i%26)}, n)
			switch i % 3 {
			case 0:
				items[i] = item{data: data, kind: kindMessage}
			case 1:
				items[i] = item{data: data, kind: kindBinary}
			default:
				items[i] = item{data: AppendMessage(nil, data), kind: kindPacket}
			}
		}
		var pool frameWriterPool
		fw := pool.get()
		defer pool.put(fw)
		conn := &captureConn{}
		if err := fw.write(conn, items); err != nil {
			t.Fatal(err)
		}
		ops, got := parseFrames(t, conn.buf.Bytes())
		if len(got) != len(items) {
			t.Fatalf("%d frames read, %d items written", len(got), len(items))
		}
		for i, it := range items {
			wantOp, want := byte(opText), it.data
			switch it.kind {
			case kindMessage:
				want = AppendMessage(nil, it.data)
			case kindBinary:
				wantOp = opBinary
			}
			if ops[i] != wantOp || !bytes.Equal(got[i], want) {
				t.Fatalf("item %d: opcode %d, %d bytes, want opcode %d, %d bytes", i, ops[i], len(got[i]), wantOp, len(want))
			}
		}
	})
}
