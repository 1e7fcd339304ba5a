package main

import "testing"

func TestTallyAccounting(t *testing.T) {
	tests := []struct {
		name                 string
		seqs                 []uint64
		acked                []uint64
		wantDup, wantReorder uint64
		wantLost, wantUnique int
	}{
		{"an in-order complete stream has nothing to report", []uint64{1, 2, 3}, []uint64{1, 2, 3}, 0, 0, 0, 3},
		{"a repeated seq is a duplicate, not a reordering", []uint64{1, 2, 2, 3}, []uint64{1, 2, 3}, 1, 0, 0, 3},
		{"a lower seq after a higher one is a reordering", []uint64{1, 3, 2}, []uint64{1, 2, 3}, 0, 1, 0, 3},
		{"an acked seq never received is lost", []uint64{1, 3}, []uint64{1, 2, 3}, 0, 0, 1, 2},
		{"a delivery of an unacked message is not loss", []uint64{1, 2, 3, 4}, []uint64{1, 2}, 0, 0, 0, 4},
		{"seqs past 64 grow the set", []uint64{1, 200, 64, 65}, []uint64{1, 64, 65, 200, 201}, 0, 2, 1, 4},
		{"an old duplicate counts once as a duplicate", []uint64{5, 6, 5}, []uint64{5, 6}, 1, 0, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tl tally
			for _, s := range tt.seqs {
				tl.observe(s)
			}
			var acked seqSet
			for _, s := range tt.acked {
				acked.add(s)
			}
			if tl.duplicates != tt.wantDup || tl.reordered != tt.wantReorder {
				t.Fatalf("duplicates %d reordered %d, want %d and %d", tl.duplicates, tl.reordered, tt.wantDup, tt.wantReorder)
			}
			if got := tl.seen.missing(&acked); got != tt.wantLost {
				t.Fatalf("lost %d, want %d", got, tt.wantLost)
			}
			if got := tl.seen.len(); got != tt.wantUnique {
				t.Fatalf("unique %d, want %d", got, tt.wantUnique)
			}
			if tl.received != uint64(len(tt.seqs)) {
				t.Fatalf("received %d, want %d", tl.received, len(tt.seqs))
			}
		})
	}
}

func TestSeqSetReportsMembership(t *testing.T) {
	var s seqSet
	if s.has(0) || s.has(1000) {
		t.Fatal("empty set has members")
	}
	if s.add(130) || !s.add(130) {
		t.Fatal("add must report false then true for the same value")
	}
	if !s.has(130) || s.has(129) || s.len() != 1 {
		t.Fatalf("set %v", s.words)
	}
}

func TestSeqSetUnionHoldsBothSets(t *testing.T) {
	var a, b seqSet
	a.add(1)
	a.add(3)
	b.add(3)
	b.add(500)
	a.union(&b)
	if a.len() != 3 || !a.has(1) || !a.has(3) || !a.has(500) {
		t.Fatalf("union has %d members", a.len())
	}
}
