package locks_test

import (
	"testing"

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
