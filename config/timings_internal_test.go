package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tenure/tenure/locks"
)

// TestProbeResolutionsAreTheLocks: the probe lock of each kind stores
// times as finely as a lock of that kind made by its constructor, so the
// election checks the rule for the right kind.
func TestProbeResolutionsAreTheLocks(t *testing.T) {
	cs := fake.NewClientset()
	lease, err := locks.NewLeaseLock(cs.CoordinationV1(), "default", "x")
	require.NoError(t, err)
	configMap, err := locks.NewConfigMapLock(cs.CoreV1(), "default", "x")
	require.NoError(t, err)
	for kind, lock := range map[locks.Kind]interface{ TimeResolution() time.Duration }{
		locks.KindLease: lease, locks.KindConfigMap: configMap, locks.KindMemory: locks.NewMemoryLock("x"),
	} {
		assert.Equal(t, lock.TimeResolution(), probeLock{kind: kind}.TimeResolution(), kind)
		assert.Positive(t, probeLock{kind: kind}.TimeResolution(), kind)
	}
	assert.Len(t, timeResolutions, 3, "a probe for every kind of lock")
}
