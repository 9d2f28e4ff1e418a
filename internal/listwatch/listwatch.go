// Package listwatch adapts list and watch functions for client-go's
// informers.
package listwatch

import "k8s.io/client-go/tools/cache"

// ListThenWatch makes an informer of lw list and then watch, rather than
// stream its list through the watch (client-go's WatchListClient): the
// objects our informers follow (a namespace's Leases) are few, so streaming
// saves nothing, and plain lists work with every API server and with
// client-go's fake clients, which never end a streamed list.
func ListThenWatch(lw *cache.ListWatch) cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(lw, unsupported{})
}

type unsupported struct{}

func (unsupported) IsWatchListSemanticsUnSupported() bool { return true }
