package framework

import (
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
)

// events records Kubernetes Events on the lock objects, as client-go's
// leader election does: "<identity> became leader" and "<identity>
// stopped leading", reason LeaderElection.
type events struct {
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	sink        *flushSink
	recorded    atomic.Int64
}

func newEvents(cs kubernetes.Interface, identity string) *events {
	b := record.NewBroadcaster()
	sink := &flushSink{EventSink: &typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")}, wrote: make(chan struct{}, 1)}
	b.StartRecordingToSink(sink)
	return &events{
		broadcaster: b,
		recorder:    b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "tenure", Host: identity}),
		sink:        sink,
	}
}

// flushSink counts the events the broadcaster has handed to the API, so
// that shutdown can wait for the last ones: the broadcaster's Shutdown
// drops what it has not sent yet, such as the "stopped leading" events
// recorded just before.
type flushSink struct {
	record.EventSink
	handled atomic.Int64
	wrote   chan struct{} // signalled after each event handled
}

func (s *flushSink) done() {
	s.handled.Add(1)
	select {
	case s.wrote <- struct{}{}:
	default:
	}
}

func (s *flushSink) Create(e *corev1.Event) (*corev1.Event, error) {
	defer s.done()
	return s.EventSink.Create(e)
}

func (s *flushSink) Update(e *corev1.Event) (*corev1.Event, error) {
	defer s.done()
	return s.EventSink.Update(e)
}

func (s *flushSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	defer s.done()
	return s.EventSink.Patch(e, data)
}

// eventFlushTimeout bounds how long shutdown waits for recorded events to
// reach the API server.
const eventFlushTimeout = 2 * time.Second

// object is the lock object of a component's settings, or nil for locks
// that are not Kubernetes objects.
func lockObject(s components.Settings) runtime.Object {
	meta := metav1.ObjectMeta{Namespace: s.Namespace, Name: s.LockName}
	switch s.Lock {
	case locks.KindLease:
		return &coordinationv1.Lease{ObjectMeta: meta}
	case locks.KindConfigMap:
		return &corev1.ConfigMap{ObjectMeta: meta}
	}
	return nil
}

// eventPermissions are what recording events in namespace needs.
func eventPermissions(namespace string) []locks.Permission {
	return []locks.Permission{
		{Verb: "create", Resource: "events", Namespace: namespace},
		{Verb: "patch", Resource: "events", Namespace: namespace},
	}
}

func (e *events) record(obj runtime.Object, message string) {
	if e == nil || obj == nil {
		return
	}
	e.recorded.Add(1)
	e.recorder.Event(obj, corev1.EventTypeNormal, "LeaderElection", message)
}

// shutdown waits, at most eventFlushTimeout, until every recorded event
// has been handed to the API server (an event the broadcaster drops as
// spam or after failed retries leaves it waiting until then), and stops
// the broadcaster.
func (e *events) shutdown() {
	if e == nil {
		return
	}
	timeout := time.NewTimer(eventFlushTimeout)
	defer timeout.Stop()
	for e.sink.handled.Load() < e.recorded.Load() {
		select {
		case <-e.sink.wrote:
		case <-timeout.C:
			e.broadcaster.Shutdown()
			return
		}
	}
	e.broadcaster.Shutdown()
}
