package gateway

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/rooms"
)

// benchHub is a hub over a rooms model holding one room of members users,
// each with one registered session that has no transport: what is measured
// is the gateway's own share of a delivery (routing, encoding, the
// watermark, the per-recipient bookkeeping), not a socket's.
func benchHub(tb testing.TB, members int) (*hub, []*session) {
	tb.Helper()
	rm := rooms.New()
	users := make([]string, members)
	for i := range users {
		users[i] = fmt.Sprintf("user-%03d", i)
	}
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	created := projections.Applied{Position: 1, StreamVersion: 1, RecordedAt: at, Envelope: domain.Envelope{
		Stream: "room-ward", Type: "RoomCreated", Time: at,
		Event: domain.RoomCreated{RoomID: "ward", Name: "Ward", CreatedBy: users[0], Members: users},
	}}
	if err := rm.Apply(context.Background(), []projections.Applied{created}); err != nil {
		tb.Fatal(err)
	}
	m, err := newMetrics(nil)
	if err != nil {
		tb.Fatal(err)
	}
	g := &Gateway{cfg: Config{MaxQueueMessages: DefaultMaxQueueMessages}, metrics: m}
	h := newHub(rm, "e1", m, func() time.Time { return at })
	g.hub = h
	h.onApplied(context.Background(), []projections.Applied{created})
	sessions := make([]*session, members)
	for i, u := range users {
		s := &session{g: g, id: "s-" + u, userID: u}
		s.after = h.register(s)
		sessions[i] = s
	}
	return h, sessions
}

func messageAt(pos eventstore.Position, at time.Time) projections.Applied {
	return projections.Applied{Position: pos, StreamVersion: uint64(pos), RecordedAt: at, Envelope: domain.Envelope{
		Stream: "room-ward", Type: "MessagePosted", Time: at,
		Event: domain.MessagePosted{MessageID: fmt.Sprint("m-", pos), RoomID: "ward", SenderID: "user-000", Content: "vitals stable", Seq: uint64(pos)},
	}}
}

// BenchmarkHubFanOut routes one MessagePosted per op to a room of 10 or
// 100 members; allocs/delivery is the figure to watch (what is allocated
// per push, none per recipient, spread over the recipients).
func BenchmarkHubFanOut(b *testing.B) {
	for _, members := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) { benchmarkHubFanOut(b, members) })
	}
}

func benchmarkHubFanOut(b *testing.B, members int) {
	h, sessions := benchHub(b, members)
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	batch := make([]projections.Applied, 1)
	var before, after runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	runtime.ReadMemStats(&before)
	for i := range b.N {
		batch[0] = messageAt(eventstore.Position(i+2), at)
		h.onApplied(context.Background(), batch)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	for _, s := range sessions {
		if s.after != eventstore.Position(b.N+1) {
			b.Fatalf("session %s at %d, want %d", s.id, s.after, b.N+1)
		}
	}
	n := float64(b.N) * float64(members)
	b.ReportMetric(n/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/delivery")
}
