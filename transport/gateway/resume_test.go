package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
	"github.com/wardline/wardline/transport/gateway"
	"github.com/wardline/wardline/transport/native"
	"github.com/wardline/wardline/transport/native/client"
)

func TestNativeResumeByOffsetDeliversEverythingMissedInOrderThenLive(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.dialClient(h.nurse("alice"))
	mustOK(t, alice.emit("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"bob"}}))
	bob := h.dialClient(h.nurse("bob"))
	mustOK(t, alice.emit("message:send", map[string]any{"roomId": "ward", "content": "m1"}))
	bob.waitPush("message:new", nil)
	last := bob.c.Offset()
	if err := bob.c.Close(); err != nil {
		t.Fatal(err)
	}

	const missed, during = 30, 30
	for i := range missed {
		mustOK(t, alice.emit("message:send", map[string]any{"roomId": "ward", "content": "missed " + string(rune('a'+i%26))}))
	}
	dm := decode[sendAck](t, alice.emit("dm:send", map[string]any{"toUserId": "bob", "content": "while you were away"}))

	// Keep writing while bob resumes, so that replay and live overlap.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range during {
			_, _ = alice.c.Emit(context.Background(), "message:send", map[string]any{"roomId": "ward", "content": "during"})
		}
	}()
	bob = h.dialClient(h.nurse("bob"), client.WithOffset(last))
	<-done
	mustOK(t, alice.emit("message:send", map[string]any{"roomId": "ward", "content": "live"}))

	want := uint64(2)
	sawDM := false
	for want <= 1+missed+during+1 {
		p := bob.next(func(p client.Push) bool { return p.Event == "message:new" || p.Event == "dm:new" }, "resumed pushes")
		if p.Event == "dm:new" {
			if sawDM || p.Offset != dm.Offset {
				t.Fatalf("dm:new twice or with offset %q, want %q", p.Offset, dm.Offset)
			}
			sawDM = true
			continue
		}
		m := decode[msgPayload](t, p.Data)
		if m.Seq != want {
			t.Fatalf("got seq %d, want %d: a gap, a duplicate or a reordering", m.Seq, want)
		}
		want++
	}
	if !sawDM {
		t.Fatal("the DM sent while bob was away was not replayed")
	}
	// Nothing more: a later event is the marker.
	mustOK(t, alice.emit("typing:start", map[string]any{"roomId": "ward"}))
	bob.noPushBefore("message:new", func() { bob.waitPush("typing:user-typing", nil) })
}

