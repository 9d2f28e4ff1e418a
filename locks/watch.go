package locks

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/watch"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/tenure/tenure/internal/listwatch"
)

// The shared Lease watches. A LeaseLock follows its Lease through the
// watch of its client and namespace (see LeaseLock.Watch): one client-go
// informer per client and namespace, started by the first subscription
// and stopped, its goroutines joined, by the last. Reads come from the
// informer's cache instead of the API server, and each lock is told of
// every change of its Lease at once, so that followers neither poll the
// API server nor wait for their next poll.
//
// A read from the cache is never older than what the lock handle has
// itself read or written (resourceVersions are compared, as the API
// allows since Kubernetes 1.35); when the cache lags behind, is not synced,
// or cannot tell, the read goes to the API server. While a namespace has
// no established watch (it ended, broke, or is being listed again), its
// locks read from the API server, polling as without a watch, so that
// neither safety nor liveness depends on the watch. A stale cache can
// only delay what a follower sees, which delays its take-over: never
// earlier than safe, and a write on a stale version conflicts.
var watches = &watchRegistry{byKey: map[watchKey]*namespaceWatch{}}

type watchRegistry struct {
	mu    sync.Mutex
	byKey map[watchKey]*namespaceWatch
}

// watchKey identifies a shared watch: the client and the namespace.
type watchKey struct {
	client    any
	namespace string
}

// namespaceWatch is the informer of one client and namespace, from its
// first subscription to its last. Its fields are guarded by
// watchRegistry.mu.
type namespaceWatch struct {
	key      watchKey
	informer cache.SharedIndexInformer
	stop     chan struct{} // closed when the last subscription ends
	done     chan struct{} // closed when the informer has stopped

	// subs are the subscriptions' change channels, by Lease name; a name
	// with none has no entry, so no entry at all means no subscription.
	subs map[string][]chan struct{}
	// broken: no watch is established, so the cache may be falling
	// behind; gen counts the lists and watches begun, so that the end of
	// an old watch does not mark a newer one broken.
	broken bool
	gen    int
	// forbidden: a list or watch was refused, and said so once.
	forbidden atomic.Bool
}

// subscribe registers a lock on the Lease namespace/name with the shared
// watch of client (of the lock itself, own, if client cannot key a map),
// starting it on first use, and returns the watch and the lock's change
// channel.
func (r *watchRegistry) subscribe(client coordinationv1client.LeasesGetter, own any, namespace, name string) (*namespaceWatch, chan struct{}) {
	key := watchKey{client: client, namespace: namespace}
	if v := reflect.ValueOf(client); !v.Comparable() {
		key.client = own
	}
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	nw, ok := r.byKey[key]
	if !ok {
		nw = &namespaceWatch{key: key, stop: make(chan struct{}), done: make(chan struct{}), subs: map[string][]chan struct{}{}, broken: true}
		nw.informer = r.newInformer(client.Leases(namespace), nw)
		r.byKey[key] = nw
		go func() {
			defer close(nw.done)
			nw.informer.Run(nw.stop)
		}()
	}
	nw.subs[name] = append(nw.subs[name], ch)
	return nw, ch
}

// unsubscribe removes ch, the change channel of a lock on the Lease name;
// the last subscription stops the watch and waits until it has stopped.
func (r *watchRegistry) unsubscribe(nw *namespaceWatch, name string, ch chan struct{}) {
	r.mu.Lock()
	nw.subs[name] = slices.DeleteFunc(nw.subs[name], func(c chan struct{}) bool { return c == ch })
	if len(nw.subs[name]) == 0 {
		delete(nw.subs, name)
	}
	last := len(nw.subs) == 0
	if last {
		delete(r.byKey, nw.key)
		close(nw.stop)
	}
	r.mu.Unlock()
	if last {
		<-nw.done
	}
}

// newInformer makes the informer of leases as client-go's generated Lease
// informer does, but with its watches tracked: nw is broken from the
// moment a watch ends (or a list or watch starts) until a new watch is
// established, so that reads go to the API server while the cache may be
// falling behind. client-go's informers do not tell when their watch is
// down: a reflector retries a failing list for minutes before it reports
// an error.
func (r *watchRegistry) newInformer(leases coordinationv1client.LeaseInterface, nw *namespaceWatch) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			r.begin(nw)
			return leases.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			gen := r.begin(nw)
			wi, err := watchUntilDone(ctx, leases, opts)
			if err != nil {
				return nil, err
			}
			r.mark(nw, gen, false)
			return newTrackedWatch(wi, func() { r.mark(nw, gen, true) }), nil
		},
	}
	informer := cache.NewSharedIndexInformer(listwatch.ListThenWatch(lw), &coordinationv1.Lease{}, 0, cache.Indexers{})
	notify := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if lease, ok := obj.(*coordinationv1.Lease); ok {
			r.notify(nw, lease.Name)
		}
	}
	_ = informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, refl *cache.Reflector, err error) {
		r.begin(nw)
		switch {
		case ctx.Err() != nil:
			// The watch is stopping: nothing to report.
		case apierrors.IsForbidden(err):
			// Once, not at every retry: the locks work on without the
			// watch, reading from the API server.
			if nw.forbidden.CompareAndSwap(false, true) {
				klog.FromContext(ctx).Error(err, "Lease locks cannot watch their namespace and poll the API server instead: grant list and watch on leases, or make the locks WithoutWatch",
					"namespace", nw.key.namespace)
			}
		default:
			cache.DefaultWatchErrorHandler(ctx, refl, err)
		}
	})
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	})
	return informer
}

