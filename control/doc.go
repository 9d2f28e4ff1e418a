// Package control reads and steers the leader elections of a cluster: who
// leads what, since when, which replicas are there, and planned moves of a
// leadership to another replica, cordons and drains. It is what the
// kubectl plugin kubectl-tenure (cmd/kubectl-tenure) is built on, for
// programs that want the same.
//
// Status lists every leader election in a namespace: tenure's Leases and
// ConfigMaps, and those of client-go or the Python clients on the same
// locks, shown as far as their records go (a record that cannot be read is
// listed with the reason, never an error). Replicas are known by the member
// records that placement keeps (see package placement).
//
// Control writes only what tenure owns, through the lock's own
// compare-and-swap: the annotation that asks a leader to hand its lock
// over (locks.PreferredHolderAnnotation) and the cordon annotation of a
// member record (placement.AnnotationCordoned). It never writes a record's
// holder: a leader hands over only after its work has returned (see
// package election), so two operators moving one component at once, or a
// move racing a crash, can make a poor move, never two leaders.
package control
