package main

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	seq := func(n int, unit time.Duration) []time.Duration {
		var d []time.Duration
		for i := 1; i <= n; i++ {
			d = append(d, time.Duration(i)*unit)
		}
		return d
	}
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"an empty histogram reports zero", nil, 0.99, 0},
		{"one value is every quantile", []time.Duration{42}, 0.5, 42},
		{"small values are exact at the median", seq(63, 1), 0.5, 32},
		{"small values are exact at p99", seq(63, 1), 0.99, 63},
		{"the maximum caps the top bucket", []time.Duration{1000 * time.Millisecond}, 0.999, 1000 * time.Millisecond},
		{"negative values count as zero", []time.Duration{-5, -1}, 0.5, 0},
		{"p99 of 1..1000 ms is about 990 ms", seq(1000, time.Millisecond), 0.99, 990 * time.Millisecond},
		{"p50 of 1..1000 ms is about 500 ms", seq(1000, time.Millisecond), 0.50, 500 * time.Millisecond},
		{"p99.9 of 1..1000 ms is about 999 ms", seq(1000, time.Millisecond), 0.999, 999 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			got := h.Quantile(tt.q)
			// Reported values are bucket upper bounds: never below the
			// true value and at most 1/32 above it.
			if got < tt.want || float64(got) > float64(tt.want)*(1+1.0/32) {
				t.Fatalf("Quantile(%v) = %v, want %v (+3%%)", tt.q, got, tt.want)
			}
		})
	}
}

func TestHistogramKeepsCountAndExactMax(t *testing.T) {
	var h histogram
	for _, v := range []time.Duration{3 * time.Millisecond, 77777777, time.Microsecond} {
		h.Record(v)
	}
	if h.Count() != 3 || h.Max() != 77777777 {
		t.Fatalf("count %d max %v, want 3 and 77.777777ms", h.Count(), h.Max())
	}
	s := h.Summary()
	if s.Count != 3 || s.Max != 77.777777 {
		t.Fatalf("summary %+v", s)
	}
}

func TestEveryValueFallsInABucketWhoseBoundIsWithinPrecision(t *testing.T) {
	values := []int64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<20 + 1, 123456789, 1 << 40, math.MaxInt64 - 1, math.MaxInt64}
	for _, v := range values {
		b := bucketOf(v)
		if b < 0 || b >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0,%d)", v, b, histBuckets)
		}
		hi := bucketHigh(b)
		if hi < v {
			t.Fatalf("bucketHigh(bucketOf(%d)) = %d, below the value", v, hi)
		}
		if b > 0 && bucketHigh(b-1) >= v {
			t.Fatalf("value %d also fits the bucket below (%d)", v, bucketHigh(b-1))
		}
		if v >= subCount && float64(hi-v) > float64(v)/32 {
			t.Fatalf("bucket bound %d is more than 1/32 above %d", hi, v)
		}
	}
	for b := 1; b < histBuckets; b++ {
		if bucketHigh(b) <= bucketHigh(b-1) {
			t.Fatalf("bucket bounds not increasing at %d: %d <= %d", b, bucketHigh(b), bucketHigh(b-1))
		}
		if got := bucketOf(bucketHigh(b)); got != b {
			t.Fatalf("bucketOf(bucketHigh(%d)) = %d", b, got)
		}
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	b.ReportAllocs()
	var h histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i%100000) * time.Microsecond)
	}
}
