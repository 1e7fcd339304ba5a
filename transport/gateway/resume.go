package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wardline/wardline/eventstore"
)

// pidLabel separates the pid key from every other key derived from the
// server secret.
const pidLabel = "wardline gateway resume pid v1"

// errResumeRefused is the notice a client gets when its pid or offset
// cannot be honoured (another store epoch, tampering, another user): it
// starts fresh.
var errResumeRefused = errors.New("gateway: resume refused")

// pidSigner makes and checks Socket.IO recovery ids. A pid is
// "v1.<b64(user)>.<epoch>.<start>.<nonce>.<b64(mac)>" where start is the log
// position the recovery session began at (what to replay from when the
// client never received an offset); it is verifiable on any node that
// shares the secret, with no server memory.
type pidSigner struct {
	key []byte
}

func newPIDSigner(secret []byte) pidSigner {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(pidLabel))
	return pidSigner{key: m.Sum(nil)}
}

var b64 = base64.RawURLEncoding

func (p pidSigner) sign(user, epoch string, start eventstore.Position) string {
	var nonce [9]byte
	_, _ = rand.Read(nonce[:])
	body := strings.Join([]string{"v1", b64.EncodeToString([]byte(user)), b64.EncodeToString([]byte(epoch)), strconv.FormatUint(uint64(start), 36), b64.EncodeToString(nonce[:])}, ".")
	return body + "." + b64.EncodeToString(p.mac(body))
}

func (p pidSigner) mac(body string) []byte {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// verify checks pid for user and epoch and returns its start position.
func (p pidSigner) verify(pid, user, epoch string) (eventstore.Position, error) {
	parts := strings.Split(pid, ".")
	if len(parts) != 6 || parts[0] != "v1" {
		return 0, fmt.Errorf("%w: malformed pid", errResumeRefused)
	}
	body := strings.Join(parts[:5], ".")
	sum, err := b64.DecodeString(parts[5])
	if err != nil || !hmac.Equal(sum, p.mac(body)) {
		return 0, fmt.Errorf("%w: pid signature", errResumeRefused)
	}
	u, err1 := b64.DecodeString(parts[1])
	e, err2 := b64.DecodeString(parts[2])
	start, err3 := strconv.ParseUint(parts[3], 36, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, fmt.Errorf("%w: malformed pid", errResumeRefused)
	}
	if string(u) != user {
		return 0, fmt.Errorf("%w: pid of another user", errResumeRefused)
	}
	if string(e) != epoch {
		return 0, fmt.Errorf("%w: pid from another store epoch", errResumeRefused)
	}
	return eventstore.Position(start), nil
}

// startDelivery sets s up for delivery after position from: s registers
// with the hub (which buffers for it), the log in (from, P] is replayed,
// where P is the hub's position at registration, then the buffer is
// flushed and s goes live. A fresh session passes the log's head as read
// before the client was told it is connected, so nothing the client could
// expect is missed; a resuming one passes its offset.
//
// The replay is served from the hub's ring of recent pushes when the
// window lies within it, which is always the case for a fresh session
// unless the node is far behind: the window is then only the events
// committed while the session was being opened. An empty replay starts
// nothing; a non-empty one runs on a goroutine of g.wg, since the native
// transport paces a replay by the client.
//
// It returns false, starting nothing, when the browser session s was
// authenticated with has been ended (DELETE /api/v1/sessions) meanwhile:
// the check follows the registration, and closeAuthSession records the
// revocation before it looks for sessions, so one of the two sees the other.
func (g *Gateway) startDelivery(ctx context.Context, s *session, from eventstore.Position) bool {
	s.mu.Lock()
	s.after, s.replay = from, &replayBuffer{}
	s.mu.Unlock()
	live := g.hub.register(s)
	if g.revoked(s.authSessionID()) {
		return false
	}
	var (
		pushes []*push
		inRing = true
	)
	if from < live {
		pushes, inRing = g.hub.recentFor(s.userID, from, live)
	}
	if inRing && len(pushes) == 0 {
		s.finishReplay()
		return true
	}
	if !g.spawn(func() {
		err := g.replayRecent(ctx, s, pushes)
		if err == nil && !inRing {
			err = g.replay(ctx, s, from, live)
		}
		if err != nil && ctx.Err() == nil {
			g.cfg.Logger.Warn("gateway: replay failed; closing so the client resumes again", "session", s.id, "err", err)
			s.closeTryAgain()
			return
		}
		s.finishReplay()
	}) {
		s.closeTryAgain() // shutting down: the client resumes elsewhere
	}
	return true
}

// replayRecent sends pushes taken from the hub's ring, in order.
func (g *Gateway) replayRecent(ctx context.Context, s *session, pushes []*push) error {
	for _, p := range pushes {
		if err := s.sendReplay(ctx, p); err != nil {
			return err
		}
		s.mu.Lock()
		s.after = p.pos
		s.mu.Unlock()
	}
	return nil
}

// replay sends what s may see of the log in (from, live], reading the log
// until the rest of the window lies within the hub's ring.
func (g *Gateway) replay(ctx context.Context, s *session, from, live eventstore.Position) error {
	for from < live {
		if pushes, ok := g.hub.recentFor(s.userID, from, live); ok {
			return g.replayRecent(ctx, s, pushes)
		}
		evs, err := g.cfg.Store.ReadAll(ctx, from, replayPage)
		if err != nil {
			return fmt.Errorf("gateway: replay from %d: %w", from, err)
		}
		if len(evs) == 0 {
			return nil
		}
		for _, r := range evs {
			if r.Position > live {
				return nil
			}
			from = r.Position
			if !pushedType(r.Type) {
				continue
			}
			env, err := g.svc.decode(r)
			if err != nil {
				return err
			}
			rt, ok := g.hub.routeReplayed(appliedOf(r, env))
			if !ok || !rt.reaches(s.userID) {
				continue
			}
			if err := s.sendReplay(ctx, rt.push); err != nil {
				return err
			}
			s.mu.Lock()
			s.after = r.Position
			s.mu.Unlock()
		}
	}
	return nil
}
