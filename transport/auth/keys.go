package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Key is a public key tokens may be verified with.
type Key struct {
	// ID is the `kid` tokens name this key by; empty for a key that has
	// none (a PEM file without a kid header).
	ID string
	// Algorithm, when set, is the only alg this key verifies (a JWK's `alg`).
	Algorithm string
	// Public is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey
}

// minRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const minRSABits = 2048

// minSecretLen is the shortest HMAC secret accepted: RFC 7518 §3.2 asks for
// a key at least as long as the hash output.
const minSecretLen = 32

// checkPublicKey refuses key types and sizes this package will not use.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key shorter than %d bits", minRSABits)
		}
	case *ecdsa.PublicKey:
		if ecdsaAlg(k) == "" {
			return errors.New("ECDSA key on an unsupported curve (want P-256, P-384 or P-521)")
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return errors.New("Ed25519 key of wrong length")
		}
	default:
		return fmt.Errorf("unsupported public key type %T", pub)
	}
	return nil
}

func ecdsaAlg(k *ecdsa.PublicKey) string {
	switch k.Curve {
	case elliptic.P256():
		return "ES256"
	case elliptic.P384():
		return "ES384"
	case elliptic.P521():
		return "ES512"
	}
	return ""
}

// keyFits reports whether a token signed with alg may be checked with pub.
// It is the whole defence against algorithm confusion, so it is strict:
// each family accepts exactly one key type, and HMAC accepts no public key.
func keyFits(alg string, pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		return alg == ecdsaAlg(k)
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// defaultAlg is the algorithm allowed by default for a key of pub's type.
func defaultAlg(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RS256"
	case *ecdsa.PublicKey:
		return ecdsaAlg(k)
	case ed25519.PublicKey:
		return "EdDSA"
	}
	return ""
}

func isHMAC(alg string) bool { return alg == "HS256" || alg == "HS384" || alg == "HS512" }

// knownAlgs are the algorithms an allow-list may name. "none" is absent on
// purpose.
var knownAlgs = map[string]bool{
	"HS256": true, "HS384": true, "HS512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// ParsePublicKeysPEM reads every public key in data: PKIX "PUBLIC KEY",
// PKCS#1 "RSA PUBLIC KEY" and "CERTIFICATE" blocks. A block header
// `kid: NAME` sets the key's ID. Private keys are refused, so a misplaced
// private key file fails loudly instead of being published by accident.
func ParsePublicKeysPEM(data []byte) ([]Key, error) {
	var keys []Key
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var (
			pub crypto.PublicKey
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("auth: PEM block %d is a private key; configure the public key instead", n)
			}
			return nil, fmt.Errorf("auth: PEM block %d: unsupported type %q", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: PEM block %d (%s): %w", n, block.Type, err)
		}
		if err := checkPublicKey(pub); err != nil {
			return nil, fmt.Errorf("auth: PEM block %d: %w", n, err)
		}
		keys = append(keys, Key{ID: pemHeader(block, "kid"), Public: pub})
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: no PEM public key found")
	}
	return keys, nil
}

func pemHeader(b *pem.Block, name string) string {
	for k, v := range b.Headers {
		if strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadPublicKeysPEM reads ParsePublicKeysPEM's input from a file.
func LoadPublicKeysPEM(path string) ([]Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read public key file: %w", err)
	}
	keys, err := ParsePublicKeysPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return keys, nil
}

// ParsePrivateKeyPEM reads the first private key in data (PKCS#8, PKCS#1
// RSA or SEC 1 EC), for minting tokens with an asymmetric algorithm.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("auth: no PEM private key found")
		}
		var (
			k   any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("auth: parse %s: %w", block.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("auth: unsupported private key type %T", k)
		}
		if err := checkPublicKey(s.Public()); err != nil {
			return nil, fmt.Errorf("auth: private key: %w", err)
		}
		return s, nil
	}
}
