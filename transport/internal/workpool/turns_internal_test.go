package workpool

import (
	"sync"
	"testing"
	"time"
)

func TestAJobPushedToTheFrontRunsBeforeTheWaitingOnes(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var order []int
	done := make(chan struct{})
	w := NewTurns(time.Second, func(j int) bool {
		if j == 0 {
			close(started)
			<-release // holds the only goroutine while the others queue
		}
		mu.Lock()
		order = append(order, j)
		n := len(order)
		mu.Unlock()
		if n == 4 {
			close(done)
		}
		return false
	})
	w.max = 1
	w.Push(0)
	<-started
	w.Push(1)
	w.Push(2)
	w.PushFront(3)
	close(release)
	<-done
	w.Stop()
	want := []int{0, 3, 1, 2}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("ran %v, want %v", order, want)
		}
	}
}
