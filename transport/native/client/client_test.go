package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardline/wardline/transport/native"
	"github.com/wardline/wardline/transport/native/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is an in-process native.Server whose hooks record what clients did.
type server struct {
	t        *testing.T
	srv      *native.Server
	hs       *httptest.Server
	connects chan *native.Conn
	release  chan struct{}

	mu      sync.Mutex
	offsets []string // resume offsets seen, in order
	events  []string // events received
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{t: t, connects: make(chan *native.Conn, 100), release: make(chan struct{})}
	srv, err := native.NewServer(native.Config{
		Namespaces: []string{"chat"},
		Authenticate: func(r *http.Request) (native.Session, error) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				return native.Session{}, native.ErrNoCredentials
			}
			return checkToken(tok)
		},
		OnAuth: func(ctx context.Context, c *native.Conn, token, offset string) (native.Session, error) {
			return checkToken(token)
		},
		OnConnect: func(ctx context.Context, c *native.Conn, offset string) {
			s.mu.Lock()
			s.offsets = append(s.offsets, offset)
			s.mu.Unlock()
			s.connects <- c
		},
		OnEvent: func(ctx context.Context, c *native.Conn, event string, data json.RawMessage) (any, error) {
			s.mu.Lock()
			s.events = append(s.events, event)
			s.mu.Unlock()
			switch event {
			case "echo":
				return data, nil
			case "fail":
				return nil, native.Errorf(native.CodeForbidden, "not a member of room r1")
			case "block":
				select {
				case <-s.release:
				case <-ctx.Done():
				}
				return nil, nil
			}
			return nil, native.Errorf(native.CodeInvalid, "unknown event %q", event)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = srv
	s.hs = httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		s.hs.Close()
	})
	return s
}

func checkToken(tok string) (native.Session, error) {
	if user, ok := strings.CutPrefix(tok, "good:"); ok {
		return native.Session{UserID: user}, nil
	}
	return native.Session{}, native.Errorf(native.CodeUnauthorized, "token refused")
}

func (s *server) url(ns string) string {
	return "ws" + strings.TrimPrefix(s.hs.URL, "http") + "/ws/" + ns
}

func (s *server) conn() *native.Conn {
	s.t.Helper()
	select {
	case c := <-s.connects:
		return c
	case <-time.After(5 * time.Second):
		s.t.Fatal("no connection")
	}
	return nil
}

func (s *server) lastOffset() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offsets[len(s.offsets)-1]
}

func dial(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func nextPush(t *testing.T, c *client.Client) client.Push {
	t.Helper()
	select {
	case p, ok := <-c.Events():
		if !ok {
			t.Fatalf("Events closed: %v", c.Err())
		}
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no push")
	}
	return client.Push{}
}

func push(t *testing.T, c *native.Conn, event, offset string, data any) {
	t.Helper()
	frame, err := native.EncodePush(event, data, offset)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(frame); err != nil {
		t.Fatal(err)
	}
}

func emitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDialAuthenticatesAndEmitReturnsTheAck(t *testing.T) {
	tests := []struct {
		name string
		opt  client.Option
	}{
		{"with the token in the auth frame", client.WithToken("good:u1")},
		{"with the token in the Authorization header", client.WithHeaderToken("good:u1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			c := dial(t, s.url("chat"), tt.opt, client.WithOffset("e.7"))
			sc := s.conn()
			if c.SessionID() != sc.ID() || c.UserID() != "u1" {
				t.Fatalf("session %q user %q, server says %q", c.SessionID(), c.UserID(), sc.ID())
			}
			if got := s.lastOffset(); got != "e.7" {
				t.Fatalf("server saw offset %q, want e.7", got)
			}
			if p := nextPush(t, c); p.Event != "connected" {
				t.Fatalf("first push %+v, want connected", p)
			}
			ack, err := c.Emit(emitCtx(t), "echo", map[string]int{"n": 5})
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Success bool
				N       int
			}
			if json.Unmarshal(ack, &got) != nil || !got.Success || got.N != 5 {
				t.Fatalf("ack %s", ack)
			}
		})
	}
}

func TestAFailedAckIsATypedError(t *testing.T) {
	s := newServer(t)
	c := dial(t, s.url("chat"), client.WithToken("good:u1"))
	_, err := c.Emit(emitCtx(t), "fail", nil)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != native.CodeForbidden || e.Message != "not a member of room r1" {
		t.Fatalf("err %v, want forbidden", err)
	}
}

