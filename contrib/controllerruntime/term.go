package controllerruntime

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// errTermOver is what an informer of an ended term answers a new event
// handler with.
var errTermOver = errors.New("controllerruntime: the term is over")

// term is the manager a Build sees for one term (or for the warm-up): the
// real manager, except that what Build adds to it is kept for the term
// instead of run by the manager, and that its cache tracks the event
// handlers added for the term, so that they are removed when it ends.
//
// controller-runtime's sources never remove their handlers from the
// shared informers (kubernetes-sigs/controller-runtime#2983): without
// this, every ended term's handlers would stay, and run at every event,
// for the life of the process.
type term struct {
	manager.Manager
	cache     *termCache
	options   config.Controller
	runnables []manager.Runnable
}

// newTerm makes a term of mgr. The controllers built in it take the
// manager's controller options, with warm-up on unless Build says
// otherwise; with checkNames false, their names are not checked for
// uniqueness (a name is checked once, when the component is made, and
// built again for each term).
func newTerm(mgr manager.Manager, checkNames bool) *term {
	opts := mgr.GetControllerOptions()
	if opts.EnableWarmup == nil {
		opts.EnableWarmup = ptr.To(true)
	}
	if !checkNames {
		opts.SkipNameValidation = ptr.To(true)
	}
	return &term{Manager: mgr, cache: newTermCache(mgr.GetCache()), options: opts}
}

// Add keeps r for the term.
func (t *term) Add(r manager.Runnable) error {
	t.runnables = append(t.runnables, r)
	return nil
}

// GetCache returns the term's view of the manager's cache.
func (t *term) GetCache() cache.Cache { return t.cache }

// GetControllerOptions returns the controller options of the term (see
// newTerm).
func (t *term) GetControllerOptions() config.Controller { return t.options }

// run starts what Build added with ctx and returns once all of it has
// returned, with the first error; one that fails stops the others. (The
// term's event handlers are removed by its owner, with t.cache.end.)
func (t *term) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range t.runnables {
		g.Go(func() error { return r.Start(gctx) })
	}
	return g.Wait()
}

// warmUp starts the sources of the term's controllers, waits until they
// have synced, and removes their event handlers: the informers they need
// stay in the manager's cache, synced, for the terms to come.
func (t *term) warmUp(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // shuts the warm-up controllers' queues down
	defer t.cache.end()
	// All at once: each waits up to its CacheSyncTimeout.
	var g errgroup.Group
	for _, r := range t.runnables {
		if w, ok := r.(interface{ Warmup(context.Context) error }); ok {
			g.Go(func() error { return w.Warmup(ctx) })
		}
	}
	return g.Wait()
}

// termCache is the manager's cache as one term sees it: its informers
// remember the event handlers added through them, and end removes them.
type termCache struct {
	cache.Cache

	mu        sync.Mutex
	informers []cache.Informer // got by the term
	added     []added
	done      chan struct{} // closed by end: the term is over
}

func newTermCache(c cache.Cache) *termCache {
	return &termCache{Cache: c, done: make(chan struct{})}
}

// added is one event handler a term added to an informer.
type added struct {
	informer cache.Informer
	handler  toolscache.ResourceEventHandlerRegistration
}

// GetInformer returns the term's view of the informer for obj.
func (c *termCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	return c.informer(c.Cache.GetInformer(ctx, obj, opts...))
}

// GetInformerForKind returns the term's view of the informer for gvk.
func (c *termCache) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	return c.informer(c.Cache.GetInformerForKind(ctx, gvk, opts...))
}

func (c *termCache) informer(i cache.Informer, err error) (cache.Informer, error) {
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.informers = append(c.informers, i)
	return &termInformer{Informer: i, cache: c}, nil
}

// WaitForCacheSync waits until the informers the term has got have
// synced, not every informer of the manager's cache (as sources ask it
// to): an informer that cannot sync, of a type this replica may not
// list, holds up only the components that watch it.
func (c *termCache) WaitForCacheSync(ctx context.Context) bool {
	c.mu.Lock()
	synced := make([]toolscache.InformerSynced, 0, len(c.informers))
	for _, i := range c.informers {
		synced = append(synced, i.HasSynced)
	}
	c.mu.Unlock()
	return toolscache.WaitForCacheSync(ctx.Done(), synced...)
}

// keep records a handler added through i; after end it removes it at
// once and fails: a source that starts late must not outlive its term.
func (c *termCache) keep(i cache.Informer, h toolscache.ResourceEventHandlerRegistration, err error) (toolscache.ResourceEventHandlerRegistration, error) {
	if err != nil {
		return h, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over() {
		_ = i.RemoveEventHandler(h)
		return nil, errTermOver
	}
	c.added = append(c.added, added{informer: i, handler: h})
	return h, nil
}

// over says whether end has been called.
func (c *termCache) over() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// forget drops h from what end removes.
func (c *termCache) forget(h toolscache.ResourceEventHandlerRegistration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.added = slices.DeleteFunc(c.added, func(a added) bool { return a.handler == h })
}

// end removes every handler the term added.
func (c *termCache) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.over() {
		close(c.done)
	}
	for _, a := range c.added {
		// An informer that has stopped has no handlers to remove.
		_ = a.informer.RemoveEventHandler(a.handler)
	}
	c.added = nil
}

// termInformer is an informer of the manager's cache as one term sees it.
type termInformer struct {
	cache.Informer
	cache *termCache
}

func (i *termInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandler(h)
	return i.added(r, err)
}

func (i *termInformer) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, resync time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandlerWithResyncPeriod(h, resync)
	return i.added(r, err)
}

func (i *termInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, opts toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandlerWithOptions(h, opts)
	return i.added(r, err)
}

// added keeps a handler the term added and, if the informer has synced
// (a warm standby's), returns once the handler has been given what the
// informer holds, or the term has ended. A source waits for that with
// client-go's WaitForCacheSync, which looks every 100ms: it then finds the
// handler synced at its first look, and a new leader reconciles within
// milliseconds instead of a tenth of a second. (On an informer that has
// not synced it does not wait: that is the source's business, under its
// CacheSyncTimeout.)
func (i *termInformer) added(r toolscache.ResourceEventHandlerRegistration, err error) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err = i.cache.keep(i.Informer, r, err)
	if err != nil || !i.Informer.HasSynced() {
		return r, err
	}
	select {
	case <-r.HasSyncedChecker().Done():
	case <-i.cache.done:
	}
	return r, nil
}

func (i *termInformer) RemoveEventHandler(h toolscache.ResourceEventHandlerRegistration) error {
	i.cache.forget(h)
	return i.Informer.RemoveEventHandler(h)
}
