package gateway_test

import (
	"testing"
	"time"

	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/guard"
)

// BenchmarkMessageSendFanOut measures message:send over the native protocol
// end to end: decide, append (in-memory store), ack, project, and fan out
// to the members' connections (three members, the sender included), with
// every push read by its client.
func BenchmarkMessageSendFanOut(b *testing.B) {
	h := newHarness(b, func(c *gateway.Config) {
		c.RateLimit = guard.LimitConfig{Rate: 1e9, Burst: 1 << 30}
		c.UserRateLimit = guard.KeyedConfig{LimitConfig: guard.LimitConfig{Rate: 1e9, Burst: 1 << 30}}
	})
	alice := h.connect(h.nurse("alice"), "")
	if !success(alice.request("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"bob", "carol"}})) {
		b.Fatal("room:create failed")
	}
	readers := []*nclient{h.connect(h.nurse("bob"), ""), h.connect(h.nurse("carol"), "")}
	done := make(chan struct{}, len(readers))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, r := range readers {
		go func() {
			for range b.N {
				if f, ok := <-r.frames; !ok || f.Event != "message:new" {
					break
				}
			}
			done <- struct{}{}
		}()
	}
	for range b.N {
		if raw := alice.request("message:send", map[string]any{"roomId": "ward", "content": "vitals stable"}); !success(raw) {
			b.Fatalf("send failed: %s", raw)
		}
	}
	for range readers {
		<-done
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
