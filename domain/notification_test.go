package domain_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
)

func TestIssueNotification(t *testing.T) {
	svc := []domain.Role{domain.RoleService}
	issued := domain.NotificationIssued{NotificationID: "n-1", UserID: "bob", Kind: "medication_reminder"}
	later := t0.Add(time.Hour)
	tests := []struct {
		name    string
		roles   []domain.Role
		history []domain.Event
		cmd     domain.IssueNotification
		want    []domain.Event
		wantErr error
	}{
		{name: "a service issues a notification with a new id", roles: svc, cmd: domain.IssueNotification{UserID: "bob", Kind: "appointment_update", Payload: json.RawMessage(`{"at":"10:00"}`)},
			want: []domain.Event{domain.NotificationIssued{NotificationID: "id-1", UserID: "bob", Kind: "appointment_update", Payload: json.RawMessage(`{"at":"10:00"}`)}}},
		{name: "a reminder keeps its delivery time", roles: svc, cmd: domain.IssueNotification{NotificationID: "n-2", UserID: "bob", Kind: "medication_reminder", DeliverAt: later},
			want: []domain.Event{domain.NotificationIssued{NotificationID: "n-2", UserID: "bob", Kind: "medication_reminder", DeliverAt: later}}},
		{name: "an admin may issue a notification", roles: []domain.Role{domain.RoleAdmin}, cmd: domain.IssueNotification{NotificationID: "n-2", UserID: "bob", Kind: "k"},
			want: []domain.Event{domain.NotificationIssued{NotificationID: "n-2", UserID: "bob", Kind: "k"}}},
		{name: "a nurse may not issue notifications", roles: []domain.Role{domain.RoleNurse}, cmd: domain.IssueNotification{UserID: "bob", Kind: "k"}, wantErr: domain.ErrCannotNotify},
		{name: "an id already issued is a conflict", roles: svc, history: []domain.Event{issued}, cmd: domain.IssueNotification{NotificationID: "n-1", UserID: "bob", Kind: "k"}, wantErr: domain.ErrNotificationExists},
		{name: "a payload that is not JSON is invalid", roles: svc, cmd: domain.IssueNotification{UserID: "bob", Kind: "k", Payload: json.RawMessage(`{`)}, wantErr: domain.ErrInvalidPayload},
		{name: "a payload over the content limit is too large", roles: svc, cmd: domain.IssueNotification{UserID: "bob", Kind: "k", Payload: json.RawMessage(`"` + strings.Repeat("x", 16<<10) + `"`)}, wantErr: domain.ErrContentTooLarge},
		{name: "a notification needs a kind", roles: svc, cmd: domain.IssueNotification{UserID: "bob"}, wantErr: domain.ErrInvalidKind},
		{name: "a notification needs a recipient", roles: svc, cmd: domain.IssueNotification{Kind: "k"}, wantErr: domain.ErrInvalidUserID},
		{name: "another user's inbox is refused as a wiring mistake", roles: svc, history: []domain.Event{issued}, cmd: domain.IssueNotification{UserID: "carol", Kind: "k"}, wantErr: domain.ErrWrongStateForCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cmd.Decide(ctxAs("scheduler", tt.roles...), fold(t, &domain.Inbox{}, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestAcknowledgeNotification(t *testing.T) {
	issued := domain.NotificationIssued{NotificationID: "n-1", UserID: "bob", Kind: "k"}
	tests := []struct {
		name    string
		actor   string
		history []domain.Event
		id      string
		want    []domain.Event
		wantErr error
	}{
		{name: "the recipient acknowledges", actor: "bob", history: []domain.Event{issued}, id: "n-1",
			want: []domain.Event{domain.NotificationAcknowledged{NotificationID: "n-1", UserID: "bob"}}},
		{name: "acknowledging twice succeeds with no new event", actor: "bob", history: []domain.Event{issued, domain.NotificationAcknowledged{NotificationID: "n-1", UserID: "bob"}}, id: "n-1"},
		{name: "only the recipient may acknowledge", actor: "mallory", history: []domain.Event{issued}, id: "n-1", wantErr: domain.ErrNotRecipient},
		{name: "an unknown notification is not found", actor: "bob", history: []domain.Event{issued}, id: "n-2", wantErr: domain.ErrNotificationNotFound},
		{name: "a malformed id is invalid", actor: "bob", id: "n 1", wantErr: domain.ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.AcknowledgeNotification{NotificationID: tt.id}.Decide(ctxAs(tt.actor), fold(t, &domain.Inbox{}, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestInboxRedeliversOnlyWhatIsUnacknowledgedAndDue(t *testing.T) {
	in := fold(t, &domain.Inbox{},
		domain.NotificationIssued{NotificationID: "a", UserID: "bob", Kind: "k"},
		domain.NotificationIssued{NotificationID: "b", UserID: "bob", Kind: "k", DeliverAt: t0.Add(time.Hour)},
		domain.NotificationIssued{NotificationID: "c", UserID: "bob", Kind: "k", DeliverAt: t0.Add(-time.Hour)},
		domain.NotificationAcknowledged{NotificationID: "a", UserID: "bob"},
	)
	ids := func(ps []domain.PendingNotification) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.NotificationID)
		}
		return out
	}
	if got, want := ids(in.Unacknowledged()), []string{"b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("unacknowledged = %v, want %v", got, want)
	}
	if got, want := ids(in.Due(t0)), []string{"c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("due now = %v, want %v", got, want)
	}
	if got, want := ids(in.Due(t0.Add(time.Hour))), []string{"b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("due in an hour = %v, want %v", got, want)
	}
	if p := in.Due(t0)[0]; !p.IssuedAt.Equal(t0) {
		t.Fatalf("issuedAt = %v, want %v", p.IssuedAt, t0)
	}
}
