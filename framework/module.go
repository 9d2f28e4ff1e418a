// Package framework is tenure's fx module: it runs one leader election per
// registered component and each component's leader work while this
// replica leads it, and on shutdown cancels the work, waits for it and
// releases the leases so that a standby takes over at once.
//
// A program registers components and runs the app:
//
//	fx.New(
//		framework.Module,
//		framework.ConfigFile("tenure.yaml"),
//		framework.Component(NewBilling),
//		framework.Component(NewReports),
//	).Run()
//
// fx.App.Run handles SIGTERM and SIGINT; a second signal during shutdown
// exits at once. Set fx.StopTimeout above the configured shutdown_timeout
// (fx's default is 15 seconds).
package framework

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.uber.org/fx"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/locks"
)

// Module provides the configuration (*config.Config), the Kubernetes
// client (kubernetes.Interface), the replica's Identity, its Telemetry and
// the Runner; it starts the Runner with the app, and the HTTP endpoint if
// one is configured.
//
// Replace what it provides with fx.Replace or fx.Decorate at the app's
// top level: WithClient does so for the client.
var Module = fx.Module("tenure",
	fx.Provide(
		NewConfig,
		NewClient,
		NewIdentity,
		NewTelemetry,
		NewRunner,
	),
	fx.Invoke(func(*Runner) {}),
	fx.Invoke(registerHTTP),
)

// ConfigSources are the layers of configuration NewConfig loads. Supply
// them with ConfigFile or ConfigYAML; without them the configuration is
// the defaults and the TENURE_ environment variables.
type ConfigSources []config.Source

// ConfigFile makes the app read its configuration from the YAML file at
// path, with environment overrides.
func ConfigFile(path string) fx.Option {
	return fx.Supply(ConfigSources(config.Sources(path)))
}

// ConfigYAML makes the app read its configuration from YAML text, such as
// an embedded file, with environment overrides; name names it in errors.
func ConfigYAML(name string, data []byte) fx.Option {
	return fx.Supply(ConfigSources{config.YAML(name, data), config.Env(nil)})
}

// WithClient makes the app use cs instead of a client built from the
// configuration.
func WithClient(cs kubernetes.Interface) fx.Option {
	return fx.Decorate(func() kubernetes.Interface { return cs })
}

// Component registers a component constructor: a function returning a
// components.Component (or a type that implements it), with any
// dependencies from the app as its parameters. It is run at start-up,
// like any fx constructor.
func Component(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor, fx.As(new(components.Component)), fx.ResultTags(`group:"components"`)))
}

// ConfigParams are NewConfig's dependencies.
type ConfigParams struct {
	fx.In
	Sources ConfigSources `optional:"true"`
}

// NewConfig loads the configuration from p.Sources, or from the
// environment alone if there are none.
func NewConfig(p ConfigParams) (*config.Config, error) {
	srcs := []config.Source(p.Sources)
	if srcs == nil {
		srcs = config.Sources("")
	}
	return config.Load(srcs...)
}

// NewClient builds a Kubernetes client from the kubeconfig file the
// configuration names; else, in a cluster, from the pod's service
// account; else from $KUBECONFIG or ~/.kube/config. If none exists and the
// configuration uses only memory locks it returns a nil client: a program
// without a cluster has nothing to talk to.
func NewClient(cfg *config.Config) (kubernetes.Interface, error) {
	rc, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		if clientcmd.IsEmptyConfig(err) && !needsCluster(cfg) {
			return nil, nil
		}
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	rc.QPS, rc.Burst = float32(cfg.KubeQPS), cfg.KubeBurst
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %q: %w", kubeconfig, err)
		}
		return rc, nil
	}
	rc, err := rest.InClusterConfig()
	if err == nil {
		return rc, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// needsCluster says whether any lock the configuration names is in
// Kubernetes.
func needsCluster(cfg *config.Config) bool {
	if cfg.Defaults.Lock != locks.KindMemory {
		return true
	}
	for _, c := range cfg.Components {
		if c.Settings.Lock != "" && c.Settings.Lock != locks.KindMemory {
			return true
		}
	}
	return false
}

// Identity is this replica's identity in every election.
type Identity string

// NewIdentity returns the configured identity, or $POD_NAME (else the host
// name) followed by a random suffix, so that two processes never share
// an identity even on one host.
func NewIdentity(cfg *config.Config) (Identity, error) {
	if cfg.Identity != "" {
		return Identity(cfg.Identity), nil
	}
	base := os.Getenv("POD_NAME")
	if base == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("identity: no POD_NAME and no host name (set identity): %w", err)
		}
		base = h
	}
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	return Identity(base + "-" + hex.EncodeToString(suffix)), nil
}

const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// namespace returns the configured namespace, or $POD_NAMESPACE, or the
// pod's own namespace in a cluster, or "default".
func namespace(cfg *config.Config) string {
	if cfg.Namespace != "" {
		return cfg.Namespace
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}
