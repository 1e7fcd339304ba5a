package domain_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/wardline/wardline/domain"
)

// The gateway's loop for one command: fold the stream into state, decide,
// wrap the events, append them (here: apply them), answer.
func Example() {
	c := domain.Context{
		Now:   time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC),
		Actor: domain.Actor{UserID: "alice", Roles: []domain.Role{domain.RoleNurse}},
		NewID: counter("id"), // production: domain.NewID
	}
	var room domain.Room
	commit := func(events []domain.Event) {
		envs, _ := c.Wrap(events)
		for _, e := range envs {
			room.Apply(e) // the gateway appends to e.Stream with eventstore.Exact(room.Version()) first
		}
	}

	events, _ := domain.CreateRoom{RoomID: "icu-1", Name: "ICU", Members: []string{"bob"}}.Decide(c, &room)
	commit(events)

	res, events, _ := domain.PostMessage{RoomID: "icu-1", Content: "BP 120/80", ClientMsgID: "c-1"}.Decide(c, &room)
	commit(events)
	fmt.Println("sent", res.MessageID, "seq", res.Seq)

	res, events, _ = domain.PostMessage{RoomID: "icu-1", Content: "BP 120/80", ClientMsgID: "c-1"}.Decide(c, &room)
	fmt.Println("retry", res.MessageID, "seq", res.Seq, "duplicate", res.Duplicate, "events", len(events))

	c.Actor = domain.Actor{UserID: "mallory"}
	_, err := domain.JoinRoom{RoomID: "icu-1"}.Decide(c, &room)
	var denied *domain.AccessDeniedError
	if errors.As(err, &denied) {
		fmt.Println("audit", denied.Denial.Action, denied.Denial.Reason, "to", domain.AccessStream(denied.Denial.UserID))
	}
	fmt.Println("ack", domain.ErrorCodeOf(err), domain.ErrorMessage(err))
	// Output:
	// sent id-2 seq 1
	// retry id-2 seq 1 duplicate true events 0
	// audit join private_room to access-mallory
	// ack forbidden this room is private; a member must add you
}
