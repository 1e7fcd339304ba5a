package gateway

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series. They are registered on the
// registry the owner passes in, never on the global one.
type metrics struct {
	connections    *prometheus.GaugeVec     // namespace, transport
	eventsIn       *prometheus.CounterVec   // transport, event, outcome (ok or the error code)
	eventsOut      *outCounters             // transport, event
	ackLatency     *prometheus.HistogramVec // event
	deliveryDelay  prometheus.Histogram
	queueOverflows *prometheus.CounterVec // transport
	authFailures   *prometheus.CounterVec // transport, reason
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "wardline", Subsystem: "gateway", Name: "connections",
			Help: "Open authenticated connections.",
		}, []string{"namespace", "transport"}),
		eventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wardline", Subsystem: "gateway", Name: "events_in_total",
			Help: "Client requests handled, by outcome (ok or the ack error code).",
		}, []string{"transport", "event", "outcome"}),
		eventsOut: newOutCounters(prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wardline", Subsystem: "gateway", Name: "events_out_total",
			Help: "Pushes handed to connections' send queues.",
		}, []string{"transport", "event"})),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "wardline", Subsystem: "gateway", Name: "ack_latency_seconds",
			Help:    "Time from a request's arrival to its ack.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"event"}),
		deliveryDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "wardline", Subsystem: "gateway", Name: "delivery_latency_seconds",
			Help:    "Time from an event's commit to its fan-out to the send queues.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		queueOverflows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wardline", Subsystem: "gateway", Name: "queue_overflows_total",
			Help: "Connections closed because their send queue overflowed (slow consumers).",
		}, []string{"transport"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wardline", Subsystem: "gateway", Name: "auth_failures_total",
			Help: "Refused handshakes and token refreshes.",
		}, []string{"transport", "reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connections, m.eventsIn, m.eventsOut.vec, m.ackLatency, m.deliveryDelay, m.queueOverflows, m.authFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway: register metrics: %w", err)
		}
	}
	return m, nil
}

// outCounters is events_out_total with its children cached: it is counted
// once per delivery, and CounterVec.WithLabelValues (hashing and checking
// the label values, a locked map) was over half of the hub's fan-out CPU
// (BenchmarkHubFanOut). The cache is a copy-on-write map, read without a
// lock or an allocation; its keys are the gateway's own push names, a small
// fixed set.
type outCounters struct {
	vec   *prometheus.CounterVec
	mu    sync.Mutex // serialises misses
	cache atomic.Pointer[map[outKey]prometheus.Counter]
}

type outKey struct{ transport, event string }

func newOutCounters(vec *prometheus.CounterVec) *outCounters {
	o := &outCounters{vec: vec}
	o.cache.Store(&map[outKey]prometheus.Counter{})
	return o
}

// WithLabelValues returns the counter of transport and event.
func (o *outCounters) WithLabelValues(transport, event string) prometheus.Counter {
	k := outKey{transport, event}
	if c, ok := (*o.cache.Load())[k]; ok {
		return c
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	old := *o.cache.Load()
	if c, ok := old[k]; ok {
		return c
	}
	c := o.vec.WithLabelValues(transport, event)
	next := make(map[outKey]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[k] = c
	o.cache.Store(&next)
	return c
}
