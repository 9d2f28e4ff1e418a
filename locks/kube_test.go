package locks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"

	"github.com/tenure/tenure/internal/faultproxy"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/locks/lockstest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// hang makes a Subject's Hang: the proxy stalls every connection, open
// and new, until healed.
func hang(p *faultproxy.Proxy) func(*testing.T) func() {
	return func(*testing.T) func() {
		p.Stall()
		return p.Heal
	}
}

func TestLeaseLock(t *testing.T) {
	lockstest.Run(t, func(t *testing.T) lockstest.Subject {
		cs := kubetest.Client(t)
		ns := kubetest.Namespace(t)
		proxy, pcs := kubetest.ViaProxy(t, 0)
		a, err := locks.NewLeaseLock(pcs.CoordinationV1(), ns, "lock", locks.WithIdentity("a"))
		require.NoError(t, err)
		b, err := locks.NewLeaseLock(kubetest.Client(t).CoordinationV1(), ns, "lock", locks.WithIdentity("b"))
		require.NoError(t, err)
		leases := cs.CoordinationV1().Leases(ns)
		return lockstest.Subject{
			Lock:  a,
			Other: b,
			Hang:  hang(proxy),
			Corrupt: func(t *testing.T) []byte {
				// The API server refuses a negative duration, but takes a
				// holder without one: no candidate can tell when it expires.
				lease, err := leases.Get(bg(t), "lock", metav1.GetOptions{})
				require.NoError(t, err)
				lease.Spec.HolderIdentity = ptr.To("someone")
				lease.Spec.LeaseDurationSeconds = nil
				_, err = leases.Update(bg(t), lease, metav1.UpdateOptions{})
				require.NoError(t, err)
				return nil
			},
			Delete: func(t *testing.T) {
				require.NoError(t, leases.Delete(bg(t), "lock", metav1.DeleteOptions{}))
			},
		}
	})
}

// TestWatchedLeaseLock runs the suite on Lease locks that follow their
// Lease and read through the shared watch's cache.
func TestWatchedLeaseLock(t *testing.T) {
	lockstest.Run(t, func(t *testing.T) lockstest.Subject {
		cs := kubetest.Client(t)
		ns := kubetest.Namespace(t)
		a, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "lock", locks.WithIdentity("a"))
		require.NoError(t, err)
		b, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "lock", locks.WithIdentity("b"))
		require.NoError(t, err)
		follow(t, a)
		follow(t, b)
		leases := cs.CoordinationV1().Leases(ns)
		return lockstest.Subject{
			Lock:  a,
			Other: b,
			Corrupt: func(t *testing.T) []byte {
				lease, err := leases.Get(bg(t), "lock", metav1.GetOptions{})
				require.NoError(t, err)
				lease.Spec.HolderIdentity = ptr.To("someone")
				lease.Spec.LeaseDurationSeconds = nil
				_, err = leases.Update(bg(t), lease, metav1.UpdateOptions{})
				require.NoError(t, err)
				return nil
			},
			Delete: func(t *testing.T) {
				require.NoError(t, leases.Delete(bg(t), "lock", metav1.DeleteOptions{}))
			},
			Eventual: true,
		}
	})
}

func TestConfigMapLock(t *testing.T) {
	lockstest.Run(t, func(t *testing.T) lockstest.Subject {
		cs := kubetest.Client(t)
		ns := kubetest.Namespace(t)
		proxy, pcs := kubetest.ViaProxy(t, 0)
		a, err := locks.NewConfigMapLock(pcs.CoreV1(), ns, "lock", locks.WithIdentity("a"))
		require.NoError(t, err)
		b, err := locks.NewConfigMapLock(kubetest.Client(t).CoreV1(), ns, "lock", locks.WithIdentity("b"))
		require.NoError(t, err)
		cms := cs.CoreV1().ConfigMaps(ns)
		return lockstest.Subject{
			Lock:  a,
			Other: b,
			Hang:  hang(proxy),
			Corrupt: func(t *testing.T) []byte {
				raw := `{"holderIdentity":"someone","leaseDurationSeconds":`
				setAnnotation(t, cs, ns, "lock", raw)
				return []byte(raw)
			},
			Delete: func(t *testing.T) {
				require.NoError(t, cms.Delete(bg(t), "lock", metav1.DeleteOptions{}))
			},
		}
	})
}

