package election_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/leadertest"
	"github.com/tenure/tenure/locks"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// Short timings for the real API server. The lease is whole seconds on
// the wire.
const (
	kLease    = 2 * time.Second
	kDeadline = 1500 * time.Millisecond
	kRetry    = 200 * time.Millisecond
)

type kubeCandidate struct {
	*election.Election
	cancel context.CancelFunc
	done   chan struct{}
}

func (c *kubeCandidate) stop() {
	c.cancel()
	<-c.done
}

type lockMaker func(t *testing.T, cs kubernetes.Interface, ns, name, id string) locks.Lock

var lockKinds = map[string]lockMaker{
	// Lease locks follow their Lease through a watch shared per client
	// and namespace while the election runs.
	"lease": func(t *testing.T, cs kubernetes.Interface, ns, name, id string) locks.Lock {
		l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, name, locks.WithIdentity(id))
		require.NoError(t, err)
		return l
	},
	"lease-polling": func(t *testing.T, cs kubernetes.Interface, ns, name, id string) locks.Lock {
		l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, name, locks.WithIdentity(id), locks.WithoutWatch())
		require.NoError(t, err)
		return l
	},
	"configmap": func(t *testing.T, cs kubernetes.Interface, ns, name, id string) locks.Lock {
		l, err := locks.NewConfigMapLock(cs.CoreV1(), ns, name, locks.WithIdentity(id))
		require.NoError(t, err)
		return l
	},
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func startCandidate(t *testing.T, lock locks.Lock, led *leadertest.Ledger, mutate ...func(*election.Config)) *kubeCandidate {
	t.Helper()
	cfg := election.Config{
		Lock: lock, LeaseDuration: kLease, RenewDeadline: kDeadline, RetryPeriod: kRetry, Logger: quiet,
		OnStartedLeading: func(ctx context.Context) {
			term, _ := election.TermFromContext(ctx)
			led.Begin(term.Identity, term.FencingToken)
			<-ctx.Done()
			led.End(term.Identity)
		},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	e, err := election.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	c := &kubeCandidate{Election: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		_ = e.Run(ctx)
	}()
	t.Cleanup(c.stop)
	return c
}

func TestElectionOnRealAPIServer(t *testing.T) {
	for kind, makeLock := range lockKinds {
		t.Run(kind, func(t *testing.T) {
			t.Run("GracefulHandOver", func(t *testing.T) { testGracefulHandOver(t, makeLock) })
			t.Run("CrashFailOver", func(t *testing.T) { testCrashFailOver(t, makeLock) })
			t.Run("DeletedLock", func(t *testing.T) { testDeletedLock(t, makeLock) })
			t.Run("CorruptedRecord", func(t *testing.T) { testCorruptedRecord(t, makeLock, kind) })
			t.Run("DuplicateIdentity", func(t *testing.T) { testDuplicateIdentity(t, makeLock) })
		})
	}
}

func testGracefulHandOver(t *testing.T, makeLock lockMaker) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	led := leadertest.New()
	cands := map[string]*kubeCandidate{}
	for _, id := range []string{"a", "b", "c"} {
		cands[id] = startCandidate(t, makeLock(t, cs, ns, "lock", id), led)
	}
	for range 4 {
		leader := led.Leader(t)
		stopped := time.Now()
		cands[leader].stop()
		delete(cands, leader)
		if len(cands) == 0 {
			break
		}
		next := led.Leader(t)
		took := led.Started(next).Sub(stopped)
		assert.Less(t, took, kLease, "a released lock is taken before the lease would expire (took %v)", took)
	}
	led.Check(t)
}

func testCrashFailOver(t *testing.T, makeLock lockMaker) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	led := leadertest.New()
	crashing := func(c *election.Config) { c.KeepLeaseOnStop = true }
	cands := map[string]*kubeCandidate{}
	for _, id := range []string{"a", "b"} {
		cands[id] = startCandidate(t, makeLock(t, cs, ns, "lock", id), led, crashing)
	}
	leader := led.Leader(t)
	crashed := time.Now()
	cands[leader].stop() // no release: as if the process died
	next := led.Leader(t)
	took := led.Started(next).Sub(crashed)
	// The follower last saw a renewal at most one renew interval (750ms
	// by default at these timings, 900ms at its longest jitter) before
	// the crash; it must wait a whole lease from then.
	assert.Greater(t, took, kLease-900*time.Millisecond-kRetry, "taken over before the lease could expire")
	assert.Less(t, took, kLease+time.Second, "taken over long after the lease expired")
	led.Check(t)
}

