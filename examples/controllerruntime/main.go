// Command controllerruntime runs two controller-runtime controllers in one
// manager, each under its own tenure election, so that the replicas of
// the program share them: one reconciles the ConfigMaps labelled
// example.tenure.dev/watched=true, the other the Secrets so labelled, and
// each writes the number of keys of what it reconciles to its annotation
// example.tenure.dev/keys. Run three copies (pods of a Deployment, or
// processes on one machine): the two controllers go to two of them, and
// move at once to another when one is stopped.
//
//	go run . --kubeconfig ~/.kube/config --namespace default
//	kubectl label configmap NAME example.tenure.dev/watched=true
//
// Each reconcile prints lines on standard output, "<component>
// <identity> term <n> begins <object> at <unix ns>", "... writes ..."
// before it writes (or "... refuses ..." when its term is over) and "...
// ends ..."; logs go to standard error.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/fx"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/contrib/controllerruntime"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/framework"
)

// Label selects the objects the controllers reconcile; Annotation is
// what they write.
const (
	Label      = "example.tenure.dev/watched"
	Annotation = "example.tenure.dev/keys"
)

//go:embed tenure.yaml
var defaultConfig []byte

var work = flag.Duration("work", 0, "how long each reconcile works before it writes, as a slow reconcile would (it stops early when its term ends)")

func main() {
	namespace := flag.String("namespace", "default", "namespace of the objects and the Leases")
	identity := flag.String("identity", "", "this replica's identity (default: tenure's: the pod's or host's name)")
	configPath := flag.String("config", "", "YAML configuration (default: the embedded tenure.yaml)")
	probes := flag.String("health-probe-bind-address", "0", "address of the manager's /healthz and /readyz (0: none)")
	metrics := flag.String("metrics-bind-address", "0", "address of the manager's /metrics (0: none)")
	flag.Parse() // --kubeconfig is controller-runtime's

	srcs := []config.Source{config.YAML("tenure.yaml (embedded)", defaultConfig)}
	if *configPath != "" {
		srcs = []config.Source{config.File(*configPath)}
	}
	srcs = append(srcs, config.Env(nil), config.Values("flags", map[string]any{"namespace": *namespace}))
	if *identity != "" {
		srcs = append(srcs, config.Values("--identity", map[string]any{"identity": *identity}))
	}
	app := fx.New(
		framework.Module,
		controllerruntime.Module,
		framework.Config(srcs...),
		framework.ExitOnSecondSignal(),
		fx.Supply(slog.New(slog.NewTextHandler(os.Stderr, nil))),
		fx.Provide(func() (manager.Manager, error) { return newManager(*namespace, *probes, *metrics) }),
		framework.Component(newConfigMaps),
		framework.Component(newSecrets),
		fx.StopTimeout(time.Minute), // the configured shutdown_timeout bounds the wait
		fx.NopLogger,
	)
	app.Run()
}

// newManager is the manager of the objects in ns: its leader election
// off, since tenure elects each controller.
func newManager(ns, probes, metrics string) (manager.Manager, error) {
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, err
	}
	watched := labels.SelectorFromSet(labels.Set{Label: "true"})
	return ctrl.NewManager(cfg, ctrl.Options{
		Cache: cache.Options{
			DefaultNamespaces:    map[string]cache.Config{ns: {}},
			DefaultLabelSelector: watched,
		},
		HealthProbeBindAddress: probes,
		Metrics:                metricsserver.Options{BindAddress: metrics},
	})
}

func newConfigMaps(mgr manager.Manager) (components.Component, error) {
	return controllerruntime.NewComponent("configmaps", mgr, func(mgr manager.Manager) error {
		return ctrl.NewControllerManagedBy(mgr).For(&corev1.ConfigMap{}).
			Complete(&keyCounter[*corev1.ConfigMap]{component: "configmaps", client: mgr.GetClient(), newObject: func() *corev1.ConfigMap { return &corev1.ConfigMap{} },
				keys: func(cm *corev1.ConfigMap) int { return len(cm.Data) + len(cm.BinaryData) }})
	})
}

func newSecrets(mgr manager.Manager) (components.Component, error) {
	return controllerruntime.NewComponent("secrets", mgr, func(mgr manager.Manager) error {
		return ctrl.NewControllerManagedBy(mgr).For(&corev1.Secret{}).
			Complete(&keyCounter[*corev1.Secret]{component: "secrets", client: mgr.GetClient(), newObject: func() *corev1.Secret { return &corev1.Secret{} },
				keys: func(s *corev1.Secret) int { return len(s.Data) }})
	})
}

// keyCounter writes the number of keys of each object it reconciles to
// its annotation.
type keyCounter[T client.Object] struct {
	component string
	client    client.Client
	newObject func() T
	keys      func(T) int
}

func (k *keyCounter[T]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	term, _ := election.TermFromContext(ctx)
	say := func(what string, at time.Time) {
		fmt.Printf("%s %s term %d %s %s at %d\n", k.component, term.Identity, term.FencingToken, what, req.Name, at.UnixNano())
	}
	say("begins", time.Now())
	defer func() { say("ends", time.Now()) }()
	if *work > 0 {
		select {
		case <-time.After(*work):
		case <-ctx.Done():
			return ctrl.Result{}, nil // the term ended: the next leader reconciles it again
		}
	}
	obj := k.newObject()
	if err := k.client.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	want := strconv.Itoa(k.keys(obj))
	if obj.GetAnnotations()[Annotation] == want {
		return ctrl.Result{}, nil
	}
	// Only while this replica leads: a reconcile can outlast a term that
	// ended at its renew deadline (see election.Valid). The write is
	// stamped when it is decided, before the check: a process frozen
	// between the check and the write is what fencing tokens are for.
	decided := time.Now()
	if err := election.Valid(ctx); err != nil {
		say("refuses", decided)
		return ctrl.Result{}, nil
	}
	say("writes", decided)
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[Annotation] = want
	obj.SetAnnotations(ann)
	if err := k.client.Patch(ctx, obj, patch); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}
