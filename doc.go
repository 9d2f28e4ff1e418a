// Package tenure is the root of a Go framework that runs many components
// in one program, each under its own Kubernetes leader election, and fails
// over between replicas fast and safely. This package holds no code; start
// from one of these:
//
//   - A program of components: package framework. framework.Module is the
//     fx module; framework.Component registers a component,
//     framework.ConfigFile or framework.ConfigYAML its configuration. The
//     README's first program is the one to copy.
//   - A component: components.New, a name and the work to do while this
//     replica leads; components.WithSettings for settings of its own.
//   - The leader work: election.TermFromContext gives its term (identity
//     and fencing token); election.Valid, called before each action,
//     checks that the term is still valid.
//   - One election without the framework: election.New on a lock, then
//     Run; see its Example.
//   - A lock: locks.NewLeaseLock (recommended), locks.NewConfigMapLock
//     (legacy), each with locks.WithIdentity; or a type of your own that
//     implements locks.Lock and passes the suite of package
//     locks/lockstest.
//   - The YAML and environment configuration: config.Load; every key is
//     in config/example.yaml.
package tenure
