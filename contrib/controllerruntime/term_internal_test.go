package controllerruntime

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// fakeInformer counts the handlers added to it and not removed.
type fakeInformer struct {
	cache.Informer
	handlers map[*registration]bool
}

type registration struct {
	toolscache.ResourceEventHandlerRegistration
}

func (f *fakeInformer) HasSynced() bool { return false } // a source's own business

func (f *fakeInformer) AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	r := &registration{}
	f.handlers[r] = true
	return r, nil
}

func (f *fakeInformer) RemoveEventHandler(h toolscache.ResourceEventHandlerRegistration) error {
	delete(f.handlers, h.(*registration))
	return nil
}

// TestTermCacheRemovesWhatTheTermAdded: ending a term removes the
// handlers it added and not yet removed; a handler added after the end
// (a source that started late) is removed at once and refused.
func TestTermCacheRemovesWhatTheTermAdded(t *testing.T) {
	inf := &fakeInformer{handlers: map[*registration]bool{}}
	c := newTermCache(nil)
	ti := &termInformer{Informer: inf, cache: c}
	a, err := ti.AddEventHandler(nil)
	require.NoError(t, err)
	b, err := ti.AddEventHandler(nil)
	require.NoError(t, err)
	require.NoError(t, ti.RemoveEventHandler(a))
	assert.Len(t, inf.handlers, 1)
	assert.Len(t, c.added, 1, "a handler the term removed itself is not removed again")

	c.end()
	assert.Empty(t, inf.handlers, "the term's handlers are removed when it ends")
	_, err = ti.AddEventHandler(nil)
	assert.ErrorIs(t, err, errTermOver)
	assert.Empty(t, inf.handlers, "a handler added after the end is removed at once")
	_ = b
}

// syncedInformer has synced; each handler added to it syncs when
// handlerSynced is closed.
type syncedInformer struct {
	cache.Informer
	handlerSynced chan struct{}
}

func (s *syncedInformer) HasSynced() bool { return true }

func (s *syncedInformer) AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	return syncing{done: s.handlerSynced}, nil
}

func (s *syncedInformer) RemoveEventHandler(toolscache.ResourceEventHandlerRegistration) error {
	return nil
}

type syncing struct {
	toolscache.ResourceEventHandlerRegistration
	done chan struct{}
}

func (s syncing) HasSyncedChecker() toolscache.DoneChecker { return s }
func (s syncing) Done() <-chan struct{}                    { return s.done }
func (s syncing) Name() string                             { return "test" }

// TestHandlerOfASyncedInformerIsSyncedWhenAdded: on a warm informer, a
// handler is added once it has been given what the informer holds (so
// that the source's 100ms poll finds it synced at once), or once the term
// has ended.
func TestHandlerOfASyncedInformerIsSyncedWhenAdded(t *testing.T) {
	for _, end := range []bool{false, true} {
		inf := &syncedInformer{handlerSynced: make(chan struct{})}
		c := newTermCache(nil)
		ti := &termInformer{Informer: inf, cache: c}
		added := make(chan error, 1)
		go func() {
			_, err := ti.AddEventHandler(nil)
			added <- err
		}()
		select {
		case <-added:
			t.Fatal("added before the handler synced")
		case <-time.After(50 * time.Millisecond):
		}
		if end {
			c.end()
		} else {
			close(inf.handlerSynced)
		}
		select {
		case <-added:
		case <-time.After(5 * time.Second):
			t.Fatalf("not added after the handler synced or the term ended (end: %v)", end)
		}
	}
}
