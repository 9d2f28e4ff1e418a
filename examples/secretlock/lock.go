package main

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/tenure/tenure/locks"
)

// RecordKey is the key of the Secret's data that holds the record.
const RecordKey = "leader-election-record"

// SecretLock keeps the leader election record in a key of a Secret, for
// clusters where only Secrets may be written. It is built on the public
// locks API alone: Record.Encode, DecodeRecord and the sentinel errors.
type SecretLock struct {
	client          typedcorev1.SecretsGetter
	namespace, name string
}

// NewSecretLock returns a lock on the Secret namespace/name.
func NewSecretLock(client typedcorev1.SecretsGetter, namespace, name string) *SecretLock {
	return &SecretLock{client: client, namespace: namespace, name: name}
}

// Describe implements locks.Lock.
func (l *SecretLock) Describe() string { return "secrets/" + l.namespace + "/" + l.name }

// Name is the Secret's name, the election's default name.
func (l *SecretLock) Name() string { return l.name }

// Get implements locks.Lock.
func (l *SecretLock) Get(ctx context.Context) (locks.Observed, error) {
	s, err := l.client.Secrets(l.namespace).Get(ctx, l.name, metav1.GetOptions{})
	if err != nil {
		return locks.Observed{}, l.fail("get", err)
	}
	raw, ok := s.Data[RecordKey]
	if !ok {
		return locks.Observed{}, fmt.Errorf("get %s: no key %s: %w", l.Describe(), RecordKey, locks.ErrNotFound)
	}
	obs := locks.Observed{Raw: raw, Version: s.ResourceVersion}
	if obs.Record, err = locks.DecodeRecord(raw); err != nil {
		return obs, fmt.Errorf("get %s: %w", l.Describe(), err)
	}
	return obs, nil
}

// Create implements locks.Lock. A Secret that exists without the key is
// adopted, its other keys kept.
func (l *SecretLock) Create(ctx context.Context, r locks.Record) (locks.Observed, error) {
	raw, err := r.Encode()
	if err != nil {
		return locks.Observed{}, fmt.Errorf("create %s: %w", l.Describe(), err)
	}
	secrets := l.client.Secrets(l.namespace)
	s, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: l.name, Namespace: l.namespace},
		Data:       map[string][]byte{RecordKey: raw},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, getErr := secrets.Get(ctx, l.name, metav1.GetOptions{})
		if getErr != nil {
			return locks.Observed{}, l.fail("create", getErr)
		}
		if _, ok := existing.Data[RecordKey]; ok {
			return locks.Observed{}, fmt.Errorf("create %s: a record exists: %w", l.Describe(), locks.ErrConflict)
		}
		return l.write(ctx, existing, raw, "create")
	}
	if err != nil {
		return locks.Observed{}, l.fail("create", err)
	}
	return l.observed(s, raw)
}

// Update implements locks.Lock: a full update carrying the Secret's
// resourceVersion, so the API server refuses it if anyone wrote since.
func (l *SecretLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	raw, err := r.Encode()
	if err != nil {
		return locks.Observed{}, fmt.Errorf("update %s: %w", l.Describe(), err)
	}
	s, err := l.client.Secrets(l.namespace).Get(ctx, l.name, metav1.GetOptions{})
	if err != nil {
		return locks.Observed{}, l.fail("update", err)
	}
	if s.ResourceVersion != version {
		return locks.Observed{}, fmt.Errorf("update %s: version %s is stale: %w", l.Describe(), version, locks.ErrConflict)
	}
	if _, ok := s.Data[RecordKey]; !ok {
		return locks.Observed{}, fmt.Errorf("update %s: no key %s: %w", l.Describe(), RecordKey, locks.ErrNotFound)
	}
	return l.write(ctx, s, raw, "update")
}

// write stores raw in s, conditional on s's resourceVersion.
func (l *SecretLock) write(ctx context.Context, s *corev1.Secret, raw []byte, op string) (locks.Observed, error) {
	s = s.DeepCopy()
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[RecordKey] = raw
	updated, err := l.client.Secrets(l.namespace).Update(ctx, s, metav1.UpdateOptions{})
	if err != nil {
		return locks.Observed{}, l.fail(op, err)
	}
	return l.observed(updated, raw)
}

func (l *SecretLock) observed(s *corev1.Secret, raw []byte) (locks.Observed, error) {
	obs := locks.Observed{Raw: s.Data[RecordKey], Version: s.ResourceVersion}
	var err error
	obs.Record, err = locks.DecodeRecord(raw)
	return obs, err
}

// fail maps an API error to the locks sentinels, keeping the cause.
func (l *SecretLock) fail(op string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %s: %w", op, l.Describe(), errors.Join(locks.ErrNotFound, err))
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s %s: %w", op, l.Describe(), errors.Join(locks.ErrConflict, err))
	}
	return fmt.Errorf("%s %s: %w", op, l.Describe(), err)
}
