package locks

// WatchBroken reports whether the watch l follows has failed and not
// delivered since; false if l follows none.
func WatchBroken(l *LeaseLock) bool {
	nw := l.followed()
	if nw == nil {
		return false
	}
	watches.mu.Lock()
	defer watches.mu.Unlock()
	return nw.broken
}

// WatchSynced reports whether the watch l follows has listed its
// namespace.
func WatchSynced(l *LeaseLock) bool {
	nw := l.followed()
	return nw != nil && nw.informer.HasSynced()
}

// SharedWatches counts the watches running.
func SharedWatches() int {
	watches.mu.Lock()
	defer watches.mu.Unlock()
	return len(watches.byKey)
}
