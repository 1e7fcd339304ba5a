package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/transport/gateway"
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

// holdStore holds the appends to one stream while hold is set, telling the
// test through held, until release lets each through.
type holdStore struct {
	eventstore.Store
	stream  string
	hold    atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (s *holdStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == s.stream && s.hold.Load() {
		s.held <- struct{}{}
		<-s.release
	}
	return s.Store.Append(ctx, stream, expected, events)
}

func TestWhileASendWaitsForItsAppendTheConnectionsNextRequestIsAnswered(t *testing.T) {
	for _, transport := range []string{"native", "socketio"} {
		t.Run(transport, func(t *testing.T) {
			var hs *holdStore
			h := newHarness(t, func(c *gateway.Config) {
				hs = &holdStore{Store: c.Store, stream: domain.RoomStream("ward"), held: make(chan struct{}, 1), release: make(chan struct{})}
				c.Store = hs
			})
			var send, query func() json.RawMessage // each waits for its ack
			switch transport {
			case "native":
				alice := h.connect(h.nurse("alice"), "")
				mustOK(t, alice.request("room:create", map[string]any{"roomId": "ward", "name": "Ward"}))
				request := func(id int, event string, data any) func() json.RawMessage {
					alice.send(map[string]any{"id": id, "event": event, "data": data})
					return func() json.RawMessage {
						return alice.next(func(f frame) bool { return f.ID != nil && *f.ID == int64(id) }, event+" ack").Data
					}
				}
				hs.hold.Store(true)
				send = request(100, "message:send", map[string]any{"roomId": "ward", "content": "held"})
				<-hs.held
				query = request(101, "presence:query", map[string]any{"userIds": []string{"alice"}})
			case "socketio":
				alice := h.connectSocketIO(h.nurse("alice"))
				request := func(event string, data any) func() json.RawMessage {
					id := alice.emit(event, data)
					return func() json.RawMessage {
						p := alice.next(func(p socketio.Packet) bool { return p.Type == socketio.PacketAck && p.ID == id }, event+" ack")
						return sioArgs(t, p)[0]
					}
				}
				mustOK(t, request("room:create", map[string]any{"roomId": "ward", "name": "Ward"})())
				hs.hold.Store(true)
				send = request("message:send", map[string]any{"roomId": "ward", "content": "held"})
				<-hs.held
				query = request("presence:query", map[string]any{"userIds": []string{"alice"}})
			}
			// The send's append is held; the next request is answered anyway.
			mustOK(t, query())
			hs.hold.Store(false)
			close(hs.release)
			ack := decode[struct {
				Success bool
				Seq     uint64
			}](t, send())
			if !ack.Success || ack.Seq != 1 {
				t.Fatalf("held send's ack: %+v", ack)
			}
		})
	}
}
