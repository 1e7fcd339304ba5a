package gateway

import (
	"strconv"
	"strings"
	"sync"

	"github.com/wardline/wardline/domain"
)

// maxRoleSets bounds the distinct role lists interned; past it a list is
// kept as its own copy.
const maxRoleSets = 1024

// roleSets interns the role lists that sessions keep. Tokens carry a
// handful of distinct lists (nurse; physician; admin, staff; ...), yet
// each session kept its token's decoded copy, a slice header in the
// session and the list with its strings beside it, for the whole
// connection. An interned list is shared and never modified. The zero
// value is ready to use.
type roleSets struct {
	mu   sync.Mutex
	sets map[string]*[]domain.Role
}

// intern returns the shared list equal to roles (same roles, same order).
func (r *roleSets) intern(roles []domain.Role) *[]domain.Role {
	var b strings.Builder
	for _, role := range roles {
		// Length-prefixed, so that no two lists share a key.
		b.WriteString(strconv.Itoa(len(role)))
		b.WriteByte(':')
		b.WriteString(string(role))
	}
	key := b.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if set, ok := r.sets[key]; ok {
		return set
	}
	set := new([]domain.Role)
	if len(roles) > 0 {
		*set = make([]domain.Role, len(roles))
		for i, role := range roles {
			// Cloned so that the shared list keeps no part of the token
			// it was decoded from alive.
			(*set)[i] = domain.Role(strings.Clone(string(role)))
		}
	}
	if len(r.sets) < maxRoleSets {
		if r.sets == nil {
			r.sets = map[string]*[]domain.Role{}
		}
		r.sets[key] = set
	}
	return set
}
