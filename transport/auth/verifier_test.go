package auth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
)

func fixedNow() time.Time { return t0 }

func hsConfig() auth.Config { return auth.Config{Secret: secret, Now: fixedNow} }

func keyedConfig() auth.Config {
	k := keys()
	return auth.Config{
		Secret: secret,
		PublicKeys: []auth.Key{
			{ID: "rsa-1", Public: &k.rsa.PublicKey},
			{ID: "ec-1", Public: &k.ec.PublicKey},
			{ID: "ed-1", Public: k.ed.Public()},
		},
		Now: fixedNow,
	}
}

func asymConfig() auth.Config {
	c := keyedConfig()
	c.Secret = nil
	return c
}

func with(c auth.Config, mut func(*auth.Config)) func() auth.Config {
	return func() auth.Config { mut(&c); return c }
}

func mustVerifier(tb testing.TB, cfg auth.Config) *auth.Verifier {
	tb.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	tb.Cleanup(func() { _ = v.Close() })
	return v
}

func TestVerify(t *testing.T) {
	k := keys()
	hs := func(mut ...func(jwt.MapClaims)) func(testing.TB) string {
		return func(tb testing.TB) string {
			return sign(tb, jwt.SigningMethodHS256, secret, nil, claimsAt(t0, mut...))
		}
	}
	rsaPEM := pemPublic(t, &k.rsa.PublicKey, nil)

	tests := []struct {
		name  string
		cfg   func() auth.Config
		token func(testing.TB) string
		want  auth.Reason // 0: accepted
		check func(*testing.T, auth.Claims)
	}{
		{
			name: "a valid HS256 token is accepted with its claims", cfg: hsConfig, token: hs(),
			check: func(t *testing.T, c auth.Claims) {
				if c.Subject != "u-1" || c.ID != "tok-1" || !c.ExpiresAt.Equal(t0.Add(time.Hour)) || !c.IssuedAt.Equal(t0) {
					t.Errorf("claims = %+v", c)
				}
				if !slices.Equal(c.Roles, []domain.Role{domain.RoleNurse, domain.RoleStaff}) {
					t.Errorf("roles = %v", c.Roles)
				}
			},
		},
		{
			name: "a valid RS256 token is accepted by its kid", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "rsa-1"}, claimsAt(t0))
			},
			check: func(t *testing.T, c auth.Claims) {
				if c.KeyID != "rsa-1" {
					t.Errorf("KeyID = %q", c.KeyID)
				}
			},
		},
		{
			name: "a valid ES256 token is accepted by its kid", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "ec-1"}, claimsAt(t0))
			},
		},
		{
			name: "a valid EdDSA token is accepted by its kid", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "ed-1"}, claimsAt(t0))
			},
		},
		{
			name: "a token without kid is checked against every key of its type", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodES256, k.ec, nil, claimsAt(t0))
			},
		},
		{
			name: "a kid-less PEM key checks tokens whatever kid they carry",
			cfg: with(asymConfig(), func(c *auth.Config) {
				c.PublicKeys = []auth.Key{{Public: &k.rsa.PublicKey}}
			}),
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "idp-2025"}, claimsAt(t0))
			},
		},
		{
			name: "alg none is refused even unsigned", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, claimsAt(t0))
			},
			want: auth.ReasonAlgorithm,
		},
		{
			name: "alg none is refused with a forged signature segment", cfg: hsConfig,
			token: func(tb testing.TB) string {
				s := sign(tb, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, claimsAt(t0))
				return s + "c2ln"
			},
			want: auth.ReasonAlgorithm,
		},
		{
			name: "an HS256 token keyed with the RSA public key is refused when a secret is configured", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodHS256, rsaPEM, map[string]any{"kid": "rsa-1"}, claimsAt(t0))
			},
			want: auth.ReasonSignature,
		},
		{
			name: "an HS256 token keyed with the RSA public key is refused when only public keys are configured", cfg: asymConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodHS256, rsaPEM, map[string]any{"kid": "rsa-1"}, claimsAt(t0))
			},
			want: auth.ReasonAlgorithm,
		},
		{
			name: "an ES256 token naming an RSA key's kid is refused", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "rsa-1"}, claimsAt(t0))
			},
			want: auth.ReasonAlgorithm,
		},
		{
			name: "an ES384 token is refused when only a P-256 key is configured",
			cfg: with(asymConfig(), func(c *auth.Config) {
				c.Algorithms = []string{"ES256", "ES384"}
				c.PublicKeys = []auth.Key{{ID: "ec-1", Public: &k.ec.PublicKey}}
			}),
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodES384, k.ec384, map[string]any{"kid": "ec-1"}, claimsAt(t0))
			},
			want: auth.ReasonAlgorithm,
		},
		{
			name: "an algorithm outside the allow-list is refused", cfg: hsConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodHS384, secret, nil, claimsAt(t0))
			},
			want: auth.ReasonAlgorithm,
		},
		{
			name: "an RS256 token is refused when the allow-list names only EdDSA",
			cfg:  with(keyedConfig(), func(c *auth.Config) { c.Algorithms = []string{"EdDSA"} }),
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "rsa-1"}, claimsAt(t0))
			},
			want: auth.ReasonAlgorithm,
		},
		{
			name: "an unknown alg name is refused",
			cfg:  hsConfig,
			token: func(tb testing.TB) string {
				s := hs()(tb)
				return replaceHeader(tb, s, `{"alg":"XS999","typ":"JWT"}`)
			},
			want: auth.ReasonAlgorithm,
		},
		{name: "a token expired beyond the leeway is refused", cfg: hsConfig, token: hs(set("exp", t0.Add(-6*time.Second).Unix())), want: auth.ReasonExpired},
		{name: "a token expired within the leeway is accepted", cfg: hsConfig, token: hs(set("exp", t0.Add(-4*time.Second).Unix()))},
		{name: "a token valid only from beyond the leeway is refused", cfg: hsConfig, token: hs(set("nbf", t0.Add(6*time.Second).Unix())), want: auth.ReasonNotYetValid},
		{name: "a token valid from within the leeway is accepted", cfg: hsConfig, token: hs(set("nbf", t0.Add(4*time.Second).Unix()))},
		{name: "a token without exp is refused", cfg: hsConfig, token: hs(del("exp")), want: auth.ReasonMissingExpiry},
		{name: "a token without sub is refused", cfg: hsConfig, token: hs(del("sub")), want: auth.ReasonMissingSubject},
		{name: "a token with an empty sub is refused", cfg: hsConfig, token: hs(set("sub", "")), want: auth.ReasonMissingSubject},
		{
			name:  "a token from another issuer is refused when the issuer is configured",
			cfg:   with(hsConfig(), func(c *auth.Config) { c.Issuer = "https://idp.example" }),
			token: hs(set("iss", "https://evil.example")), want: auth.ReasonIssuer,
		},
		{
			name:  "a token without iss is refused when the issuer is configured",
			cfg:   with(hsConfig(), func(c *auth.Config) { c.Issuer = "https://idp.example" }),
			token: hs(), want: auth.ReasonIssuer,
		},
		{
			name:  "a token from the configured issuer is accepted",
			cfg:   with(hsConfig(), func(c *auth.Config) { c.Issuer = "https://idp.example" }),
			token: hs(set("iss", "https://idp.example")),
		},
		{name: "any issuer is accepted when none is configured", cfg: hsConfig, token: hs(set("iss", "https://anyone.example"))},
		{
			name:  "a token for another audience is refused when the audience is configured",
			cfg:   with(hsConfig(), func(c *auth.Config) { c.Audience = "wardline" }),
			token: hs(set("aud", []string{"pharmacy"})), want: auth.ReasonAudience,
		},
		{
			name:  "a token listing the configured audience among others is accepted",
			cfg:   with(hsConfig(), func(c *auth.Config) { c.Audience = "wardline" }),
			token: hs(set("aud", []string{"pharmacy", "wardline"})),
		},
		{
			name:  "a single-string aud equal to the configured audience is accepted",
			cfg:   with(hsConfig(), func(c *auth.Config) { c.Audience = "wardline" }),
			token: hs(set("aud", "wardline")),
		},
		{
			name:  "a token without aud is refused when the audience is configured",
			cfg:   with(hsConfig(), func(c *auth.Config) { c.Audience = "wardline" }),
			token: hs(), want: auth.ReasonAudience,
		},
		{name: "any audience is accepted when none is configured", cfg: hsConfig, token: hs(set("aud", "pharmacy"))},
		{
			name: "a token with the wrong typ is refused when typ is configured",
			cfg:  with(hsConfig(), func(c *auth.Config) { c.Type = "at+jwt" }),
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodHS256, secret, map[string]any{"typ": "JWT"}, claimsAt(t0))
			},
			want: auth.ReasonType,
		},
		{
			name: "a token without typ is refused when typ is configured",
			cfg:  with(hsConfig(), func(c *auth.Config) { c.Type = "at+jwt" }),
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodHS256, secret, map[string]any{"typ": nil}, claimsAt(t0))
			},
			want: auth.ReasonType,
		},
		{
			name: "typ is compared case-insensitively with application/ optional",
			cfg:  with(hsConfig(), func(c *auth.Config) { c.Type = "at+jwt" }),
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodHS256, secret, map[string]any{"typ": "application/AT+JWT"}, claimsAt(t0))
			},
		},
		{
			name: "typ is ignored when not configured", cfg: hsConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodHS256, secret, map[string]any{"typ": "something-else"}, claimsAt(t0))
			},
		},
		{
			name: "a token naming an unknown kid is refused", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "rsa-9"}, claimsAt(t0))
			},
			want: auth.ReasonUnknownKey,
		},
		{
			name: "a token signed by another key under a known kid is refused", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodRS256, k.rsaOther, map[string]any{"kid": "rsa-1"}, claimsAt(t0))
			},
			want: auth.ReasonSignature,
		},
		{
			name: "an Ed25519 token signed by a stranger is refused", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodEdDSA, k.edOther, nil, claimsAt(t0))
			},
			want: auth.ReasonSignature,
		},
		{
			name: "an HS256 token signed with another secret is refused", cfg: hsConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 40)), nil, claimsAt(t0))
			},
			want: auth.ReasonSignature,
		},
		{
			name: "a token whose payload was changed after signing is refused", cfg: hsConfig,
			token: func(tb testing.TB) string {
				parts := strings.Split(hs()(tb), ".")
				parts[1] = b64u([]byte(`{"sub":"admin","roles":["super_admin"],"exp":4102444800}`))
				return strings.Join(parts, ".")
			},
			want: auth.ReasonSignature,
		},
		{name: "an empty token is refused as no token", cfg: hsConfig, token: func(testing.TB) string { return "" }, want: auth.ReasonNoToken},
		{name: "garbage is refused as malformed", cfg: hsConfig, token: func(testing.TB) string { return "not a token" }, want: auth.ReasonMalformed},
		{name: "a token with two segments is refused as malformed", cfg: hsConfig, token: func(testing.TB) string { return "eyJhbGciOiJIUzI1NiJ9.e30" }, want: auth.ReasonMalformed},
		{name: "a token with a bad base64 header is refused as malformed", cfg: hsConfig, token: func(testing.TB) string { return "!!!.e30.sig" }, want: auth.ReasonMalformed},
		{
			name: "an oversized token is refused as malformed", cfg: hsConfig,
			token: func(testing.TB) string { return strings.Repeat("a", 17<<10) }, want: auth.ReasonMalformed,
		},
		{
			name: "a single-string roles claim is one role", cfg: hsConfig, token: hs(set("roles", "admin")),
			check: func(t *testing.T, c auth.Claims) {
				if !slices.Equal(c.Roles, []domain.Role{domain.RoleAdmin}) {
					t.Errorf("roles = %v", c.Roles)
				}
			},
		},
		{
			name: "a token without roles has none", cfg: hsConfig, token: hs(del("roles")),
			check: func(t *testing.T, c auth.Claims) {
				if len(c.Roles) != 0 {
					t.Errorf("roles = %v", c.Roles)
				}
			},
		},
		{
			name: "unknown and empty role names: unknown kept, empty dropped", cfg: hsConfig, token: hs(set("roles", []string{"", "janitor", "nurse"})),
			check: func(t *testing.T, c auth.Claims) {
				if !slices.Equal(c.Roles, []domain.Role{"janitor", domain.RoleNurse}) {
					t.Errorf("roles = %v", c.Roles)
				}
			},
		},
		{name: "a numeric roles claim is refused as malformed", cfg: hsConfig, token: hs(set("roles", 7)), want: auth.ReasonMalformed},
		{name: "a roles list holding a non-string is refused as malformed", cfg: hsConfig, token: hs(set("roles", []any{"nurse", 1})), want: auth.ReasonMalformed},
		{name: "a string exp is refused as malformed", cfg: hsConfig, token: hs(set("exp", "tomorrow")), want: auth.ReasonMalformed},
		{
			name: "a token with a crit header is refused", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodEdDSA, k.ed, map[string]any{"crit": []string{"exp"}}, claimsAt(t0))
			},
			want: auth.ReasonMalformed,
		},
		{
			name: "a non-string kid is refused as malformed", cfg: keyedConfig,
			token: func(tb testing.TB) string {
				return sign(tb, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": 5}, claimsAt(t0))
			},
			want: auth.ReasonMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustVerifier(t, tt.cfg())
			c, err := v.Verify(context.Background(), tt.token(t))
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			var ae *auth.Error
			if !errors.As(err, &ae) {
				t.Fatalf("Verify error = %v, want *auth.Error with reason %v", err, tt.want)
			}
			if ae.Reason != tt.want {
				t.Fatalf("reason = %v (%v), want %v", ae.Reason, err, tt.want)
			}
			if ae.Code() != "unauthorized" {
				t.Errorf("Code() = %q", ae.Code())
			}
			if !errors.Is(err, &auth.Error{Reason: tt.want}) {
				t.Errorf("errors.Is does not match reason %v", tt.want)
			}
			if c.Subject != "" {
				t.Errorf("refused token returned claims %+v", c)
			}
		})
	}
}

