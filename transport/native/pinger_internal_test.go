package native

import (
	"testing"
	"time"
)

func TestThePingScheduleVisitsEveryOpenConnectionEachPeriodAndForgetsClosedOnes(t *testing.T) {
	const period = 20 * time.Millisecond
	p := newPinger(period)
	defer p.stop()
	srv := &Server{}
	conns := make([]*Conn, 50)
	slots := make([]*pingSlot, len(conns))
	for i := range conns {
		// closed: schedulePing returns at once, without a socket to write.
		conns[i] = &Conn{srv: srv, closed: true}
		slots[i] = p.add(conns[i])
	}
	// Close half of them: their slots let go at once.
	for i := 0; i < len(slots); i += 2 {
		p.remove(slots[i])
		if slots[i].c != nil {
			t.Fatalf("slot %d still holds its connection after remove", i)
		}
	}
	// After a few periods the closed half has left the schedule and the
	// open half is still in it, once each.
	time.Sleep(5 * period)
	p.mu.Lock()
	live := p.fifo[p.head:]
	seen := map[*Conn]int{}
	prev := int64(-1)
	for _, e := range live {
		if e.due < prev {
			t.Errorf("schedule out of due order: %d after %d", e.due, prev)
		}
		prev = e.due
		if e.slot.c == nil {
			t.Errorf("a closed connection's slot is still scheduled after its due time")
			continue
		}
		seen[e.slot.c]++
		if e.due < int64(3*period) {
			t.Errorf("a connection is due %v after the start: it was not re-armed at each ping", time.Duration(e.due))
		}
	}
	head := p.head
	p.mu.Unlock()
	if len(seen) != len(conns)/2 {
		t.Fatalf("%d connections scheduled, want %d", len(seen), len(conns)/2)
	}
	for _, n := range seen {
		if n != 1 {
			t.Fatalf("a connection is scheduled %d times", n)
		}
	}
	if head >= len(conns) {
		t.Errorf("the consumed head (%d) was never compacted", head)
	}
}

func TestAPingScheduleThatEmptiesStopsItsTimer(t *testing.T) {
	p := newPinger(10 * time.Millisecond)
	defer p.stop()
	slot := p.add(&Conn{srv: &Server{}, closed: true})
	p.remove(slot)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		empty := p.head == len(p.fifo)
		p.mu.Unlock()
		if empty {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed connection never left the schedule")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
