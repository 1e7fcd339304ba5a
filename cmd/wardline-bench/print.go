package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// summaryWriter collects the first write error, so the printers stay linear.
type summaryWriter struct {
	w   io.Writer
	err error
}

func (s *summaryWriter) line(format string, a ...any) {
	if s.err == nil {
		_, s.err = fmt.Fprintf(s.w, format+"\n", a...)
	}
}

func latencyLine(l latencySummary) string {
	return fmt.Sprintf("p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  (n=%d)", l.P50, l.P99, l.P999, l.Max, l.Count)
}

func printServer(s *summaryWriter, f *serverFigures) {
	if f == nil {
		s.line("server:      CPU and RSS unknown (pass --server-pid with --addr)")
		return
	}
	s.line("server CPU:  %.0f ms over the window (%.2f cores)", f.CPUms, f.CPUUtil)
	if f.CPUmsPer1000Delivery > 0 {
		s.line("             %.2f ms per 1,000 deliveries", f.CPUmsPer1000Delivery)
	}
	s.line("server RSS:  %.1f MiB (peak %.1f MiB)", float64(f.RSSKiB)/1024, float64(f.PeakRSSKiB)/1024)
}

func printFanout(w io.Writer, r *fanoutResult) error {
	s := &summaryWriter{w: w}
	s.line("fanout (%s): %d rooms x %d members, %d msgs/s per room from %d publisher(s), warmup %s, window %s", r.Transport, r.Rooms, r.Members, r.Rate, r.Publishers, r.Warmup, r.Duration)
	s.line("sent:        %d of %d planned, %d acked, %d ack failures%s, %d unanswered", r.Sent, r.Planned, r.Acked, r.AckFailed, codes(r.AckFailures), r.Unanswered)
	s.line("deliveries:  %.0f /s in the window (%d), %d received of %d expected", r.DeliveriesPerSec, r.WindowDeliveries, r.Received, r.Expected)
	s.line("latency:     %s", latencyLine(r.Latency))
	s.line("ack latency: %s", latencyLine(r.AckLatency))
	s.line("loss (not received within grace) %d, duplicates %d, reordered %d, undecoded %d, unexpected disconnects %d", r.Lost, r.Duplicates, r.Reordered, r.Undecoded, r.Disconnects)
	printServer(s, r.Server)
	s.line("tool:        %.0f ms CPU, peak RSS %.1f MiB", r.ClientCPUms, float64(r.ClientPeakRSSKiB)/1024)
	if r.ServerProfile != "" {
		s.line("server profile: %s", r.ServerProfile)
	}
	return s.err
}

func codes(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func printIdle(w io.Writer, r *idleResult) error {
	s := &summaryWriter{w: w}
	s.line("idle (%s): %d of %d connections authenticated, held %s, %d unexpected disconnects", r.Transport, r.Connected, r.Conns, r.Hold, r.Disconnects)
	if r.RSSAfter == 0 {
		s.line("server RSS unknown (pass --server-pid with --addr)")
		return s.err
	}
	s.line("server RSS:  %.1f MiB before, %.1f MiB after (peak %.1f MiB)", float64(r.RSSBefore)/1024, float64(r.RSSAfter)/1024, float64(r.PeakRSS)/1024)
	s.line("per conn:    %.2f KiB", r.KiBPerConn)
	s.line("server CPU while idle: %.0f ms", r.ServerCPUms)
	s.line("tool peak RSS: %.1f MiB", float64(r.ClientPeakRSSKiB)/1024)
	return s.err
}

func printStorm(w io.Writer, r *stormResult) error {
	s := &summaryWriter{w: w}
	s.line("connect-storm (%s): %d connections, %d in flight", r.Transport, r.Conns, r.Inflight)
	s.line("connected:   %d in %.0f ms = %.0f authenticated connections/s, %d failed", r.Connected, r.ElapsedMs, r.ConnsPerSec, r.Failed)
	if r.FirstError != "" {
		s.line("first error: %s", r.FirstError)
	}
	s.line("connect:     %s", latencyLine(r.Connect))
	printServer(s, r.Server)
	return s.err
}