// replaceHeader swaps a token's header segment, keeping its signature.
func replaceHeader(tb testing.TB, tok, header string) string {
	tb.Helper()
	parts := strings.Split(tok, ".")
	parts[0] = b64u([]byte(header))
	return strings.Join(parts, ".")
}

func TestErrorMessagesDoNotLeakKeyMaterial(t *testing.T) {
	v := mustVerifier(t, hsConfig())
	forged := sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("k", 40)), nil, claimsAt(t0))
	_, err := v.Verify(context.Background(), forged)
	if err == nil {
		t.Fatal("forged token accepted")
	}
	for _, s := range []string{err.Error(), err.(*auth.Error).Message()} {
		if strings.Contains(s, string(secret)) || strings.Contains(s, forged) {
			t.Errorf("message %q leaks the secret or the token", s)
		}
	}
	if got := err.(*auth.Error).Message(); got != "invalid token signature" {
		t.Errorf("Message() = %q", got)
	}
}

func TestVerifyAcceptsTokensAsTheClockMoves(t *testing.T) {
	clk := newClock(t0)
	cfg := hsConfig()
	cfg.Now = clk.Now
	v := mustVerifier(t, cfg)
	tok := sign(t, jwt.SigningMethodHS256, secret, nil, claimsAt(t0, set("exp", t0.Add(time.Minute).Unix())))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	clk.Advance(time.Minute + auth.DefaultLeeway)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, &auth.Error{Reason: auth.ReasonExpired}) {
		t.Fatalf("at exp+leeway: err = %v, want expired", err)
	}
}

