package gateway

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore/memstore"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/transport/auth"
)

// footprintSessions is how many idle sessions one op of
// BenchmarkSessionFootprint holds at once.
const footprintSessions = 10000

// BenchmarkSessionFootprint measures what the gateway itself holds per idle
// session, the transports' connections aside: the session with its place in
// the expiry queue (its limiter is made at its first event), registered with the hub,
// as the connect path leaves it. B/session is the live heap growth over footprintSessions sessions,
// after a GC, divided by their number.
func BenchmarkSessionFootprint(b *testing.B) {
	hb, _ := benchHub(b, 1)
	g := &Gateway{cfg: Config{Now: time.Now, ExpiryWarning: DefaultExpiryWarning, MaxQueueMessages: DefaultMaxQueueMessages}, hub: hb, metrics: hb.metrics}
	g.expiries = newExpiryQueue(g.fireExpiry)
	exp := time.Now().Add(time.Hour)
	held := make([]*session, footprintSessions)
	var perSession float64
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		before := liveHeap()
		for i := range held {
			user := fmt.Sprintf("user-%05d", i)
			s := g.newSession(fmt.Sprintf("sess-%05d", i), auth.Claims{
				Subject: user, ExpiresAt: exp, SessionID: "browser-" + user, Roles: []domain.Role{domain.RoleNurse},
			}, transportNative, "127.0.0.1:40000")
			s.scheduleExpiry()
			s.after = g.hub.register(s) // live: no replay buffer
			held[i] = s
		}
		if n == 0 {
			// Later ops start while the runtime still holds the stopped
			// timers of the previous one, so only the first is measured.
			perSession = float64(liveHeap()-before) / footprintSessions
		}
		for i, s := range held {
			g.hub.unregister(s)
			s.closeGone()
			held[i] = nil
		}
	}
	b.ReportMetric(perSession, "B/session")
}

func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkPresenceStartFootprint measures what recording footprintSessions
// session starts (StartSession on each user's presence stream, as
// openSession does) leaves on the heap, the in-memory store's events
// included: B/session, after a GC. Only the last DefaultPresenceCacheSize
// users' presence states stay cached (in their compact form) besides the
// store's events.
func BenchmarkPresenceStartFootprint(b *testing.B) {
	var perSession float64
	b.ReportAllocs()
	for n := range b.N {
		before := liveHeap()
		svc := newService(&Config{Store: memstore.New(), Decoder: projections.DecoderFunc(domain.Decode), NodeID: "node-a", Now: time.Now})
		for i := range footprintSessions {
			user := fmt.Sprintf("user-%05d", i)
			actor := domain.Actor{UserID: user, Roles: []domain.Role{domain.RoleNurse}, SessionID: fmt.Sprintf("sess-%05d", i)}
			cmd := domain.StartSession{SessionID: actor.SessionID, Namespace: chatNamespace, Transport: transportNative, ClientAddr: "127.0.0.1:40000"}
			if _, err := svc.execute(context.Background(), actor, domain.PresenceStream(user), newPresence, func(c domain.Context, st folder) ([]domain.Event, error) {
				return cmd.Decide(c, st.(*presenceState).presence())
			}, nil); err != nil {
				b.Fatal(err)
			}
		}
		if n == 0 {
			perSession = float64(liveHeap()-before) / footprintSessions
		}
		if busy, idle := svc.presence.len(); busy != 0 || idle != DefaultPresenceCacheSize {
			b.Fatalf("%d busy and %d idle presence states cached, want 0 and %d", busy, idle, DefaultPresenceCacheSize)
		}
		runtime.KeepAlive(svc)
	}
	b.ReportMetric(perSession, "B/session")
}

// BenchmarkPresenceDecisionLongHistory measures a session start and end of
// a user whose presence stream already holds historySessions earlier
// sessions (four events each): with the state cached, a decision folds
// only what was appended since the last one (folding the whole stream for
// each decision took about 32 ms a decision here).
func BenchmarkPresenceDecisionLongHistory(b *testing.B) {
	const historySessions = 1000
	svc := newService(&Config{Store: memstore.New(), Decoder: projections.DecoderFunc(domain.Decode), NodeID: "node-a", Now: time.Now})
	stream := domain.PresenceStream("alice")
	session := func(id string) {
		actor := domain.Actor{UserID: "alice", Roles: []domain.Role{domain.RoleNurse}, SessionID: id}
		start := domain.StartSession{SessionID: id, Namespace: chatNamespace, Transport: transportNative}
		end := domain.EndSession{UserID: "alice", SessionID: id, Reason: reasonDisconnect}
		for _, decide := range []decideFunc{
			func(c domain.Context, st folder) ([]domain.Event, error) {
				return start.Decide(c, st.(*presenceState).presence())
			},
			func(c domain.Context, st folder) ([]domain.Event, error) {
				return end.Decide(c, st.(*presenceState).presence())
			},
		} {
			if _, err := svc.execute(context.Background(), actor, stream, newPresence, decide, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := range historySessions {
		session(fmt.Sprintf("old-%04d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		session(fmt.Sprintf("new-%d", i))
	}
}
