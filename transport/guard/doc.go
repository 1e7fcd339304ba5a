// Package guard holds the cheap checks a connection passes before and while
// it talks to the gateway: the Origin check made before any WebSocket
// upgrade or polling session, and the token-bucket rate limits applied to
// every incoming event, per connection and per user.
//
// Nothing here reads a clock: every decision takes `now` from the caller,
// so the transports use one clock and the tests are deterministic. Nothing
// here starts a goroutine.
package guard
