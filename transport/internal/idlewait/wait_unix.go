//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package idlewait

import (
	"net"
	"syscall"
)

// waitReadable returns once nc has something to read (or an error or its
// read deadline), without reading it, and reports whether it has (false:
// the deadline passed, or nc is not a plain socket). It blocks in the
// poller with fewer and smaller frames than a Read does, so that an idle
// reader's stack stays well inside 2 KiB.
func waitReadable(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var b [1]byte
	ready := false
	_ = raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		if err == syscall.EAGAIN {
			return false
		}
		ready = true // data, the peer's close or an error: a read meets it
		return true
	})
	return ready
}
