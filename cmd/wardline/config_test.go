package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestServeConfiguration(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name: "defaults are the design's",
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:8080" || c.DataDir != "./data" || c.Store != "embedded" || c.AllowQueryToken ||
					c.ShutdownTimeout != 10*time.Second || c.RateLimit != 100 || c.RateBurst != 200 ||
					c.MaxContentBytes != 16<<10 || c.MaxQueueMessages != 1024 || c.MaxQueueBytes != 4<<20 || !c.usingDevSecret() {
					t.Errorf("defaults: %+v", c)
				}
			},
		},
		{
			name: "environment variables set the configuration",
			env:  map[string]string{"WARDLINE_ADDR": "127.0.0.2:9000", "WARDLINE_DATA_DIR": "/tmp/x", "WARDLINE_ALLOW_QUERY_TOKEN": "true", "WARDLINE_JWT_SECRET": strings.Repeat("s", 32)},
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.2:9000" || c.DataDir != "/tmp/x" || !c.AllowQueryToken || c.usingDevSecret() {
					t.Errorf("from env: %+v", c)
				}
			},
		},
		{
			name: "flags win over the environment",
			args: []string{"--addr", "127.0.0.1:7000", "--allow-query-token=false"},
			env:  map[string]string{"WARDLINE_ADDR": "127.0.0.2:9000", "WARDLINE_ALLOW_QUERY_TOKEN": "true"},
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:7000" || c.AllowQueryToken {
					t.Errorf("flags over env: %+v", c)
				}
			},
		},
		{
			name: "the dev secret is not accepted once a public key is configured",
			args: []string{"--jwt-public-key", "/keys/pub.pem"},
			check: func(t *testing.T, c Config) {
				if c.verifierSecret() != nil {
					t.Errorf("dev secret still accepted with a public key configured")
				}
			},
		},
		{name: "a malformed boolean in the environment is an error", env: map[string]string{"WARDLINE_ALLOW_QUERY_TOKEN": "yes please"}, wantErr: "want true or false"},
		{name: "a malformed duration in the environment is an error", env: map[string]string{"WARDLINE_SHUTDOWN_TIMEOUT": "soon"}, wantErr: "WARDLINE_SHUTDOWN_TIMEOUT"},
		{name: "plain HTTP beyond loopback is refused", args: []string{"--addr", "10.1.2.3:80"}, wantErr: "refusing plain HTTP"},
		{name: "plain HTTP on localhost is fine", args: []string{"--addr", "localhost:8080"}},
		{name: "plain HTTP on IPv6 loopback is fine", args: []string{"--addr", "[::1]:8080"}},
		{name: "TLS allows any address", args: []string{"--addr", "0.0.0.0:443", "--tls-cert", "c.pem", "--tls-key", "k.pem"}},
		{name: "a certificate without a key is refused", args: []string{"--tls-cert", "c.pem"}, wantErr: "go together"},
		{name: "a zero rate limit is refused", args: []string{"--rate-limit", "0"}, wantErr: "must be positive"},
		{name: "pprof only on loopback", args: []string{"--debug-addr", "0.0.0.0:6060"}, wantErr: "loopback"},
		{name: "stray arguments are refused", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			c, err := parseServe(tt.args, getenv, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestStoreURLsSelectTheirBackendAndHidePasswords(t *testing.T) {
	tests := []struct {
		in   string
		want storeKind
	}{
		{"embedded", storeEmbedded}, {"", storeEmbedded},
		{"postgres://u:p@h/db", storePostgres}, {"postgresql://h/db", storePostgres},
		{"esdb://h:2113", storeESDB}, {"kurrentdb://h:2113", storeESDB}, {"esdb+discover://h", storeESDB},
	}
	for _, tt := range tests {
		if got, err := parseStoreKind(tt.in); err != nil || got != tt.want {
			t.Errorf("parseStoreKind(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseStoreKind("mysql://u:secret@h/db"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("unknown scheme: err %v (must be an error without the password)", err)
	}
	if got := redact("postgres://u:secret@h/db"); got != "postgres://u:***@h/db" {
		t.Errorf("redact = %q", got)
	}
}
