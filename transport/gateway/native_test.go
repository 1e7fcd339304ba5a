package gateway_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

type msgPayload struct {
	MessageID   string `json:"messageId"`
	RoomID      string `json:"roomId"`
	SenderID    string `json:"senderId"`
	Content     string `json:"content"`
	Seq         uint64 `json:"seq"`
	ClientMsgID string `json:"clientMsgId"`
	CreatedAt   string `json:"createdAt"`
}

type sendAck struct {
	Success   bool   `json:"success"`
	MessageID string `json:"messageId"`
	Seq       uint64 `json:"seq"`
	Offset    string `json:"offset"`
}

// The main flow runs over the native Go client (transport/native/client),
// the one services and the load tool use.
func TestNativeChatFlowDeliversEveryEventWithItsOffset(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.dialClient(h.nurse("alice"))
	bob := h.dialClient(h.nurse("bob"))

	created := decode[struct {
		Success bool   `json:"success"`
		RoomID  string `json:"roomId"`
	}](t, alice.emit("room:create", map[string]any{"roomId": "ward-1", "name": "Ward 1", "private": false}))
	if !created.Success || created.RoomID != "ward-1" {
		t.Fatalf("room:create = %+v", created)
	}

	joined := decode[struct {
		Success bool   `json:"success"`
		RoomID  string `json:"roomId"`
		Members []struct {
			UserID string `json:"userId"`
		} `json:"members"`
		Messages []msgPayload `json:"messages"`
		Offset   string       `json:"offset"`
	}](t, bob.emit("room:join", map[string]any{"roomId": "ward-1"}))
	if !joined.Success || len(joined.Members) != 2 || joined.Members[0].UserID != "alice" || joined.Members[1].UserID != "bob" || len(joined.Messages) != 0 || joined.Offset == "" {
		t.Fatalf("room:join = %+v", joined)
	}
	userJoined := alice.waitPush("room:user-joined", nil)
	if string(userJoined.Data) != `{"roomId":"ward-1","userId":"bob"}` || userJoined.Offset == "" {
		t.Fatalf("room:user-joined = %s offset %q", userJoined.Data, userJoined.Offset)
	}

	sent := decode[sendAck](t, alice.emit("message:send", map[string]any{"roomId": "ward-1", "content": "BP 120/80", "clientMsgId": "c-1"}))
	if !sent.Success || sent.Seq != 1 || sent.MessageID == "" {
		t.Fatalf("message:send = %+v", sent)
	}
	for name, c := range map[string]*gclient{"alice": alice, "bob": bob} {
		f := c.waitPush("message:new", nil)
		m := decode[msgPayload](t, f.Data)
		if f.Offset != sent.Offset || m.MessageID != sent.MessageID || m.Seq != 1 || m.SenderID != "alice" || m.Content != "BP 120/80" || m.ClientMsgID != "c-1" {
			t.Fatalf("%s got message:new %s offset %q, ack %+v", name, f.Data, f.Offset, sent)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", m.CreatedAt); err != nil {
			t.Fatalf("createdAt %q is not RFC 3339 UTC with milliseconds", m.CreatedAt)
		}
	}

	retry := decode[sendAck](t, alice.emit("message:send", map[string]any{"roomId": "ward-1", "content": "BP 120/80", "clientMsgId": "c-1"}))
	if retry != sent {
		t.Fatalf("a retry with the same clientMsgId answered %+v, want the original %+v", retry, sent)
	}

	history := decode[struct {
		Success  bool         `json:"success"`
		Messages []msgPayload `json:"messages"`
	}](t, bob.emit("history:fetch", map[string]any{"roomId": "ward-1"}))
	if !history.Success || len(history.Messages) != 1 || history.Messages[0].MessageID != sent.MessageID {
		t.Fatalf("history:fetch = %+v", history)
	}

	mustOK(t, bob.emit("typing:start", map[string]any{"roomId": "ward-1"}))
	typing := alice.waitPush("typing:user-typing", nil)
	if string(typing.Data) != `{"roomId":"ward-1","userId":"bob"}` || typing.Offset == "" {
		t.Fatalf("typing:user-typing = %s", typing.Data)
	}
	mustOK(t, bob.emit("typing:stop", map[string]any{"roomId": "ward-1"}))
	alice.waitPush("typing:user-stopped", nil)
	// The typer's own sessions are not told: a later message is the marker.
	mustOK(t, alice.emit("message:send", map[string]any{"roomId": "ward-1", "content": "marker"}))
	bob.noPushBefore("typing:user-typing", func() { bob.waitPush("message:new", nil) })

	dm := decode[struct {
		Success   bool   `json:"success"`
		MessageID string `json:"messageId"`
		Offset    string `json:"offset"`
	}](t, alice.emit("dm:send", map[string]any{"toUserId": "bob", "content": "call me"}))
	if !dm.Success || dm.MessageID == "" || dm.Offset == "" {
		t.Fatalf("dm:send = %+v", dm)
	}
	for _, c := range []*gclient{alice, bob} {
		f := c.waitPush("dm:new", nil)
		var p struct {
			MessageID, SenderID, ToUserID, Content, CreatedAt string
		}
		_ = json.Unmarshal(f.Data, &p)
		if p.MessageID != dm.MessageID || p.SenderID != "alice" || p.ToUserID != "bob" || f.Offset != dm.Offset {
			t.Fatalf("dm:new = %s offset %q", f.Data, f.Offset)
		}
		// The client resumes from the last offset it received.
		if got := c.c.Offset(); got != dm.Offset {
			t.Fatalf("client offset %q after the dm:new, want %q", got, dm.Offset)
		}
	}

	online := decode[struct {
		Success bool     `json:"success"`
		Online  []string `json:"online"`
	}](t, alice.emit("presence:query", map[string]any{"userIds": []string{"alice", "bob", "carol"}}))
	if !online.Success || !slices.Equal(online.Online, []string{"alice", "bob"}) {
		t.Fatalf("presence:query = %+v", online)
	}

	mustOK(t, bob.emit("room:leave", map[string]any{"roomId": "ward-1"}))
	left := alice.waitPush("room:user-left", nil)
	if string(left.Data) != `{"roomId":"ward-1","userId":"bob"}` {
		t.Fatalf("room:user-left = %s", left.Data)
	}

	refreshed := decode[struct {
		Success   bool   `json:"success"`
		ExpiresAt string `json:"expiresAt"`
	}](t, alice.emit("auth:refresh", map[string]any{"token": h.token("alice", 2*time.Hour, "nurse")}))
	if !refreshed.Success || refreshed.ExpiresAt == "" {
		t.Fatalf("auth:refresh = %+v", refreshed)
	}
	if code := errCode(alice.emit("auth:refresh", map[string]any{"token": h.nurse("mallory")})); code != "forbidden" {
		t.Fatalf("auth:refresh for another sub = %q, want forbidden", code)
	}
}