// watchUntilDone starts a watch of leases, and gives up on it when ctx
// ends first: the last subscription's stop waits for the informer, which
// waits for its Watch call, so a client whose call ignores cancellation
// must not hold up election.Run and Stop. (client-go's reflector gives up
// on a List the same way.) A watch that arrives late is stopped.
func watchUntilDone(ctx context.Context, leases coordinationv1client.LeaseInterface, opts metav1.ListOptions) (watch.Interface, error) {
	type result struct {
		w   watch.Interface
		err error
	}
	got := make(chan result, 1)
	go func() {
		w, err := leases.Watch(ctx, opts)
		got <- result{w, err}
	}()
	select {
	case res := <-got:
		return res.w, res.err
	case <-ctx.Done():
		go func() {
			if res := <-got; res.w != nil {
				res.w.Stop()
			}
		}()
		return nil, ctx.Err()
	}
}

// begin marks nw broken as a list or watch begins and returns its
// generation.
func (r *watchRegistry) begin(nw *namespaceWatch) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	nw.gen++
	nw.broken = true
	return nw.gen
}

// mark sets whether nw is broken, if gen is still its latest list or
// watch.
func (r *watchRegistry) mark(nw *namespaceWatch, gen int, broken bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if nw.gen == gen {
		nw.broken = broken
	}
}

// trackedWatch passes a watch's events on and calls ended when the watch
// ends, whether the server closed it or the reflector stopped it.
type trackedWatch struct {
	inner watch.Interface
	out   chan watch.Event
	stop  chan struct{}
	once  sync.Once
}

func newTrackedWatch(inner watch.Interface, ended func()) *trackedWatch {
	t := &trackedWatch{inner: inner, out: make(chan watch.Event), stop: make(chan struct{})}
	go func() {
		defer close(t.out)
		defer ended()
		for {
			// Stop ends the watch even if the inner one does not close
			// its channel, as watch.Interface says it must.
			select {
			case ev, ok := <-inner.ResultChan():
				if !ok {
					return
				}
				select {
				case t.out <- ev:
				case <-t.stop:
					return
				}
			case <-t.stop:
				return
			}
		}
	}()
	return t
}

// ResultChan implements watch.Interface.
func (t *trackedWatch) ResultChan() <-chan watch.Event { return t.out }

// Stop implements watch.Interface.
func (t *trackedWatch) Stop() {
	t.once.Do(func() { close(t.stop) })
	t.inner.Stop()
}

func (r *watchRegistry) notify(nw *namespaceWatch, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	wake(nw.subs[name])
}

// wake tells each of chs, buffered channels of one, of a change without
// blocking: a channel that holds one already needs no other.
func wake(chs []chan struct{}) {
	for _, ch := range chs {
		select {
		case ch <- struct{}{}:
		default: // a change is already pending
		}
	}
}

// cached returns the cached Lease name, whether it is cached, and whether
// the cache can answer at all (running, synced and watching).
func (r *watchRegistry) cached(nw *namespaceWatch, name string) (lease *coordinationv1.Lease, found, usable bool) {
	r.mu.Lock()
	unusable := len(nw.subs) == 0 || nw.broken
	r.mu.Unlock()
	if unusable || !nw.informer.HasSynced() {
		return nil, false, false
	}
	obj, exists, err := nw.informer.GetStore().GetByKey(nw.key.namespace + "/" + name)
	if err != nil {
		return nil, false, false
	}
	if !exists {
		return nil, false, true
	}
	lease, ok := obj.(*coordinationv1.Lease)
	return lease, ok, ok
}

// freshness is what a lock handle knows of its object's versions, so that
// the cache never answers with something older.
type freshness struct {
	mu sync.Mutex
	// floor: the newest version this handle read or wrote; the cache must
	// be at least as new.
	floor string
	// above: a version a write conflicted on; the cache must be newer.
	above string
	// exists: this handle knows the object exists, so a cache without it
	// lags.
	exists bool
}

// saw records a version read from or written to the API server.
func (f *freshness) saw(version string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.floor == "" || newer(version, f.floor) {
		f.floor = version
	}
	f.exists = true
}

// conflicted records that a write at version (empty for a create) lost.
func (f *freshness) conflicted(version string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exists = true
	if version != "" && (f.above == "" || newer(version, f.above)) {
		f.above = version
	}
}

// gone records that the API server said the object does not exist, which
// this handle last knew at version (empty if none): a cached object is
// trusted only if newer than every version the handle knew, a re-creation.
func (f *freshness) gone(version string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exists = false
	for _, v := range []string{f.floor, version} {
		if v != "" && (f.above == "" || newer(v, f.above)) {
			f.above = v
		}
	}
}

// trusts says whether a cached version (found or not) may answer a read.
func (f *freshness) trusts(found bool, version string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !found {
		return !f.exists
	}
	if f.floor != "" && version != f.floor && !newer(version, f.floor) {
		return false
	}
	if f.above != "" && !newer(version, f.above) {
		return false
	}
	return true
}

// newer says whether resourceVersion a is newer than b; versions that
// cannot be compared are never newer, so the cache is distrusted.
func newer(a, b string) bool {
	c, err := resourceversion.CompareResourceVersion(a, b)
	return err == nil && c > 0
}
