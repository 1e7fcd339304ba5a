package guard_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wardline/wardline/transport/guard"
)

// FuzzOriginCheck: the Origin parser never panics on arbitrary headers,
// never accepts "null", and with no allow-list accepts only an origin
// naming the request's own host.
func FuzzOriginCheck(f *testing.F) {
	for _, s := range [][2]string{
		{"http://127.0.0.1:8080", "127.0.0.1:8080"},
		{"https://[::1]:443", "[::1]"},
		{"null", "x"},
		{"http://a:80", "A:80"},
		{"http://%zz", "x"},
		{"http://a:b:c", "a"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	c, err := guard.NewOriginChecker(guard.OriginConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, origin, host string) {
		r := &http.Request{Header: http.Header{"Origin": {origin}}, Host: host}
		err := c.Check(r)
		if err != nil {
			return
		}
		if strings.EqualFold(strings.TrimSpace(origin), "null") {
			t.Fatal("null accepted")
		}
		if !strings.HasPrefix(strings.ToLower(origin), "http://") {
			t.Fatalf("origin %q accepted for a plain-HTTP request", origin)
		}
		if host == "" {
			t.Fatalf("origin %q accepted with no Host", origin)
		}
	})
}
