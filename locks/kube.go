package locks

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Option configures a Kubernetes lock (LeaseLock, ConfigMapLock).
type Option interface {
	apply(*objectOptions)
}

type objectOptions struct {
	identity string
	labels   map[string]string
	noWatch  bool // LeaseLock only
}

type optionFunc func(*objectOptions)

func (f optionFunc) apply(o *objectOptions) { f(o) }

// WithIdentity sets the identity a candidate using this lock holds it
// under; an election defaults its identity to it.
func WithIdentity(identity string) Option {
	return optionFunc(func(o *objectOptions) { o.identity = identity })
}

// WithLabels sets labels that the lock writes on its object when it
// creates or updates it. Other labels on the object are kept.
func WithLabels(labels map[string]string) Option {
	return optionFunc(func(o *objectOptions) { o.labels = maps.Clone(labels) })
}

// objectRef names the Kubernetes object behind a lock.
type objectRef struct {
	resource  string // plural, for messages: "leases", "configmaps"
	namespace string
	name      string
	objectOptions
}

func newObjectRef(resource, namespace, name string, opts []Option) (objectRef, error) {
	ref := objectRef{resource: resource, namespace: namespace, name: name}
	for _, o := range opts {
		o.apply(&ref.objectOptions)
	}
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return ref, fmt.Errorf("%s lock: namespace %q: %s", resource, namespace, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return ref, fmt.Errorf("%s lock: name %q: %s", resource, name, strings.Join(msgs, "; "))
	}
	for k, v := range ref.labels {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			return ref, fmt.Errorf("%s lock: label key %q: %s", resource, k, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			return ref, fmt.Errorf("%s lock: label %q value %q: %s", resource, k, v, strings.Join(msgs, "; "))
		}
	}
	return ref, nil
}

// Describe names the object as "resource/namespace/name".
func (r objectRef) Describe() string {
	return r.resource + "/" + r.namespace + "/" + r.name
}

// Namespace returns the namespace of the lock's object.
func (r objectRef) Namespace() string { return r.namespace }

// Name returns the name of the lock's object.
func (r objectRef) Name() string { return r.name }

// Identity returns the identity set with WithIdentity, or "".
func (r objectRef) Identity() string { return r.identity }

// apiError wraps an error from the API server with the operation and the
// object, and with ErrNotFound or ErrConflict where the API says so (a
// create that is not found names the missing namespace instead).
func (r objectRef) apiError(op string, err error) error {
	if op == "create" && apierrors.IsNotFound(err) {
		// Only the namespace can be missing when creating.
		return fmt.Errorf("%s %s: namespace %q does not exist: %w", op, r.Describe(), r.namespace, err)
	}
	var sentinel error
	switch {
	case apierrors.IsNotFound(err):
		sentinel = ErrNotFound
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		sentinel = ErrConflict
	}
	if sentinel != nil {
		return fmt.Errorf("%s %s: %w: %w", op, r.Describe(), sentinel, err)
	}
	return fmt.Errorf("%s %s: %w", op, r.Describe(), err)
}

// errNoVersion is returned by Update when called without a version, which
// would otherwise be an unconditional write.
var errNoVersion = errors.New("version is empty: Update needs the Version of an earlier Observed")

// Permission is one kind of API request a lock makes, for checking access
// before an election starts and for writing least-privilege RBAC rules.
type Permission struct {
	Verb      string // "get", "create", "patch"
	Group     string // API group: "coordination.k8s.io", "" for core
	Resource  string // "leases", "configmaps"
	Namespace string
	Name      string // "" when the request cannot name the object (create)
}

// String renders p as RBAC would word it.
func (p Permission) String() string {
	res := p.Resource
	if p.Group != "" {
		res += "." + p.Group
	}
	s := p.Verb + " " + res
	if p.Name != "" {
		s += " " + strconv.Quote(p.Name)
	}
	return s + " in namespace " + strconv.Quote(p.Namespace)
}

// permissions are the requests a Lease or ConfigMap lock makes: get and
// patch of its object, and create.
func (o objectRef) permissions(group string) []Permission {
	return []Permission{
		{Verb: "get", Group: group, Resource: o.resource, Namespace: o.namespace, Name: o.name},
		{Verb: "create", Group: group, Resource: o.resource, Namespace: o.namespace},
		{Verb: "patch", Group: group, Resource: o.resource, Namespace: o.namespace, Name: o.name},
	}
}