func setAnnotation(t *testing.T, cs kubernetes.Interface, ns, name, value string) {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(bg(t), name, metav1.GetOptions{})
	require.NoError(t, err)
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[locks.LeaderAnnotation] = value
	_, err = cs.CoreV1().ConfigMaps(ns).Update(bg(t), cm, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func TestLeaseLockKeepsFieldsItDoesNotOwn(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	strategy := coordinationv1.OldestEmulationVersion
	_, err := cs.CoordinationV1().Leases(ns).Create(bg(t), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "lock",
			Labels:      map[string]string{"team": "payments"},
			Annotations: map[string]string{"note": "keep me"},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To("a"),
			LeaseDurationSeconds: ptr.To[int32](15),
			Strategy:             &strategy,
			PreferredHolder:      ptr.To("b"),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "lock", locks.WithLabels(map[string]string{"app": "tenure"}))
	require.NoError(t, err)
	obs, err := l.Get(bg(t))
	require.NoError(t, err)
	assert.Equal(t, string(strategy), obs.Record.Strategy)
	assert.Equal(t, "b", obs.Record.PreferredHolder)

	updated, err := l.Update(bg(t), obs.Version, lockstest.Held("c", at, 1))
	require.NoError(t, err)
	noted, err := l.Annotate(bg(t), updated.Version, nil, map[string]string{locks.PreferredHolderAnnotation: "d"})
	require.NoError(t, err)
	handed := lockstest.Held("d", at, 1)
	_, err = l.Annotate(bg(t), noted.Version, &handed, map[string]string{locks.PreferredHolderAnnotation: "", locks.HandOverAnnotation: "x"})
	require.NoError(t, err)

	lease, err := cs.CoordinationV1().Leases(ns).Get(bg(t), "lock", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "d", *lease.Spec.HolderIdentity)
	assert.Equal(t, map[string]string{"team": "payments", "app": "tenure"}, lease.Labels)
	assert.Equal(t, map[string]string{"note": "keep me", locks.HandOverAnnotation: "x"}, lease.Annotations)
	require.NotNil(t, lease.Spec.Strategy, "spec.strategy must survive an update")
	assert.Equal(t, strategy, *lease.Spec.Strategy)
	require.NotNil(t, lease.Spec.PreferredHolder, "spec.preferredHolder must survive an update")
	assert.Equal(t, "b", *lease.Spec.PreferredHolder)
}

func TestConfigMapLockKeepsDataAndOtherAnnotations(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	_, err := cs.CoreV1().ConfigMaps(ns).Create(bg(t), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "lock",
			Labels:      map[string]string{"team": "payments"},
			Annotations: map[string]string{"note": "keep me"},
		},
		Data: map[string]string{"config.yaml": "a: 1\n"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	l, err := locks.NewConfigMapLock(cs.CoreV1(), ns, "lock")
	require.NoError(t, err)
	_, err = l.Get(bg(t))
	require.ErrorIs(t, err, locks.ErrNotFound, "a ConfigMap without the annotation holds no record")
	assert.Contains(t, err.Error(), "configmaps/"+ns+"/lock: annotation "+locks.LeaderAnnotation+" is missing")

	created, err := l.Create(bg(t), lockstest.Held("a", at, 0))
	require.NoError(t, err, "Create must adopt an existing ConfigMap that has no record")
	updated, err := l.Update(bg(t), created.Version, lockstest.Held("a", at.Add(time.Second), 0))
	require.NoError(t, err)
	_, err = l.Annotate(bg(t), updated.Version, nil, map[string]string{locks.PreferredHolderAnnotation: "b"})
	require.NoError(t, err)

	cm, err := cs.CoreV1().ConfigMaps(ns).Get(bg(t), "lock", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"config.yaml": "a: 1\n"}, cm.Data)
	assert.Equal(t, "keep me", cm.Annotations["note"])
	assert.Equal(t, "b", cm.Annotations[locks.PreferredHolderAnnotation])
	assert.Equal(t, map[string]string{"team": "payments"}, cm.Labels)
	rec, err := locks.DecodeRecord([]byte(cm.Annotations[locks.LeaderAnnotation]))
	require.NoError(t, err)
	assert.Equal(t, "a", rec.HolderIdentity)
}

func TestConfigMapLockReadsLegacyWriters(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	for name, annotation := range map[string]string{
		"client-go-v0-23": `{"holderIdentity":"old-go","leaseDurationSeconds":15,"acquireTime":"2026-03-14T15:09:26Z","renewTime":"2026-03-14T15:09:36Z","leaderTransitions":4}`,
		"python":          `{"holderIdentity": "py-1", "leaseDurationSeconds": "17", "acquireTime": "2026-03-14 15:09:26.250000", "renewTime": "2026-03-14 15:09:36.000001"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := cs.CoreV1().ConfigMaps(ns).Create(bg(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
				Name: name, Annotations: map[string]string{locks.LeaderAnnotation: annotation},
			}}, metav1.CreateOptions{})
			require.NoError(t, err)
			l, err := locks.NewConfigMapLock(cs.CoreV1(), ns, name)
			require.NoError(t, err)
			obs, err := l.Get(bg(t))
			require.NoError(t, err)
			assert.Equal(t, annotation, string(obs.Raw), "Raw is the annotation as stored")
			assert.NotEmpty(t, obs.Record.HolderIdentity)
			assert.Positive(t, obs.Record.LeaseDuration)
		})
	}
}

func TestConfigMapLockReportsCorruptedAnnotation(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	_, err := cs.CoreV1().ConfigMaps(ns).Create(bg(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "lock", Annotations: map[string]string{locks.LeaderAnnotation: `{"holderIdentity":"a","leaseDurationSeconds":-20}`},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	l, err := locks.NewConfigMapLock(cs.CoreV1(), ns, "lock")
	require.NoError(t, err)
	_, err = l.Get(bg(t))
	require.ErrorIs(t, err, locks.ErrInvalidRecord)
	assert.Equal(t,
		"configmaps/"+ns+"/lock: annotation control-plane.alpha.kubernetes.io/leader: locks: invalid leader election record: leaseDurationSeconds: -20s is negative",
		err.Error())
}

// TestLeaseLockSharesLeasesWithClientGo checks that client-go's own
// LeaseLock and tenure's read each other's writes, and that each one's
// optimistic update fails after the other wrote.
func TestLeaseLockSharesLeasesWithClientGo(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	theirs := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: "shared"},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: "client-go"},
	}
	ours, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "shared", locks.WithIdentity("tenure"))
	require.NoError(t, err)

	cgRecord := resourcelock.LeaderElectionRecord{
		HolderIdentity: "client-go", LeaseDurationSeconds: 15,
		AcquireTime: metav1.NewTime(at), RenewTime: metav1.NewTime(at), LeaderTransitions: 0,
	}
	require.NoError(t, theirs.Create(bg(t), cgRecord))

	obs, err := ours.Get(bg(t))
	require.NoError(t, err)
	assert.Equal(t, "client-go", obs.Record.HolderIdentity)
	assert.Equal(t, 15*time.Second, obs.Record.LeaseDuration)
	assert.True(t, at.Equal(obs.Record.RenewTime))

	_, err = ours.Update(bg(t), obs.Version, lockstest.Held("tenure", at.Add(time.Minute), 1))
	require.NoError(t, err)

	// client-go still holds the Lease it created: its update must conflict.
	err = theirs.Update(bg(t), cgRecord)
	require.Error(t, err)
	assert.True(t, apierrors.IsConflict(err), "client-go's stale update must conflict, got %v", err)

	got, raw, err := theirs.Get(bg(t))
	require.NoError(t, err)
	assert.Equal(t, "tenure", got.HolderIdentity)
	assert.Equal(t, 15, got.LeaseDurationSeconds)
	assert.Equal(t, 1, got.LeaderTransitions)
	assert.True(t, at.Add(time.Minute).Equal(got.RenewTime.Time))
	// client-go's raw form of the record decodes to the same record.
	fromRaw, err := locks.DecodeRecord(raw)
	require.NoError(t, err)
	assert.Equal(t, "tenure", fromRaw.HolderIdentity)

	// client-go writes again (it read the current version); we read it.
	cgRecord.HolderIdentity, cgRecord.LeaderTransitions = "client-go", 2
	require.NoError(t, theirs.Update(bg(t), cgRecord))
	_, err = ours.Update(bg(t), obs.Version, lockstest.Held("tenure", at, 3))
	require.ErrorIs(t, err, locks.ErrConflict, "our stale update must conflict")
	obs, err = ours.Get(bg(t))
	require.NoError(t, err)
	assert.Equal(t, "client-go", obs.Record.HolderIdentity)
	assert.Equal(t, int32(2), obs.Record.LeaderTransitions)
}

// TestLocksReportRefusedCalls: get, create and update by a user without
// RBAC rules (403) and with a bad token (401) fail with errors that name
// the request and the object and keep the API's cause reachable, and the
// record already stored is left as it was.
func TestLocksReportRefusedCalls(t *testing.T) {
	ns := kubetest.Namespace(t)
	admin := kubetest.Client(t)
	nobody, err := kubernetes.NewForConfig(kubetest.UserConfig(t, "nobody"))
	require.NoError(t, err)
	badTokenCfg := rest.CopyConfig(kubetest.Config(t))
	badTokenCfg.BearerToken = "not-a-valid-token"
	badToken, err := kubernetes.NewForConfig(badTokenCfg)
	require.NoError(t, err)

	kinds := map[string]func(cs kubernetes.Interface, name string) locks.Lock{
		"leases": func(cs kubernetes.Interface, name string) locks.Lock {
			l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, name)
			require.NoError(t, err)
			return l
		},
		"configmaps": func(cs kubernetes.Interface, name string) locks.Lock {
			l, err := locks.NewConfigMapLock(cs.CoreV1(), ns, name)
			require.NoError(t, err)
			return l
		},
	}
	users := map[string]struct {
		cs   kubernetes.Interface
		is   func(error) bool
		text string
	}{
		"403": {nobody, apierrors.IsForbidden, `User "nobody" cannot`},
		"401": {badToken, apierrors.IsUnauthorized, "Unauthorized"},
	}
	for kind, newLock := range kinds {
		stored, err := newLock(admin, "held").Create(bg(t), lockstest.Held("a", at, 0))
		require.NoError(t, err)
		for code, u := range users {
			t.Run(kind+"/"+code, func(t *testing.T) {
				l := newLock(u.cs, "held")
				_, err := l.Get(bg(t))
				require.Error(t, err)
				assert.True(t, u.is(err), "the cause stays reachable: %v", err)
				assert.ErrorContains(t, err, "get "+kind+"/"+ns+"/held")
				assert.ErrorContains(t, err, u.text)

				_, err = newLock(u.cs, "new").Create(bg(t), lockstest.Held("b", at, 0))
				require.Error(t, err)
				assert.True(t, u.is(err), "%v", err)
				assert.ErrorContains(t, err, "create "+kind+"/"+ns+"/new")

				_, err = l.Update(bg(t), stored.Version, lockstest.Held("b", at, 1))
				require.Error(t, err)
				assert.True(t, u.is(err), "%v", err)
				assert.ErrorContains(t, err, kind+"/"+ns+"/held")

				now, err := newLock(admin, "held").Get(bg(t))
				require.NoError(t, err)
				assert.Equal(t, stored.Version, now.Version, "nothing was written")
				assert.Equal(t, "a", now.Record.HolderIdentity)
			})
		}
	}
}

// TestLockInMissingNamespace: creating a lock in a namespace that does
// not exist says so.
func TestLockInMissingNamespace(t *testing.T) {
	cs := kubetest.Client(t)
	lease, err := locks.NewLeaseLock(cs.CoordinationV1(), "no-such-namespace", "lock")
	require.NoError(t, err)
	cm, err := locks.NewConfigMapLock(cs.CoreV1(), "no-such-namespace", "lock")
	require.NoError(t, err)
	for _, l := range []locks.Lock{lease, cm} {
		_, err = l.Get(bg(t))
		require.ErrorIs(t, err, locks.ErrNotFound, "a missing lock")
		_, err = l.Create(bg(t), lockstest.Held("a", at, 0))
		require.Error(t, err)
		assert.ErrorContains(t, err, `namespace "no-such-namespace" does not exist`)
		assert.True(t, apierrors.IsNotFound(err))
	}
}

func TestNewLocksValidateNames(t *testing.T) {
	cs := kubernetes.New(nil)
	for _, tc := range []struct {
		ns, name, want string
	}{
		{"", "lock", `namespace ""`},
		{"Bad_NS", "lock", `namespace "Bad_NS"`},
		{"default", "", `name ""`},
		{"default", "UPPER", `name "UPPER"`},
	} {
		_, err := locks.NewLeaseLock(cs.CoordinationV1(), tc.ns, tc.name)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
		_, err = locks.NewConfigMapLock(cs.CoreV1(), tc.ns, tc.name)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	_, err := locks.NewLeaseLock(cs.CoordinationV1(), "default", "lock", locks.WithLabels(map[string]string{"bad key!": "v"}))
	assert.ErrorContains(t, err, `label key "bad key!"`)
	_, err = locks.NewLeaseLock(nil, "default", "lock")
	assert.ErrorContains(t, err, "client is nil")
}

// The JSON patch a Lease update sends must be accepted by the API server
// with a zero duration for a released record (the API rejects 0).
func TestLeaseLockStoresRecordWithoutDuration(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "lock")
	require.NoError(t, err)
	created, err := l.Create(bg(t), locks.Record{})
	require.NoError(t, err)
	assert.Equal(t, locks.Record{}, created.Record)
	var spec map[string]any
	require.NoError(t, json.Unmarshal(created.Raw, &spec))
	assert.NotContains(t, spec, "leaseDurationSeconds")
}

func TestPermissionsNameWhatTheLocksDo(t *testing.T) {
	cs := fake.NewClientset()
	lease, err := locks.NewLeaseLock(cs.CoordinationV1(), "ns", "billing")
	require.NoError(t, err)
	var got []string
	for _, p := range lease.Permissions() {
		got = append(got, p.String())
	}
	assert.Equal(t, []string{
		`get leases.coordination.k8s.io "billing" in namespace "ns"`,
		`create leases.coordination.k8s.io in namespace "ns"`,
		`patch leases.coordination.k8s.io "billing" in namespace "ns"`,
		`list leases.coordination.k8s.io in namespace "ns"`,
		`watch leases.coordination.k8s.io in namespace "ns"`,
	}, got, "a Lease lock follows its Lease through a watch by default")
	polling, err := locks.NewLeaseLock(cs.CoordinationV1(), "ns", "billing", locks.WithoutWatch())
	require.NoError(t, err)
	assert.Len(t, polling.Permissions(), 3, "WithoutWatch: no list or watch")
	cm, err := locks.NewConfigMapLock(cs.CoreV1(), "ns", "legacy")
	require.NoError(t, err)
	assert.Equal(t, locks.Permission{Verb: "patch", Resource: "configmaps", Namespace: "ns", Name: "legacy"}, cm.Permissions()[2])
}

// countingTransport counts requests by method and path.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[req.Method+" "+req.URL.Path]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

func (c *countingTransport) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func TestWatchedLeaseLockReadsTheCacheAndReportsChanges(t *testing.T) {
	ns := kubetest.Namespace(t)
	counter := &countingTransport{n: map[string]int{}}
	cfg := rest.CopyConfig(kubetest.Config(t))
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter }
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	follower, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "lock")
	require.NoError(t, err)
	changes := follow(t, follower)

	leader, err := locks.NewLeaseLock(kubetest.Client(t).CoordinationV1(), ns, "lock")
	require.NoError(t, err)
	obs, err := leader.Create(bg(t), lockstest.Held("leader", time.Now(), 0))
	require.NoError(t, err)
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported for the creation")
	}
	for range 20 {
		got, err := follower.Get(bg(t))
		require.NoError(t, err)
		assert.Equal(t, obs.Version, got.Version)
	}
	get := "GET /apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases/lock"
	assert.Zero(t, counter.count(get), "reads come from the cache")

	_, err = leader.Update(bg(t), obs.Version, lockstest.Held("", time.Now(), 0))
	require.NoError(t, err)
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported for the release")
	}
	got, err := follower.Get(bg(t))
	require.NoError(t, err)
	assert.Empty(t, got.Record.HolderIdentity, "the cache has the release when the change is reported")
	assert.Zero(t, counter.count(get))
}

// TestRecordTooLargeForTheAPI: a holder identity longer than the API
// server takes (a ConfigMap's annotations hold 256 KiB; any request 3 MiB)
// is refused with the API's reason, and the stored record is kept.
func TestRecordTooLargeForTheAPI(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	for _, tc := range []struct {
		lock locks.Lock
		size int
		want string
	}{
		{must(locks.NewConfigMapLock(cs.CoreV1(), ns, "cm")), 300 << 10, "metadata.annotations: Too long"},
		{must(locks.NewLeaseLock(cs.CoordinationV1(), ns, "lease")), 4 << 20, "Request entity too large"},
	} {
		stored, err := tc.lock.Create(bg(t), lockstest.Held("a", at, 0))
		require.NoError(t, err)
		huge := strings.Repeat("x", tc.size)
		_, err = tc.lock.Update(bg(t), stored.Version, lockstest.Held(huge, at, 1))
		require.Error(t, err)
		assert.ErrorContains(t, err, "update "+tc.lock.Describe())
		assert.ErrorContains(t, err, tc.want)
		now, err := tc.lock.Get(bg(t))
		require.NoError(t, err)
		assert.Equal(t, stored.Version, now.Version, "nothing was written")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestBrokenWatchFallsBackToTheAPIServer: while a namespace's watch is
// broken (here its connection is cut, while the lock's own requests still
// get through), the lock reads from the API server and sees every change;
// once the watch is back, the cache serves again.
func TestBrokenWatchFallsBackToTheAPIServer(t *testing.T) {
	ns := kubetest.Namespace(t)
	proxy, watchClient := kubetest.ViaProxy(t, 0)
	direct := kubetest.Client(t)
	follower, err := locks.NewLeaseLock(kubetest.SplitLeases(direct, watchClient), ns, "lock")
	require.NoError(t, err)
	leader, err := locks.NewLeaseLock(direct.CoordinationV1(), ns, "lock", locks.WithoutWatch())
	require.NoError(t, err)
	obs, err := leader.Create(bg(t), lockstest.Held("a", time.Now(), 0))
	require.NoError(t, err)
	follow(t, follower)

	proxy.Block()
	require.Eventually(t, func() bool { return locks.WatchBroken(follower) }, time.Minute, 50*time.Millisecond, "the informer reports the failure")
	obs, err = leader.Update(bg(t), obs.Version, lockstest.Held("b", time.Now(), 1))
	require.NoError(t, err)
	got, err := follower.Get(bg(t))
	require.NoError(t, err)
	assert.Equal(t, "b", got.Record.HolderIdentity, "a change made while the watch is broken is read from the API server")

	proxy.Heal()
	require.Eventually(t, func() bool { return !locks.WatchBroken(follower) }, time.Minute, 50*time.Millisecond, "the watch recovers")
	_, err = leader.Update(bg(t), obs.Version, lockstest.Held("c", time.Now(), 2))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := follower.Get(bg(t))
		return err == nil && got.Record.HolderIdentity == "c"
	}, 10*time.Second, 10*time.Millisecond)
}

// TestSameSecondWritesOfAConfigMap: a ConfigMap's record has whole
// seconds, so two renewals within one second store the same bytes, and
// the API server skips the second write: its version does not change. An
// election must not count such a write as a renewal (no other candidate
// saw it), and must count a new version as a change whatever the bytes.
func TestSameSecondWritesOfAConfigMap(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	l, err := locks.NewConfigMapLock(cs.CoreV1(), ns, "same-second")
	require.NoError(t, err)
	at := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	first, err := l.Create(bg(t), lockstest.Held("a", at, 1))
	require.NoError(t, err)
	again, err := l.Update(bg(t), first.Version, lockstest.Held("a", at.Add(300*time.Millisecond), 1))
	require.NoError(t, err)
	assert.Equal(t, first.Raw, again.Raw, "the same bytes")
	assert.Equal(t, first.Version, again.Version, "the API server skips a write that changes nothing")
	next, err := l.Update(bg(t), again.Version, lockstest.Held("a", at.Add(time.Second), 1))
	require.NoError(t, err)
	assert.NotEqual(t, first.Version, next.Version)
}

// follow makes l follow its Lease until the test ends, and waits until
// the watch has listed the namespace.
func follow(t *testing.T, l *locks.LeaseLock) <-chan struct{} {
	t.Helper()
	changes, stop := l.Watch()
	t.Cleanup(stop)
	require.Eventually(t, func() bool { return locks.WatchSynced(l) && !locks.WatchBroken(l) }, 10*time.Second, 5*time.Millisecond, "the watch lists the namespace")
	return changes
}
