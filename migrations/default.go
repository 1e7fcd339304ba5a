package migrations

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Default returns a registry with every upcaster Wardline has shipped.
func Default() *Registry {
	r := NewRegistry()
	r.Register("MessagePosted", 1, messagePostedV1ToV2)
	return r
}

// messagePostedV1ToV2 renames room → roomId and text → content; v2 matches
// the wire payload of message:new. Other fields, known or not, are kept.
func messagePostedV1ToV2(data []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("MessagePosted v1: %w", err)
	}
	if fields == nil {
		return nil, errors.New("MessagePosted v1: payload is not an object")
	}
	for _, r := range [...]struct{ from, to string }{{"room", "roomId"}, {"text", "content"}} {
		v, ok := fields[r.from]
		if !ok {
			continue
		}
		if _, clash := fields[r.to]; clash {
			return nil, fmt.Errorf("MessagePosted v1: both %q and %q present", r.from, r.to)
		}
		delete(fields, r.from)
		fields[r.to] = v
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("MessagePosted v1: %w", err)
	}
	return out, nil
}
