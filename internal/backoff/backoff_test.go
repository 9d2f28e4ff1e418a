package backoff_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tenure/tenure/internal/backoff"
)

func TestDoubling(t *testing.T) {
	for n, want := range []time.Duration{1, 1, 2, 4, 8, 10, 10} {
		assert.Equal(t, want*time.Second, backoff.Doubling(time.Second, 10*time.Second, n), "after %d failures", n)
	}
	assert.Equal(t, 3*time.Second, backoff.Doubling(5*time.Second, 3*time.Second, 1), "never above the limit")
}
