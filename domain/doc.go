// Package domain holds what Wardline knows about care-team messaging, with no
// I/O: the events that make up the log, the commands clients send, and the
// pure decide functions that turn a command and the current state into new
// events or a coded error.
//
// Flow: transport validates a client request into a command (CreateRoom,
// PostMessage, ...), loads the state it concerns (Room, Conversation,
// Presence, Inbox, Alert: each folded from its stream with Apply), calls the
// command's Decide, wraps the returned events with Context.Wrap, encodes them
// (Encode) and appends them to the stream StreamOf names, with
// eventstore.Exact(state.Version()) as the expected version. A
// WrongExpectedVersion means another decision won the race: reload and decide
// again. Projections fold the same events into read models. Nothing here
// knows about sockets, stores or clocks: time and ids come in through the
// Context each decision gets.
//
// Decisions:
//   - Each Decide returns the events of exactly one stream (so one atomic
//     append), or an error. Returning no events and no error means "nothing
//     changed, and that is success" (joining twice, a retried send, a second
//     acknowledgement).
//   - Checks run in the order of DESIGN.md: authentication (unauthorized),
//     schema (invalid, too_large), existence (not_found), permission
//     (forbidden), state (conflict). CreateRoom, IssueNotification and
//     RaiseAlert check the actor's role before the duplicate id, so that a
//     caller who may not create learns nothing about which ids exist.
//   - Errors are *Error values with an ErrorCode equal to the wire ack codes;
//     ErrorCodeOf and ErrorMessage give the ack's code and message, with
//     anything uncoded reported as internal. Rules are sentinel errors
//     (ErrNotMember, ErrRoomExists, ...) checked with errors.Is.
//   - A refused room action (join, add, send, typing, history) returns an
//     *AccessDeniedError carrying the RoomAccessDenied event; the caller
//     appends it to AccessStream(user) and answers forbidden.
//   - PHI reads are decided like writes: ViewHistory checks membership and
//     returns the HistoryViewed event (AccessStream) together with the exact
//     seq range to serve.
package domain
