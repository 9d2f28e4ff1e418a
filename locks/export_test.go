package locks

// WatchBroken reports whether w's watch of namespace has failed and not
// delivered since.
func (w *LeaseWatcher) WatchBroken(namespace string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	nw, ok := w.byNS[namespace]
	return ok && nw.broken
}