func testDeletedLock(t *testing.T, makeLock lockMaker) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	// A lock every candidate has seen exist (see the package
	// documentation for a lock deleted under a candidate that never did).
	_, err := makeLock(t, cs, ns, "lock", "setup").Create(context.Background(), locks.Record{})
	require.NoError(t, err)
	led := leadertest.New()
	var cands []*kubeCandidate
	for _, id := range []string{"a", "b"} {
		cands = append(cands, startCandidate(t, makeLock(t, cs, ns, "lock", id), led))
	}
	first := led.Leader(t)
	for _, c := range cands {
		require.Eventually(t, func() bool { return c.Leader() == first }, 10*time.Second, 5*time.Millisecond, "every candidate has seen the lock held")
	}
	deleted := time.Now()
	deleteLockObject(t, cs, ns, "lock")
	require.Eventually(t, func() bool { return led.Ended() > 0 }, 10*time.Second, 5*time.Millisecond, "the leader steps down")
	assert.Equal(t, first, led.Last().Who)
	// The default renew interval is at most half the renew deadline, and
	// jittered by at most a fifth more.
	assert.Less(t, led.Last().End.Sub(deleted), kDeadline*6/10+kRetry, "the leader stepped down at its next renewal")
	next := led.Leader(t)
	assert.GreaterOrEqual(t, led.Started(next).Sub(deleted), kLease-kRetry, "nobody re-created the lock before a lease passed")
	led.Check(t)
}

func deleteLockObject(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	ctx := context.Background()
	errLease := cs.CoordinationV1().Leases(ns).Delete(ctx, name, metav1.DeleteOptions{})
	errCM := cs.CoreV1().ConfigMaps(ns).Delete(ctx, name, metav1.DeleteOptions{})
	require.False(t, errLease != nil && errCM != nil, "delete: %v / %v", errLease, errCM)
}

func testCorruptedRecord(t *testing.T, makeLock lockMaker, kind string) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	// A record nobody can read, written by someone else.
	if kind == "configmap" {
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: "lock", Annotations: map[string]string{locks.LeaderAnnotation: "{garbage"},
		}}, metav1.CreateOptions{})
		require.NoError(t, err)
	} else {
		l := makeLock(t, cs, ns, "lock", "x")
		_, err := l.Create(ctx, locks.Record{HolderIdentity: "x", LeaseDuration: time.Hour})
		require.NoError(t, err)
		lease, err := cs.CoordinationV1().Leases(ns).Get(ctx, "lock", metav1.GetOptions{})
		require.NoError(t, err)
		lease.Spec.LeaseDurationSeconds = nil
		_, err = cs.CoordinationV1().Leases(ns).Update(ctx, lease, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	led := leadertest.New()
	started := time.Now()
	startCandidate(t, makeLock(t, cs, ns, "lock", "a"), led)
	led.Leader(t)
	took := led.Started("a").Sub(started)
	assert.GreaterOrEqual(t, took, kLease, "an unreadable record is taken over only after a whole lease")
}

// TestInteropWithClientGo runs a tenure candidate and a client-go
// LeaderElector on one Lease: each sees the other lead, hand-over works
// both ways, gracefully and after a crash, and their leader work never
// overlaps.
func TestInteropWithClientGo(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	led := leadertest.New()

	startClientGo := func(id string, release bool) (context.CancelFunc, chan struct{}, *sync.Map) {
		seen := &sync.Map{}
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: "shared"},
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		}
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: kLease, RenewDeadline: kDeadline, RetryPeriod: kRetry,
			ReleaseOnCancel: release, Name: "shared",
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) { led.Begin(id, -1) },
				OnStoppedLeading: func() { led.End(id) },
				OnNewLeader:      func(identity string) { seen.Store(identity, true) },
			},
		})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			le.Run(ctx)
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		return cancel, done, seen
	}

	// client-go leads first; tenure follows and sees it.
	cancelCG, doneCG, _ := startClientGo("client-go-1", true)
	require.Equal(t, "client-go-1", led.Leader(t))
	var tenureSaw sync.Map
	ours := startCandidate(t, lockKinds["lease"](t, cs, ns, "shared", "tenure"), led, func(c *election.Config) {
		c.OnNewLeader = func(id string) { tenureSaw.Store(id, true) }
		c.Name = "shared"
	})
	require.Eventually(t, func() bool { return ours.Leader() == "client-go-1" }, 10*time.Second, 5*time.Millisecond)

	// client-go releases: tenure leads at once.
	stopped := time.Now()
	cancelCG()
	<-doneCG
	require.Equal(t, "tenure", led.Leader(t))
	assert.Less(t, led.Started("tenure").Sub(stopped), kLease, "took a released client-go lease at once")

	// A new client-go candidate sees tenure lead; tenure releases on stop
	// and client-go leads after its next poll.
	cancelCG2, doneCG2, cgSaw := startClientGo("client-go-2", false)
	require.Eventually(t, func() bool { _, ok := cgSaw.Load("tenure"); return ok }, 10*time.Second, 5*time.Millisecond, "client-go sees tenure lead")
	stopped = time.Now()
	ours.stop()
	require.Equal(t, "client-go-2", led.Leader(t))
	assert.Less(t, led.Started("client-go-2").Sub(stopped), kLease, "client-go took tenure's released lease before it would expire")

	// client-go crashes without releasing: tenure takes over after expiry.
	ours2 := startCandidate(t, lockKinds["lease"](t, cs, ns, "shared", "tenure-2"), led)
	require.Eventually(t, func() bool { return ours2.Leader() == "client-go-2" }, 10*time.Second, 5*time.Millisecond)
	crashed := time.Now()
	cancelCG2()
	<-doneCG2
	require.Equal(t, "tenure-2", led.Leader(t))
	assert.Greater(t, led.Started("tenure-2").Sub(crashed), kLease-2*kRetry, "waited for client-go's lease to expire")
	_, sawCG := tenureSaw.Load("client-go-1")
	assert.True(t, sawCG, "tenure's OnNewLeader saw client-go")
	led.Check(t)
}

