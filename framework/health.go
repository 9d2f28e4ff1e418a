package framework

import (
	"fmt"
	"net/http"
	"strings"
)

// HealthChecks returns each enabled component's liveness check, by
// component name. A check fails while this replica leads the component,
// or has just lost it for want of renewals, and has not reached the lock
// for renew_deadline + http.healthz_margin: a liveness probe then
// restarts the process. A standby that cannot reach its lock is not at
// fault and passes. With controller-runtime:
//
//	for name, check := range runner.HealthChecks() {
//		if err := mgr.AddHealthzCheck(name, check); err != nil {
//			return err
//		}
//	}
func (r *Runner) HealthChecks() map[string]func(*http.Request) error {
	checks := make(map[string]func(*http.Request) error, len(r.units))
	for _, u := range r.units {
		checks[u.comp.Name()] = func(*http.Request) error { return u.check() }
	}
	return checks
}

// check is the unit's liveness check.
func (u *unit) check() error {
	return u.election.Check(u.r.cfg.HTTP.HealthzMargin)
}

// The two healthz handlers answer as Kubernetes components do
// (k8s.io/apiserver/pkg/server/healthz), so that probes and people read
// them alike; that package is not imported for these few lines, as it
// would bring much of the API server with it. Unlike the API server,
// /healthz shows why a check fails: the reasons name only a lock and
// durations, and the kubelet records them in the probe's events.

// healthz serves /healthz: "ok", or with ?verbose every check and
// "healthz check passed"; if a check fails, every check and "healthz
// check failed", with status 500.
func (r *Runner) healthz(w http.ResponseWriter, req *http.Request) {
	var out strings.Builder
	failed := false
	for _, u := range r.units {
		if err := u.check(); err != nil {
			failed = true
			fmt.Fprintf(&out, "[-]%s failed: %v\n", u.comp.Name(), err)
		} else {
			fmt.Fprintf(&out, "[+]%s ok\n", u.comp.Name())
		}
	}
	if failed {
		http.Error(w, out.String()+"healthz check failed", http.StatusInternalServerError)
		return
	}
	plainText(w)
	if _, verbose := req.URL.Query()["verbose"]; !verbose {
		fmt.Fprint(w, "ok")
		return
	}
	fmt.Fprint(w, out.String()+"healthz check passed\n")
}

// healthzOf serves /healthz/<component>: "ok", or the reason with status
// 500; an unknown component is 404.
func (r *Runner) healthzOf(w http.ResponseWriter, req *http.Request) {
	name := req.PathValue("component")
	for _, u := range r.units {
		if u.comp.Name() != name {
			continue
		}
		if err := u.check(); err != nil {
			http.Error(w, fmt.Sprintf("internal server error: %v", err), http.StatusInternalServerError)
			return
		}
		plainText(w)
		fmt.Fprint(w, "ok")
		return
	}
	http.Error(w, fmt.Sprintf("no component %q: known are %s", name, strings.Join(r.names(), ", ")), http.StatusNotFound)
}

func plainText(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// names are the enabled components' names.
func (r *Runner) names() []string {
	names := make([]string, 0, len(r.units))
	for _, u := range r.units {
		names = append(names, u.comp.Name())
	}
	return names
}
