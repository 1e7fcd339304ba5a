package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
)

// runToken prints a JWT for development and for services' configuration.
func runToken(_ context.Context, args []string, stdio IO) error {
	var (
		c        Config
		sub      string
		roles    string
		ttl      time.Duration
		keyFile  string
		keyID    string
		tokenTyp string
	)
	fs := flag.NewFlagSet("wardline token", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	jwtFlags(fs, stdio.Getenv, &c)
	fs.StringVar(&sub, "sub", "", "user id (required)")
	fs.StringVar(&roles, "roles", "", "comma-separated roles: nurse, physician, staff, admin, super_admin, compliance_officer, service")
	fs.DurationVar(&ttl, "ttl", time.Hour, "lifetime")
	fs.StringVar(&keyFile, "private-key", "", "PEM private key to sign with (RS256/ES256/EdDSA) instead of the secret")
	fs.StringVar(&keyID, "kid", "", "key id for the kid header")
	fs.StringVar(&tokenTyp, "typ", "", "typ header (default JWT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if sub == "" {
		return usageError{"token: --sub is required"}
	}
	if err := domain.ValidateUserID(sub); err != nil {
		return fmt.Errorf("token: --sub: %w", err)
	}
	if ttl <= 0 {
		return usageError{"token: --ttl must be positive"}
	}
	mc := auth.MinterConfig{KeyID: keyID, Issuer: c.JWTIssuer, Audience: c.JWTAudience, Type: tokenTyp}
	if keyFile != "" {
		pem, err := os.ReadFile(keyFile)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		key, err := auth.ParsePrivateKeyPEM(pem)
		if err != nil {
			return fmt.Errorf("token: %s: %w", keyFile, err)
		}
		mc.PrivateKey = key
	} else {
		mc.Secret = []byte(c.JWTSecret)
		if c.usingDevSecret() {
			fmt.Fprintln(stdio.Stderr, "wardline: WARNING: signing with the public development secret; set WARDLINE_JWT_SECRET for anything real")
		}
	}
	m, err := auth.NewMinter(mc)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	claims := auth.Claims{Subject: sub}
	for _, r := range strings.Split(roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			claims.Roles = append(claims.Roles, domain.Role(r))
		}
	}
	tok, err := m.Mint(claims, ttl)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdio.Stdout, tok)
	return nil
}