// v023Record is the leader election record of client-go v0.23, the last
// version with a ConfigMap lock.
type v023Record struct {
	HolderIdentity       string      `json:"holderIdentity"`
	LeaseDurationSeconds int         `json:"leaseDurationSeconds"`
	AcquireTime          metav1.Time `json:"acquireTime"`
	RenewTime            metav1.Time `json:"renewTime"`
	LeaderTransitions    int         `json:"leaderTransitions"`
}

// TestInteropWithClientGoV023ConfigMap: a ConfigMap record in the exact
// format client-go v0.23 wrote is respected until it expires, then taken
// over; what tenure writes reads back in that format.
func TestInteropWithClientGoV023ConfigMap(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	now := metav1.NewTime(time.Now())
	old, err := json.Marshal(v023Record{HolderIdentity: "old-go", LeaseDurationSeconds: 2, AcquireTime: now, RenewTime: now, LeaderTransitions: 6})
	require.NoError(t, err)
	_, err = cs.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "legacy", Annotations: map[string]string{locks.LeaderAnnotation: string(old)},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)

	led := leadertest.New()
	started := time.Now()
	c := startCandidate(t, lockKinds["configmap"](t, cs, ns, "legacy", "tenure"), led)
	require.Eventually(t, func() bool { return c.Leader() == "old-go" }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, "tenure", led.Leader(t))
	assert.GreaterOrEqual(t, led.Started("tenure").Sub(started), 2*time.Second, "the v0.23 lease was respected")

	cm, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "legacy", metav1.GetOptions{})
	require.NoError(t, err)
	var back v023Record
	require.NoError(t, json.Unmarshal([]byte(cm.Annotations[locks.LeaderAnnotation]), &back))
	assert.Equal(t, "tenure", back.HolderIdentity)
	assert.Equal(t, 2, back.LeaseDurationSeconds)
	assert.Equal(t, 7, back.LeaderTransitions)
	assert.False(t, back.RenewTime.IsZero())
	fmt.Fprintln(io.Discard, back)
}

