package control

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// event records what the client did as a Kubernetes Event on obj, at once:
// a command that exits right after cannot use client-go's asynchronous
// EventRecorder, which would drop it, and its failure is worth reporting.
func (c *Client) event(ctx context.Context, obj corev1.ObjectReference, reason, message string) error {
	now := metav1.NewTime(c.clock.Now())
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", obj.Name, now.UnixNano()), Namespace: obj.Namespace},
		InvolvedObject: obj,
		Reason:         reason,
		Message:        message,
		Type:           corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: c.actor},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	}
	if _, err := c.cs.CoreV1().Events(obj.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("the Event was not recorded: %w", apiError("create", "events", "", "", obj.Namespace, err))
	}
	return nil
}
