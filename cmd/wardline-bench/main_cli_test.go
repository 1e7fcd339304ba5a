package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"sync/atomic"
	"testing"
)

func TestCommandLineMistakesAreUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no scenario", nil},
		{"an unknown scenario", []string{"flood"}},
		{"a non-loopback address", []string{"--addr", "10.0.0.1:8080", "idle"}},
		{"a non-loopback address after the scenario", []string{"idle", "--addr", "example.com:80"}},
		{"a server pid without an address", []string{"--server-pid", "1", "idle"}},
		{"a server binary with an address", []string{"--addr", "127.0.0.1:1", "--server-bin", "/bin/true", "idle"}},
		{"stray arguments", []string{"idle", "extra"}},
		{"a zero rate", []string{"fanout", "--rate", "0"}},
		{"a negative hold", []string{"idle", "--hold", "-1s"}},
		{"zero connections in a storm", []string{"connect-storm", "--conns", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := execute(context.Background(), tt.args, &out, &errOut)
			if !errors.Is(err, errUsage) && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("execute(%q) = %v, want a usage error", tt.args, err)
			}
		})
	}
}

func TestScenarioConfigsRefuseImpossibleValues(t *testing.T) {
	if (fanoutConfig{Rooms: 1, Members: 1, Rate: 0, Duration: 1}).validate() == nil {
		t.Error("fanout accepted a zero rate")
	}
	if (fanoutConfig{Rooms: 1, Members: 1, Rate: 1}).validate() == nil {
		t.Error("fanout accepted a zero duration")
	}
	if (idleConfig{Conns: 0, Inflight: 1}).validate() == nil {
		t.Error("idle accepted zero connections")
	}
	if (stormConfig{Conns: 1, Inflight: 0}).validate() == nil {
		t.Error("connect-storm accepted zero in flight")
	}
}

func TestForEachBoundsConcurrencyAndStopsAtTheFirstError(t *testing.T) {
	var cur, peak, calls atomic.Int32
	boom := errors.New("boom")
	err := forEach(context.Background(), 100, 3, func(ctx context.Context, i int) error {
		calls.Add(1)
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if peak.Load() > 3 {
		t.Fatalf("%d calls ran at once, limit 3", peak.Load())
	}
	if calls.Load() >= 100 {
		t.Fatalf("all %d calls ran despite the error", calls.Load())
	}
}

func TestAnUnknownTransportIsRefusedBeforeAnyServerStarts(t *testing.T) {
	var out, errOut bytes.Buffer
	err := execute(context.Background(), []string{"--server-bin", "/nonexistent", "idle", "--transport", "carrier-pigeon"}, &out, &errOut)
	if err == nil || !bytes.Contains(errOut.Bytes(), []byte("not native or socketio")) {
		t.Fatalf("execute = %v, stderr %q; want the transport refused", err, errOut.String())
	}
}
