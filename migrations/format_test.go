package migrations_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/wardline/wardline/migrations"
)

// fakeStore is a backend whose format marker advances with each step.
type fakeStore struct {
	format  int
	applied []int
	failAt  int
}

func (s *fakeStore) steps(n int) migrations.Steps {
	out := migrations.Steps{}
	for v := 1; v <= n; v++ {
		out = append(out, migrations.Step{Version: v, Description: "step", Apply: func(context.Context) error {
			if v == s.failAt {
				return errors.New("disk full")
			}
			s.applied = append(s.applied, v)
			s.format = v
			return nil
		}})
	}
	return out
}

func versions(steps []migrations.Step) []int {
	out := []int{}
	for _, s := range steps {
		out = append(out, s.Version)
	}
	return out
}

func TestPlan(t *testing.T) {
	s := &fakeStore{}
	steps := s.steps(3)
	tests := []struct {
		name            string
		steps           migrations.Steps
		current, target int
		want            []int
		wantErr         error
	}{
		{name: "an empty store takes every step", steps: steps, current: 0, target: 3, want: []int{1, 2, 3}},
		{name: "a store part way takes the remaining steps", steps: steps, current: 1, target: 3, want: []int{2, 3}},
		{name: "a store may stop at an intermediate format", steps: steps, current: 0, target: 2, want: []int{1, 2}},
		{name: "a store already there takes none", steps: steps, current: 3, target: 3, want: []int{}},
		{name: "a store newer than the binary is refused", steps: steps, current: 4, target: 4, wantErr: migrations.ErrNewerFormat},
		{name: "a target newer than the binary is refused", steps: steps, current: 0, target: 4, wantErr: migrations.ErrNewerFormat},
		{name: "a downgrade is refused", steps: steps, current: 3, target: 1, wantErr: migrations.ErrDowngrade},
		{name: "steps out of order are refused", steps: migrations.Steps{steps[1], steps[0]}, current: 0, target: 2, wantErr: migrations.ErrBadSteps},
		{name: "a step without Apply is refused", steps: migrations.Steps{{Version: 1}}, current: 0, target: 1, wantErr: migrations.ErrBadSteps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := tt.steps.Plan(tt.current, tt.target)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := versions(plan); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("plan = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAnInterruptedMigrationResumesAtTheFailedStep(t *testing.T) {
	s := &fakeStore{failAt: 2}
	steps := s.steps(3)
	plan, err := steps.Plan(s.format, steps.Latest())
	if err != nil {
		t.Fatal(err)
	}
	var announced []int
	if err := migrations.Run(context.Background(), plan, func(st migrations.Step) { announced = append(announced, st.Version) }); err == nil {
		t.Fatal("a failing step did not stop the run")
	}
	if s.format != 1 || !reflect.DeepEqual(announced, []int{1, 2}) {
		t.Fatalf("format %d, announced %v", s.format, announced)
	}
	s.failAt = 0
	plan, err = steps.Plan(s.format, steps.Latest())
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.Run(context.Background(), plan, nil); err != nil {
		t.Fatal(err)
	}
	if s.format != 3 || !reflect.DeepEqual(s.applied, []int{1, 2, 3}) {
		t.Fatalf("format %d, applied %v", s.format, s.applied)
	}
}

func TestRunStopsWhenTheContextEnds(t *testing.T) {
	s := &fakeStore{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := migrations.Run(ctx, s.steps(2), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if s.format != 0 {
		t.Fatalf("a step ran after cancel: format %d", s.format)
	}
}
