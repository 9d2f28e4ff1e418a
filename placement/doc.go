// Package placement spreads a program's leaderships over its replicas and
// moves them on purpose: when replicas join, leave, shut down or are
// cordoned.
//
// # Design
//
// Membership: every replica announces itself in a member record: its
// identity, the components it campaigns for now (not those whose election
// waits out a failure backoff), its start time, revision and zone, and
// whether it is cordoned or shutting down. Components are named by a key
// that is the same on every replica and differs between programs: the
// framework uses each component's lock. Replicas of one placement group
// (see WithGroup) are placed together.
// In a cluster a member record is a Lease labelled LabelMember, renewed
// like a lock and owned by the replica's Pod when the Pod is known, so
// that it goes when the Pod goes; a record unchanged for its lease is
// expired for every reader, judged on the reader's own clock from when it
// last saw the record change, as an election judges a lock; a record a
// reader has not seen change (it was there when the reader started) counts
// only while its own renew time says it is live, so that the record of a
// replica killed long ago does not come back with every new reader. Membership
// costs one renewal per replica per interval, whatever the number of
// components.
//
// Decision: one replica, the coordinator, computes the placement: the
// leader of a tenure election of its own. Plan is a pure function of the
// members and the locks' holders, so a coordinator that takes over
// decides what the last one would have.
//
// Moves: the coordinator asks a holder to move by writing
// locks.PreferredHolderAnnotation on the component's lock, conditional on
// the version it read. The holder drains its work, renewing meanwhile,
// and hands the lock over to the replica asked for (see package election:
// a planned hand-over). A move whose target stops being a place for the
// leadership before it is done (it crashed, stops or was cordoned) is
// redirected where the plan now sends it, or withdrawn; a coordinator
// that takes over reads the moves already asked on the locks. No move is
// asked in a round in which leaderships without a holder were taken
// (replicas starting together take their locks unevenly over several
// rounds): the plan waits for the spread to stop changing by itself, so
// that it moves each leadership once rather than back and forth. Every
// move goes through the lock's own
// compare-and-swap, so a stale, partitioned or frozen coordinator, or two
// of them, can cause a poor move, never two leaders.
//
// A replica that shuts down marks its member record first and, a retry
// period later (so that replicas stopping together see each other's marks
// and plan alike), asks for its own leaderships to move to the newest
// eligible replicas, so that a rolling update moves each leadership once,
// to a replica that stays.
package placement
