package locks

// Kind names a kind of lock, as a program's configuration chooses one for
// each component (the YAML key "lock").
type Kind string

// The kinds of lock.
const (
	// KindLease keeps the record in a coordination.k8s.io Lease
	// (LeaseLock): the recommended kind.
	KindLease Kind = "lease"
	// KindConfigMap keeps the record in an annotation of a ConfigMap
	// (ConfigMapLock), shared with client-go before v0.24 and the Python
	// clients.
	KindConfigMap Kind = "configmap"
	// KindMemory keeps the record in process memory (MemoryLock): for
	// tests and demos, since it cannot coordinate processes.
	KindMemory Kind = "memory"
)

// Key names the lock of kind k named name in namespace as
// "kind/namespace/name": how a replica's member record lists the locks it
// campaigns for (see package placement), the same on every replica of a
// program and different between programs.
func (k Kind) Key(namespace, name string) string {
	return string(k) + "/" + namespace + "/" + name
}
