package auth

import (
	"encoding/json"
	"testing"
)

// FuzzParseJWKS: the JWK Set decoder never panics, and every key it keeps
// is one checkPublicKey accepts and fits its own alg.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseJWKS(data)
		if err != nil {
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
		for _, k := range keys {
			if err := checkPublicKey(k.Public); err != nil {
				t.Fatalf("kept an unusable key: %v", err)
			}
			if k.Algorithm != "" && !keyFits(k.Algorithm, k.Public) {
				t.Fatalf("kept key with alg %s not fitting %T", k.Algorithm, k.Public)
			}
		}
	})
}

// FuzzRoles: the roles claim decoder never panics and never yields an
// empty role name.
func FuzzRoles(f *testing.F) {
	for _, s := range []string{`"nurse"`, `["nurse","admin"]`, `null`, `[""]`, `7`, `[1]`, `{"a":1}`, ` "x" `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r roleList
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		for _, role := range r {
			if role == "" {
				t.Fatal("empty role kept")
			}
		}
	})
}