func TestDefaultAlgorithmsFollowTheConfiguredKeys(t *testing.T) {
	k := keys()
	tests := []struct {
		name string
		cfg  auth.Config
		want []string
	}{
		{"a secret alone allows HS256", auth.Config{Secret: secret}, []string{"HS256"}},
		{"each key type adds its natural algorithm", keyedConfig(), []string{"HS256", "RS256", "ES256", "EdDSA"}},
		{"a P-384 key adds ES384", auth.Config{PublicKeys: []auth.Key{{Public: &k.ec384.PublicKey}}}, []string{"ES384"}},
		{"a JWKS URL adds RS256, ES256 and EdDSA", auth.Config{JWKSURL: "https://idp.example/jwks"}, []string{"RS256", "ES256", "EdDSA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustVerifier(t, tt.cfg)
			if got := v.Algorithms(); !slices.Equal(got, tt.want) {
				t.Errorf("Algorithms() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	k := keys()
	tests := []struct {
		name    string
		cfg     auth.Config
		wantErr string
	}{
		{"a secret alone is valid", auth.Config{Secret: secret}, ""},
		{"nothing to verify with is invalid", auth.Config{}, "no secret"},
		{"a short secret is invalid", auth.Config{Secret: []byte("short")}, "at least 32"},
		{"alg none in the allow-list is invalid", auth.Config{Secret: secret, Algorithms: []string{"none"}}, `"none" is not supported`},
		{"an unknown algorithm is invalid", auth.Config{Secret: secret, Algorithms: []string{"HS1"}}, "not supported"},
		{"HS256 without a secret is invalid", auth.Config{PublicKeys: []auth.Key{{Public: k.ed.Public()}}, Algorithms: []string{"HS256"}}, "needs a secret"},
		{"RS256 without keys is invalid", auth.Config{Secret: secret, Algorithms: []string{"RS256"}}, "needs a public key"},
		{"a negative leeway is invalid", auth.Config{Secret: secret, Leeway: -time.Second}, "negative leeway"},
		{"a plain-HTTP JWKS URL off loopback is invalid", auth.Config{JWKSURL: "http://idp.example/jwks"}, "https"},
		{"a plain-HTTP JWKS URL on loopback is valid", auth.Config{JWKSURL: "http://127.0.0.1:9/jwks"}, ""},
		{"an HTTPS JWKS URL is valid", auth.Config{JWKSURL: "https://idp.example/.well-known/jwks.json"}, ""},
		{"a key whose algorithm does not fit it is invalid", auth.Config{PublicKeys: []auth.Key{{Public: &k.ec.PublicKey, Algorithm: "RS256"}}}, "does not fit"},
		{"a weak RSA key is invalid", auth.Config{PublicKeys: []auth.Key{{Public: &weakRSA(t).PublicKey}}}, "shorter than 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want error containing %q", err, tt.wantErr)
			}
			if _, nerr := auth.NewVerifier(tt.cfg); nerr == nil {
				t.Fatal("NewVerifier accepted an invalid config")
			}
		})
	}
}

func TestReasonStringsAreDistinct(t *testing.T) {
	seen := map[string]auth.Reason{}
	for r := auth.ReasonNoToken; r <= auth.ReasonUnavailable; r++ {
		s := r.String()
		if prev, ok := seen[s]; ok {
			t.Errorf("reasons %d and %d share text %q", prev, r, s)
		}
		seen[s] = r
	}
	if (&auth.Error{Reason: auth.ReasonUnavailable}).Code() != "unavailable" {
		t.Error("ReasonUnavailable should map to unavailable")
	}
}