// syncBuffer is a log destination that tests read while elections write.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testDuplicateIdentity: two candidates configured with the same identity
// never both run leader work; the one that finds its identity in a record
// it did not write reports it, and waits for the lease to expire or be
// released, as for any other holder.
func testDuplicateIdentity(t *testing.T, makeLock lockMaker) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	led := leadertest.New()
	var logs syncBuffer
	twins := map[string]*kubeCandidate{}
	for _, who := range []string{"twin#1", "twin#2"} {
		twins[who] = startCandidate(t, makeLock(t, cs, ns, "lock", "twin"), led, func(c *election.Config) {
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			c.OnStartedLeading = func(ctx context.Context) {
				term, _ := election.TermFromContext(ctx)
				led.Begin(who, term.FencingToken)
				<-ctx.Done()
				led.End(who)
			}
		})
	}
	first := led.Leader(t)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "another candidate has the same identity")
	}, 10*time.Second, 10*time.Millisecond, "the duplicate is reported")
	require.Never(t, func() bool { return len(led.Leaders()) != 1 || led.Ended() > 0 }, 2*kLease, 20*time.Millisecond,
		"the other twin neither leads alongside nor takes over from a leader that renews")
	twins[first].stop()
	next := led.Leader(t)
	assert.NotEqual(t, first, next, "the other twin leads once the lease is released")
	led.Check(t)
}

// TestNoCredentialsInLogsOrSpans: a candidate whose token the API server
// refuses logs and traces the refusal, never the token.
func TestNoCredentialsInLogsOrSpans(t *testing.T) {
	ns := kubetest.Namespace(t)
	const secret = "secret-token-that-must-not-leak"
	cfg := kubetest.Config(t)
	cfg.BearerToken = secret
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	var logs syncBuffer
	spans := tracetest.NewSpanRecorder()
	for kind, makeLock := range lockKinds {
		e, err := election.New(election.Config{
			Lock: makeLock(t, cs, ns, "lock", "a"), LeaseDuration: kLease, RenewDeadline: kDeadline, RetryPeriod: kRetry,
			Logger:         slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
		})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 3*kRetry)
		ok, err := e.Acquire(ctx) // fails, logs, retries until ctx ends
		cancel()
		require.False(t, ok, kind)
		require.Error(t, err, kind)
	}
	assert.Contains(t, logs.String(), "Unauthorized", "the refusal is logged")
	assert.NotContains(t, logs.String(), secret)
	require.NotEmpty(t, spans.Ended())
	for _, sp := range spans.Ended() {
		assert.NotContains(t, fmt.Sprint(sp.Attributes(), sp.Events(), sp.Status()), secret, "span %s", sp.Name())
	}
	assert.Contains(t, fmt.Sprint(spans.Ended()[0].Attributes()), "unauthorized", "the spans say why")
}

// answerLosingLock loses the answer of the next write that lands while
// lose is set, as a connection cut after the request arrived.
type answerLosingLock struct {
	locks.Lock
	lose atomic.Bool
}

func (l *answerLosingLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	obs, err := l.Lock.Update(ctx, version, r)
	if err == nil && l.lose.CompareAndSwap(true, false) {
		return locks.Observed{}, errors.New("connection reset by peer")
	}
	return obs, err
}

// TestLostAcquisitionAnswerOnALease (issue 14, item 7): a candidate whose
// acquiring write landed on a Lease but whose answer was lost recognises
// its own write at its next attempt and leads at once, instead of taking
// the record for a twin's and waiting a whole lease.
func TestLostAcquisitionAnswerOnALease(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	lease, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "lost-answer")
	require.NoError(t, err)
	_, err = lease.Create(context.Background(), locks.Record{}) // free
	require.NoError(t, err)
	var logs syncBuffer
	lock := &answerLosingLock{Lock: lease}
	e, err := election.New(election.Config{
		Lock: lock, Identity: "a", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	require.NoError(t, err)
	lock.lose.Store(true)
	held, err := e.TryAcquireOrRenew(context.Background())
	require.Error(t, err)
	require.False(t, held)
	held, err = e.TryAcquireOrRenew(context.Background())
	require.NoError(t, err)
	require.True(t, held, "its own write, recognised")
	term, ok := e.Term()
	require.True(t, ok)
	assert.Equal(t, int32(1), term.FencingToken)
	assert.NotContains(t, logs.String(), "another candidate has the same identity")
}
