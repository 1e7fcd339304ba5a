// Package domain holds what Wardline knows about care-team messaging, with no
// I/O: the events that make up the log, the commands clients send, and the
// pure decide functions that turn a command and the current state into new
// events or a coded error.
//
// Flow: transport validates a client request into a Command, loads the state
// it concerns (folded from events with Apply), calls Decide, and appends the
// returned events to the event store. Projections fold the same events into
// read models. Nothing here knows about sockets, stores or clocks: time and
// ids come in through the Context each decision gets.
package domain
