package gateway

import (
	"slices"
	"testing"

	"github.com/wardline/wardline/eventstore"
)

func ringRoute(pos eventstore.Position, exclude string, users ...string) route {
	return route{push: &push{pos: pos, data: []byte(`{}`)}, users: users, exclude: exclude}
}

func positions(ps []*push) []eventstore.Position {
	out := []eventstore.Position{}
	for _, p := range ps {
		out = append(out, p.pos)
	}
	return out
}

func TestRecentRingWindows(t *testing.T) {
	// Events 10..16; 12 and 15 were seen by nobody; 14 excludes bob.
	fill := func(rr *recentRing) {
		rr.add(10, ringRoute(10, "", "alice", "bob"), true)
		rr.add(11, ringRoute(11, "", "bob"), true)
		rr.add(12, route{}, false)
		rr.add(13, ringRoute(13, "", "alice"), true)
		rr.add(14, ringRoute(14, "bob", "alice", "bob"), true)
		rr.add(15, route{}, false)
		rr.add(16, ringRoute(16, "", "alice", "bob"), true)
	}
	for _, tc := range []struct {
		name       string
		entries    int
		maxBytes   int
		user       string
		from, to   eventstore.Position
		want       []eventstore.Position
		wantInRing bool
	}{
		{"a window within the ring yields the user's pushes in order", 8, recentMaxBytes, "bob", 9, 16, []eventstore.Position{10, 11, 16}, true},
		{"a recipient excluded from a push does not get it", 8, recentMaxBytes, "bob", 13, 14, []eventstore.Position{}, true},
		{"the window ends at its live position", 8, recentMaxBytes, "alice", 10, 14, []eventstore.Position{13, 14}, true},
		{"a window starting before the first event seen is not in the ring", 8, recentMaxBytes, "bob", 8, 16, nil, false},
		{"evicting by count moves the coverage to the evicted event", 3, recentMaxBytes, "bob", 11, 16, []eventstore.Position{16}, true},
		{"a window older than the evicted events is not in the ring", 3, recentMaxBytes, "bob", 10, 16, nil, false},
		{"evicting by bytes moves the coverage too", 8, 2 * (recentOverhead + 6 + 32), "alice", 10, 16, nil, false},
		{"a ring of no entries covers only what follows its last event", 0, recentMaxBytes, "alice", 16, 16, []eventstore.Position{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr := newRecentRing(tc.entries, tc.maxBytes)
			fill(&rr)
			got, ok := rr.window(tc.user, tc.from, tc.to)
			if ok != tc.wantInRing {
				t.Fatalf("in ring = %v, want %v", ok, tc.wantInRing)
			}
			if ok && !slices.Equal(positions(got), tc.want) {
				t.Fatalf("window = %v, want %v", positions(got), tc.want)
			}
		})
	}
}

func TestAnEmptyRingCoversNothing(t *testing.T) {
	rr := newRecentRing(8, recentMaxBytes)
	if _, ok := rr.window("alice", 0, 5); ok {
		t.Fatal("a ring that has seen no event claims a window")
	}
}
