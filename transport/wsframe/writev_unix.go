//go:build unix

package wsframe

import (
	"syscall"
	"unsafe"
)

// CanTryWrite says whether TryWriteTo works on this platform.
const CanTryWrite = true

type iovec = syscall.Iovec

// errWouldBlock is the non-blocking socket's "full": nothing was written.
var errWouldBlock error = syscall.EAGAIN

// writevNow is one writev(2) on fd, a non-blocking socket, of bufs; iov
// is reused for the system call's argument and cleared after it, so it
// keeps no payload reachable.
func writevNow(fd uintptr, bufs [][]byte, iov *[]iovec) (int, error) {
	v := (*iov)[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		var e syscall.Iovec
		e.Base = &b[0]
		e.SetLen(len(b))
		v = append(v, e)
	}
	*iov = v
	defer clear(v)
	if len(v) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
		switch errno {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, errWouldBlock
		default:
			return 0, errno
		}
	}
}
