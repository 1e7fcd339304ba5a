package gateway_test

import (
	"fmt"
	"testing"

	"github.com/wardline/wardline/transport/socketio"
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

func TestSocketIOSendsEmittedBackToBackAreAllAckedInTheirOrder(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.connectSocketIO(h.nurse("alice"))
	bob := h.connect(h.nurse("bob"), "")
	createID := alice.emit("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"bob"}})
	alice.next(func(p socketio.Packet) bool { return p.Type == socketio.PacketAck && p.ID == createID }, "room:create ack")

	const n = 50
	ids := make([]uint64, n)
	for i := range n {
		ids[i] = alice.emit("message:send", map[string]any{"roomId": "ward", "content": fmt.Sprint("m", i)})
	}
	for i, id := range ids {
		p := alice.next(func(p socketio.Packet) bool { return p.Type == socketio.PacketAck && p.ID == id }, fmt.Sprint("ack ", id))
		ack := decode[struct {
			Success bool
			Seq     uint64
		}](t, sioArgs(t, p)[0])
		if !ack.Success || ack.Seq != uint64(i+1) {
			t.Fatalf("ack of send %d: %s, want success with seq %d", i, p.Data, i+1)
		}
	}
	for i := range n {
		m := decode[msgPayload](t, bob.waitPush("message:new", nil).Data)
		if m.Seq != uint64(i+1) || m.Content != fmt.Sprint("m", i) {
			t.Fatalf("bob's message %d: seq %d %q", i, m.Seq, m.Content)
		}
	}
}
