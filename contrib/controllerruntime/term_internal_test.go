package controllerruntime

import (
	"testing"

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
	c := &termCache{}
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
