package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardline/wardline/domain"
)

// fanoutConfig is the fan-out scenario: Rooms rooms of Members member
// connections each, one publisher per room sending Rate messages/s for
// Warmup+Duration; figures cover the Duration after the Warmup.
type fanoutConfig struct {
	Rooms, Members, Rate int
	Warmup, Duration     time.Duration
	// Grace is how long to wait after the last send for outstanding deliveries.
	Grace time.Duration
	// ContentSize pads each message's content to at least this many bytes.
	ContentSize int
	// Publishers per room (each its own user and connection) share the
	// room's rate: one publisher cannot exceed the server's per-connection
	// rate limit (100 events/s by default).
	Publishers int
	// SetupInflight bounds concurrent connection setups.
	SetupInflight int
	// ServerProfile, when set, is where a CPU profile of the server over
	// the measured window is written (the server must serve /debug/pprof/).
	ServerProfile string
}

func (c fanoutConfig) validate() error {
	switch {
	case c.Rooms < 1 || c.Members < 1 || c.Rate < 1 || c.Publishers < 1 || c.SetupInflight < 1:
		return fmt.Errorf("fanout: --rooms, --members, --rate, --publishers and --setup-inflight must be at least 1")
	case c.Duration <= 0 || c.Warmup < 0 || c.Grace < 0:
		return fmt.Errorf("fanout: --duration must be positive, --warmup and --grace not negative")
	case c.Rate > 100000:
		return fmt.Errorf("fanout: --rate %d is above the tool's 100000/s per room", c.Rate)
	case c.ContentSize < 0 || c.ContentSize > 16*1024:
		return fmt.Errorf("fanout: --content-size must be within 0..16384")
	}
	return nil
}

// fanoutResult is the fan-out report.
type fanoutResult struct {
	Scenario    string            `json:"scenario"`
	Transport   string            `json:"transport"`
	Rooms       int               `json:"rooms"`
	Members     int               `json:"members"`
	Rate        int               `json:"ratePerRoom"`
	Publishers  int               `json:"publishersPerRoom"`
	Warmup      string            `json:"warmup"`
	Duration    string            `json:"duration"`
	Planned     uint64            `json:"plannedSends"`
	Sent        uint64            `json:"sent"`
	Acked       uint64            `json:"acked"`
	AckFailed   uint64            `json:"ackFailed"`
	AckFailures map[string]uint64 `json:"ackFailures,omitempty"`
	// Unanswered sends got no ack by the end of the grace period.
	Unanswered uint64 `json:"unanswered"`
	// Expected is acked messages × members: what the members must receive.
	// Lost counts those not received by the end of the grace period.
	Expected   uint64 `json:"expectedDeliveries"`
	Received   uint64 `json:"receivedDeliveries"`
	Lost       uint64 `json:"lost"`
	Duplicates uint64 `json:"duplicates"`
	Reordered  uint64 `json:"reordered"`
	Undecoded  uint64 `json:"undecoded"`
	// WindowDeliveries were received during the measured window.
	WindowDeliveries uint64         `json:"windowDeliveries"`
	DeliveriesPerSec float64        `json:"deliveriesPerSec"`
	Latency          latencySummary `json:"latency"`
	AckLatency       latencySummary `json:"ackLatency"`
	Server           *serverFigures `json:"server,omitempty"`
	ClientCPUms      float64        `json:"clientCpuMs"`
	ClientPeakRSSKiB uint64         `json:"clientPeakRssKiB"`
	Disconnects      uint64         `json:"unexpectedDisconnects"`
	// ServerProfile says where the server's CPU profile went, or why there is none.
	ServerProfile string `json:"serverProfile,omitempty"`
}

// serverFigures are the server's costs over the measured window.
type serverFigures struct {
	CPUms                float64 `json:"cpuMs"`
	CPUmsPer1000Delivery float64 `json:"cpuMsPer1000Deliveries,omitempty"`
	CPUUtil              float64 `json:"cpuCores"`
	RSSKiB               uint64  `json:"rssKiB"`
	PeakRSSKiB           uint64  `json:"peakRssKiB"`
}

