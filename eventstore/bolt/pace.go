package bolt

import "time"

// maxPaceBackoff bounds how many commits the writer takes unpaced after a
// run of fruitless pauses: a lone sequential writer then pays one pause in
// that many commits.
const maxPaceBackoff = 1024

// pacer is the writer's commit pacing (WithCommitInterval): a commit begins
// no sooner than interval after the one before it began, so that requests
// arriving meanwhile share its fsyncs, for as long as pausing brings
// company. A pause that gathered nothing (a caller that appends again only
// once answered, so nobody else was coming) switches pacing off for 1, 2,
// 4, ... up to maxPaceBackoff commits; a pause that gathered a request
// resets that. A pause also ends once pauseEnough requests are queued.
//
// Why: on a disk with fast fsyncs the writer commits each of a few hundred
// appends per second alone. Each commit costs two fsyncs, and each fsync
// leaves the Go scheduler a blocked thread to replace (a thread wake and two
// context switches, which cost ~15 µs each on the target VM). Measured
// with the gateway's fan-out at 500 appends/s (docs/decisions.md): 490
// commits/s unpaced; pacing at 5 ms cut the server's CPU per delivery by
// about a fifth at an ack cost of a few ms.
type pacer struct {
	interval time.Duration
	skip     int // commits left to take without pausing
	backoff  int // skip after the next fruitless pause
}

// delay is how long to pause before taking the next batch, the previous
// commit having begun sinceLast ago.
func (p *pacer) delay(sinceLast time.Duration) time.Duration {
	if p.interval <= 0 || sinceLast >= p.interval {
		return 0
	}
	if p.skip > 0 {
		p.skip--
		return 0
	}
	return p.interval - sinceLast
}

// paused records a pause's outcome: company says requests arrived during it.
func (p *pacer) paused(company bool) {
	if company {
		p.backoff = 0
		return
	}
	p.backoff = min(max(1, 2*p.backoff), maxPaceBackoff)
	p.skip = p.backoff
}
