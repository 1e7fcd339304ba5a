package domain_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
)

var codeBlue = domain.EmergencyAlertRaised{
	AlertID: "a-1", Severity: domain.SeverityCritical, Message: "code blue", Location: "ICU bed 4",
	UserIDs: []string{"bob"}, Roles: []domain.Role{domain.RoleNurse}, RoomID: "icu-1", EscalateAfter: time.Minute,
}

func TestRaiseAlert(t *testing.T) {
	svc := []domain.Role{domain.RoleService}
	tests := []struct {
		name    string
		roles   []domain.Role
		history []domain.Event
		cmd     domain.RaiseAlert
		want    []domain.Event
		wantErr error
	}{
		{name: "a monitoring service raises an alert that escalates after the default time", roles: svc,
			cmd:  domain.RaiseAlert{Severity: domain.SeverityHigh, Message: "SpO2 82%", Roles: []domain.Role{domain.RoleNurse}},
			want: []domain.Event{domain.EmergencyAlertRaised{AlertID: "id-1", Severity: domain.SeverityHigh, Message: "SpO2 82%", Roles: []domain.Role{domain.RoleNurse}, EscalateAfter: 2 * time.Minute}}},
		{name: "an alert keeps its own id, audience and escalation time", roles: []domain.Role{domain.RoleAdmin},
			cmd: domain.RaiseAlert{AlertID: "a-1", Severity: domain.SeverityCritical, Message: "code blue", Location: "ICU bed 4",
				UserIDs: []string{"bob"}, Roles: []domain.Role{domain.RoleNurse}, RoomID: "icu-1", EscalateAfter: time.Minute},
			want: []domain.Event{codeBlue}},
		{name: "a nurse may not raise an alert through the API", roles: []domain.Role{domain.RoleNurse}, cmd: domain.RaiseAlert{Severity: domain.SeverityLow, Message: "x", UserIDs: []string{"bob"}}, wantErr: domain.ErrCannotRaiseAlert},
		{name: "an existing alert id is a conflict", roles: svc, history: []domain.Event{codeBlue}, cmd: domain.RaiseAlert{AlertID: "a-1", Severity: domain.SeverityLow, Message: "x", UserIDs: []string{"bob"}}, wantErr: domain.ErrAlertExists},
		{name: "an alert without an audience is invalid", roles: svc, cmd: domain.RaiseAlert{Severity: domain.SeverityLow, Message: "x"}, wantErr: domain.ErrNoAudience},
		{name: "an unknown severity is invalid", roles: svc, cmd: domain.RaiseAlert{Severity: "apocalyptic", Message: "x", UserIDs: []string{"bob"}}, wantErr: domain.ErrInvalidSeverity},
		{name: "an unknown role is invalid", roles: svc, cmd: domain.RaiseAlert{Severity: domain.SeverityLow, Message: "x", Roles: []domain.Role{"janitor"}}, wantErr: domain.ErrInvalidRole},
		{name: "an alert without a message is invalid", roles: svc, cmd: domain.RaiseAlert{Severity: domain.SeverityLow, UserIDs: []string{"bob"}}, wantErr: domain.ErrEmptyContent},
		{name: "a negative escalation time is invalid", roles: svc, cmd: domain.RaiseAlert{Severity: domain.SeverityLow, Message: "x", UserIDs: []string{"bob"}, EscalateAfter: -time.Second}, wantErr: domain.ErrInvalidDuration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cmd.Decide(ctxAs("monitor", tt.roles...), fold(t, &domain.Alert{}, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestAcknowledgeAlert(t *testing.T) {
	icu := room(t, icuCreated) // members alice, bob
	tests := []struct {
		name    string
		actor   string
		roles   []domain.Role
		history []domain.Event
		room    *domain.Room
		id      string
		want    []domain.Event
		wantErr error
	}{
		{name: "a listed recipient acknowledges", actor: "bob", history: []domain.Event{codeBlue}, id: "a-1",
			want: []domain.Event{domain.EmergencyAlertAcknowledged{AlertID: "a-1", UserID: "bob"}}},
		{name: "a user holding an audience role acknowledges", actor: "nina", roles: []domain.Role{domain.RoleNurse}, history: []domain.Event{codeBlue}, id: "a-1",
			want: []domain.Event{domain.EmergencyAlertAcknowledged{AlertID: "a-1", UserID: "nina"}}},
		{name: "a member of the alert's room acknowledges", actor: "alice", history: []domain.Event{codeBlue}, room: icu, id: "a-1",
			want: []domain.Event{domain.EmergencyAlertAcknowledged{AlertID: "a-1", UserID: "alice"}}},
		{name: "a second recipient's acknowledgement is recorded too", actor: "alice", history: []domain.Event{codeBlue, domain.EmergencyAlertAcknowledged{AlertID: "a-1", UserID: "bob"}}, room: icu, id: "a-1",
			want: []domain.Event{domain.EmergencyAlertAcknowledged{AlertID: "a-1", UserID: "alice"}}},
		{name: "acknowledging twice succeeds with no new event", actor: "bob", history: []domain.Event{codeBlue, domain.EmergencyAlertAcknowledged{AlertID: "a-1", UserID: "bob"}}, id: "a-1"},
		{name: "a room member is not in the audience when no room state is given", actor: "alice", history: []domain.Event{codeBlue}, id: "a-1", wantErr: domain.ErrNotInAudience},
		{name: "someone outside the audience may not acknowledge", actor: "mallory", roles: []domain.Role{domain.RoleStaff}, history: []domain.Event{codeBlue}, room: icu, id: "a-1", wantErr: domain.ErrNotInAudience},
		{name: "after escalation a physician is in the audience", actor: "phil", roles: []domain.Role{domain.RolePhysician}, history: []domain.Event{codeBlue, domain.EmergencyAlertEscalated{AlertID: "a-1", Level: 1, Reason: "r"}}, id: "a-1",
			want: []domain.Event{domain.EmergencyAlertAcknowledged{AlertID: "a-1", UserID: "phil"}}},
		{name: "before escalation a physician is not", actor: "phil", roles: []domain.Role{domain.RolePhysician}, history: []domain.Event{codeBlue}, id: "a-1", wantErr: domain.ErrNotInAudience},
		{name: "an unknown alert is not found", actor: "bob", id: "a-2", wantErr: domain.ErrAlertNotFound},
		{name: "a malformed alert id is invalid", actor: "bob", id: "", wantErr: domain.ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.AcknowledgeAlert{AlertID: tt.id}.Decide(ctxAs(tt.actor, tt.roles...), fold(t, &domain.Alert{}, tt.history...), tt.room)
			checkDecision(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestEscalateAlert(t *testing.T) {
	svc := []domain.Role{domain.RoleService}
	raisedAt := t0.Add(-90 * time.Second) // codeBlue escalates after 1m: due at t0-30s
	tests := []struct {
		name    string
		roles   []domain.Role
		build   func(*domain.Alert)
		now     time.Time
		cmd     domain.EscalateAlert
		want    []domain.Event
		wantErr error
	}{
		{name: "an unacknowledged alert past its time escalates one level", roles: svc, now: t0, cmd: domain.EscalateAlert{AlertID: "a-1"},
			want: []domain.Event{domain.EmergencyAlertEscalated{AlertID: "a-1", Level: 1, Reason: "unacknowledged for 1m0s"}}},
		{name: "an alert escalates exactly when due", roles: svc, now: raisedAt.Add(time.Minute), cmd: domain.EscalateAlert{AlertID: "a-1", Reason: "timer"},
			want: []domain.Event{domain.EmergencyAlertEscalated{AlertID: "a-1", Level: 1, Reason: "timer"}}},
		{name: "an alert not yet due does not escalate", roles: svc, now: raisedAt.Add(59 * time.Second), cmd: domain.EscalateAlert{AlertID: "a-1"}, wantErr: domain.ErrEscalationNotDue},
		{name: "the next level is due a full period after the last escalation", roles: svc, now: t0.Add(59 * time.Second), cmd: domain.EscalateAlert{AlertID: "a-1"},
			build: func(a *domain.Alert) {
				foldAt(t, a, t0, domain.EmergencyAlertEscalated{AlertID: "a-1", Level: 1, Reason: "r"})
			},
			wantErr: domain.ErrEscalationNotDue},
		{name: "the second level follows the first", roles: svc, now: t0.Add(time.Minute), cmd: domain.EscalateAlert{AlertID: "a-1", Reason: "r"},
			build: func(a *domain.Alert) {
				foldAt(t, a, t0, domain.EmergencyAlertEscalated{AlertID: "a-1", Level: 1, Reason: "r"})
			},
			want: []domain.Event{domain.EmergencyAlertEscalated{AlertID: "a-1", Level: 2, Reason: "r"}}},
		{name: "an acknowledged alert does not escalate", roles: svc, now: t0, cmd: domain.EscalateAlert{AlertID: "a-1"},
			build: func(a *domain.Alert) {
				foldAt(t, a, t0, domain.EmergencyAlertAcknowledged{AlertID: "a-1", UserID: "bob"})
			},
			wantErr: domain.ErrAlertAcknowledged},
		{name: "an alert at the top level escalates no further", roles: svc, now: t0.Add(time.Hour), cmd: domain.EscalateAlert{AlertID: "a-1"},
			build: func(a *domain.Alert) {
				foldAt(t, a, t0, domain.EmergencyAlertEscalated{AlertID: "a-1", Level: 3, Reason: "r"})
			},
			wantErr: domain.ErrEscalationExhausted},
		{name: "a nurse may not escalate", roles: []domain.Role{domain.RoleNurse}, now: t0, cmd: domain.EscalateAlert{AlertID: "a-1"}, wantErr: domain.ErrCannotRaiseAlert},
		{name: "the state of another alert is refused as a wiring mistake", roles: svc, now: t0, cmd: domain.EscalateAlert{AlertID: "a-9"}, wantErr: domain.ErrWrongStateForCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := foldAt(t, &domain.Alert{}, raisedAt, codeBlue)
			if tt.build != nil {
				tt.build(a)
			}
			c := ctxAs("escalator", tt.roles...)
			c.Now = tt.now
			got, err := tt.cmd.Decide(c, a)
			checkDecision(t, got, err, tt.want, tt.wantErr)
		})
	}
	t.Run("escalating an alert never raised is not found", func(t *testing.T) {
		_, err := domain.EscalateAlert{AlertID: "a-1"}.Decide(ctxAs("escalator", svc...), nil)
		checkDecision(t, nil, err, nil, domain.ErrAlertNotFound)
	})
}

func TestAlertStateFoldsItsStream(t *testing.T) {
	a := foldAt(t, &domain.Alert{}, t0, codeBlue)
	if due, ok := a.NextEscalation(domain.Limits{}); !ok || !due.Equal(t0.Add(time.Minute)) {
		t.Fatalf("next escalation %v %v", due, ok)
	}
	foldAt(t, a, t0.Add(time.Minute), domain.EmergencyAlertEscalated{AlertID: "a-1", Level: 1, Reason: "r"})
	if got, want := a.AudienceRoles(), []domain.Role{domain.RoleNurse, domain.RolePhysician}; !reflect.DeepEqual(got, want) {
		t.Fatalf("audience roles = %v, want %v", got, want)
	}
	foldAt(t, a, t0.Add(90*time.Second), domain.EmergencyAlertAcknowledged{AlertID: "a-1", UserID: "bob"})
	foldAt(t, a, t0.Add(95*time.Second), domain.EmergencyAlertAcknowledged{AlertID: "a-1", UserID: "bob"})
	want := []domain.Acknowledgement{{UserID: "bob", At: t0.Add(90 * time.Second)}}
	if got := a.Acknowledgements(); !reflect.DeepEqual(got, want) {
		t.Fatalf("acks = %v, want %v", got, want)
	}
	if _, ok := a.NextEscalation(domain.Limits{}); ok {
		t.Fatal("an acknowledged alert still has an escalation due")
	}
	if a.Level() != 1 || a.Version() != 4 || !a.RaisedAt().Equal(t0) {
		t.Fatalf("level %d version %d raisedAt %v", a.Level(), a.Version(), a.RaisedAt())
	}
}

func TestEscalationRolesClimbALadder(t *testing.T) {
	tests := []struct {
		name  string
		level int
		want  []domain.Role
	}{
		{"level zero adds nobody", 0, []domain.Role{}},
		{"level one adds physicians", 1, []domain.Role{domain.RolePhysician}},
		{"level two adds admins", 2, []domain.Role{domain.RolePhysician, domain.RoleAdmin}},
		{"level three adds super admins", 3, []domain.Role{domain.RolePhysician, domain.RoleAdmin, domain.RoleSuperAdmin}},
		{"levels past the ladder add nobody new", 9, []domain.Role{domain.RolePhysician, domain.RoleAdmin, domain.RoleSuperAdmin}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.EscalationRoles(tt.level); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
