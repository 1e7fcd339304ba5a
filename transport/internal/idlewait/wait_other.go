//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package idlewait

import "net"

// waitReadable returns at once here: the reader then waits in its first
// read, on a deeper stack.
func waitReadable(net.Conn) bool { return false }
