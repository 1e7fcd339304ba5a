package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardline/wardline/domain"
)

// idleConfig is the idle scenario: Conns authenticated connections that
// then do nothing for Hold.
type idleConfig struct {
	Conns    int
	Hold     time.Duration
	Inflight int
	// Settle is the wait before the baseline sample, so the server's
	// start-up allocations are not charged to the connections.
	Settle time.Duration
}

func (c idleConfig) validate() error {
	if c.Conns < 1 || c.Hold < 0 || c.Inflight < 1 || c.Settle < 0 {
		return fmt.Errorf("idle: --conns and --inflight must be at least 1, --hold and --settle not negative")
	}
	return nil
}

// idleResult is the idle report.
type idleResult struct {
	Scenario    string  `json:"scenario"`
	Transport   string  `json:"transport"`
	Conns       int     `json:"conns"`
	Connected   int     `json:"connected"`
	Hold        string  `json:"hold"`
	Disconnects uint64  `json:"unexpectedDisconnects"`
	RSSBefore   uint64  `json:"rssBeforeKiB,omitempty"`
	RSSAfter    uint64  `json:"rssAfterKiB,omitempty"`
	PeakRSS     uint64  `json:"peakRssKiB,omitempty"`
	KiBPerConn  float64 `json:"kibPerConn,omitempty"`
	ServerCPUms float64 `json:"serverCpuMsDuringHold,omitempty"`
	// ClientPeakRSSKiB is the tool's own peak memory, for judging its footprint.
	ClientPeakRSSKiB uint64 `json:"clientPeakRssKiB"`
}

// runIdle opens the connections, holds them, and measures the server's
// resident memory growth per connection at the end of the hold.
func runIdle(ctx context.Context, tgt *target, cfg idleConfig) (*idleResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	res := &idleResult{Scenario: "idle", Transport: string(tgt.transport), Conns: cfg.Conns, Hold: cfg.Hold.String()}
	if err := sleep(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	before, haveProc, err := tgt.sample()
	if err != nil {
		return nil, err
	}
	tokens := make([]string, cfg.Conns)
	for i := range tokens {
		if tokens[i], err = tgt.token(fmt.Sprintf("bench-%s-idle%d", tgt.runID, i), domain.RoleNurse); err != nil {
			return nil, err
		}
	}

	conns := make([]*conn, cfg.Conns)
	var (
		readers sync.WaitGroup
		closing atomic.Bool
		drops   atomic.Uint64
	)
	defer func() {
		closing.Store(true)
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
		readers.Wait()
	}()
	err = forEach(ctx, cfg.Conns, cfg.Inflight, func(ctx context.Context, i int) error {
		c, err := tgt.connect(ctx, tokens[i])
		if err != nil {
			return err
		}
		conns[i] = c
		// A reader per connection answers the server's pings (gorilla
		// replies from inside reads; the Socket.IO reader writes its "3")
		// and notices a server-side close.
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				if _, err := c.next(); err != nil && !isDecode(err) {
					if !closing.Load() {
						drops.Add(1)
					}
					return
				}
			}
		}()
		return nil
	})
	for _, c := range conns {
		if c != nil {
			res.Connected++
		}
	}
	if err != nil {
		return nil, fmt.Errorf("idle: %d of %d connected: %w", res.Connected, cfg.Conns, err)
	}
	mid, _, err := tgt.sample()
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, cfg.Hold); err != nil {
		return nil, err
	}
	after, _, err := tgt.sample()
	if err != nil {
		return nil, err
	}
	res.Disconnects = drops.Load()
	res.ClientPeakRSSKiB = selfPeakRSS()
	if haveProc {
		res.RSSBefore, res.RSSAfter, res.PeakRSS = before.RSSKiB, after.RSSKiB, after.HWMKiB
		res.KiBPerConn = (float64(after.RSSKiB) - float64(before.RSSKiB)) / float64(res.Connected)
		res.ServerCPUms = ms(after.CPU - mid.CPU)
	}
	return res, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
