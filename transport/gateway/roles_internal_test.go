package gateway

import (
	"fmt"
	"slices"
	"testing"

	"github.com/wardline/wardline/domain"
)

func TestSessionsWithTheSameRolesShareOneList(t *testing.T) {
	var r roleSets
	nurse := r.intern([]domain.Role{domain.RoleNurse})
	if again := r.intern([]domain.Role{domain.Role("nurse")}); again != nurse {
		t.Fatal("an equal role list was not shared")
	}
	if !slices.Equal(*nurse, []domain.Role{domain.RoleNurse}) {
		t.Fatalf("interned %v, want [nurse]", *nurse)
	}
	ab := r.intern([]domain.Role{domain.RoleAdmin, domain.RoleStaff})
	ba := r.intern([]domain.Role{domain.RoleStaff, domain.RoleAdmin})
	if ab == ba || ab == nurse {
		t.Fatal("different role lists share one")
	}
	if !slices.Equal(*ba, []domain.Role{domain.RoleStaff, domain.RoleAdmin}) {
		t.Fatalf("interned %v, want the order given", *ba)
	}
	// A list is not confused with the concatenation of another's roles.
	joined := r.intern([]domain.Role{domain.Role("admin\x00staff")})
	if joined == ab {
		t.Fatal("a one-role list took a two-role list's place")
	}
	if none := r.intern(nil); len(*none) != 0 || r.intern([]domain.Role{}) != none {
		t.Fatal("the empty role list is not interned as one")
	}
}

func TestRoleListsPastTheBoundAreKeptAsTheirOwnCopies(t *testing.T) {
	var r roleSets
	for i := range maxRoleSets + 10 {
		role := domain.Role(fmt.Sprint("role-", i))
		got := r.intern([]domain.Role{role})
		if !slices.Equal(*got, []domain.Role{role}) {
			t.Fatalf("list %d interned as %v", i, *got)
		}
	}
	if n := len(r.sets); n != maxRoleSets {
		t.Fatalf("%d lists interned, want the bound %d", n, maxRoleSets)
	}
}
