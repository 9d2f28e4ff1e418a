package components_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/components"
)

func TestMergeTakesZeroFieldsFromDefaults(t *testing.T) {
	own := components.Election{LockName: "b", LeaseDuration: 6 * time.Second}
	defaults := components.Election{LockName: "x", Namespace: "ns", Lock: "lease", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	assert.Equal(t, components.Election{LockName: "b", Namespace: "ns", Lock: "lease", LeaseDuration: 6 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}, own.Merge(defaults))
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"billing", "a", "billing-2", "0x"} {
		assert.NoError(t, components.ValidateName(ok), ok)
	}
	for _, bad := range []string{"", "Billing", "-a", "a-", "a.b", "a_b", string(make([]byte, 64))} {
		assert.Error(t, components.ValidateName(bad), "%q", bad)
	}
}

func TestNewWithoutRunFailsWhenRun(t *testing.T) {
	c := components.New("billing", nil)
	require.EqualError(t, c.Run(context.Background()), "component billing has no run function")
}

func TestWithElection(t *testing.T) {
	c := components.New("billing", func(context.Context) error { return nil }, components.WithElection(components.Election{Lock: "configmap"}))
	e, ok := c.(components.Elected)
	require.True(t, ok)
	assert.Equal(t, "configmap", e.Election().Lock)
}

// A component in one line, with its own election settings; the
// framework runs it while this replica leads "billing".
func ExampleNew() {
	billing := components.New("billing", func(ctx context.Context) error {
		<-ctx.Done() // work until leadership is lost or the program stops
		return nil
	}, components.WithElection(components.Election{LeaseDuration: 6 * time.Second, RenewDeadline: 4 * time.Second, RetryPeriod: time.Second}))
	fmt.Println(billing.Name())
	// Output: billing
}
