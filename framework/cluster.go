package framework

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/internal/kubeconfig"
	"github.com/tenure/tenure/locks"
)

// identity is this replica's identity in every election.
type identity string

// newIdentity returns the configured identity, or $POD_NAME (else the host
// name) followed by a random suffix, so that two processes never share
// an identity even on one host.
func newIdentity(cfg *config.Config) (identity, error) {
	if cfg.Identity != "" {
		return identity(cfg.Identity), nil
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
	return identity(base + "-" + hex.EncodeToString(suffix)), nil
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

// clusterClient returns the app's client if it provides one; else, if some unit's
// lock is in a cluster or the configuration names a kubeconfig, a client
// of the module's own (see kubeconfig.RESTConfig); else nil.
func (r *Runner) clusterClient(app kubernetes.Interface) (kubernetes.Interface, error) {
	if app != nil {
		if r.cfg.Kubeconfig != "" {
			r.log.Warn("kubeconfig ignored: the app provides its own kubernetes.Interface", "kubeconfig", r.cfg.Kubeconfig)
		}
		return app, nil
	}
	var inCluster []*unit
	for _, u := range r.units {
		if u.settings.Lock != locks.KindMemory {
			inCluster = append(inCluster, u)
		}
	}
	if len(inCluster) == 0 && r.cfg.Kubeconfig == "" {
		return nil, nil
	}
	rc, err := kubeconfig.RESTConfig(r.cfg.Kubeconfig)
	if errors.Is(err, kubeconfig.ErrNoCluster) {
		return nil, noClusterError(inCluster)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	rc.QPS, rc.Burst = float32(r.cfg.KubeQPS), r.cfg.KubeBurst
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, nil
}

// noClusterError names the components that need a cluster, by lock kind,
// and the ways forward.
func noClusterError(units []*unit) error {
	var kinds []string
	byKind := map[string][]string{}
	for _, u := range units {
		k := string(u.settings.Lock)
		if byKind[k] == nil {
			kinds = append(kinds, k)
		}
		byKind[k] = append(byKind[k], u.comp.Name())
	}
	slices.Sort(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s (lock %s)", strings.Join(byKind[k], ", "), k))
	}
	what := "component "
	if len(units) > 1 {
		what = "components "
	}
	return fmt.Errorf("%w for %s%s: set kubeconfig (--kubeconfig) or $KUBECONFIG, run in a cluster, provide a kubernetes.Interface to the app, or set lock: memory",
		kubeconfig.ErrNoCluster, what, strings.Join(parts, ", "))
}
