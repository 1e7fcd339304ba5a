package gateway

import (
	"testing"

	"github.com/wardline/wardline/transport/internal/workpool"
)

func TestSpawnRunsOwnedGoroutinesUntilShutdownWaits(t *testing.T) {
	g := Gateway{workers: workpool.New(workerIdle, func(fn func()) { fn() })}
	defer g.workers.Stop()
	ran := make(chan struct{})
	if !g.spawn(func() { close(ran) }) {
		t.Fatal("spawn refused before Shutdown")
	}
	<-ran
	g.wg.Wait()
	g.spawnMu.Lock()
	g.stopping = true // what Shutdown sets before it waits
	g.spawnMu.Unlock()
	if g.spawn(func() { t.Error("ran after Shutdown began waiting") }) {
		t.Fatal("spawn accepted a goroutine while Shutdown waits")
	}
	g.wg.Wait()
}