// room is one room's publishers, members, and send times.
type room struct {
	id   string
	pubs []*publisher
	// sent holds the send time of the room's message n (request id
	// firstSendID+n); each n is written by exactly one publisher.
	sent    []atomic.Int64
	members []*member
}

// publisher is one publishing connection and the ground truth of what it
// got acknowledged.
type publisher struct {
	c     *conn
	index int    // which of the room's messages it sends (see publish)
	acked seqSet // room seqs acknowledged; owned by the publisher's reader
	// nSent, nAcked and nFailed feed the end-of-run progress check.
	nSent, nAcked, nFailed atomic.Uint64
	failures               map[string]uint64 // ack error codes; owned by the publisher's reader
}

// member is one member connection and its accounting.
type member struct {
	c *conn
	t tally // owned by the member's reader until it exits
}

// publishOverrun is how far past the planned end a publisher that fell
// behind may keep sending.
const publishOverrun = 2 * time.Second

// firstSendID is the request id of a publisher's first message:send; ids
// below it are setup requests.
const firstSendID = 100

// fanoutRun holds one run's shared counters.
type fanoutRun struct {
	cfg   fanoutConfig
	tgt   *target
	base  time.Time // latencies are measured against this monotonic origin
	rooms []*room

	lat, ackLat  histogram
	windowFrom   atomic.Int64 // sends at or after this (ns since base) enter the latency figures
	windowTo     atomic.Int64
	delivered    atomic.Uint64 // fresh deliveries to members
	received     atomic.Uint64 // all member deliveries
	undecoded    atomic.Uint64
	disconnects  atomic.Uint64
	closing      atomic.Bool
	sentTotal    atomic.Uint64
	ackFailTotal atomic.Uint64
}

func (r *fanoutRun) since() int64 { return int64(time.Since(r.base)) }

