package migrations

// NewRegistryWithVersions returns an empty registry whose current versions
// come from versions instead of domain, so tests can chain upcasters over
// versions no real event has reached yet.
func NewRegistryWithVersions(versions map[string]int) *Registry {
	return &Registry{steps: map[stepKey]Upcaster{}, current: func(typ string) (int, bool) {
		v, ok := versions[typ]
		return v, ok
	}}
}
