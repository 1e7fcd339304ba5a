package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits linear buckets, so a recorded value is reported within 1/64
// (1.6 %) of itself — finer than the run-to-run noise of a shared machine.
const subBits = 6

const (
	subCount = 1 << subBits
	// histBuckets covers every non-negative int64: values below subCount
	// are exact, and each further power of two adds subCount/2 buckets.
	histBuckets = subCount + (63-subBits)*(subCount/2)
)

// histogram is an HDR-style log-linear latency histogram. Record is
// lock-free, so every connection's reader records into one shared histogram
// without a per-connection copy; a fixed 3.6k buckets hold any count.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
}

// bucketOf maps a non-negative value to its bucket index.
func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	// The top set bit picks the power of two; the next subBits-1 bits pick
	// the linear bucket inside it.
	e := 63 - bits.LeadingZeros64(uint64(v)) // e >= subBits
	shift := e - (subBits - 1)
	sub := int(v>>shift) - subCount/2 // 0 .. subCount/2-1
	return subCount + (e-subBits)*(subCount/2) + sub
}

// bucketHigh is the largest value that falls in bucket i; percentiles
// report it so they never understate a latency.
func bucketHigh(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	j := i - subCount
	e := j/(subCount/2) + subBits
	sub := int64(j%(subCount/2)) + subCount/2
	shift := e - (subBits - 1)
	hi := (sub+1)<<shift - 1
	if hi < 0 { // the last bucket of int64's range
		return math.MaxInt64
	}
	return hi
}

// Record adds one latency; negative values (clock steps) count as zero.
func (h *histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count is the number of recorded values.
func (h *histogram) Count() uint64 { return h.total.Load() }

// Max is the largest recorded value, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the value at or below which a fraction q of the
// recorded values lie (the nearest-rank definition), as the upper bound of
// its bucket capped at the exact maximum; zero when nothing was recorded.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(bucketHigh(i), h.max.Load()))
		}
	}
	return h.Max()
}

// latencySummary is a histogram's report.
type latencySummary struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50Ms"`
	P99   float64 `json:"p99Ms"`
	P999  float64 `json:"p999Ms"`
	Max   float64 `json:"maxMs"`
}

func (h *histogram) Summary() latencySummary {
	return latencySummary{
		Count: h.Count(),
		P50:   ms(h.Quantile(0.50)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