// runFanout sets up the rooms and connections, publishes, waits for the
// deliveries, and reports.
func runFanout(ctx context.Context, tgt *target, cfg fanoutConfig) (*fanoutResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &fanoutRun{cfg: cfg, tgt: tgt, base: time.Now()}
	r.windowFrom.Store(int64(1<<62 - 1))
	r.windowTo.Store(int64(1<<62 - 1))
	total := planned(cfg)
	var readers sync.WaitGroup
	// Closing the sockets ends every reader; nothing outlives the run.
	closeAll := sync.OnceFunc(func() {
		r.closing.Store(true)
		for _, rm := range r.rooms {
			for _, p := range rm.pubs {
				if p.c != nil {
					p.c.close()
				}
			}
			for _, m := range rm.members {
				m.c.close()
			}
		}
		readers.Wait()
	})
	defer closeAll()

	for i := range cfg.Rooms {
		rm := &room{id: fmt.Sprintf("bench-%s-r%d", tgt.runID, i), sent: make([]atomic.Int64, total+1)}
		for k := range cfg.Publishers {
			rm.pubs = append(rm.pubs, &publisher{index: k, failures: map[string]uint64{}})
		}
		r.rooms = append(r.rooms, rm)
	}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	for _, rm := range r.rooms {
		readers.Add(len(rm.pubs) + len(rm.members))
		for _, p := range rm.pubs {
			go func() { defer readers.Done(); r.readPublisher(rm, p) }()
		}
		for _, m := range rm.members {
			go func() { defer readers.Done(); r.readMember(m) }()
		}
	}

	clientCPU0 := selfCPU()
	var pubs sync.WaitGroup
	pubCtx, stopPubs := context.WithCancel(ctx)
	defer stopPubs()
	start := time.Now()
	r.windowFrom.Store(int64(start.Add(cfg.Warmup).Sub(r.base)))
	r.windowTo.Store(int64(start.Add(cfg.Warmup + cfg.Duration).Sub(r.base)))
	var pubErr atomic.Pointer[error]
	for i, rm := range r.rooms {
		// Rooms are staggered over one interval so their sends do not all
		// land on the server in the same instant.
		offset := time.Second / time.Duration(cfg.Rate) * time.Duration(i) / time.Duration(len(r.rooms))
		for _, p := range rm.pubs {
			pubs.Add(1)
			go func() {
				defer pubs.Done()
				if err := r.publish(pubCtx, rm, p, total, start.Add(offset), start.Add(cfg.Warmup+cfg.Duration+publishOverrun)); err != nil {
					pubErr.CompareAndSwap(nil, &err)
				}
			}()
		}
	}

	res := &fanoutResult{Scenario: "fanout", Transport: string(tgt.transport), Rooms: cfg.Rooms, Members: cfg.Members, Rate: cfg.Rate, Publishers: cfg.Publishers,
		Warmup: cfg.Warmup.String(), Duration: cfg.Duration.String(), Planned: total * uint64(cfg.Rooms)}
	s0, d0, err := r.sampleAt(ctx, start.Add(cfg.Warmup))
	profDone := make(chan error, 1)
	if cfg.ServerProfile != "" && err == nil {
		go func() { profDone <- tgt.serverProfile(ctx, cfg.Duration, cfg.ServerProfile) }()
	} else {
		profDone <- nil
	}
	if err == nil {
		var s1 procSample
		var d1 uint64
		s1, d1, err = r.sampleAt(ctx, start.Add(cfg.Warmup+cfg.Duration))
		res.WindowDeliveries = d1 - d0
		res.DeliveriesPerSec = float64(res.WindowDeliveries) / cfg.Duration.Seconds()
		if tgt.pid != 0 && err == nil {
			res.Server = figures(s0, s1, cfg.Duration, res.WindowDeliveries)
		}
	}
	pubs.Wait()
	if perr := <-profDone; perr != nil {
		res.ServerProfile = "none: " + perr.Error()
	} else if cfg.ServerProfile != "" {
		res.ServerProfile = cfg.ServerProfile
	}
	if err != nil {
		return nil, err
	}
	if p := pubErr.Load(); p != nil {
		return nil, *p
	}
	r.awaitDeliveries(ctx)
	res.ClientCPUms = ms(selfCPU() - clientCPU0)
	res.ClientPeakRSSKiB = selfPeakRSS()

	closeAll()
	r.account(res)
	return res, nil
}

// planned is the number of messages sent to one room.
func planned(cfg fanoutConfig) uint64 {
	return uint64(float64(cfg.Rate) * (cfg.Warmup + cfg.Duration).Seconds())
}

// setup connects the publishers (who create the rooms) and then the members
// (who join them).
func (r *fanoutRun) setup(ctx context.Context) error {
	// The first publisher creates the room; any others join it.
	err := forEach(ctx, len(r.rooms)*r.cfg.Publishers, r.cfg.SetupInflight, func(ctx context.Context, i int) error {
		rm, k := r.rooms[i/r.cfg.Publishers], i%r.cfg.Publishers
		if k > 0 {
			return nil
		}
		return r.connectPublisher(ctx, rm, rm.pubs[0], "room:create", map[string]any{"roomId": rm.id, "name": rm.id, "private": false})
	})
	if err != nil {
		return err
	}
	err = forEach(ctx, len(r.rooms)*r.cfg.Publishers, r.cfg.SetupInflight, func(ctx context.Context, i int) error {
		rm, k := r.rooms[i/r.cfg.Publishers], i%r.cfg.Publishers
		if k == 0 {
			return nil
		}
		return r.connectPublisher(ctx, rm, rm.pubs[k], "room:join", map[string]any{"roomId": rm.id})
	})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	n := len(r.rooms) * r.cfg.Members
	return forEach(ctx, n, r.cfg.SetupInflight, func(ctx context.Context, i int) error {
		rm := r.rooms[i%len(r.rooms)]
		tok, err := r.tgt.token(fmt.Sprintf("%s-m%d", rm.id, i/len(r.rooms)), domain.RoleNurse)
		if err != nil {
			return err
		}
		c, err := r.tgt.connect(ctx, tok)
		if err != nil {
			return fmt.Errorf("member of %s: %w", rm.id, err)
		}
		mu.Lock()
		rm.members = append(rm.members, &member{c: c})
		mu.Unlock()
		_, err = c.request(ctx, 2, "room:join", map[string]any{"roomId": rm.id})
		return err
	})
}

