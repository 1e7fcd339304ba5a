package memstore_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/memstore"
	"github.com/wardline/wardline/eventstore/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		s := memstore.New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
