package config_test

import (
	"fmt"
	"log"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
)

// Load a file's text with an environment variable over it, and resolve
// each component's election settings: its entry over the component's own
// settings over the defaults. A program passes config.File(path) and
// config.Env(nil) (the process's environment); the fx module does this
// for it (framework.ConfigFile).
func ExampleLoad() {
	cfg, err := config.Load(
		config.YAML("tenure.yaml", []byte(`
namespace: payments
lease_duration: 15s     # defaults for every component
renew_deadline: 10s
retry_period: 2s
components:
  billing:
    lease_duration: 6s
    renew_deadline: 4s
    retry_period: 1s
  reports: {}
`)),
		config.Env([]string{"TENURE_COMPONENTS__REPORTS__LOCK=configmap"}),
	)
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range cfg.Names() {
		// The second argument is what the component's code sets (see
		// components.WithSettings); none here.
		s, err := cfg.Settings(name, components.Settings{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %s %s/%s, lease %v, renew deadline %v, retry %v\n",
			name, s.Lock, s.Namespace, s.LockName, s.LeaseDuration, s.RenewDeadline, s.RetryPeriod)
	}
	// Output:
	// billing: lease payments/billing, lease 6s, renew deadline 4s, retry 1s
	// reports: configmap payments/reports, lease 15s, renew deadline 10s, retry 2s
}

// Bad input is an error that names the source, the key and the value,
// every one of them at once.
func ExampleLoad_badInput() {
	_, err := config.Load(config.YAML("tenure.yaml", []byte(`
lock: etcd
components:
  billing:
    lease_duration: 15
`)))
	fmt.Println(err)
	// Output:
	// config tenure.yaml: components.billing.lease_duration: 15 is not a duration (write it with a unit, such as "15s")
	// config tenure.yaml: lock: "etcd" must be one of lease, configmap, memory
}
