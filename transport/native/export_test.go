package native

// LockWrites holds c's write lock, as the reader does while it writes a
// pong or the close reply, until the returned function is called.
func LockWrites(c *Conn) (unlock func()) {
	c.wmu.Lock()
	return c.wmu.Unlock
}
