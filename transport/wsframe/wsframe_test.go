package wsframe_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/wardline/wardline/transport/wsframe"
)

// captureConn is a net.Conn that is not a *net.TCPConn, so a Writer takes
// its copy path, which concatenates exactly the slices writev gets.
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

// FuzzWriter writes frames of fuzzed opcodes, prefixes and sizes (around
// the 125/126 and 65535/65536 length boundaries, where a prefix byte moves
// a frame across) and checks that an independent parser reads back one
// frame per Add, in order, with the right opcode and payload.
func FuzzWriter(f *testing.F) {
	f.Add([]byte{0, 1, 124, 125, 126}, uint16(0))
	f.Add([]byte{255, 3, 200}, uint16(65535))
	f.Add([]byte{7}, uint16(65280))
	f.Fuzz(func(t *testing.T, sizes []byte, base uint16) {
		if len(sizes) > wsframe.MaxFrames {
			sizes = sizes[:wsframe.MaxFrames]
		}
		var pool wsframe.Pool
		w := pool.Get()
		defer pool.Put(w)
		type want struct {
			op      byte
			payload []byte
		}
		var wants []want
		for i, s := range sizes {
			n := int(s)
			if i%2 == 1 {
				n += int(base) // reaches the 16- and 64-bit forms
			}
			data := bytes.Repeat([]byte{byte('a' + i%26)}, n)
			switch i % 3 {
			case 0:
				w.Add(wsframe.OpText, []byte{'4'}, data)
				wants = append(wants, want{wsframe.OpText, append([]byte{'4'}, data...)})
			case 1:
				w.Add(wsframe.OpBinary, nil, data)
				wants = append(wants, want{wsframe.OpBinary, data})
			default:
				w.Add(wsframe.OpText, nil, data)
				wants = append(wants, want{wsframe.OpText, data})
			}
		}
		if w.Len() != len(wants) {
			t.Fatalf("Len = %d after %d Adds", w.Len(), len(wants))
		}
		conn := &captureConn{}
		if err := w.WriteTo(conn); err != nil {
			t.Fatal(err)
		}
		ops, got := parseFrames(t, conn.buf.Bytes())
		if len(got) != len(wants) {
			t.Fatalf("%d frames read, %d written", len(got), len(wants))
		}
		for i, wt := range wants {
			if ops[i] != wt.op || !bytes.Equal(got[i], wt.payload) {
				t.Fatalf("frame %d: opcode %d, %d bytes; want opcode %d, %d bytes", i, ops[i], len(got[i]), wt.op, len(wt.payload))
			}
		}
		if w.Len() != 0 {
			t.Fatalf("Len = %d after WriteTo, want 0", w.Len())
		}
	})
}

// TestAWriterWritesABatchInOneSyscallOverTCP checks the writev path on a
// real loopback TCP connection: every frame arrives intact, in order.
func TestAWriterWritesABatchInOneSyscallOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(c)
		got <- buf.Bytes()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var pool wsframe.Pool
	w := pool.Get()
	shared := bytes.Repeat([]byte("x"), 300)
	for i := 0; i < wsframe.MaxFrames; i++ {
		w.Add(wsframe.OpText, nil, shared)
	}
	if err := w.WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	pool.Put(w)
	conn.Close()
	ops, payloads := parseFrames(t, <-got)
	if len(payloads) != wsframe.MaxFrames {
		t.Fatalf("%d frames arrived, want %d", len(payloads), wsframe.MaxFrames)
	}
	for i := range payloads {
		if ops[i] != wsframe.OpText || !bytes.Equal(payloads[i], shared) {
			t.Fatalf("frame %d corrupted", i)
		}
	}
}
