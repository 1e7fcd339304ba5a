// Package auth decides who is on the other end of a connection: it verifies
// the JWTs clients and services present, mints development tokens for
// `wardline token`, and issues and checks the signed session cookies that
// let a browser authenticate a WebSocket without putting a token in a URL.
//
// The package only decides; it writes no events and knows no sockets. The
// transports call [Verifier.Verify] (or [Authenticator.Authenticate]) at a
// handshake, turn the returned [Claims] into a domain.Actor, and turn an
// [*Error] into a CONNECT_ERROR, close 4401, or HTTP 401 with the
// ack-envelope error object.
//
// Verification rules (DESIGN.md "Authentication", "Sessions and tokens"):
//   - the algorithm must be on the allow-list, never "none", and must fit the
//     key it is checked with: HS* only ever uses the shared secret, RS*/PS*
//     only RSA public keys, ES256/384/512 only ECDSA keys on the matching
//     curve, EdDSA only Ed25519 keys. A public key can therefore never be
//     used as an HMAC secret (the classic algorithm-confusion attack);
//   - a token's `kid` is looked up only in the configured keys (PEM files
//     and the JWKS); it is never fetched from a URL the token names;
//   - `exp` and `sub` are required; `nbf` is honoured when present; leeway
//     is 5 s by default; `iss`, `aud` and the `typ` header are checked only
//     when configured;
//   - `roles` is a JSON array of strings, or a single string standing for a
//     one-element list (some identity providers collapse one-element lists);
//     absent means no roles; any other shape makes the token malformed.
//     Unknown role names are kept, as domain.Role says, and grant nothing.
package auth