func TestSendWithoutIDReportsFailuresAsExceptions(t *testing.T) {
	s := newServer(t)
	c := dial(t, s.url("chat"), client.WithToken("good:u1"))
	nextPush(t, c) // connected
	if err := c.Send(emitCtx(t), "fail", nil); err != nil {
		t.Fatal(err)
	}
	p := nextPush(t, c)
	var e struct{ Code, Event string }
	if p.Event != "exception" || json.Unmarshal(p.Data, &e) != nil || e.Code != "forbidden" || e.Event != "fail" {
		t.Fatalf("push %+v %s", p, p.Data)
	}
}

func TestDialFailures(t *testing.T) {
	s := newServer(t)
	ctx := emitCtx(t)
	t.Run("a refused token is both the exception and the 4401 close", func(t *testing.T) {
		for _, opt := range []client.Option{client.WithToken("forged"), client.WithHeaderToken("forged")} {
			_, err := client.Dial(ctx, s.url("chat"), opt)
			var e *client.Error
			var ce *client.CloseError
			if !errors.As(err, &e) || e.Code != native.CodeUnauthorized || !errors.As(err, &ce) || ce.Code != native.CloseUnauthorized {
				t.Fatalf("err %v, want unauthorized and 4401", err)
			}
		}
	})
	t.Run("an unknown namespace is a 404 handshake error", func(t *testing.T) {
		_, err := client.Dial(ctx, s.url("nope"), client.WithToken("good:u1"))
		var he *client.HandshakeError
		if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
			t.Fatalf("err %v, want HTTP 404", err)
		}
	})
	t.Run("a cancelled context stops the dial", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := client.Dial(cctx, s.url("chat"), client.WithToken("good:u1")); err == nil {
			t.Fatal("dialled with a cancelled context")
		}
	})
}

func TestPushesCarryOffsetsAndTheLastOneIsTracked(t *testing.T) {
	s := newServer(t)
	c := dial(t, s.url("chat"), client.WithToken("good:u1"))
	sc := s.conn()
	nextPush(t, c) // connected
	push(t, sc, "message:new", "e.1", map[string]int{"seq": 1})
	push(t, sc, "typing:user-typing", "", map[string]string{"roomId": "r"})
	push(t, sc, "message:new", "e.2", map[string]int{"seq": 2})
	want := []client.Push{
		{Event: "message:new", Offset: "e.1", Data: json.RawMessage(`{"seq":1}`)},
		{Event: "typing:user-typing", Data: json.RawMessage(`{"roomId":"r"}`)},
		{Event: "message:new", Offset: "e.2", Data: json.RawMessage(`{"seq":2}`)},
	}
	for i, w := range want {
		if p := nextPush(t, c); p.Event != w.Event || p.Offset != w.Offset || string(p.Data) != string(w.Data) {
			t.Fatalf("push %d = %+v %s, want %+v %s", i, p, p.Data, w, w.Data)
		}
	}
	if got := c.Offset(); got != "e.2" {
		t.Fatalf("Offset() = %q, want e.2 (a push without offset does not move it)", got)
	}
}

func TestAFinalServerCloseEndsTheClient(t *testing.T) {
	s := newServer(t)
	c := dial(t, s.url("chat"), client.WithToken("good:u1"), client.WithReconnect(client.Reconnect{MinDelay: time.Millisecond}))
	sc := s.conn()
	pending := make(chan error, 1)
	go func() {
		_, err := c.Emit(emitCtx(t), "block", nil)
		pending <- err
	}()
	waitFor(t, func() bool { return s.saw("block") })
	sc.Close(native.CloseUnauthorized, "token expired")
	close(s.release)
	// The server answers the request in flight before its close frame.
	if err := <-pending; err != nil {
		t.Fatalf("pending Emit: %v", err)
	}
	var ce *client.CloseError
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client did not end")
	}
	if !errors.As(c.Err(), &ce) || ce.Code != native.CloseUnauthorized || ce.Text != "token expired" {
		t.Fatalf("Err() = %v, want 4401 token expired (no reconnect after 4401)", c.Err())
	}
	for range c.Events() { // drained, then closed
	}
	if _, err := c.Emit(emitCtx(t), "echo", nil); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Emit after the end: %v", err)
	}
}

