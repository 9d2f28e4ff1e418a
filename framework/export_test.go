package framework

import "context"

// HTTPAddress is the address the HTTP endpoint listens on (with port 0,
// the one chosen), or "" if it does not.
func (r *Runner) HTTPAddress() string {
	s, _ := r.httpAddr.Load().(string)
	return s
}

// LockedBuffer is a bytes.Buffer safe for concurrent writes, for logs.
type LockedBuffer = lockedBuffer

// LeaderStatus is one election in the /leaders document.
type LeaderStatus = leaderStatus

// Start and Stop start and stop the runner as the app's lifecycle does,
// for tests of what fx does not let an app do (start again after a stop
// that timed out).
func (r *Runner) Start(ctx context.Context) error { return r.start(ctx) }
func (r *Runner) Stop(ctx context.Context) error  { return r.stop(ctx) }