// connectPublisher connects publisher p of rm and makes it a member with
// its first request (room:create or room:join).
func (r *fanoutRun) connectPublisher(ctx context.Context, rm *room, p *publisher, event string, data any) error {
	tok, err := r.tgt.token(fmt.Sprintf("%s-pub%d", rm.id, p.index), domain.RoleStaff)
	if err != nil {
		return err
	}
	c, err := r.tgt.connect(ctx, tok)
	if err != nil {
		return fmt.Errorf("publisher of %s: %w", rm.id, err)
	}
	p.c = c
	_, err = c.request(ctx, 2, event, data)
	return err
}

// publish sends the room's message:send number n at start+(n-1)/rate
// until total messages were sent; with several publishers per room,
// publisher k sends the n with (n-1) % publishers == k, so together they
// keep the room's even pacing. The schedule is fixed in advance (open loop): a
// publisher held up by a slow write sends the overdue messages at once
// rather than silently lowering the rate; deadline (the planned end plus a
// margin) bounds a publisher that cannot keep up at all, and the report
// shows sent against planned.
func (r *fanoutRun) publish(ctx context.Context, rm *room, p *publisher, total uint64, start, deadline time.Time) error {
	interval := time.Second / time.Duration(r.cfg.Rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	var frame, content []byte
	data := make([]byte, 0, 256)
	for n := uint64(p.index) + 1; n <= total; n += uint64(len(rm.pubs)) {
		due := start.Add(time.Duration(n-1) * interval)
		if now := time.Now(); now.After(deadline) {
			return nil
		} else if wait := due.Sub(now); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		sentAt := r.since()
		content = appendContent(content[:0], n, sentAt, r.cfg.ContentSize)
		data = append(data[:0], `{"roomId":"`...)
		data = append(data, rm.id...)
		data = append(data, `","content":"`...)
		data = append(data, content...)
		data = append(data, `","clientMsgId":"`...)
		data = append(data, rm.id...)
		data = append(data, '-')
		data = strconv.AppendUint(data, n, 10)
		data = append(data, `"}`...)
		frame = p.c.appendRequest(frame[:0], int64(firstSendID+n), "message:send", data)
		rm.sent[n].Store(sentAt)
		if err := p.c.write(frame, time.Now().Add(writeWait)); err != nil {
			return fmt.Errorf("publisher of %s: write: %w", rm.id, err)
		}
		p.nSent.Add(1)
		r.sentTotal.Add(1)
	}
	return nil
}

// readPublisher records the publisher's acks until its socket closes.
func (r *fanoutRun) readPublisher(rm *room, p *publisher) {
	for {
		f, err := p.c.next()
		if err != nil {
			if !errors.Is(err, errDecode) {
				if !r.closing.Load() {
					r.disconnects.Add(1)
				}
				return
			}
			r.undecoded.Add(1)
			continue
		}
		if !f.HasID || len(f.Event) != 0 || f.ID < firstSendID {
			continue // the publisher's own message:new and other pushes
		}
		n := uint64(f.ID - firstSendID)
		a, err := parseAck(f.Data)
		switch {
		case err != nil:
			r.undecoded.Add(1)
		case a.Success:
			if n < uint64(len(rm.sent)) {
				r.ackLat.Record(time.Duration(r.since() - rm.sent[n].Load()))
			}
			if !p.acked.add(a.Seq) {
				p.nAcked.Add(1)
			}
		default:
			code := a.Code
			if code == "" {
				code = "unknown"
			}
			p.failures[code]++
			p.nFailed.Add(1)
			r.ackFailTotal.Add(1)
		}
	}
}

// readMember accounts for a member's deliveries until its socket closes.
func (r *fanoutRun) readMember(m *member) {
	for {
		f, err := m.c.next()
		if err != nil {
			if !errors.Is(err, errDecode) {
				if !r.closing.Load() {
					r.disconnects.Add(1)
				}
				return
			}
			r.undecoded.Add(1)
			continue
		}
		if string(f.Event) != "message:new" {
			continue
		}
		now := r.since()
		d, err := parseDelivery(f.Data)
		if err != nil {
			r.undecoded.Add(1)
			continue
		}
		r.received.Add(1)
		if !m.t.observe(d.Seq) {
			continue
		}
		r.delivered.Add(1)
		if d.SentNanos >= r.windowFrom.Load() && d.SentNanos < r.windowTo.Load() {
			r.lat.Record(time.Duration(now - d.SentNanos))
		}
	}
}

// sampleAt waits until at, then samples the server and the delivery count.
func (r *fanoutRun) sampleAt(ctx context.Context, at time.Time) (procSample, uint64, error) {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return procSample{}, 0, ctx.Err()
	case <-t.C:
	}
	d := r.delivered.Load()
	s, _, err := r.tgt.sample()
	return s, d, err
}

