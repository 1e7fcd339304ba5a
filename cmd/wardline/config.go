package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// DevJWTSecret is the secret `serve` and `token` use when none is configured.
// It is public (it is in this source file), so serve warns loudly about it.
const DevJWTSecret = "wardline-dev-secret-do-not-use-in-production"

// Config is everything `wardline serve` can be told. Flags win over
// WARDLINE_* environment variables, which win over defaults.
type Config struct {
	Addr             string
	DataDir          string
	Store            string
	JWTSecret        string
	JWTPublicKey     string
	JWKSURL          string
	JWTIssuer        string
	JWTAudience      string
	SessionSecret    string
	AllowedOrigins   string
	AllowQueryToken  bool
	TLSCert          string
	TLSKey           string
	NodeID           string
	ShutdownTimeout  time.Duration
	ReadyMaxLag      uint64
	SnapshotInterval time.Duration
	DebugAddr        string
	RateLimit        float64
	RateBurst        int
	MaxContentBytes  int
	MaxQueueMessages int
	MaxQueueBytes    int
	CoalesceWindow   time.Duration
	CommitInterval   time.Duration
}

// usingDevSecret reports whether no JWT key material was configured.
func (c Config) usingDevSecret() bool {
	return c.JWTSecret == DevJWTSecret && c.JWTPublicKey == "" && c.JWKSURL == ""
}

// verifierSecret is the HMAC secret tokens are verified with. The public dev
// secret is never accepted once real keys are configured: otherwise anyone
// could mint tokens for a server that its operator believes checks RS256.
func (c Config) verifierSecret() []byte {
	if c.JWTSecret == DevJWTSecret && (c.JWTPublicKey != "" || c.JWKSURL != "") {
		return nil
	}
	return []byte(c.JWTSecret)
}

// env is the environment the command reads; injected so tests need not touch os.
type env func(string) (string, bool)

// stringVar registers a string flag whose default comes from the environment.
func stringVar(fs *flag.FlagSet, getenv env, p *string, name, envName, def, usage string) {
	if v, ok := getenv(envName); ok && v != "" {
		def = v
	}
	fs.StringVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, envName))
}

func boolVar(fs *flag.FlagSet, getenv env, p *bool, name, envName string, def bool, usage string) error {
	if v, ok := getenv(envName); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s=%q: want true or false", envName, v)
		}
		def = b
	}
	fs.BoolVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, envName))
	return nil
}

func durationVar(fs *flag.FlagSet, getenv env, p *time.Duration, name, envName string, def time.Duration, usage string) error {
	if v, ok := getenv(envName); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s=%q: %w", envName, v, err)
		}
		def = d
	}
	fs.DurationVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, envName))
	return nil
}

// storeFlags registers the flags every subcommand that opens the store shares.
func storeFlags(fs *flag.FlagSet, getenv env, c *Config) {
	stringVar(fs, getenv, &c.DataDir, "data", "WARDLINE_DATA_DIR", "./data", "data directory of the embedded store and the projections")
	stringVar(fs, getenv, &c.Store, "store", "WARDLINE_STORE", "embedded", "event store: embedded, postgres://…, esdb://… or kurrentdb://…")
}

// jwtFlags registers the flags that configure token verification and minting.
func jwtFlags(fs *flag.FlagSet, getenv env, c *Config) {
	stringVar(fs, getenv, &c.JWTSecret, "jwt-secret", "WARDLINE_JWT_SECRET", DevJWTSecret, "HMAC secret for HS256 tokens (default: a public dev secret, with a warning)")
	stringVar(fs, getenv, &c.JWTPublicKey, "jwt-public-key", "WARDLINE_JWT_PUBLIC_KEY", "", "PEM file(s) of RS256/ES256/EdDSA public keys, comma-separated")
	stringVar(fs, getenv, &c.JWKSURL, "jwks-url", "WARDLINE_JWKS_URL", "", "JWKS URL to fetch verification keys from")
	stringVar(fs, getenv, &c.JWTIssuer, "jwt-issuer", "WARDLINE_JWT_ISSUER", "", "required iss claim (not checked when empty)")
	stringVar(fs, getenv, &c.JWTAudience, "jwt-audience", "WARDLINE_JWT_AUDIENCE", "", "required aud claim (not checked when empty)")
}

