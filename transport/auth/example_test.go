package auth_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wardline/wardline/domain"
	"github.com/wardline/wardline/transport/auth"
)

// What `wardline token` and a handshake do: mint with the secret, verify
// with the same secret.
func Example() {
	now := func() time.Time { return time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC) }
	secret := []byte("a development secret of 32+ bytes!!")
	m, err := auth.NewMinter(auth.MinterConfig{Secret: secret, Now: now})
	if err != nil {
		panic(err)
	}
	tok, err := m.Mint(auth.Claims{Subject: "nurse-joy", Roles: []domain.Role{domain.RoleNurse}}, time.Hour)
	if err != nil {
		panic(err)
	}
	v, err := auth.NewVerifier(auth.Config{Secret: secret, Now: now})
	if err != nil {
		panic(err)
	}
	defer v.Close()
	c, err := v.Verify(context.Background(), tok)
	fmt.Println(c.Subject, c.Roles, c.ExpiresAt.Format(time.RFC3339), err)

	_, err = v.Verify(context.Background(), tok+"x")
	var ae *auth.Error
	if errors.As(err, &ae) {
		fmt.Println(ae.Code(), ae.Message())
	}
	// Output:
	// nurse-joy [nurse] 2025-03-14T10:00:00Z <nil>
	// unauthorized invalid token signature
}
