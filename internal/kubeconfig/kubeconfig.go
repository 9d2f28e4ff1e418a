// Package kubeconfig finds the Kubernetes cluster a tenure program talks
// to, in the order kubectl and controller-runtime use, so that the
// framework, the examples and the tools agree.
package kubeconfig

import (
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ErrNoCluster is returned, wrapped, when nothing names a cluster: no
// explicit path, no $KUBECONFIG, no ~/.kube/config and not in a pod.
// Callers say what the user can do about it.
var ErrNoCluster = errors.New("no Kubernetes cluster configured")

// RESTConfig returns the client configuration from the kubeconfig file at
// path if path is not empty (it must exist), else from the files
// $KUBECONFIG lists, else from ~/.kube/config, else from the pod's service
// account in a cluster: clientcmd's standard loading rules.
func RESTConfig(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	switch {
	case err == nil:
		return rc, nil
	case clientcmd.IsEmptyConfig(err) && path != "":
		return nil, fmt.Errorf("kubeconfig %q names no cluster", path)
	case clientcmd.IsEmptyConfig(err):
		// client-go's own message says "try setting KUBERNETES_MASTER",
		// a variable nothing reads any more.
		return nil, ErrNoCluster
	case path != "":
		return nil, fmt.Errorf("kubeconfig %q: %w", path, err)
	default:
		return nil, err
	}
}
