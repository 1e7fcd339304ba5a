package engineio

// LockWrites holds s's write lock, as the reader does while it writes a
// pong or the close reply, until the returned function is called.
func LockWrites(s *Socket) (unlock func()) {
	s.wmu.Lock()
	return s.wmu.Unlock
}
