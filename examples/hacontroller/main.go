// Command hacontroller is the seed's high-availability controller: a
// ConfigMap lock in kube-system, and a leader that, every interval, lists
// the pods labelled managed-by=ha-controller in every namespace and
// deletes those that failed. Standbys do nothing until they lead.
//
//	go run ./examples/hacontroller --kubeconfig ~/.kube/config
package main

import (
	"context"
	"flag"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/examples/internal/cli"
	"github.com/tenure/tenure/locks"
)

// Selector picks the pods this controller manages.
const Selector = "managed-by=ha-controller"

var interval = flag.Duration("interval", 5*time.Second, "time between two clean-ups")

func main() { cli.Main("kube-system", "ha-controller", configure) }

func configure(f *cli.Flags, cs kubernetes.Interface) (election.Config, error) {
	lock, err := locks.NewConfigMapLock(cs.CoreV1(), f.Namespace, f.Name)
	if err != nil {
		return election.Config{}, err
	}
	cfg := f.Election(lock)
	cfg.OnStartedLeading = func(ctx context.Context) {
		term, _ := election.TermFromContext(ctx)
		cli.Say("%s started leading, term %d", f.Identity, term.FencingToken)
		tick := time.NewTicker(*interval)
		defer tick.Stop()
		for {
			cleanUp(ctx, cs, f.Identity)
			select {
			case <-ctx.Done():
				cli.Say("%s stopped leading", f.Identity)
				return
			case <-tick.C:
			}
		}
	}
	return cfg, nil
}

// cleanUp deletes the managed pods that failed.
func cleanUp(ctx context.Context, cs kubernetes.Interface, identity string) {
	pods, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: Selector})
	if err != nil {
		if ctx.Err() == nil {
			cli.Say("%s cannot list pods: %v", identity, err)
		}
		return
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodFailed || ctx.Err() != nil {
			continue
		}
		// Only this exact pod: not a newer one of the same name.
		pre := metav1.Preconditions{UID: &p.UID}
		err := cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &pre})
		switch {
		case err == nil:
			cli.Say("%s deleted failed pod %s/%s", identity, p.Namespace, p.Name)
		case !apierrors.IsNotFound(err):
			cli.Say("%s cannot delete pod %s/%s: %v", identity, p.Namespace, p.Name, err)
		}
	}
}
