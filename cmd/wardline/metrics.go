package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/bolt"
	"github.com/wardline/wardline/projections"
)

// instrumentedStore measures appends: the latency every acknowledged
// command waits for, and so the first number to look at when acks slow down.
type instrumentedStore struct {
	eventstore.Store
	appendSeconds *prometheus.HistogramVec
	appended      prometheus.Counter
}

func newInstrumentedStore(s eventstore.Store, reg prometheus.Registerer) *instrumentedStore {
	is := &instrumentedStore{
		Store: s,
		appendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wardline_store_append_seconds",
			Help:    "Time an append takes until its events are durable.",
			Buckets: []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1},
		}, []string{"result"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wardline_store_appended_events_total",
			Help: "Events appended by this node.",
		}),
	}
	reg.MustRegister(is.appendSeconds, is.appended)
	if st, ok := s.(interface{ Stats() bolt.Stats }); ok {
		// Events per commit is the group commit's size: the figure to watch
		// when tuning --commit-interval.
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "wardline_store_commits_total",
				Help: "Transactions the embedded store committed (two fsyncs each).",
			}, func() float64 { return float64(st.Stats().Commits) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "wardline_store_committed_events_total",
				Help: "Events the embedded store committed, over all its writers.",
			}, func() float64 { return float64(st.Stats().Events) }),
		)
	}
	return is
}

func (s *instrumentedStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	start := time.Now()
	res, err := s.Store.Append(ctx, stream, expected, events)
	result := "ok"
	if err != nil {
		result = "error"
	} else {
		s.appended.Add(float64(len(events)))
	}
	s.appendSeconds.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return res, err
}

// projectionCollector reports each projection's checkpoint and lag at
// scrape time, straight from the runner.
type projectionCollector struct {
	runner *projections.Runner
}

var (
	projLagDesc = prometheus.NewDesc("wardline_projection_lag_events",
		"Events between the log's head and the projection's checkpoint.", []string{"projection"}, nil)
	projCheckpointDesc = prometheus.NewDesc("wardline_projection_checkpoint",
		"Log position the projection has applied up to.", []string{"projection"}, nil)
	projFailedDesc = prometheus.NewDesc("wardline_projection_failed",
		"1 while the projection is parked after a failure.", []string{"projection"}, nil)
)

func (c *projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- projLagDesc
	ch <- projCheckpointDesc
	ch <- projFailedDesc
}

func (c *projectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	statuses, err := c.runner.Status(ctx)
	if err != nil {
		return
	}
	for _, s := range statuses {
		failed := 0.0
		if s.Err != nil {
			failed = 1
		}
		ch <- prometheus.MustNewConstMetric(projLagDesc, prometheus.GaugeValue, float64(s.Lag), s.Name)
		ch <- prometheus.MustNewConstMetric(projCheckpointDesc, prometheus.GaugeValue, float64(s.Checkpoint), s.Name)
		ch <- prometheus.MustNewConstMetric(projFailedDesc, prometheus.GaugeValue, failed, s.Name)
	}
}
