package framework

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/locks"
)

// events records Kubernetes Events on the lock objects, as client-go's
// leader election does: "<identity> became leader" and "<identity>
// stopped leading", reason LeaderElection.
type events struct {
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
}

func newEvents(cs kubernetes.Interface, identity string) *events {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	return &events{
		broadcaster: b,
		recorder:    b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "tenure", Host: identity}),
	}
}

// object is the lock object of a component's settings, or nil for locks
// that are not Kubernetes objects.
func lockObject(s components.Election) runtime.Object {
	meta := metav1.ObjectMeta{Namespace: s.Namespace, Name: s.LockName}
	switch s.Lock {
	case config.LockLease:
		return &coordinationv1.Lease{ObjectMeta: meta}
	case config.LockConfigMap:
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
	e.recorder.Event(obj, corev1.EventTypeNormal, "LeaderElection", message)
}

// shutdown flushes and stops the broadcaster.
func (e *events) shutdown() {
	if e != nil {
		e.broadcaster.Shutdown()
	}
}
