package gateway_test

import (
	"context"
	"testing"

	"github.com/wardline/wardline/domain"
)

func TestARefusedAuthRefreshIsAnAuthenticationFailedEvent(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.dialClient(h.nurse("alice"))
	tests := []struct {
		name       string
		token      string
		wantCode   string
		wantReason string
	}{
		{"a token that does not verify is unauthorized", h.nurse("alice")[:30] + "x.y.z", "unauthorized", ""},
		{"a token for another user is forbidden", h.nurse("mallory"), "forbidden", "subject_mismatch"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code := errCode(alice.emit("auth:refresh", map[string]any{"token": tc.token})); code != tc.wantCode {
				t.Fatalf("auth:refresh = %q, want %q", code, tc.wantCode)
			}
			evs, err := h.store.ReadStream(context.Background(), domain.AuthStream("anonymous"), 1, 1, 100)
			if err != nil {
				t.Fatal(err)
			}
			var refreshes []domain.AuthenticationFailed
			for _, e := range evs {
				if f := decode[domain.AuthenticationFailed](t, e.Data); e.Type == "AuthenticationFailed" && f.Method == "refresh" {
					refreshes = append(refreshes, f)
				}
			}
			if len(refreshes) != i+1 {
				t.Fatalf("%d refused refreshes recorded, want %d", len(refreshes), i+1)
			}
			got := refreshes[i]
			if got.Code != tc.wantCode || got.Subject != "alice" || got.ClientAddr == "" || (tc.wantReason != "" && got.Reason != tc.wantReason) {
				t.Fatalf("recorded %+v", got)
			}
		})
	}
}
