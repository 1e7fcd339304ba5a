package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wardline/wardline/domain"
)

func TestSendDM(t *testing.T) {
	sent := domain.DirectMessageSent{MessageID: "m-1", SenderID: "alice", ToUserID: "bob", Content: "hi", ClientMsgID: "c-1"}
	tests := []struct {
		name       string
		actor      string
		history    []domain.Event
		cmd        domain.SendDM
		want       []domain.Event
		wantResult domain.MessageResult
		wantErr    error
	}{
		{name: "a user sends a DM to another", actor: "alice", cmd: domain.SendDM{ToUserID: "bob", Content: "hi", ClientMsgID: "c-1"},
			want:       []domain.Event{domain.DirectMessageSent{MessageID: "id-1", SenderID: "alice", ToUserID: "bob", Content: "hi", ClientMsgID: "c-1"}},
			wantResult: domain.MessageResult{MessageID: "id-1"}},
		{name: "a retry with the same clientMsgId returns the original and appends nothing", actor: "alice", history: []domain.Event{sent}, cmd: domain.SendDM{ToUserID: "bob", Content: "hi", ClientMsgID: "c-1"},
			wantResult: domain.MessageResult{MessageID: "m-1", Duplicate: true, EventID: "ev-1", StreamVersion: 1}},
		{name: "the recipient may reuse the sender's clientMsgId for a reply", actor: "bob", history: []domain.Event{sent}, cmd: domain.SendDM{ToUserID: "alice", Content: "hi", ClientMsgID: "c-1"},
			want:       []domain.Event{domain.DirectMessageSent{MessageID: "id-1", SenderID: "bob", ToUserID: "alice", Content: "hi", ClientMsgID: "c-1"}},
			wantResult: domain.MessageResult{MessageID: "id-1"}},
		{name: "the same clientMsgId with other content is a conflict", actor: "alice", history: []domain.Event{sent}, cmd: domain.SendDM{ToUserID: "bob", Content: "bye", ClientMsgID: "c-1"}, wantErr: domain.ErrClientMsgIDReused},
		{name: "a DM to oneself is invalid", actor: "alice", cmd: domain.SendDM{ToUserID: "alice", Content: "note"}, wantErr: domain.ErrDMToSelf},
		{name: "a DM needs a recipient", actor: "alice", cmd: domain.SendDM{Content: "x"}, wantErr: domain.ErrInvalidUserID},
		{name: "a recipient id with a tilde is invalid", actor: "alice", cmd: domain.SendDM{ToUserID: "b~c", Content: "x"}, wantErr: domain.ErrInvalidUserID},
		{name: "a sender id with a tilde is invalid", actor: "a~b", cmd: domain.SendDM{ToUserID: "c", Content: "x"}, wantErr: domain.ErrInvalidUserID},
		{name: "a DM over the content limit is too large", actor: "alice", cmd: domain.SendDM{ToUserID: "bob", Content: strings.Repeat("x", 16<<10+1)}, wantErr: domain.ErrContentTooLarge},
		{name: "an empty DM is invalid", actor: "alice", cmd: domain.SendDM{ToUserID: "bob"}, wantErr: domain.ErrEmptyContent},
		{name: "an anonymous caller is unauthorized", actor: "", cmd: domain.SendDM{ToUserID: "bob", Content: "x"}, wantErr: domain.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, got, err := tt.cmd.Decide(ctxAs(tt.actor), fold(t, &domain.Conversation{}, tt.history...))
			checkDecision(t, got, err, tt.want, tt.wantErr)
			if res != tt.wantResult {
				t.Fatalf("result = %+v, want %+v", res, tt.wantResult)
			}
		})
	}
}

func TestSendDMRefusesAnotherPairsConversation(t *testing.T) {
	conv := fold(t, &domain.Conversation{}, domain.DirectMessageSent{MessageID: "m", SenderID: "carol", ToUserID: "dave", Content: "x"})
	_, _, err := domain.SendDM{ToUserID: "bob", Content: "x"}.Decide(ctxAs("alice"), conv)
	if !errors.Is(err, domain.ErrWrongStateForCommand) {
		t.Fatalf("error = %v, want ErrWrongStateForCommand", err)
	}
}

func TestSendDMWithNoStateIsAFirstMessage(t *testing.T) {
	res, events, err := domain.SendDM{ToUserID: "bob", Content: "x", ClientMsgID: "k"}.Decide(ctxAs("alice"), nil)
	if err != nil || len(events) != 1 || res.Duplicate {
		t.Fatalf("res %+v events %v err %v", res, events, err)
	}
	if s, _ := domain.StreamOf(events[0]); s != domain.DMStream("bob", "alice") {
		t.Fatalf("DM goes to %q", s)
	}
}
