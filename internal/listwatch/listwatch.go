// Package listwatch adapts list and watch functions for client-go's
// informers.
package listwatch

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

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

// Lister is a typed client of one resource in one namespace, such as
// kubernetes.Interface's CoordinationV1().Leases(ns): what an informer
// lists and watches.
type Lister[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// Of is ListThenWatch of what client lists and watches, narrowed by the
// label and field selectors given ("" for none).
func Of[L runtime.Object](client Lister[L], labelSelector, fieldSelector string) cache.ListerWatcher {
	narrow := func(o metav1.ListOptions) metav1.ListOptions {
		if labelSelector != "" {
			o.LabelSelector = labelSelector
		}
		if fieldSelector != "" {
			o.FieldSelector = fieldSelector
		}
		return o
	}
	return ListThenWatch(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.List(ctx, narrow(o))
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return client.Watch(ctx, narrow(o))
		},
	})
}