// awaitDeliveries waits until every send is answered and every
// acknowledged message reached every member, or the grace period ends
// (what is missing then is loss). The count it waits for is approximate
// when a refused send was delivered all the same; the final accounting,
// by seq, is exact either way.
func (r *fanoutRun) awaitDeliveries(ctx context.Context) {
	deadline := time.NewTimer(r.cfg.Grace)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		var want uint64
		answered := true
		for _, rm := range r.rooms {
			for _, p := range rm.pubs {
				acked := p.nAcked.Load()
				answered = answered && acked+p.nFailed.Load() >= p.nSent.Load()
				want += acked * uint64(len(rm.members))
			}
		}
		if answered && r.delivered.Load() >= want {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-poll.C:
		}
	}
}

// account fills the delivery accounting once every reader has exited.
func (r *fanoutRun) account(res *fanoutResult) {
	res.Sent = r.sentTotal.Load()
	res.AckFailed = r.ackFailTotal.Load()
	defer func() { res.Unanswered = res.Sent - min(res.Sent, res.Acked+res.AckFailed) }()
	res.Received = r.received.Load()
	res.Undecoded = r.undecoded.Load()
	res.Disconnects = r.disconnects.Load()
	res.Latency = r.lat.Summary()
	res.AckLatency = r.ackLat.Summary()
	for _, rm := range r.rooms {
		var ackedSet seqSet
		for _, p := range rm.pubs {
			ackedSet.union(&p.acked)
			for code, n := range p.failures {
				if res.AckFailures == nil {
					res.AckFailures = map[string]uint64{}
				}
				res.AckFailures[code] += n
			}
		}
		acked := uint64(ackedSet.len())
		res.Acked += acked
		res.Expected += acked * uint64(len(rm.members))
		for _, m := range rm.members {
			res.Lost += uint64(m.t.seen.missing(&ackedSet))
			res.Duplicates += m.t.duplicates
			res.Reordered += m.t.reordered
		}
	}
}

// figures turns two samples over window into the server's costs.
func figures(s0, s1 procSample, window time.Duration, deliveries uint64) *serverFigures {
	cpu := s1.CPU - s0.CPU
	f := &serverFigures{CPUms: ms(cpu), CPUUtil: cpu.Seconds() / window.Seconds(), RSSKiB: s1.RSSKiB, PeakRSSKiB: s1.HWMKiB}
	if deliveries > 0 {
		f.CPUmsPer1000Delivery = f.CPUms * 1000 / float64(deliveries)
	}
	return f
}
