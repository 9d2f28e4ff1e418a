package locks

import (
	"context"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
)

// LeaseWatcher keeps the Leases of the namespaces its locks use in a cache,
// filled by one client-go informer per namespace and shared by every
// LeaseLock made WithWatcher: their reads come from the cache instead of
// the API server, and they are told of each change at once, so that
// followers neither poll the API server nor wait for their next poll.
//
// A read from the cache is never older than what the lock handle has
// itself read or written (resourceVersions are compared, as the API
// allows since Kubernetes 1.35); when the cache lags behind, is not synced,
// or cannot tell, the read goes to the API server. While a namespace has
// no established watch (it ended, broke, or is being listed again), its
// locks read from the API server, polling as without a watcher, so that
// neither safety nor liveness depends on the watch. A stale cache can
// only delay what a follower sees, which delays its take-over: never
// earlier than safe, and a write on a stale version conflicts.
type LeaseWatcher struct {
	client kubernetes.Interface
	stop   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	started bool
	stopped bool
	byNS    map[string]*namespaceWatch
}

type namespaceWatch struct {
	informer cache.SharedIndexInformer
	subs     map[string][]chan struct{} // by Lease name
	// broken: no watch is established, so the cache may be falling
	// behind; gen counts the lists and watches begun, so that the end of
	// an old watch does not mark a newer one broken. Both are guarded by
	// LeaseWatcher.mu.
	broken bool
	gen    int
}

// NewLeaseWatcher returns a watcher that makes its informers with client.
// Its informers run from Start to Stop; until Start, locks read from the
// API server.
func NewLeaseWatcher(client kubernetes.Interface) *LeaseWatcher {
	return &LeaseWatcher{client: client, stop: make(chan struct{}), byNS: map[string]*namespaceWatch{}}
}

// WithWatcher makes a LeaseLock read through w's cache and report changes
// on its Changes channel. It needs list and watch on leases in the lock's
// namespace (see LeaseLock.Permissions).
func WithWatcher(w *LeaseWatcher) Option {
	return optionFunc(func(o *objectOptions) { o.watcher = w })
}

// Start runs the informers of the namespaces subscribed so far, and of
// those subscribed later.
func (w *LeaseWatcher) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.stopped {
		return
	}
	w.started = true
	for _, nw := range w.byNS {
		w.run(nw)
	}
}

// run runs nw's informer until Stop; w.mu must be held.
func (w *LeaseWatcher) run(nw *namespaceWatch) {
	w.wg.Go(func() { nw.informer.Run(w.stop) })
}

// Stop stops every informer and waits for them. Locks made with the
// watcher read from the API server afterwards.
func (w *LeaseWatcher) Stop() {
	w.mu.Lock()
	if !w.stopped {
		w.stopped = true
		close(w.stop)
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// subscribe registers a lock on namespace/name, starting the namespace's
// informer on first use, and returns its change channel.
func (w *LeaseWatcher) subscribe(namespace, name string) chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	nw, ok := w.byNS[namespace]
	if !ok {
		nw = &namespaceWatch{subs: map[string][]chan struct{}{}, broken: true}
		nw.informer = w.newInformer(namespace, nw)
		notify := func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if lease, ok := obj.(*coordinationv1.Lease); ok {
				w.notify(nw, lease.Name)
			}
		}
		_ = nw.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
			w.begin(nw)
			cache.DefaultWatchErrorHandler(ctx, r, err)
		})
		_, _ = nw.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    notify,
			UpdateFunc: func(_, obj any) { notify(obj) },
			DeleteFunc: notify,
		})
		w.byNS[namespace] = nw
		if w.started && !w.stopped {
			w.run(nw)
		}
	}
	nw.subs[name] = append(nw.subs[name], ch)
	return ch
}

// newInformer makes the informer of namespace as client-go's generated
// Lease informer does, but with its watches tracked: nw is broken from the
// moment a watch ends (or a list or watch starts) until a new watch is
// established, so that reads go to the API server while the cache may be
// falling behind. client-go's informers do not tell when their watch is
// down: a reflector retries a failing list for minutes before it reports
// an error.
func (w *LeaseWatcher) newInformer(namespace string, nw *namespaceWatch) cache.SharedIndexInformer {
	leases := func() coordinationv1client.LeaseInterface { return w.client.CoordinationV1().Leases(namespace) }
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			w.begin(nw)
			return leases().List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			gen := w.begin(nw)
			wi, err := leases().Watch(ctx, opts)
			if err != nil {
				return nil, err
			}
			w.mark(nw, gen, false)
			return newTrackedWatch(wi, func() { w.mark(nw, gen, true) }), nil
		},
	}
	return cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, w.client), &coordinationv1.Lease{}, 0, cache.Indexers{})
}

// begin marks nw broken as a list or watch begins and returns its
// generation.
func (w *LeaseWatcher) begin(nw *namespaceWatch) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	nw.gen++
	nw.broken = true
	return nw.gen
}

// mark sets whether nw is broken, if gen is still its latest list or
// watch.
func (w *LeaseWatcher) mark(nw *namespaceWatch, gen int, broken bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
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
		for ev := range inner.ResultChan() {
			select {
			case t.out <- ev:
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

// unsubscribe removes ch, the change channel of a lock on namespace/name
// that is gone.
func (w *LeaseWatcher) unsubscribe(namespace, name string, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	nw, ok := w.byNS[namespace]
	if !ok {
		return
	}
	nw.subs[name] = slices.DeleteFunc(nw.subs[name], func(c chan struct{}) bool { return c == ch })
	if len(nw.subs[name]) == 0 {
		delete(nw.subs, name)
	}
}

func (w *LeaseWatcher) notify(nw *namespaceWatch, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range nw.subs[name] {
		select {
		case ch <- struct{}{}:
		default: // a change is already pending
		}
	}
}

// cached returns the cached Lease, whether it is cached, and whether the
// cache can answer at all (synced and running).
func (w *LeaseWatcher) cached(namespace, name string) (lease *coordinationv1.Lease, found, usable bool) {
	w.mu.Lock()
	nw, ok := w.byNS[namespace]
	running := w.started && !w.stopped
	broken := ok && nw.broken
	w.mu.Unlock()
	if !ok || !running || broken || !nw.informer.HasSynced() {
		return nil, false, false
	}
	obj, exists, err := nw.informer.GetStore().GetByKey(namespace + "/" + name)
	if err != nil {
		return nil, false, false
	}
	if !exists {
		return nil, false, true
	}
	lease, ok = obj.(*coordinationv1.Lease)
	return lease, ok, ok
}

// WaitForSync waits up to timeout for the informers started so far to
// list their namespaces; it reports whether they did.
func (w *LeaseWatcher) WaitForSync(timeout time.Duration) bool {
	w.mu.Lock()
	var synced []cache.InformerSynced
	for _, nw := range w.byNS {
		synced = append(synced, nw.informer.HasSynced)
	}
	w.mu.Unlock()
	stop := make(chan struct{})
	t := time.AfterFunc(timeout, func() { close(stop) })
	defer t.Stop()
	return cache.WaitForCacheSync(stop, synced...)
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

// gone records that the API server said the object does not exist.
func (f *freshness) gone() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exists = false
}

// trusts says whether a cached version (found or not) may answer a read.
func (f *freshness) trusts(found bool, version string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !found {
		return !f.exists
	}
	if f.floor != "" && newer(f.floor, version) {
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
