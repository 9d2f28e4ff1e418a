package election

import "time"

// DefaultRenewIntervalForTest is defaultRenewInterval, for the fifth
// review's tests in package election_test.
func DefaultRenewIntervalForTest(renewDeadline, retryPeriod time.Duration) time.Duration {
	return defaultRenewInterval(renewDeadline, retryPeriod)
}
