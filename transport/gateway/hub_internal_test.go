package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
)

// TestRoomFanOutFollowsSessionsAndMembersAcrossItsCache checks the per-room
// cache of target sessions against what the lookups it replaces would
// give, step by step: each step is one applied event and the positions it
// must leave every session at (a session's after moves on only when the
// event is delivered to it).
func TestRoomFanOutFollowsSessionsAndMembersAcrossItsCache(t *testing.T) {
	h, ss := benchHub(t, 3) // user-000..002 in room "ward", one session each
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	applied := func(pos eventstore.Position, stream, typ string, ev domain.Event) {
		t.Helper()
		batch := []projections.Applied{{Position: pos, StreamVersion: uint64(pos), RecordedAt: at,
			Envelope: domain.Envelope{Stream: stream, Type: typ, Time: at, Event: ev}}}
		// As the projections runner does: the read model first, then the hub.
		if err := h.rooms.Apply(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		h.onApplied(context.Background(), batch)
	}
	want := func(step string, sessions []*session, positions ...eventstore.Position) {
		t.Helper()
		for i, s := range sessions {
			if s.after != positions[i] {
				t.Errorf("%s: session %s at %d, want %d", step, s.id, s.after, positions[i])
			}
		}
	}
	applied(2, "room-ward", "MessagePosted", messageAt(2, at).Envelope.Event)
	want("first message", ss, 2, 2, 2)

	second := &session{g: ss[0].g, id: "s-user-001-b", userID: "user-001"}
	second.after = h.register(second)
	applied(3, "room-ward", "MessagePosted", messageAt(3, at).Envelope.Event)
	want("after a second session of a member registered", append(ss, second), 3, 3, 3, 3)

	h.unregister(ss[2])
	applied(4, "room-ward", "MessagePosted", messageAt(4, at).Envelope.Event)
	want("after a session unregistered", append(ss, second), 4, 4, 3, 4)

	applied(5, "typing-ward", "TypingStarted", domain.TypingStarted{RoomID: "ward", UserID: "user-001"})
	want("typing, not to the typer's sessions", append(ss, second), 5, 4, 3, 4)

	outsider := &session{g: ss[0].g, id: "s-user-009", userID: "user-009"}
	outsider.after = h.register(outsider)
	applied(6, "room-ward", "MessagePosted", messageAt(6, at).Envelope.Event)
	want("a non-member's session", []*session{outsider}, 5)
	applied(7, "room-ward", "MemberJoined", domain.MemberJoined{RoomID: "ward", UserID: "user-009"})
	applied(8, "room-ward", "MessagePosted", messageAt(8, at).Envelope.Event)
	want("after the non-member joined", append(ss, second, outsider), 8, 8, 3, 8, 8)
}
