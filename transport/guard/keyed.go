package guard

import (
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// KeyedConfig configures a KeyedLimiter.
type KeyedConfig struct {
	LimitConfig
	// IdleAfter is how long a key may go without events before its bucket
	// is dropped. Default 1 minute. It must be at least Burst/Rate (the
	// time to refill) and ResetAfter, so dropping a bucket never forgives
	// anything: a key that comes back finds the same full bucket and no
	// streak it would have found anyway.
	IdleAfter time.Duration
	// Shards is the number of independently locked maps; default 32.
	Shards int
}

// DefaultIdleAfter is KeyedConfig.IdleAfter's default.
const DefaultIdleAfter = time.Minute

func (c *KeyedConfig) setDefaults() {
	c.LimitConfig.setDefaults()
	if c.IdleAfter == 0 {
		c.IdleAfter = DefaultIdleAfter
	}
	if c.Shards == 0 {
		c.Shards = 32
	}
}

// Validate reports the first thing wrong with c, after defaults.
func (c KeyedConfig) Validate() error {
	c.setDefaults()
	return c.validate()
}

func (c *KeyedConfig) validate() error {
	if err := c.LimitConfig.validate(); err != nil {
		return err
	}
	refill := time.Duration(float64(c.Burst) / c.Rate * float64(time.Second))
	if c.IdleAfter < refill || c.IdleAfter < c.ResetAfter {
		return fmt.Errorf("guard: IdleAfter %v is shorter than the refill time %v or ResetAfter %v", c.IdleAfter, refill, c.ResetAfter)
	}
	if c.Shards < 1 || c.Shards > 1<<16 {
		return fmt.Errorf("guard: %d shards: want 1..65536", c.Shards)
	}
	return nil
}

// KeyedLimiter rate-limits by key (a user id) across all of that key's
// connections. It is safe for concurrent use and starts no goroutine:
// idle buckets are dropped by whichever Allow touches a shard at least
// IdleAfter after that shard's last sweep (each shard's cost is paid at
// most once per IdleAfter), or by the owner calling Sweep. Unlike Limiter,
// Disconnect is not final: it lasts while the key's refusal streak does,
// so a user whose connections were cut can come back after ResetAfter.
type KeyedLimiter struct {
	cfg    KeyedConfig
	seed   maphash.Seed
	shards []keyedShard
}

type keyedShard struct {
	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

// NewKeyedLimiter validates cfg.
func NewKeyedLimiter(cfg KeyedConfig) (*KeyedLimiter, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	k := &KeyedLimiter{cfg: cfg, seed: maphash.MakeSeed(), shards: make([]keyedShard, cfg.Shards)}
	for i := range k.shards {
		k.shards[i].buckets = make(map[string]*bucket)
	}
	return k, nil
}

// Allow takes a token from key's bucket for one event at now.
func (k *KeyedLimiter) Allow(key string, now time.Time) Verdict {
	s := &k.shards[maphash.String(k.seed, key)%uint64(len(k.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastSweep.IsZero() {
		s.lastSweep = now
	} else if now.Sub(s.lastSweep) >= k.cfg.IdleAfter {
		k.sweepShard(s, now)
	}
	b := s.buckets[key]
	if b == nil {
		b = &bucket{}
		s.buckets[key] = b
	}
	return b.allow(&k.cfg.LimitConfig, now)
}

// Sweep drops every bucket idle for IdleAfter at now and returns how many
// it dropped. Owners that want memory back sooner than traffic would
// sweep call it from their own loop.
func (k *KeyedLimiter) Sweep(now time.Time) int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += k.sweepShard(s, now)
		s.mu.Unlock()
	}
	return n
}

func (k *KeyedLimiter) sweepShard(s *keyedShard, now time.Time) int {
	n := 0
	for key, b := range s.buckets {
		if now.Sub(b.last) >= k.cfg.IdleAfter {
			delete(s.buckets, key)
			n++
		}
	}
	s.lastSweep = now
	return n
}

// Len is the number of keys with a bucket.
func (k *KeyedLimiter) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
