package gateway

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
)

// footprintSessions is how many idle sessions one op of
// BenchmarkSessionFootprint holds at once.
const footprintSessions = 10000

// BenchmarkSessionFootprint measures what the gateway itself holds per idle
// session, the transports' connections aside: the session with its limiter
// and expiry timers, registered with the hub, as the connect path leaves
// it. B/session is the live heap growth over footprintSessions sessions,
// after a GC, divided by their number.
func BenchmarkSessionFootprint(b *testing.B) {
	hb, _ := benchHub(b, 1)
	g := &Gateway{cfg: Config{Now: time.Now, ExpiryWarning: DefaultExpiryWarning, MaxQueueMessages: DefaultMaxQueueMessages}, hub: hb, metrics: hb.metrics}
	exp := time.Now().Add(time.Hour)
	held := make([]*session, footprintSessions)
	var perSession float64
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		before := liveHeap()
		for i := range held {
			user := fmt.Sprintf("user-%05d", i)
			s, err := g.newSession(fmt.Sprintf("sess-%05d", i), auth.Claims{
				Subject: user, ExpiresAt: exp, SessionID: "browser-" + user, Roles: []domain.Role{domain.RoleNurse},
			}, methodNativeAuth, transportNative, "127.0.0.1:40000")
			if err != nil {
				b.Fatal(err)
			}
			s.scheduleExpiry()
			s.after = g.hub.register(s)
			s.replaying = false
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
