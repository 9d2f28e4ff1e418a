package framework_test

import (
	"context"
	"fmt"
	"slices"

	"go.uber.org/fx"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/framework"
)

// Example runs an app with two components on memory locks: each one's
// leader work says when this replica leads it, and the app stops once
// both lead. With lock: lease (the default) the same program elects on
// Kubernetes Leases.
func Example() {
	led := make(chan string)
	component := func(name string) func() components.Component {
		return func() components.Component {
			return components.New(name, func(ctx context.Context) error {
				term, _ := election.TermFromContext(ctx) // identity and fencing token
				led <- fmt.Sprintf("%s leads, fencing token %d", name, term.FencingToken)
				<-ctx.Done() // work until the term ends or the app stops
				return nil
			})
		}
	}
	app := fx.New(
		framework.Module,
		framework.ConfigYAML("tenure.yaml", []byte("lock: memory\nidentity: pod-a\n")),
		framework.Component(component("billing")),
		framework.Component(component("reports")),
		fx.NopLogger,
	)
	// A program calls app.Run(), which stops on SIGTERM or SIGINT; here
	// the example starts the app and stops it once both components lead.
	if err := app.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	lines := []string{<-led, <-led}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	if err := app.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// billing leads, fencing token 1
	// reports leads, fencing token 1
}

// An app that has its own Kubernetes client provides it, and tenure's
// locks use it too; a component asks for it as any fx constructor asks
// for what it needs. (Compiled, not run: it needs a cluster.)
func Example_appClient() {
	newClient := func() (kubernetes.Interface, error) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules() // $KUBECONFIG, ~/.kube/config
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, err
		}
		return kubernetes.NewForConfig(cfg)
	}
	newCleaner := func(cs kubernetes.Interface) components.Component {
		return components.New("cleaner", func(ctx context.Context) error {
			pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Failed"})
			if err != nil {
				return err
			}
			fmt.Println(len(pods.Items), "failed pods")
			<-ctx.Done()
			return nil
		})
	}
	fx.New(
		framework.Module,
		framework.ConfigFile("tenure.yaml"),
		fx.Provide(newClient),
		framework.Component(newCleaner),
	).Run()
}