func TestReconnectResumesFromTheLastOffset(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  client.Option
	}{
		{"auth frame", client.WithToken("good:u1")},
		{"header token", client.WithHeaderToken("good:u1")},
	} {
		t.Run("with the "+tt.name, func(t *testing.T) {
			s := newServer(t)
			c := dial(t, s.url("chat"), tt.opt, client.WithReconnect(client.Reconnect{MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}))
			sc := s.conn()
			first := c.SessionID()
			nextPush(t, c) // connected
			push(t, sc, "message:new", "e.41", map[string]int{"seq": 41})
			if p := nextPush(t, c); p.Offset != "e.41" {
				t.Fatalf("push %+v", p)
			}
			sc.Close(native.CloseTryAgain, "slow consumer")
			sc2 := s.conn()
			if got := s.lastOffset(); got != "e.41" {
				t.Fatalf("resumed from %q, want e.41", got)
			}
			if p := nextPush(t, c); p.Event != "connected" {
				t.Fatalf("after the reconnect got %+v, want connected", p)
			}
			if c.SessionID() == first || c.SessionID() != sc2.ID() {
				t.Fatalf("session %q after reconnect; first %q, server %q", c.SessionID(), first, sc2.ID())
			}
			push(t, sc2, "message:new", "e.42", map[string]int{"seq": 42})
			if p := nextPush(t, c); p.Offset != "e.42" {
				t.Fatalf("push %+v", p)
			}
			if _, err := c.Emit(emitCtx(t), "echo", nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEmitDuringAReconnectWaitsForIt(t *testing.T) {
	s := newServer(t)
	c := dial(t, s.url("chat"), client.WithToken("good:u1"), client.WithReconnect(client.Reconnect{MinDelay: 50 * time.Millisecond}))
	s.conn().Close(native.CloseGoingAway, "going away")
	// Whether Emit finds the old connection dying or no connection at
	// all, it either fails with ErrDisconnected or succeeds on the new one.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Emit(emitCtx(t), "echo", nil)
		if err == nil {
			break
		}
		if !errors.Is(err, client.ErrDisconnected) || time.Now().After(deadline) {
			t.Fatalf("Emit: %v", err)
		}
	}
	s.conn() // the reconnection happened
}

func TestReconnectGivesUpAfterMaxAttempts(t *testing.T) {
	s := newServer(t)
	c := dial(t, s.url("chat"), client.WithToken("good:u1"), client.WithReconnect(client.Reconnect{MinDelay: time.Millisecond, MaxAttempts: 3}))
	s.conn()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx) // closes with 1001, then refuses with 503
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client still reconnecting")
	}
	var he *client.HandshakeError
	if !errors.As(c.Err(), &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Err() = %v, want the last attempt's 503", c.Err())
	}
}

func TestEmitHonoursItsContext(t *testing.T) {
	s := newServer(t)
	c := dial(t, s.url("chat"), client.WithToken("good:u1"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Emit(ctx, "block", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	close(s.release) // the late ack arrives and is dropped
	if _, err := c.Emit(emitCtx(t), "echo", nil); err != nil {
		t.Fatalf("the next Emit: %v", err)
	}
}

func TestCloseIsIdempotentAndStopsEverything(t *testing.T) {
	s := newServer(t)
	c := dial(t, s.url("chat"), client.WithToken("good:u1"), client.WithEventBuffer(0), client.WithReconnect(client.Reconnect{}))
	sc := s.conn()
	push(t, sc, "message:new", "e.1", nil) // the reader is now blocked on Events
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Err() != nil {
		t.Fatalf("Err() after Close = %v", c.Err())
	}
	if err := c.Send(emitCtx(t), "echo", nil); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestCloseDuringReconnectBackoff(t *testing.T) {
	s := newServer(t)
	c := dial(t, s.url("chat"), client.WithToken("good:u1"), client.WithReconnect(client.Reconnect{MinDelay: time.Hour}))
	s.conn().Close(native.CloseGoingAway, "going away")
	waitFor(t, func() bool { return c.SessionID() != "" && s.srv.Len() == 0 })
	done := make(chan struct{})
	go func() { _ = c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked by the backoff")
	}
}

func (s *server) saw(event string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e == event {
			return true
		}
	}
	return false
}

// waitFor polls a condition that has no event to wait on.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ExampleDial() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "ws://127.0.0.1:8080/ws/chat",
		client.WithToken("<jwt>"),
		client.WithReconnect(client.Reconnect{}))
	if err != nil {
		return
	}
	defer c.Close()
	go func() {
		for p := range c.Events() {
			_ = p // de-duplicate message:new by messageId: delivery is at-least-once
		}
	}()
	ack, err := c.Emit(ctx, "message:send", map[string]string{"roomId": "r1", "content": "hi", "clientMsgId": "c1"})
	var e *client.Error
	if errors.As(err, &e) {
		_ = e.Code // invalid, forbidden, not_found, …
	}
	_ = ack // {"success":true,"messageId":…,"seq":…,"offset":…}
}