// parseServe reads serve's configuration from args and the environment.
func parseServe(args []string, getenv env, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("wardline serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stringVar(fs, getenv, &c.Addr, "addr", "WARDLINE_ADDR", "127.0.0.1:8080", "listen address")
	storeFlags(fs, getenv, &c)
	jwtFlags(fs, getenv, &c)
	stringVar(fs, getenv, &c.SessionSecret, "session-secret", "WARDLINE_SESSION_SECRET", "", "key for session cookies and Socket.IO resume ids, shared by every node (default: the JWT secret)")
	stringVar(fs, getenv, &c.AllowedOrigins, "allowed-origins", "WARDLINE_ALLOWED_ORIGINS", "", "comma-separated browser origins allowed besides the server's own")
	stringVar(fs, getenv, &c.TLSCert, "tls-cert", "WARDLINE_TLS_CERT", "", "TLS certificate file (PEM)")
	stringVar(fs, getenv, &c.TLSKey, "tls-key", "WARDLINE_TLS_KEY", "", "TLS key file (PEM)")
	host, _ := os.Hostname()
	stringVar(fs, getenv, &c.NodeID, "node-id", "WARDLINE_NODE_ID", host, "this node's id in event metadata and leases")
	if err := boolVar(fs, getenv, &c.AllowQueryToken, "allow-query-token", "WARDLINE_ALLOW_QUERY_TOKEN", false, "accept ?token= on handshakes (tokens end up in access logs)"); err != nil {
		return c, err
	}
	if err := durationVar(fs, getenv, &c.ShutdownTimeout, "shutdown-timeout", "WARDLINE_SHUTDOWN_TIMEOUT", 10*time.Second, "how long SIGTERM waits for connections and the store to close"); err != nil {
		return c, err
	}
	if err := durationVar(fs, getenv, &c.SnapshotInterval, "snapshot-interval", "WARDLINE_SNAPSHOT_INTERVAL", 5*time.Second, "how often projections persist their read models and checkpoints"); err != nil {
		return c, err
	}
	fs.Uint64Var(&c.ReadyMaxLag, "ready-max-lag", 1000, "readyz fails while a projection is more than this many events behind")
	stringVar(fs, getenv, &c.DebugAddr, "debug-addr", "WARDLINE_DEBUG_ADDR", "", "loopback address for /debug/pprof (off when empty)")
	fs.Float64Var(&c.RateLimit, "rate-limit", 100, "events per second each connection may send")
	fs.IntVar(&c.RateBurst, "rate-burst", 200, "events a connection may send in a burst")
	fs.IntVar(&c.MaxContentBytes, "max-content-bytes", 16<<10, "largest message content, in bytes of UTF-8 (too_large above)")
	fs.IntVar(&c.MaxQueueMessages, "max-queue-messages", 1024, "frames queued for one connection before it is closed as a slow consumer (1013)")
	fs.IntVar(&c.MaxQueueBytes, "max-queue-bytes", 4<<20, "bytes queued for one connection before it is closed as a slow consumer (1013)")
	fs.DurationVar(&c.CommitInterval, "commit-interval", 5*time.Millisecond, "embedded store: a commit begins no sooner than this after the previous one began, so appends arriving meanwhile share its fsyncs; paced only while pauses gather other appends (0: off)")
	fs.DurationVar(&c.CoalesceWindow, "coalesce-window", 20*time.Millisecond, "W: a push to a WebSocket connection (native or Socket.IO) written less than 2W ago waits for a second push and W since the last write, or 1.5W at most, to share one write (0: every push written at once; replies never wait)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	if c.RateLimit <= 0 || c.RateBurst <= 0 || c.MaxContentBytes <= 0 || c.MaxQueueMessages <= 0 || c.MaxQueueBytes <= 0 {
		return c, fmt.Errorf("serve: --rate-limit, --rate-burst, --max-content-bytes and --max-queue-* must be positive")
	}
	if c.DebugAddr != "" {
		if err := (Config{Addr: c.DebugAddr}).checkAddr(); err != nil {
			return c, fmt.Errorf("serve: --debug-addr must be a loopback address: %q", c.DebugAddr)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, fmt.Errorf("serve: --tls-cert and --tls-key go together")
	}
	return c, c.checkAddr()
}

// checkAddr refuses plain HTTP on anything but loopback: tokens and PHI
// would cross the network in clear text.
func (c Config) checkAddr() error {
	if c.TLSCert != "" {
		return nil
	}
	host := c.Addr
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	host = strings.Trim(host, "[]")
	switch {
	case host == "localhost", host == "::1", strings.HasPrefix(host, "127."):
		return nil
	}
	return fmt.Errorf("serve: refusing plain HTTP on %q: set --tls-cert/--tls-key, or listen on loopback behind a TLS-terminating proxy", c.Addr)
}
