package bolt

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/wardline/wardline/eventstore"
)

func TestACanonicalUUIDEventIDConvertsToItsKeyAndBackExactly(t *testing.T) {
	for range 100 {
		id := uuid.Must(uuid.NewV7()).String()
		k, ok := parseUUIDKey(id)
		if !ok {
			t.Fatalf("%s was not taken as a UUID", id)
		}
		if k != uuidKey(uuid.MustParse(id)) {
			t.Fatalf("%s parsed to %x", id, k)
		}
		if got := k.String(); got != id {
			t.Fatalf("%s formats back as %s", id, got)
		}
	}
}

func TestAnEventIDInAnyOtherSpellingStaysAString(t *testing.T) {
	id := "0193a4c2-7b1e-7c3d-9f00-0123456789ab"
	for _, other := range []string{
		strings.ToUpper(id),
		"{" + id + "}",
		strings.ReplaceAll(id, "-", ""),
		id[:35],
		id + "0",
		strings.Replace(id, "-", "x", 1),
		strings.Replace(id, "a", "g", 1),
		"e1",
		"",
	} {
		if _, ok := parseUUIDKey(other); ok {
			t.Errorf("%q was taken as a canonical UUID", other)
		}
	}
}

func TestAGenerationFindsUUIDAndOtherIDsAlike(t *testing.T) {
	g := newGeneration(4)
	lower := "0193a4c2-7b1e-7c3d-9f00-0123456789ab"
	g.add("s", 1, []string{lower, strings.ToUpper(lower), "e-3"}, []eventstore.Position{1, 2, 3})
	for id, want := range map[string]eventstore.Position{lower: 1, strings.ToUpper(lower): 2, "e-3": 3} {
		if p, ok := g.id(id); !ok || p != want {
			t.Errorf("id(%q) = %d, %v; want %d", id, p, ok, want)
		}
	}
	if _, ok := g.id("0193a4c2-7b1e-7c3d-9f00-0123456789ac"); ok {
		t.Error("an unknown UUID was found")
	}
	if n := g.idCount(); n != 3 {
		t.Errorf("idCount = %d, want 3", n)
	}
	m := &memIndex{active: newGeneration(0)}
	m.publish(g)
	if p, ok := m.id(strings.ToUpper(lower)); !ok || p != 2 {
		t.Errorf("after publish, the uppercase spelling is at %d, %v; want 2", p, ok)
	}
}
