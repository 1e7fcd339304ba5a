//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package idlewait

import (
	"net"
	"syscall"
)

// waitReadable returns once nc has something to read (or an error or its
// read deadline), without reading it. It blocks in the poller with fewer
// and smaller frames than a Read does, so that an idle reader's stack
// stays well inside 2 KiB.
func waitReadable(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var b [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return err != syscall.EAGAIN
	})
}
