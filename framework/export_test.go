package framework

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
