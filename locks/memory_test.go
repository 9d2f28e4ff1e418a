package locks_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/locks/lockstest"
)

func TestMemoryLock(t *testing.T) {
	lockstest.Run(t, func(t *testing.T) lockstest.Subject {
		m := locks.NewMemoryLock(t.Name())
		corrupt := []byte(`{"holderIdentity":"a","leaseDurationSeconds":"garbage"`)
		return lockstest.Subject{
			Lock:  m,
			Other: m, // one MemoryLock is one object; candidates share it
			Corrupt: func(t *testing.T) []byte {
				m.Put(corrupt)
				return corrupt
			},
			Delete: func(t *testing.T) { m.Delete() },
		}
	})
}

func TestMemorySpaceSharesLocksByName(t *testing.T) {
	space := locks.NewMemorySpace()
	a := space.Lock("a")
	assert.Same(t, a, space.Lock("a"))
	assert.NotSame(t, a, space.Lock("b"))
	obs, err := a.Get(context.Background())
	require.NoError(t, err, "a new lock starts with a record")
	assert.Equal(t, locks.Record{}, obs.Record, "free: no holder")
}
