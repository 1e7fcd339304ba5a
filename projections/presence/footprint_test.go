package presence_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/presence"
)

// footprintUsers is how many users, each with one open session, one op of
// BenchmarkModelFootprint folds.
const footprintUsers = 10000

// BenchmarkModelFootprint measures what the model holds per online user
// with one session, as the gateway's idle connections leave it. The batch
// is built from freshly allocated strings, as decoded events are, and
// dropped before measuring, so B/user counts the strings the model keeps.
// B/user is the live heap growth after a GC over footprintUsers users.
func BenchmarkModelFootprint(b *testing.B) {
	var perUser float64
	b.ReportAllocs()
	for n := range b.N {
		before := liveHeap()
		m := presence.New()
		if err := m.Apply(context.Background(), footprintBatch()); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			perUser = float64(liveHeap()-before) / footprintUsers
		}
		if !m.IsOnline("user-00001") {
			b.Fatal("user-00001 is not online")
		}
		runtime.KeepAlive(m)
	}
	b.ReportMetric(perUser, "B/user")
}

func footprintBatch() []projections.Applied {
	batch := make([]projections.Applied, 0, 2*footprintUsers)
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := range footprintUsers {
		user := fmt.Sprintf("user-%05d", i)
		for _, ev := range []domain.Event{
			domain.SessionStarted{
				SessionID: domain.NewID(), UserID: user, Namespace: strings.Clone("/chat"), Transport: strings.Clone("native"),
				NodeID: strings.Clone("node-a"), ClientAddr: fmt.Sprintf("10.0.%d.%d:40000", i/256, i%256),
			},
			domain.UserOnline{UserID: user},
		} {
			batch = append(batch, projections.Applied{
				Position: eventstore.Position(len(batch) + 1),
				Envelope: domain.Envelope{Type: ev.EventType(), Time: at.Add(time.Duration(i) * time.Millisecond), Event: ev},
			})
		}
	}
	return batch
}

func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkMarshalSnapshot measures a snapshot of footprintUsers online
// users with one session each: B/op is the garbage one snapshot makes.
func BenchmarkMarshalSnapshot(b *testing.B) {
	m := presence.New()
	if err := m.Apply(context.Background(), footprintBatch()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.MarshalSnapshot(); err != nil {
			b.Fatal(err)
		}
	}
}
