// Package backoff computes exponential waits between retries.
package backoff

import "time"

// Doubling is the wait before the next try after n failures in a row:
// first, doubled with each failure after the first, at most limit.
func Doubling(first, limit time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
