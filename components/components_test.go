package components_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
)

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

// settingsOf reads a component's own settings as the framework does.
func settingsOf(t *testing.T, c components.Component) components.Settings {
	t.Helper()
	s, ok := c.(interface{ Settings() components.Settings })
	require.True(t, ok, "a component made by New has a Settings method")
	return s.Settings()
}

func TestWithSettingsGivesTheComponentItsSettings(t *testing.T) {
	run := func(context.Context) error { return nil }
	assert.Equal(t, components.Settings{}, settingsOf(t, components.New("billing", run)), "no option: no settings of its own")
	want := components.Settings{Lock: locks.KindConfigMap, LeaseDuration: 6 * time.Second}
	assert.Equal(t, want, settingsOf(t, components.New("billing", run, components.WithSettings(want))))
}

// A component in one line, with election settings of its own: this one
// must move fast after a crash, so its lease is shorter than the
// program's default. The framework runs the function while this replica
// leads "billing"; the component's entry in the configuration file, if
// any, overrides these settings.
func ExampleNew() {
	billing := components.New("billing", func(ctx context.Context) error {
		<-ctx.Done() // work until leadership is lost or the program stops
		return nil
	}, components.WithSettings(components.Settings{
		LeaseDuration: 6 * time.Second,
		RenewDeadline: 4 * time.Second,
		RetryPeriod:   time.Second,
	}))

	// The framework reads the settings through this method; a type of
	// your own can have it too.
	own := billing.(interface{ Settings() components.Settings }).Settings()
	fmt.Println(billing.Name())
	fmt.Printf("lease %v, renew deadline %v, retry %v, lock %q (zero: the program's default)\n",
		own.LeaseDuration, own.RenewDeadline, own.RetryPeriod, own.Lock)
	// Output:
	// billing
	// lease 6s, renew deadline 4s, retry 1s, lock "" (zero: the program's default)
}
