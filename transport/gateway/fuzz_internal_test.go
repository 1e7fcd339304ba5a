package gateway

import (
	"bytes"
	"testing"
)

var fuzzSecret = []byte("0123456789abcdef0123456789abcdef-fuzz")

func FuzzPIDVerify(f *testing.F) {
	s := newPIDSigner(fuzzSecret)
	f.Add(s.sign("alice", "epoch-1", 42), "alice", "epoch-1")
	f.Add("v1.YWxpY2U.ZXBvY2gtMQ.1a.AAAA.AAAA", "alice", "epoch-1")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, pid, user, epoch string) {
		if _, err := s.verify(pid, user, epoch); err != nil {
			return
		}
		// What verifies is bound to its user and epoch.
		if _, err := s.verify(pid, user+"x", epoch); err == nil {
			t.Fatalf("pid %q verified for %q and %q", pid, user, user+"x")
		}
		if _, err := s.verify(pid, user, epoch+"x"); err == nil {
			t.Fatalf("pid %q verified for epochs %q and %q", pid, epoch, epoch+"x")
		}
	})
}

func TestPIDsVerifyOnlyForTheirUserAndEpoch(t *testing.T) {
	s := newPIDSigner(fuzzSecret)
	pid := s.sign("alice", "epoch-1", 42)
	cases := []struct {
		name, pid, user, epoch string
		ok                     bool
	}{
		{"a pid verifies for its user and epoch", pid, "alice", "epoch-1", true},
		{"a pid of another user is refused", pid, "bob", "epoch-1", false},
		{"a pid of another epoch is refused", pid, "alice", "epoch-2", false},
		{"a tampered pid is refused", pid[:len(pid)-2] + "AA", "alice", "epoch-1", false},
		{"a pid signed with another secret is refused", newPIDSigner([]byte("another-secret-another-secret-123")).sign("alice", "epoch-1", 42), "alice", "epoch-1", false},
		{"garbage is refused", "nonsense", "alice", "epoch-1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start, err := s.verify(tc.pid, tc.user, tc.epoch)
			if (err == nil) != tc.ok {
				t.Fatalf("verify: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && start != 42 {
				t.Fatalf("start %d, want 42", start)
			}
		})
	}
}

func FuzzDecodeData(f *testing.F) {
	for _, seed := range []string{`{"roomId":"a","content":"x","clientMsgId":"c"}`, `{"roomId":5}`, `null`, `"x"`, ``, `{`, `{"beforeSeq":-1}`, ` {"limit":1e400}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req historyReq
		err := decodeData(raw, &req)
		if err == nil && !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			t.Fatalf("accepted %q, which is not an object", raw)
		}
		var msg messageSendReq
		if err := decodeData(raw, &msg); err != nil {
			if ErrorCode := wireError(err).Code; ErrorCode != "invalid" {
				t.Fatalf("decode error coded %q, want invalid", ErrorCode)
			}
		}
	})
}
