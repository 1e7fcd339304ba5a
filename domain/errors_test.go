package domain_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/wardline/wardline/domain"
)

func TestErrorCodeOf(t *testing.T) {
	denied := &domain.AccessDeniedError{Denial: domain.RoomAccessDenied{RoomID: "r", UserID: "u", Action: "join"}, Err: domain.ErrPrivateRoom}
	tests := []struct {
		name     string
		err      error
		wantCode domain.ErrorCode
		wantMsg  string
	}{
		{"no error has no code", nil, "", ""},
		{"a rule error carries its code", domain.ErrNotMember, domain.CodeForbidden, domain.ErrNotMember.Message},
		{"a wrapped rule error keeps its code", fmt.Errorf("gateway: send: %w", domain.ErrContentTooLarge), domain.CodeTooLarge, domain.ErrContentTooLarge.Message},
		{"a detailed rule error keeps its code and says more", domain.ErrRoomNotFound.Withf("%q", "x"), domain.CodeNotFound, `room not found: "x"`},
		{"an Errorf error has the given code", domain.Errorf(domain.CodeRateLimited, "slow down"), domain.CodeRateLimited, "slow down"},
		{"an uncoded error is internal and says nothing of itself", io.ErrUnexpectedEOF, domain.CodeInternal, "internal error"},
		{"an error with an unknown code is internal", &domain.Error{Code: "teapot", Message: "short and stout"}, domain.CodeInternal, "internal error"},
		{"an audited denial is forbidden", denied, domain.CodeForbidden, domain.ErrPrivateRoom.Message},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.ErrorCodeOf(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCodeOf = %q, want %q", got, tt.wantCode)
			}
			if got := domain.ErrorMessage(tt.err); got != tt.wantMsg {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.wantMsg)
			}
		})
	}
}

func TestDetailedErrorsMatchTheirRuleOnly(t *testing.T) {
	detailed := domain.ErrContentTooLarge.Withf("20000 bytes").Withf("again")
	if !errors.Is(detailed, domain.ErrContentTooLarge) {
		t.Fatal("a detail of a detail does not match the rule")
	}
	if errors.Is(detailed, domain.ErrEmptyContent) {
		t.Fatal("a detailed error matches another rule")
	}
	if errors.Is(domain.Errorf(domain.CodeTooLarge, "big"), domain.ErrContentTooLarge) {
		t.Fatal("an Errorf error with the same code matches a rule it was not made from")
	}
	if !errors.Is(&domain.AccessDeniedError{Err: domain.ErrNotMember}, domain.ErrNotMember) {
		t.Fatal("a denial does not match the rule it wraps")
	}
}

func TestErrorCodesAreTheWireCodes(t *testing.T) {
	want := []string{"invalid", "unauthorized", "forbidden", "not_found", "conflict", "rate_limited", "too_large", "unavailable", "internal"}
	got := domain.ErrorCodes()
	if len(got) != len(want) {
		t.Fatalf("codes = %v, want %v", got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("codes = %v, want %v", got, want)
		}
		if domain.ErrorCodeOf(domain.Errorf(got[i], "x")) != got[i] {
			t.Fatalf("code %q is not recognised by ErrorCodeOf", got[i])
		}
	}
}