func TestNativeClientReconnectsAfterANetworkDropAndResumesWithNothingLostOrRepeated(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.dialClient(h.nurse("alice"))
	mustOK(t, alice.emit("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"bob"}}))
	bob := h.dialClient(h.nurse("bob"), client.WithReconnect(client.Reconnect{MinDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond}))
	first := bob.c.SessionID()
	mustOK(t, alice.emit("message:send", map[string]any{"roomId": "ward", "content": "m1"}))
	bob.waitPush("message:new", nil)

	// Cut every connection, then post over HTTP (alice's socket is cut
	// too) while bob's client reconnects by itself.
	h.listener.dropAll()
	const missed = 40
	for range missed {
		h.postAsService(t, "ward", "while the network was down")
	}
	for want := uint64(2); want <= 1+missed; want++ {
		m := decode[msgPayload](t, bob.waitPush("message:new", nil).Data)
		if m.Seq != want {
			t.Fatalf("got seq %d, want %d: a gap, a duplicate or a reordering", m.Seq, want)
		}
	}
	if bob.c.SessionID() == first {
		t.Fatal("the client did not reconnect (same session id)")
	}
	// Exactly one new connection announced itself.
	bob.waitPush("connected", nil)
	h.postAsService(t, "ward", "marker")
	if m := decode[msgPayload](t, bob.waitPush("message:new", nil).Data); m.Seq != missed+2 {
		t.Fatalf("after the resume got seq %d, want %d", m.Seq, missed+2)
	}
}

func TestNativeResumeWithAnOffsetOfAnotherEpochStartsFreshAndSaysSo(t *testing.T) {
	h := newHarness(t, nil)
	c, _, err := h.dialNative(nil)
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, c.request("auth", map[string]string{"token": h.nurse("bob"), "offset": "another-epoch.5"}))
	c.waitPush("connected", nil)
	f := c.waitPush("exception", nil)
	if e := decode[struct{ Code, Event string }](t, f.Data); e.Code != "invalid" || e.Event != "resume" {
		t.Fatalf("exception = %s", f.Data)
	}
	// The client is given an offset of this store to resume from instead.
	if f := c.waitPush("session:offset", nil); f.Offset == "" || strings.HasPrefix(f.Offset, "another-epoch") {
		t.Fatalf("session:offset after a refused resume = %s offset %q", f.Data, f.Offset)
	}
	mustOK(t, c.request("presence:query", map[string]any{"userIds": []string{"bob"}}))
}

func TestPresenceEdgesFollowTheFirstAndLastSessionOfAUser(t *testing.T) {
	h := newHarness(t, nil)
	carol := h.connect(h.nurse("carol"), "")
	mustOK(t, carol.request("room:create", map[string]any{"roomId": "team", "name": "Team", "members": []string{"alice"}}))

	a1 := h.connect(h.nurse("alice"), "")
	if f := carol.waitPush("user:online", nil); string(f.Data) != `{"userId":"alice"}` || f.Offset == "" {
		t.Fatalf("user:online = %s %q", f.Data, f.Offset)
	}
	a2 := h.connect(h.nurse("alice"), "")
	// "connected" is pushed before the session is recorded; wait for it.
	for deadline := time.Now().Add(5 * time.Second); len(h.presence.SessionsOf("alice")) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("alice's second session was never recorded")
		}
	}
	_ = a1.conn.Close()
	<-a1.done
	// No edge for the second session nor for the first one's end: a
	// message from the second session is the marker.
	mustOK(t, a2.request("message:send", map[string]any{"roomId": "team", "content": "still here"}))
	carol.noPushBefore("user:offline", func() { carol.waitPush("message:new", nil) })
	carol.noPushBefore("user:online", func() {})

	start := time.Now()
	_ = a2.conn.Close()
	<-a2.done
	if f := carol.waitPush("user:offline", nil); string(f.Data) != `{"userId":"alice"}` {
		t.Fatalf("user:offline = %s", f.Data)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("user:offline after %v, want within 5 s", d)
	}
	online := decode[struct{ Online []string }](t, carol.request("presence:query", map[string]any{"userIds": []string{"alice", "carol"}}))
	if len(online.Online) != 1 || online.Online[0] != "carol" {
		t.Fatalf("online = %v", online.Online)
	}
}

func TestASlowConsumerIsClosedWithoutSlowingOthers(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) { c.MaxQueueMessages, c.WriteTimeout = 64, 500*time.Millisecond })
	alice := h.connect(h.nurse("alice"), "")
	mustOK(t, alice.request("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"bob", "slow"}}))
	bob := h.connect(h.nurse("bob"), "")
	// Small server-side socket buffers for the slow consumer only, so that
	// it falls behind after a few messages rather than megabytes.
	h.listener.sendBuffer.Store(4096)
	slow, _, err := h.dialNativeUnread(h.nurse("slow"))
	h.listener.sendBuffer.Store(0)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	for deadline := time.Now().Add(5 * time.Second); len(h.presence.SessionsOf("slow")) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow consumer's session was never recorded")
		}
	}

	const n = 100
	content := strings.Repeat("x", 15<<10)
	go func() {
		for range n {
			if alice.tryRequest("message:send", map[string]any{"roomId": "ward", "content": content}) == nil {
				return
			}
		}
	}()
	for i := uint64(1); i <= n; i++ {
		m := decode[msgPayload](t, bob.waitPush("message:new", nil).Data)
		if m.Seq != i {
			t.Fatalf("bob got seq %d, want %d", m.Seq, i)
		}
	}
	// The slow consumer is dropped: by its queue overflowing (1013) or,
	// when its socket stays blocked longer than WriteTimeout first, by the
	// write deadline. Either way its session ends, and it counts as one
	// overflow.
	deadline := time.Now().Add(15 * time.Second)
	for len(h.presence.SessionsOf("slow")) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow consumer's session never ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, "the overflow to be counted", func() bool {
		return h.metricValue("wardline_gateway_queue_overflows_total", map[string]string{"transport": "native"}) == 1
	})
	if got := sessionEndReasons(t, h, "slow"); len(got) != 1 || got[0] != "slow consumer" {
		t.Fatalf("SessionEnded reasons of slow = %q, want one \"slow consumer\"", got)
	}
}

