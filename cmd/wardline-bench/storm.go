package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardline/wardline/domain"
)

// stormConfig is the connect-storm scenario: Conns connections, at most
// Inflight being set up at once, each dialled and authenticated.
type stormConfig struct {
	Conns, Inflight int
}

func (c stormConfig) validate() error {
	if c.Conns < 1 || c.Inflight < 1 {
		return fmt.Errorf("connect-storm: --conns and --inflight must be at least 1")
	}
	return nil
}

// stormResult is the connect-storm report.
type stormResult struct {
	Scenario    string         `json:"scenario"`
	Transport   string         `json:"transport"`
	Conns       int            `json:"conns"`
	Inflight    int            `json:"inflight"`
	Connected   uint64         `json:"connected"`
	Failed      uint64         `json:"failed"`
	FirstError  string         `json:"firstError,omitempty"`
	ElapsedMs   float64        `json:"elapsedMs"`
	ConnsPerSec float64        `json:"connsPerSec"`
	Connect     latencySummary `json:"connectTime"`
	Server      *serverFigures `json:"server,omitempty"`
}

// runStorm opens every connection as fast as Inflight allows, keeping them
// open until all are done (so the server holds Conns sessions at the end,
// as in a real reconnect storm), then closes them. A connection counts when
// its auth ack says success; failures are counted, not fatal.
func runStorm(ctx context.Context, tgt *target, cfg stormConfig) (*stormResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tokens := make([]string, cfg.Conns)
	for i := range tokens {
		var err error
		if tokens[i], err = tgt.token(fmt.Sprintf("bench-%s-storm%d", tgt.runID, i), domain.RoleNurse); err != nil {
			return nil, err
		}
	}
	conns := make([]*conn, cfg.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	}()
	var (
		lat      histogram
		ok, fail atomic.Uint64
		errOnce  sync.Once
		firstErr error
	)
	s0, haveProc, err := tgt.sample()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	err = forEach(ctx, cfg.Conns, cfg.Inflight, func(ctx context.Context, i int) error {
		t0 := time.Now()
		c, err := tgt.connect(ctx, tokens[i])
		if err != nil {
			if errors.Is(err, errGatewayNotMounted) || errors.Is(err, errSIONotMounted) {
				return err
			}
			fail.Add(1)
			errOnce.Do(func() { firstErr = err })
			return nil
		}
		lat.Record(time.Since(t0))
		conns[i] = c
		ok.Add(1)
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	s1, _, err := tgt.sample()
	if err != nil {
		return nil, err
	}
	res := &stormResult{Scenario: "connect-storm", Transport: string(tgt.transport), Conns: cfg.Conns, Inflight: cfg.Inflight,
		Connected: ok.Load(), Failed: fail.Load(), ElapsedMs: ms(elapsed),
		ConnsPerSec: float64(ok.Load()) / elapsed.Seconds(), Connect: lat.Summary()}
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	if haveProc {
		res.Server = figures(s0, s1, elapsed, 0)
	}
	return res, nil
}
