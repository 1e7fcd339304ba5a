//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package native

import "net"

// waitReadable returns at once here: Conn.waitIdle waits in the reader's
// Peek instead.
func waitReadable(net.Conn) {}
