package auth_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
)

func TestMintedTokensVerify(t *testing.T) {
	k := keys()
	tests := []struct {
		name   string
		minter auth.MinterConfig
		verify auth.Config
	}{
		{"an HS256 token minted with the secret verifies with the secret",
			auth.MinterConfig{Secret: secret}, hsConfig()},
		{"an ES256 token minted with a private key verifies by its kid",
			auth.MinterConfig{PrivateKey: k.ec, KeyID: "ec-1"}, asymConfig()},
		{"an EdDSA token minted with a private key verifies by its kid",
			auth.MinterConfig{PrivateKey: k.ed, KeyID: "ed-1"}, asymConfig()},
		{"an RS256 token with issuer and audience verifies where both are checked",
			auth.MinterConfig{PrivateKey: k.rsa, KeyID: "rsa-1", Issuer: "wardline-dev", Audience: "wardline"},
			with(asymConfig(), func(c *auth.Config) { c.Issuer = "wardline-dev"; c.Audience = "wardline" })()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.minter.Now = fixedNow
			m, err := auth.NewMinter(tt.minter)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := m.Mint(auth.Claims{Subject: "dr-house", Roles: []domain.Role{domain.RolePhysician}}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			c, err := mustVerifier(t, tt.verify).Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != "dr-house" || !slices.Equal(c.Roles, []domain.Role{domain.RolePhysician}) ||
				!c.ExpiresAt.Equal(t0.Add(time.Hour)) || c.ID == "" {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

func TestMinterRefusesBadInput(t *testing.T) {
	k := keys()
	for _, tt := range []struct {
		name string
		cfg  auth.MinterConfig
		want string
	}{
		{"no key at all", auth.MinterConfig{}, "no secret"},
		{"a short secret", auth.MinterConfig{Secret: []byte("x")}, "at least 32"},
		{"an asymmetric algorithm with a secret", auth.MinterConfig{Secret: secret, Algorithm: "RS256"}, "cannot sign"},
		{"an algorithm that does not fit the private key", auth.MinterConfig{PrivateKey: k.ec, Algorithm: "RS256"}, "does not fit"},
	} {
		t.Run("a minter with "+tt.name+" is refused", func(t *testing.T) {
			if _, err := auth.NewMinter(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	m, err := auth.NewMinter(auth.MinterConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mint(auth.Claims{}, time.Hour); err == nil {
		t.Error("a token without subject was minted")
	}
	if _, err := m.Mint(auth.Claims{Subject: "u"}, 0); err == nil {
		t.Error("a token with zero ttl was minted")
	}
}
