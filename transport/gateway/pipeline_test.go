package gateway_test

import (
	"fmt"
	"testing"
)

func TestSendsWrittenBackToBackOnOneConnectionAreAllAckedInTheirOrder(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.connect(h.nurse("alice"), "")
	mustOK(t, alice.request("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"bob"}}))
	bob := h.connect(h.nurse("bob"), "")

	// Written without waiting for acks: the server reads on while the
	// earlier ones wait for their append, and decides them in this order.
	const n = 50
	const firstID = 1000
	for i := range n {
		alice.send(map[string]any{"id": firstID + i, "event": "message:send", "data": map[string]any{"roomId": "ward", "content": fmt.Sprint("m", i)}})
	}
	for i := range n {
		id := int64(firstID + i)
		f := alice.next(func(f frame) bool { return f.ID != nil && *f.ID == id }, fmt.Sprint("ack ", id))
		ack := decode[struct {
			Success bool
			Seq     uint64
			Offset  string
		}](t, f.Data)
		if !ack.Success || ack.Seq != uint64(i+1) || ack.Offset == "" {
			t.Fatalf("ack of send %d: %s, want success with seq %d and an offset", i, f.Data, i+1)
		}
	}
	for i := range n {
		m := decode[msgPayload](t, bob.waitPush("message:new", nil).Data)
		if m.Seq != uint64(i+1) || m.Content != fmt.Sprint("m", i) {
			t.Fatalf("bob's message %d: seq %d %q", i, m.Seq, m.Content)
		}
	}
}
