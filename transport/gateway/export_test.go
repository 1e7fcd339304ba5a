package gateway

// SetRecentRing replaces g's ring of recent pushes with an empty one of
// entries entries, so that black-box tests can make replays read the log.
func SetRecentRing(g *Gateway, entries int) {
	g.hub.mu.Lock()
	defer g.hub.mu.Unlock()
	g.hub.recent = newRecentRing(entries, recentMaxBytes)
}
