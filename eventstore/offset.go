package eventstore

import (
	"fmt"
	"strconv"
	"strings"
)

// FormatOffset renders a position of the store with the given epoch as the
// opaque offset string clients see: "<epoch>.<position in base 36>".
func FormatOffset(epoch string, p Position) string {
	return epoch + "." + strconv.FormatUint(uint64(p), 36)
}

// ParseOffset reads an offset made by FormatOffset for the store with the
// given epoch. An offset of another store is ErrForeignOffset, so it is
// refused rather than misapplied; anything else unreadable is ErrMalformedOffset.
func ParseOffset(epoch, offset string) (Position, error) {
	i := strings.LastIndexByte(offset, '.')
	if i <= 0 || i == len(offset)-1 {
		return 0, fmt.Errorf("%w: %q", ErrMalformedOffset, offset)
	}
	n, err := strconv.ParseUint(offset[i+1:], 36, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrMalformedOffset, offset)
	}
	if offset[:i] != epoch {
		return 0, fmt.Errorf("%w: epoch %q", ErrForeignOffset, offset[:i])
	}
	return Position(n), nil
}
