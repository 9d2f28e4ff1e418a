package framework

// HTTPAddress is the address the HTTP endpoint listens on (with port 0,
// the one chosen), or "" if it does not.
func (r *Runner) HTTPAddress() string {
	s, _ := r.httpAddr.Load().(string)
	return s
}
