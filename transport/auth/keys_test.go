package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardline/wardline/transport/auth"
)

var weakRSAKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 1024) })

func weakRSA(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := weakRSAKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestParsePublicKeysPEM(t *testing.T) {
	k := keys()
	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: t0, NotAfter: t0.Add(time.Hour),
	}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"}}, k.ec.Public(), k.ec)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.ed)
	priv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})

	tests := []struct {
		name    string
		data    []byte
		wantIDs []string
		wantErr string
	}{
		{"several keys in one file are all read, with kid headers", append(append(
			pemPublic(t, &k.rsa.PublicKey, map[string]string{"kid": "rsa-1"}),
			pemPublic(t, &k.ec.PublicKey, map[string]string{"Kid": "ec-1"})...),
			pemPublic(t, k.ed.Public(), nil)...), []string{"rsa-1", "ec-1", ""}, ""},
		{"a certificate yields its public key", cert, []string{""}, ""},
		{"a PKCS#1 RSA public key is read", pkcs1, []string{""}, ""},
		{"a private key is refused", priv, nil, "private key"},
		{"a weak RSA key is refused", pemPublic(t, &weakRSA(t).PublicKey, nil), nil, "shorter than 2048"},
		{"a file with no PEM is refused", []byte("hello"), nil, "no PEM public key"},
		{"an unknown block type is refused", pem.EncodeToMemory(&pem.Block{Type: "FOO", Bytes: []byte{1}}), nil, "unsupported type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.ParsePublicKeysPEM(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.wantIDs) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.wantIDs))
			}
			for i, id := range tt.wantIDs {
				if got[i].ID != id {
					t.Errorf("key %d ID = %q, want %q", i, got[i].ID, id)
				}
			}
		})
	}
}

func TestPublicKeyFilesAreLoadedByNewVerifier(t *testing.T) {
	k := keys()
	path := writeFile(t, "keys.pem", append(
		pemPublic(t, &k.ec.PublicKey, map[string]string{"kid": "ec-1"}),
		pemPublic(t, k.ed.Public(), map[string]string{"kid": "ed-1"})...))
	v := mustVerifier(t, auth.Config{PublicKeyFiles: []string{path}, Now: fixedNow})
	for _, tc := range []struct {
		m   jwt.SigningMethod
		key any
		kid string
	}{{jwt.SigningMethodES256, k.ec, "ec-1"}, {jwt.SigningMethodEdDSA, k.ed, "ed-1"}} {
		tok := sign(t, tc.m, tc.key, map[string]any{"kid": tc.kid}, claimsAt(t0))
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s token: %v", tc.kid, err)
		}
	}
	if _, err := auth.NewVerifier(auth.Config{PublicKeyFiles: []string{path + ".missing"}}); err == nil {
		t.Error("a missing key file was accepted")
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	k := keys()
	der, _ := x509.MarshalPKCS8PrivateKey(k.ec)
	s, err := auth.ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	if !k.ec.PublicKey.Equal(s.Public()) {
		t.Error("parsed key differs")
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.rsa)})
	if _, err := auth.ParsePrivateKeyPEM(rsaPEM); err != nil {
		t.Errorf("PKCS#1: %v", err)
	}
	if _, err := auth.ParsePrivateKeyPEM(pemPublic(t, k.ed.Public(), nil)); err == nil {
		t.Error("a public key was accepted as a private key")
	}
}
