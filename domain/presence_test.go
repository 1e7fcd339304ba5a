package domain_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
)

func TestStartSession(t *testing.T) {
	s1 := domain.SessionStarted{SessionID: "s1", UserID: "alice", Namespace: "/chat", Transport: "native", NodeID: "n1"}
	tests := []struct {
		name    string
		history []domain.Event
		cmd     domain.StartSession
		want    []domain.Event
		wantErr error
	}{
		{name: "the first session brings the user online", cmd: domain.StartSession{SessionID: "s1", Namespace: "/chat", Transport: "native"},
			want: []domain.Event{domain.SessionStarted{SessionID: "s1", UserID: "alice", Namespace: "/chat", Transport: "native", NodeID: "node-a"}, domain.UserOnline{UserID: "alice"}}},
		{name: "a second session does not announce the user again", history: []domain.Event{s1, domain.UserOnline{UserID: "alice"}},
			cmd:  domain.StartSession{SessionID: "s2", Namespace: "/notifications", Transport: "socketio", NodeID: "n2", ClientAddr: "127.0.0.1:9"},
			want: []domain.Event{domain.SessionStarted{SessionID: "s2", UserID: "alice", Namespace: "/notifications", Transport: "socketio", NodeID: "n2", ClientAddr: "127.0.0.1:9"}}},
		{name: "starting an open session again is a no-op", history: []domain.Event{s1, domain.UserOnline{UserID: "alice"}}, cmd: domain.StartSession{SessionID: "s1", Namespace: "/chat", Transport: "native"}},
		{name: "a session after the last one ended brings the user online again",
			history: []domain.Event{s1, domain.UserOnline{UserID: "alice"}, domain.SessionEnded{SessionID: "s1", UserID: "alice", Reason: "disconnect"}, domain.UserOffline{UserID: "alice"}},
			cmd:     domain.StartSession{SessionID: "s3", Namespace: "/chat", Transport: "native"},
			want:    []domain.Event{domain.SessionStarted{SessionID: "s3", UserID: "alice", Namespace: "/chat", Transport: "native", NodeID: "node-a"}, domain.UserOnline{UserID: "alice"}}},
		{name: "a session needs an id", cmd: domain.StartSession{Namespace: "/chat", Transport: "native"}, wantErr: domain.ErrInvalidSession},
		{name: "a session needs a namespace and transport", cmd: domain.StartSession{SessionID: "s1"}, wantErr: domain.ErrMissingField},
		{name: "another user's presence is refused as a wiring mistake", history: []domain.Event{domain.UserOnline{UserID: "bob"}}, cmd: domain.StartSession{SessionID: "s1", Namespace: "/chat", Transport: "native"}, wantErr: domain.ErrWrongStateForCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ctxAs("alice")
			c.NodeID = "node-a"
			got, err := tt.cmd.Decide(c, fold(t, &domain.Presence{}, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestEndSession(t *testing.T) {
	online := []domain.Event{
		domain.SessionStarted{SessionID: "s1", UserID: "alice", Namespace: "/chat", Transport: "native"},
		domain.UserOnline{UserID: "alice"},
	}
	two := append(append([]domain.Event{}, online...), domain.SessionStarted{SessionID: "s2", UserID: "alice", Namespace: "/chat", Transport: "native"})
	tests := []struct {
		name    string
		actor   string
		roles   []domain.Role
		history []domain.Event
		cmd     domain.EndSession
		want    []domain.Event
		wantErr error
	}{
		{name: "ending the last session takes the user offline", actor: "alice", history: online, cmd: domain.EndSession{UserID: "alice", SessionID: "s1", Reason: "disconnect"},
			want: []domain.Event{domain.SessionEnded{SessionID: "s1", UserID: "alice", Reason: "disconnect"}, domain.UserOffline{UserID: "alice"}}},
		{name: "ending one of two sessions keeps the user online", actor: "alice", history: two, cmd: domain.EndSession{UserID: "alice", SessionID: "s1"},
			want: []domain.Event{domain.SessionEnded{SessionID: "s1", UserID: "alice", Reason: "unspecified"}}},
		{name: "ending a session that is not open is a no-op", actor: "alice", history: online, cmd: domain.EndSession{UserID: "alice", SessionID: "s9"}},
		{name: "an admin may end another user's session", actor: "root", roles: []domain.Role{domain.RoleAdmin}, history: online, cmd: domain.EndSession{UserID: "alice", SessionID: "s1", Reason: "kicked"},
			want: []domain.Event{domain.SessionEnded{SessionID: "s1", UserID: "alice", Reason: "kicked"}, domain.UserOffline{UserID: "alice"}}},
		{name: "a node cleaning up after a dead node may end its sessions", actor: "node-b", roles: []domain.Role{domain.RoleService}, history: online, cmd: domain.EndSession{UserID: "alice", SessionID: "s1", Reason: "node lost"},
			want: []domain.Event{domain.SessionEnded{SessionID: "s1", UserID: "alice", Reason: "node lost"}, domain.UserOffline{UserID: "alice"}}},
		{name: "a user may not end another user's session", actor: "mallory", history: online, cmd: domain.EndSession{UserID: "alice", SessionID: "s1"}, wantErr: domain.ErrCannotEndSession},
		{name: "ending a session needs its user", actor: "alice", history: online, cmd: domain.EndSession{SessionID: "s1"}, wantErr: domain.ErrInvalidUserID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cmd.Decide(ctxAs(tt.actor, tt.roles...), fold(t, &domain.Presence{}, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestPresenceStateFoldsItsStream(t *testing.T) {
	p := &domain.Presence{}
	foldAt(t, p, t0, domain.SessionStarted{SessionID: "b", UserID: "alice", Namespace: "/chat", Transport: "native", NodeID: "n1"})
	foldAt(t, p, t0, domain.UserOnline{UserID: "alice"})
	foldAt(t, p, t0.Add(-time.Second), domain.SessionStarted{SessionID: "a", UserID: "alice", Namespace: "/admin", Transport: "socketio", NodeID: "n2"})
	if !p.Online() || p.UserID() != "alice" || p.Version() != 3 {
		t.Fatalf("online %v user %q version %d", p.Online(), p.UserID(), p.Version())
	}
	var ids []string
	for _, s := range p.Sessions() {
		ids = append(ids, s.SessionID+"@"+s.NodeID)
	}
	if want := []string{"a@n2", "b@n1"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("sessions = %v, want oldest first %v", ids, want)
	}
}

// TestPresenceEdgesOverAFullDay drives sessions opening and closing in an
// interleaved order and checks the online/offline events alternate, starting
// online, whatever the order.
func TestPresenceEdgesOverAFullDay(t *testing.T) {
	p := &domain.Presence{}
	c := ctxAs("alice")
	var edges []string
	run := func(events []domain.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		envs, err := c.Wrap(events)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			p.Apply(e)
			switch e.Event.(type) {
			case domain.UserOnline:
				edges = append(edges, "on")
			case domain.UserOffline:
				edges = append(edges, "off")
			}
		}
	}
	start := func(id string) {
		run(domain.StartSession{SessionID: id, Namespace: "/chat", Transport: "native"}.Decide(c, p))
	}
	end := func(id string) { run(domain.EndSession{UserID: "alice", SessionID: id}.Decide(c, p)) }
	start("1")
	start("2")
	end("1")
	start("3")
	end("2")
	end("3")
	end("3")
	start("4")
	end("4")
	if want := []string{"on", "off", "on", "off"}; !reflect.DeepEqual(edges, want) {
		t.Fatalf("edges = %v, want %v", edges, want)
	}
}
