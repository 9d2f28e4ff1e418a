// Package framework is tenure's fx module: it runs one leader election per
// registered component, and each component's leader work while this
// replica leads it; on shutdown it cancels the work, waits for it and
// releases the leases, so that a standby takes over at once.
//
// # The program
//
// A program registers its components, names its configuration and runs
// the app:
//
//	func main() {
//		fx.New(
//			framework.Module,
//			framework.ConfigFile("tenure.yaml"),
//			framework.Component(NewBilling),
//			framework.Component(NewReports),
//			framework.ExitOnSecondSignal(),
//			fx.StopTimeout(time.Minute), // above shutdown_timeout
//		).Run()
//	}
//
// A component constructor is any fx constructor that returns a
// components.Component; its parameters come from the app's graph. Each
// component's election is declared in the YAML (see package config): lock
// kind (lease, configmap or memory), namespace, timings.
//
// # What the module provides and takes
//
// Module provides one value to the app: the *Runner, to read each
// election's status and health. What else it builds (the configuration,
// the identity, its telemetry) it keeps to itself, so it joins an app
// that has its own of any of them. It takes from the app, when the app
// provides them:
//
//   - kubernetes.Interface: the client its Lease and ConfigMap locks use.
//     Without one it builds its own, only if some lock is in a cluster,
//     from the kubeconfig key (--kubeconfig), else $KUBECONFIG, else
//     ~/.kube/config, else the pod's service account, as kubectl does.
//   - *slog.Logger, for its logs (default: slog.Default()).
//   - metric.MeterProvider, trace.TracerProvider and prometheus.Registerer:
//     see Telemetry below.
//   - *locks.MemorySpace, to share memory locks between apps in one
//     process (tests, demos).
//
// # Shared work
//
// What the components' leader work shares and every replica runs, leader
// or not, such as an informer cache or a controller-runtime manager (see
// contrib/controllerruntime), is registered with Shared: the module
// starts it before the elections, begins them once it is ready, and stops
// it after every leader work has returned.
//
// # Shutdown
//
// When the app stops, every component's leader work is cancelled; each
// election keeps renewing its lease while its work winds down and
// releases it as soon as the work has returned. If some work has not
// returned within shutdown_timeout (or before the app's stop deadline),
// the stop returns an error naming it and waits no longer; its term goes
// on, since a term lasts until its work has returned: its lease is renewed
// while the work runs and released after. fx.App.Run then exits the
// process, and the lease expires on its own, with the work gone. Set
// fx.StopTimeout above shutdown_timeout (fx's default is 15 seconds).
//
// # Signals
//
// The module does not handle signals: fx.App.Run stops the app on the
// first SIGTERM or SIGINT. ExitOnSecondSignal is the opt-in for main to
// make a second one, while the elections stop, end the process at once.
//
// # Telemetry and health
//
// Every election's attempts and terms are OpenTelemetry spans and
// metrics. Spans go to the app's trace.TracerProvider if it provides one,
// else as the tracing section of the configuration says (off by default).
// Metrics go to the app's metric.MeterProvider if it provides one; else,
// if it provides a prometheus.Registerer, they are exported to it
// (tenure_election_leader and the others); else, with http.address set,
// to a registry of the module's own with the Go and process collectors.
// One running module exports to a registry at a time (its series carry the
// election's name only): a second fails to start, saying so.
//
// The last spans (the releases) are made while the module stops: shut the
// app's providers down from a stop hook their constructor appends, which
// fx runs after the module's, not from an fx.Invoke of the app's, which
// fx runs before. The same holds for anything the leader work uses.
//
// With http.address set the module serves /metrics, /healthz,
// /healthz/<component>, /readyz and /leaders; Runner.Handler serves the
// same (but /metrics) on the app's own mux, and Runner.HealthChecks gives
// each election's liveness check for controller-runtime's
// mgr.AddHealthzCheck.
package framework
