package gateway

import (
	"encoding/json"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/projections/rooms"
)

// timeLayout is RFC 3339 in UTC with milliseconds, the one time format of
// every payload.
const timeLayout = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// messagePayload is message:new and a history entry.
type messagePayload struct {
	MessageID   string `json:"messageId"`
	RoomID      string `json:"roomId"`
	SenderID    string `json:"senderId"`
	Content     string `json:"content"`
	Seq         uint64 `json:"seq"`
	ClientMsgID string `json:"clientMsgId,omitempty"`
	CreatedAt   string `json:"createdAt"`
}

func messageFromModel(m rooms.Message) messagePayload {
	return messagePayload{
		MessageID: m.MessageID, RoomID: m.RoomID, SenderID: m.SenderID, Content: m.Content,
		Seq: m.Seq, ClientMsgID: m.ClientMsgID, CreatedAt: formatTime(m.CreatedAt),
	}
}

// dmPayload is dm:new.
type dmPayload struct {
	MessageID   string `json:"messageId"`
	SenderID    string `json:"senderId"`
	ToUserID    string `json:"toUserId"`
	Content     string `json:"content"`
	ClientMsgID string `json:"clientMsgId,omitempty"`
	CreatedAt   string `json:"createdAt"`
}

type roomUserPayload struct {
	RoomID string `json:"roomId"`
	UserID string `json:"userId"`
}

type userPayload struct {
	UserID string `json:"userId"`
}

// errorPayload is the error object of the ack envelope.
type errorPayload struct {
	Code    domain.ErrorCode `json:"code"`
	Message string           `json:"message"`
}

// failure is a failed ack.
type failure struct {
	Success bool         `json:"success"`
	Error   errorPayload `json:"error"`
}

// exceptionPayload answers a failed request sent without an ack.
type exceptionPayload struct {
	Code    domain.ErrorCode `json:"code"`
	Message string           `json:"message"`
	Event   string           `json:"event"`
}

// wireError maps any error to its code and client-safe message.
func wireError(err error) errorPayload {
	return errorPayload{Code: domain.ErrorCodeOf(err), Message: domain.ErrorMessage(err)}
}

// pushOf turns a log event into its push event name and payload; ok is
// false for events no client is pushed.
func pushOf(env domain.Envelope) (event string, data any, ok bool) {
	switch e := env.Event.(type) {
	case domain.MessagePosted:
		return "message:new", messagePayload{
			MessageID: e.MessageID, RoomID: e.RoomID, SenderID: e.SenderID, Content: e.Content,
			Seq: e.Seq, ClientMsgID: e.ClientMsgID, CreatedAt: formatTime(env.Time),
		}, true
	case domain.DirectMessageSent:
		return "dm:new", dmPayload{
			MessageID: e.MessageID, SenderID: e.SenderID, ToUserID: e.ToUserID, Content: e.Content,
			ClientMsgID: e.ClientMsgID, CreatedAt: formatTime(env.Time),
		}, true
	case domain.MemberJoined:
		return "room:user-joined", roomUserPayload{RoomID: e.RoomID, UserID: e.UserID}, true
	case domain.MemberLeft:
		return "room:user-left", roomUserPayload{RoomID: e.RoomID, UserID: e.UserID}, true
	case domain.TypingStarted:
		return "typing:user-typing", roomUserPayload{RoomID: e.RoomID, UserID: e.UserID}, true
	case domain.TypingStopped:
		return "typing:user-stopped", roomUserPayload{RoomID: e.RoomID, UserID: e.UserID}, true
	case domain.UserOnline:
		return "user:online", userPayload{UserID: e.UserID}, true
	case domain.UserOffline:
		return "user:offline", userPayload{UserID: e.UserID}, true
	}
	return "", nil, false
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Every payload here is a plain struct of strings and numbers.
		panic("gateway: marshal payload: " + err.Error())
	}
	return b
}
