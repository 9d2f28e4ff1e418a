package locks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// LeaderAnnotation is the ConfigMap annotation that holds the record as
// JSON, as client-go wrote it until v0.23 and the Python clients still do.
const LeaderAnnotation = "control-plane.alpha.kubernetes.io/leader"

// ConfigMapLock keeps the record as JSON in the LeaderAnnotation of a
// ConfigMap. client-go has dropped this lock; it lets a Go program share a
// lock with programs built on client-go before v0.24 or on the Python
// Kubernetes clients. Prefer LeaseLock otherwise.
//
// Writes are JSON merge patches of the annotation, conditional on the
// resourceVersion read, so the ConfigMap's data, its other annotations and
// labels are never touched.
type ConfigMapLock struct {
	objectRef
	client corev1client.ConfigMapsGetter
}

// NewConfigMapLock returns a lock on the ConfigMap namespace/name, which it
// creates on first acquisition or, if the ConfigMap exists without the
// annotation, annotates. It validates the names but does not contact the
// API server.
func NewConfigMapLock(client corev1client.ConfigMapsGetter, namespace, name string, opts ...Option) (*ConfigMapLock, error) {
	if client == nil {
		return nil, fmt.Errorf("configmaps lock %s/%s: client is nil", namespace, name)
	}
	ref, err := newObjectRef("configmaps", namespace, name, opts)
	if err != nil {
		return nil, err
	}
	return &ConfigMapLock{objectRef: ref, client: client}, nil
}

// Get implements Lock. A ConfigMap without the annotation has no record:
// that is an error wrapping ErrNotFound.
func (c *ConfigMapLock) Get(ctx context.Context) (Observed, error) {
	cm, err := c.client.ConfigMaps(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
	if err != nil {
		return Observed{}, c.apiError("get", err)
	}
	return c.observe(cm)
}

func (c *ConfigMapLock) observe(cm *corev1.ConfigMap) (Observed, error) {
	value, ok := cm.Annotations[LeaderAnnotation]
	if !ok {
		return Observed{}, fmt.Errorf("%s: annotation %s is missing: %w", c.Describe(), LeaderAnnotation, ErrNotFound)
	}
	obs := Observed{Raw: []byte(value), Version: cm.ResourceVersion, Annotations: ownAnnotations(cm.Annotations)}
	r, err := DecodeRecord(obs.Raw)
	if err != nil {
		return obs, fmt.Errorf("%s: annotation %s: %w", c.Describe(), LeaderAnnotation, err)
	}
	obs.Record = r
	return obs, nil
}

// Create implements Lock. If the ConfigMap exists without a record, Create
// adds the annotation, conditional on the version it read.
func (c *ConfigMapLock) Create(ctx context.Context, r Record) (Observed, error) {
	raw, err := r.Encode()
	if err != nil {
		return Observed{}, fmt.Errorf("create %s: %w", c.Describe(), err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace:   c.namespace,
		Name:        c.name,
		Labels:      c.labels,
		Annotations: map[string]string{LeaderAnnotation: string(raw)},
	}}
	created, err := c.client.ConfigMaps(c.namespace).Create(ctx, cm, metav1.CreateOptions{})
	if err == nil {
		return c.observe(created)
	}
	createErr := c.apiError("create", err)
	if !errors.Is(createErr, ErrConflict) {
		return Observed{}, createErr
	}
	existing, err := c.client.ConfigMaps(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
	if err != nil {
		return Observed{}, c.apiError("create", err)
	}
	if _, ok := existing.Annotations[LeaderAnnotation]; ok {
		return Observed{}, createErr
	}
	return c.patch(ctx, "create", existing.ResourceVersion, map[string]string{LeaderAnnotation: string(raw)})
}

// Update implements Lock.
func (c *ConfigMapLock) Update(ctx context.Context, version string, r Record) (Observed, error) {
	if version == "" {
		return Observed{}, fmt.Errorf("update %s: %w", c.Describe(), errNoVersion)
	}
	raw, err := r.Encode()
	if err != nil {
		return Observed{}, fmt.Errorf("update %s: %w", c.Describe(), err)
	}
	return c.patch(ctx, "update", version, map[string]string{LeaderAnnotation: string(raw)})
}

// Annotate writes tenure's annotations and, if r is not nil, the record,
// in one merge patch conditional on version (see Lock).
func (c *ConfigMapLock) Annotate(ctx context.Context, version string, r *Record, set map[string]string) (Observed, error) {
	if version == "" {
		return Observed{}, fmt.Errorf("annotate %s: %w", c.Describe(), errNoVersion)
	}
	if err := validAnnotations(set); err != nil {
		return Observed{}, fmt.Errorf("annotate %s: %w", c.Describe(), err)
	}
	set = maps.Clone(set)
	if r != nil {
		raw, err := r.Encode()
		if err != nil {
			return Observed{}, fmt.Errorf("annotate %s: %w", c.Describe(), err)
		}
		if set == nil {
			set = map[string]string{}
		}
		set[LeaderAnnotation] = string(raw)
	}
	return c.patch(ctx, "annotate", version, set)
}

// patch writes the annotations in set ("" removes one), among them the
// record's, if the ConfigMap is at version.
func (c *ConfigMapLock) patch(ctx context.Context, op, version string, set map[string]string) (Observed, error) {
	var p struct {
		Metadata struct {
			ResourceVersion string             `json:"resourceVersion"`
			Annotations     map[string]*string `json:"annotations,omitempty"`
			Labels          map[string]string  `json:"labels,omitempty"`
		} `json:"metadata"`
	}
	p.Metadata.ResourceVersion = version
	p.Metadata.Annotations = annotationPatch(set)
	p.Metadata.Labels = c.labels
	body, err := json.Marshal(p)
	if err != nil {
		return Observed{}, fmt.Errorf("%s %s: %w", op, c.Describe(), err)
	}
	cm, err := c.client.ConfigMaps(c.namespace).Patch(ctx, c.name, types.MergePatchType, body, metav1.PatchOptions{})
	if err != nil {
		return Observed{}, c.apiError(op, err)
	}
	return c.observe(cm)
}

// Permissions returns the API requests the lock makes.
func (c *ConfigMapLock) Permissions() []Permission { return c.permissions("") }

// TimeResolution is how finely the lock stores a record's times:
// whole seconds, as client-go's record format does. An election does not count a renewal that
// stores the same bytes as the last, steps its renew times by it when the
// wall clock is behind them, and checks its timings against it.
func (c *ConfigMapLock) TimeResolution() time.Duration { return time.Second }
