package socketio

import (
	"encoding/json"
	"errors"
)

// Disconnect reasons passed to Namespace.OnDisconnect, and errors of Conn
// methods. Transport failures arrive wrapped: errors.Is works with both
// these and the engineio reasons (engineio.ErrPingTimeout, …).
var (
	// ErrInvalidPacket means the client sent something that is not
	// Socket.IO v5; the whole connection is closed, as the reference server does.
	ErrInvalidPacket = errors.New("socketio: invalid packet")
	// ErrBinaryRefused means a binary packet arrived while Config.RejectBinary
	// is set (or more attachments than Config.MaxAttachments); the
	// connection is closed with it.
	ErrBinaryRefused = errors.New("socketio: binary attachments refused")
	// ErrConnectTimeout means no namespace was joined within ConnectTimeout.
	ErrConnectTimeout = errors.New("socketio: no namespace connected in time")
	// ErrClientDisconnect means the client left the namespace (DISCONNECT).
	ErrClientDisconnect = errors.New("socketio: client namespace disconnect")
	// ErrServerDisconnect means Conn.Disconnect was called.
	ErrServerDisconnect = errors.New("socketio: server namespace disconnect")
	// ErrTransportClose means the Engine.IO session ended; the engineio
	// reason is wrapped beside it.
	ErrTransportClose = errors.New("socketio: transport closed")
	// ErrDisconnected is returned by Conn methods once the connection left
	// the namespace.
	ErrDisconnected = errors.New("socketio: connection is disconnected")
	// ErrNoAck is returned by Event.Ack when the client asked for none.
	ErrNoAck = errors.New("socketio: event has no acknowledgement id")
	// ErrAlreadyAcked is returned by a second Event.Ack.
	ErrAlreadyAcked = errors.New("socketio: event already acknowledged")
	// ErrNamespaceMismatch is returned by Conn.SendEncoded for a Frame
	// encoded for another namespace.
	ErrNamespaceMismatch = errors.New("socketio: frame encoded for another namespace")
	// ErrTooManyPending means more than maxPendingFrames were sent to a
	// connection before its CONNECT reply.
	ErrTooManyPending = errors.New("socketio: too many frames before the connect reply")
)

// ConnectError refuses a namespace connection: the client receives
// CONNECT_ERROR {"message": Message, "data": Data} and its connect_error
// event gets an Error with that message and err.data = Data. Return it from
// a ConnectHandler; any other error is sent as {"message":"internal error"}
// so that internals do not leak.
type ConnectError struct {
	Message string
	Data    any // marshalled with encoding/json; omitted when nil
}

func (e *ConnectError) Error() string { return "socketio: connect refused: " + e.Message }

func (e *ConnectError) payload() json.RawMessage {
	v := struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{e.Message, e.Data}
	b, err := json.Marshal(v)
	if err != nil { // Data that cannot be marshalled is dropped, not the refusal
		b, _ = json.Marshal(struct {
			Message string `json:"message"`
		}{e.Message})
	}
	return b
}
