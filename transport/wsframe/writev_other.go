//go:build !unix

package wsframe

import "errors"

// CanTryWrite says whether TryWriteTo works on this platform.
const CanTryWrite = false

// iovec is unused where there is no writev.
type iovec struct{}

var errWouldBlock = errors.New("wsframe: would block")

// writevNow has no non-blocking writev to call here: TryWriteTo reports
// ErrUnsupported and the caller writes with WriteTo.
func writevNow(uintptr, [][]byte, *[]iovec) (int, error) { return 0, errors.ErrUnsupported }