func TestTokenExpiryWarnsThenClosesWith4401(t *testing.T) {
	h := newHarness(t, nil)
	soon, err := auth.NewMinter(auth.MinterConfig{Secret: testSecret, Now: func() time.Time { return time.Now().Add(-time.Hour + 2*time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := soon.Mint(authClaims("alice"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := h.connect(tok, "")
	f := c.waitPush("auth:expiring", nil)
	if decode[struct{ ExpiresAt string }](t, f.Data).ExpiresAt == "" {
		t.Fatalf("auth:expiring = %s", f.Data)
	}
	if code := c.waitClosed(); code != native.CloseUnauthorized {
		t.Fatalf("close %d, want 4401", code)
	}
	if ce := c.closeErr(); ce == nil || ce.Text != "token expired" {
		t.Fatalf("close reason %v, want token expired", ce)
	}
}

func TestRefreshedTokenKeepsTheSessionPastTheOldExpiry(t *testing.T) {
	h := newHarness(t, nil)
	soon, err := auth.NewMinter(auth.MinterConfig{Secret: testSecret, Now: func() time.Time { return time.Now().Add(-time.Hour + 2*time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := soon.Mint(authClaims("alice"), time.Hour)
	c := h.connect(tok, "")
	mustOK(t, c.request("auth:refresh", map[string]any{"token": h.nurse("alice")}))
	time.Sleep(3 * time.Second) // past the old exp: the session must still answer
	mustOK(t, c.request("presence:query", map[string]any{"userIds": []string{"alice"}}))
}

func TestShutdownClosesWebSocketsWith1001(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(h.nurse("alice"), "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code := c.waitClosed(); code != native.CloseGoingAway {
		t.Fatalf("close %d, want 1001", code)
	}
}

func TestDeletingABrowserSessionClosesItsSockets(t *testing.T) {
	h := newHarness(t, nil)
	cookie := h.sessionCookie(t, h.nurse("alice"))
	c, _, err := h.dialNative(http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}})
	if err != nil {
		t.Fatal(err)
	}
	c.waitPush("connected", nil)

	req, _ := http.NewRequest(http.MethodDelete, h.srv.URL+"/api/v1/sessions", nil)
	req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE /api/v1/sessions: %d", res.StatusCode)
	}
	if code := c.waitClosed(); code != native.CloseUnauthorized {
		t.Fatalf("close %d, want 4401", code)
	}
	_ = domain.CodeInvalid
}

func TestANativeClientThatDropsBeforeItsFirstPushResumesFromWhereItsSessionStarted(t *testing.T) {
	h := newHarness(t, nil)
	alice := h.dialClient(h.nurse("alice"))
	mustOK(t, alice.emit("room:create", map[string]any{"roomId": "ward", "name": "Ward", "members": []string{"bob"}}))
	bob := h.dialClient(h.nurse("bob"), client.WithReconnect(client.Reconnect{MinDelay: 300 * time.Millisecond, MaxDelay: 300 * time.Millisecond}))
	start := bob.waitPush("session:offset", nil)
	if start.Offset == "" || string(start.Data) != `{"offset":"`+start.Offset+`"}` {
		t.Fatalf("session:offset = %s offset %q", start.Data, start.Offset)
	}
	// No push from the log has reached bob yet; the network fails, and a
	// message is posted before his client is back.
	h.listener.dropAll()
	h.postAsService(t, "ward", "while the network was down")
	if m := decode[msgPayload](t, bob.waitPush("message:new", nil).Data); m.Seq != 1 {
		t.Fatalf("got seq %d, want 1", m.Seq)
	}
}
