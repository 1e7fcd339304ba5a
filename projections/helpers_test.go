package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/bolt"
	"github.com/wardline/wardline/eventstore/memstore"
	"github.com/wardline/wardline/projections"
)

// newStore returns an empty in-memory store, closed when the test ends.
func newStore(tb testing.TB) eventstore.Store {
	s := memstore.New()
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// newBoltStore returns an empty embedded store (the default backend),
// closed when the test ends.
func newBoltStore(tb testing.TB) eventstore.Store {
	tb.Helper()
	s, err := bolt.Open(context.Background(), filepath.Join(tb.TempDir(), "events"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// command is what one decision appends: events for one stream.
type command struct {
	stream string
	events []eventstore.EventData
}

// generator makes a consistent, reproducible log of mixed events: rooms
// created, joins, leaves, messages with gap-free seqs, sessions with their
// online/offline edges, and event types no projection folds (typing,
// history views), as the domain would decide them.
type generator struct {
	rng      *rand.Rand
	seed     uint64
	at       time.Time
	ids      int
	rooms    []*genRoom
	users    []string
	roles    map[string][]domain.Role
	sessions map[string][]string // user -> open session ids

	messages int // MessagePosted events made
	maxRooms int // stop creating rooms at this many (0: no limit)
}

type genRoom struct {
	id      string
	members []string
	seq     uint64
}

func newGenerator(seed uint64) *generator {
	g := &generator{
		rng:      rand.New(rand.NewPCG(seed, 0x5eed)),
		seed:     seed,
		at:       time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		roles:    map[string][]domain.Role{},
		sessions: map[string][]string{},
	}
	all := []domain.Role{domain.RoleNurse, domain.RolePhysician, domain.RoleStaff, domain.RoleAdmin}
	for i := range 60 {
		u := fmt.Sprintf("user-%02d", i)
		g.users = append(g.users, u)
		g.roles[u] = []domain.Role{all[i%len(all)]}
	}
	return g
}

func (g *generator) user() string { return g.users[g.rng.IntN(len(g.users))] }

// envelope stamps an event with a time that has sub-millisecond digits, so
// the models' millisecond truncation is exercised.
func (g *generator) envelope(stream, actor string, ev domain.Event) domain.Envelope {
	g.ids++
	g.at = g.at.Add(time.Duration(1+g.rng.IntN(5_000_000)) * time.Microsecond / 7)
	return domain.Envelope{
		ID: fmt.Sprintf("evt-%d-%09d", g.seed, g.ids), Stream: stream, Time: g.at,
		Actor: domain.Actor{UserID: actor, Roles: g.roles[actor], SessionID: "s-" + actor},
		Event: ev,
	}
}

func (g *generator) cmd(tb testing.TB, stream, actor string, evs ...domain.Event) command {
	c := command{stream: stream}
	for _, ev := range evs {
		raw, err := domain.Encode(g.envelope(stream, actor, ev))
		if err != nil {
			tb.Fatal(err)
		}
		c.events = append(c.events, eventstore.EventData{ID: raw.ID, Type: raw.Type, SchemaVersion: raw.SchemaVersion, Data: raw.Data, Metadata: raw.Metadata})
	}
	return c
}

// next returns the next command; it returns none only for a wasted draw.
func (g *generator) next(tb testing.TB) []command {
	roll := g.rng.IntN(100)
	switch {
	case roll < 4 && (g.maxRooms == 0 || len(g.rooms) < g.maxRooms) || len(g.rooms) < 3:
		creator := g.user()
		r := &genRoom{id: fmt.Sprintf("room-%04d", len(g.rooms)), members: []string{creator}}
		extra := []string{g.user(), g.user()}
		for _, u := range extra {
			if !contains(r.members, u) {
				r.members = append(r.members, u)
			}
		}
		g.rooms = append(g.rooms, r)
		return []command{g.cmd(tb, domain.RoomStream(r.id), creator, domain.RoomCreated{
			RoomID: r.id, Name: "Room " + r.id, Private: g.rng.IntN(2) == 0, PHI: g.rng.IntN(3) == 0,
			CreatedBy: creator, Members: extra,
		})}
	case roll < 14:
		r, u := g.rooms[g.rng.IntN(len(g.rooms))], g.user()
		if contains(r.members, u) {
			return nil
		}
		r.members = append(r.members, u)
		ev := domain.MemberJoined{RoomID: r.id, UserID: u}
		actor := u
		if g.rng.IntN(3) == 0 {
			actor = r.members[0]
			ev.AddedBy = actor
		}
		return []command{g.cmd(tb, domain.RoomStream(r.id), actor, ev)}
	case roll < 19:
		r := g.rooms[g.rng.IntN(len(g.rooms))]
		if len(r.members) < 2 {
			return nil
		}
		i := g.rng.IntN(len(r.members))
		u := r.members[i]
		r.members = append(r.members[:i], r.members[i+1:]...)
		return []command{g.cmd(tb, domain.RoomStream(r.id), u, domain.MemberLeft{RoomID: r.id, UserID: u})}
	case roll < 70:
		r := g.rooms[g.rng.IntN(len(g.rooms))]
		sender := r.members[g.rng.IntN(len(r.members))]
		var evs []domain.Event
		for range 1 + g.rng.IntN(3) {
			r.seq++
			g.messages++
			evs = append(evs, domain.MessagePosted{
				MessageID: fmt.Sprintf("msg-%s-%d", r.id, r.seq), RoomID: r.id, SenderID: sender,
				Content: fmt.Sprintf("vitals %d/%d & \"ok\" <%d>\n", 100+r.seq%40, 60+r.seq%30, r.seq),
				Seq:     r.seq, ClientMsgID: fmt.Sprintf("c-%d", g.rng.IntN(1_000_000)),
			})
		}
		return []command{g.cmd(tb, domain.RoomStream(r.id), sender, evs...)}
	case roll < 80:
		u := g.user()
		g.ids++
		sid := fmt.Sprintf("sess-%d-%d", g.seed, g.ids)
		start := domain.SessionStarted{SessionID: sid, UserID: u, Namespace: "/chat", Transport: "native", NodeID: "node-1"}
		var evs []domain.Event
		if len(g.sessions[u]) == 0 {
			evs = append(evs, domain.UserOnline{UserID: u})
		}
		g.sessions[u] = append(g.sessions[u], sid)
		return []command{g.cmd(tb, domain.PresenceStream(u), u, append(evs, start)...)}
	case roll < 90:
		u := g.user()
		open := g.sessions[u]
		if len(open) == 0 {
			return nil
		}
		i := g.rng.IntN(len(open))
		sid := open[i]
		g.sessions[u] = append(open[:i], open[i+1:]...)
		evs := []domain.Event{domain.SessionEnded{SessionID: sid, UserID: u, Reason: "client gone"}}
		if len(g.sessions[u]) == 0 {
			evs = append(evs, domain.UserOffline{UserID: u})
		}
		return []command{g.cmd(tb, domain.PresenceStream(u), u, evs...)}
	case roll < 96:
		r := g.rooms[g.rng.IntN(len(g.rooms))]
		u := r.members[0]
		return []command{g.cmd(tb, domain.TypingStream(r.id), u, domain.TypingStarted{RoomID: r.id, UserID: u}, domain.TypingStopped{RoomID: r.id, UserID: u})}
	default:
		r := g.rooms[g.rng.IntN(len(g.rooms))]
		u := r.members[0]
		return []command{g.cmd(tb, domain.AccessStream(u), u, domain.HistoryViewed{RoomID: r.id, UserID: u, ToSeq: r.seq, Count: int(r.seq), Via: "history:fetch"})}
	}
}

// commands returns commands holding at least n events in all.
func (g *generator) commands(tb testing.TB, n int) []command {
	var out []command
	for count := 0; count < n; {
		for _, c := range g.next(tb) {
			out = append(out, c)
			count += len(c.events)
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// appendAll appends cmds with a few concurrent writers (so a group-committing
// store batches their syncs), keeping each stream's commands in order by
// giving every stream to one writer. It returns the head afterwards.
func appendAll(tb testing.TB, store eventstore.Store, cmds []command) eventstore.Position {
	tb.Helper()
	const writers = 8
	var queues [writers][]command
	for _, c := range cmds {
		h := fnv.New32a()
		_, _ = h.Write([]byte(c.stream))
		queues[h.Sum32()%writers] = append(queues[h.Sum32()%writers], c)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for _, q := range queues {
		wg.Go(func() {
			for _, c := range q {
				if _, err := store.Append(ctx, c.stream, eventstore.AnyVersion, c.events); err != nil {
					errs <- fmt.Errorf("append to %s: %w", c.stream, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	head, err := store.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return head
}

// counter is a test projection that counts the events it folds, so any
// event applied twice or missed shows in its count. It can be told to fail
// (or panic) at a position a number of times.
type counter struct {
	name    string
	version int
	types   []string

	mu       sync.Mutex
	pos      eventstore.Position
	n        uint64
	failAt   eventstore.Position
	failures int // how many more times to fail at failAt; < 0: always
	panicAt  eventstore.Position
	attempts int // Apply calls that reached failAt or panicAt
}

var errInjected = errors.New("injected failure")

func newCounter(name string) *counter { return &counter{name: name, version: 1} }

func (c *counter) Name() string         { return c.name }
func (c *counter) Version() int         { return c.version }
func (c *counter) EventTypes() []string { return c.types }

func (c *counter) Position() eventstore.Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos
}

func (c *counter) count() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *counter) attemptCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts
}

func (c *counter) Apply(_ context.Context, batch []projections.Applied) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range batch {
		if a.Position <= c.pos {
			return fmt.Errorf("counter %s: got position %d at or below %d: applied twice", c.name, a.Position, c.pos)
		}
		if a.Position == c.panicAt {
			c.attempts++
			panic("injected panic")
		}
		if a.Position == c.failAt && c.failures != 0 {
			c.attempts++
			c.failures--
			return errInjected
		}
		c.pos = a.Position
		c.n++
	}
	return nil
}

type counterSnap struct {
	Pos eventstore.Position `json:"pos"`
	N   uint64              `json:"n"`
}

func (c *counter) MarshalSnapshot() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return json.Marshal(counterSnap{c.pos, c.n})
}

func (c *counter) UnmarshalSnapshot(b []byte) error {
	var s counterSnap
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pos, c.n = s.Pos, s.N
	return nil
}

func (c *counter) New() projections.Projection {
	return &counter{name: c.name, version: c.version, types: c.types}
}

func (c *counter) Adopt(other projections.Projection) error {
	o := other.(*counter)
	o.mu.Lock()
	pos, n := o.pos, o.n
	o.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pos, c.n = pos, n
	c.failAt, c.failures, c.panicAt = 0, 0, 0
	return nil
}

// started runs r in the background and returns a stop function that
// cancels it and reports Run's error.
func started(tb testing.TB, r *projections.Runner) (stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	tb.Cleanup(func() { _ = stop() })
	return stop
}

func mustRunner(tb testing.TB, cfg projections.Config, projs ...projections.Projection) *projections.Runner {
	tb.Helper()
	r, err := projections.NewRunner(context.Background(), cfg, projs...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

func waitFor(tb testing.TB, r *projections.Runner, pos eventstore.Position, names ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, pos, names...); err != nil {
		tb.Fatalf("wait for position %d: %v", pos, err)
	}
}

func dbPath(tb testing.TB) string { return filepath.Join(tb.TempDir(), "projections.db") }

func statusOf(tb testing.TB, r *projections.Runner, name string) projections.Status {
	tb.Helper()
	sts, err := r.Status(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range sts {
		if s.Name == name {
			return s
		}
	}
	tb.Fatalf("no status for %q", name)
	return projections.Status{}
}

// eventually polls cond (for state that has no notification of its own).
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
