package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
)

// t0 is the decision time of every test context.
var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// counter makes predictable ids: prefix-1, prefix-2, ...
func counter(prefix string) func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("%s-%d", prefix, n)
	}
}

func ctxAs(user string, roles ...domain.Role) domain.Context {
	return domain.Context{Now: t0, Actor: domain.Actor{UserID: user, Roles: roles}, NewID: counter("id")}
}

// applier is any state folded with Apply.
type applier interface{ Apply(domain.Envelope) }

// fold applies events to s as if read from the log: each in an envelope with
// its own id and time t0 (or the time given by an at() marker).
func fold[S applier](t testing.TB, s S, events ...domain.Event) S {
	t.Helper()
	ids := counter("ev")
	for _, ev := range events {
		c := domain.Context{Now: t0, NewID: ids, Actor: domain.Actor{UserID: "system"}}
		envs, err := c.Wrap([]domain.Event{ev})
		if err != nil {
			t.Fatalf("wrap %T: %v", ev, err)
		}
		s.Apply(envs[0])
	}
	return s
}

// foldAt applies one event at time at.
func foldAt[S applier](t testing.TB, s S, at time.Time, ev domain.Event) S {
	t.Helper()
	c := domain.Context{Now: at, NewID: counter("at"), Actor: domain.Actor{UserID: "system"}}
	envs, err := c.Wrap([]domain.Event{ev})
	if err != nil {
		t.Fatalf("wrap %T: %v", ev, err)
	}
	s.Apply(envs[0])
	return s
}

// checkDecision compares a decision with what a test expects: either the
// exact events, or an error matching wantErr (errors.Is).
func checkDecision(t *testing.T, got []domain.Event, err error, want []domain.Event, wantErr error) {
	t.Helper()
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("error = %v, want %v", err, wantErr)
		}
		if got != nil {
			t.Fatalf("events = %#v alongside error %v, want none", got, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got %#v\nwant %#v", got, want)
	}
}

// checkDenial asserts err is an audited denial recording want.
func checkDenial(t *testing.T, err error, want domain.RoomAccessDenied) {
	t.Helper()
	var d *domain.AccessDeniedError
	if !errors.As(err, &d) {
		t.Fatalf("error %v is not an *AccessDeniedError", err)
	}
	if d.Denial != want {
		t.Fatalf("denial = %+v, want %+v", d.Denial, want)
	}
	if got := domain.ErrorCodeOf(err); got != domain.CodeForbidden {
		t.Fatalf("denial code = %q, want forbidden", got)
	}
}

func ptr[T any](v T) *T { return &v }
