// Package idletest holds the transports' shared test check that idle
// connections hold no goroutine (see idlewait.Poller). It is imported by
// tests only.
package idletest

import (
	"runtime"
	"testing"
	"time"
)

// ExpectFewGoroutines waits up to 10 s for the process to hold fewer than
// n/4 goroutines over base while n connections (what) stay idle, and fails
// the test otherwise. Workers that idle out and readers that park take a
// moment, so it polls.
func ExpectFewGoroutines(tb testing.TB, base, n int, what string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		extra := runtime.NumGoroutine() - base
		if extra < n/4 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d idle %s hold %d goroutines", n, what, extra)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
