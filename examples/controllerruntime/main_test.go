package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/leadertest"
	"github.com/tenure/tenure/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// reconcile is one reconcile, as a replica printed it.
type reconcile struct {
	component, who, object string
	term                   int
	begin, end             time.Time // end is zero while it runs
}

// ledger collects the reconciles and writes the replicas print.
type ledger struct {
	mu      sync.Mutex
	all     []*reconcile
	writes  []*reconcile             // begin is when the write was decided
	refused int                      // writes not made: the term was over
	open    map[[2]string]*reconcile // by replica and component
	ended   map[string]time.Time     // replicas killed: when
}

func newLedger() *ledger {
	return &ledger{open: map[[2]string]*reconcile{}, ended: map[string]time.Time{}}
}

// line reads one line of a replica's output:
// "<component> <identity> term <n> begins|ends <object> at <unix ns>".
func (l *ledger) line(t *testing.T, s string) {
	f := strings.Fields(s)
	if len(f) != 8 || f[2] != "term" || f[6] != "at" {
		return
	}
	term, err1 := strconv.Atoi(f[3])
	ns, err2 := strconv.ParseInt(f[7], 10, 64)
	if err1 != nil || err2 != nil {
		t.Errorf("unreadable line %q", s)
		return
	}
	at := time.Unix(0, ns)
	key := [2]string{f[1], f[0]}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch f[4] {
	case "begins":
		r := &reconcile{component: f[0], who: f[1], term: term, object: f[5], begin: at}
		l.all = append(l.all, r)
		l.open[key] = r // one worker per controller: one reconcile at a time
	case "refuses":
		l.refused++
	case "writes":
		l.writes = append(l.writes, &reconcile{component: f[0], who: f[1], term: term, object: f[5], begin: at})
	case "ends":
		if r := l.open[key]; r != nil {
			r.end = at
			delete(l.open, key)
		}
	}
}

// killed records that who was killed now: a reconcile it had not ended
// ended then.
func (l *ledger) killed(who string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended[who] = time.Now()
}

// holder returns who reconciles component in the latest term, and that
// term's first reconcile.
func (l *ledger) holder(component string) (who string, term int, first time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	term = -1 // fencing tokens start at 0
	for _, r := range l.all {
		if r.component != component {
			continue
		}
		if r.term > term {
			who, term, first = r.who, r.term, r.begin
		}
	}
	return who, term, first
}

// lastEnd is when who's last reconcile of component ended.
func (l *ledger) lastEnd(component, who string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last time.Time
	for _, r := range l.all {
		if r.component == component && r.who == who && r.end.After(last) {
			last = r.end
		}
	}
	return last
}

// check fails t if a term's reconciles come from two replicas, or a
// reconcile of one term overlaps one of a later term.
func (l *ledger) check(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	by := map[string][]leadertest.Act{}
	for _, r := range l.all {
		by[r.component] = append(by[r.component], leadertest.Act{Who: r.who, Token: int32(r.term), What: r.object, Start: r.begin, End: r.end})
	}
	for component, acts := range by {
		t.Run(component, func(t *testing.T) { leadertest.CheckActs(t, acts, l.ended) })
	}
	t.Logf("ledger: %d reconciles of configmaps, %d of secrets", len(by["configmaps"]), len(by["secrets"]))
}

// checkWrites fails t if a write decided in one term comes after the
// first reconcile of a later term, or a term's come from two replicas:
// the check of runs whose processes may be frozen, where a reconcile
// outlives its term (and Valid stops its write). It checks when a write
// was decided, not when it landed: a process frozen between its check
// and its request is what fencing tokens are for.
func (l *ledger) checkWrites(t testing.TB) {
	l.mu.Lock()
	defer l.mu.Unlock()
	whoOf := map[string]string{}
	for _, r := range append(slices.Clone(l.all), l.writes...) {
		key := fmt.Sprintf("%s/%d", r.component, r.term)
		if w, ok := whoOf[key]; ok && w != r.who {
			t.Errorf("%s term %d acted on by %s and %s", r.component, r.term, w, r.who)
		}
		whoOf[key] = r.who
	}
	for _, w := range l.writes {
		for _, r := range l.all {
			if r.component == w.component && r.term > w.term && r.begin.Before(w.begin) {
				t.Errorf("%s: %s/%d decided to write %s at %s, after %s/%d began reconciling %s at %s", w.component,
					w.who, w.term, w.object, w.begin.Format("15:04:05.000"), r.who, r.term, r.object, r.begin.Format("15:04:05.000"))
				break
			}
		}
	}
	t.Logf("ledger: %d writes (%d refused: their term was over), %d reconciles, in %d terms; no write after a later term began", len(l.writes), l.refused, len(l.all), len(whoOf))
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// TestThreeReplicasShareTwoControllers runs the example as three
// processes against the test API server: the two controllers go to two
// replicas and write their annotations; the one a SIGTERM stops hands
// its controller over within milliseconds of its last reconcile (a
// reconcile under way is cancelled and returns first); the one a SIGKILL
// ends loses its controller once the lease expires. Throughout, each
// controller reconciles on one replica at a time.
func TestThreeReplicasShareTwoControllers(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	bin := proctest.Build(t, ".")
	led := newLedger()
	probes := freePort(t)
	procs := map[string]*proctest.Process{}
	for i, id := range []string{"p1", "p2", "p3"} {
		args := []string{"--kubeconfig", kubetest.Kubeconfig(t), "--namespace", ns, "--identity", id, "--work", "100ms"}
		if i == 0 {
			args = append(args, "--health-probe-bind-address", probes)
		}
		procs[id] = proctest.Start(t, id, func(s string) { led.line(t, s) },
			[]string{"TENURE_LEASE_DURATION=3s", "TENURE_RENEW_DEADLINE=2s", "TENURE_RETRY_PERIOD=200ms", "TENURE_SHUTDOWN_TIMEOUT=5s"},
			bin, args...)
	}
	labels := map[string]string{Label: "true"}
	for i := range 3 {
		name := fmt.Sprintf("obj-%d", i)
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Data: map[string]string{"a": "1", "b": "2"}}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Data: map[string][]byte{"a": []byte("1")}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return annotated(t, cs, ns, "2", "1") }, 30*time.Second, 50*time.Millisecond,
		"the controllers write their annotations")
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "unlabelled", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotContains(t, cm.Annotations, Annotation, "an object without the label is left alone")

	// Keep the controllers busy: every object changes every 150ms.
	busy, stopBusy := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { touch(busy, cs, ns) })
	defer func() { stopBusy(); wg.Wait() }()

	var spread bool
	require.Eventually(t, func() bool {
		c, _, _ := led.holder("configmaps")
		s, _, _ := led.holder("secrets")
		spread = c != "" && s != "" && c != s
		return spread
	}, 30*time.Second, 50*time.Millisecond, "placement spreads the two controllers over two replicas")

	code, body := proctest.Get(t, "http://"+probes+"/healthz/tenure-configmaps")
	assert.Equal(t, 200, code, "the manager's health check of the configmaps election: %s", body)

	// SIGTERM: a hand-over.
	time.Sleep(time.Second)
	from, term, _ := led.holder("configmaps")
	sent := time.Now()
	require.NoError(t, procs[from].Cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { _, n, _ := led.holder("configmaps"); return n > term }, 10*time.Second, 5*time.Millisecond,
		"configmaps moves after a SIGTERM to %s", from)
	to, _, first := led.holder("configmaps")
	gap := first.Sub(led.lastEnd("configmaps", from))
	t.Logf("SIGTERM to %s: configmaps reconciled by %s %v after the signal, %v after %s's last reconcile ended",
		from, to, first.Sub(sent).Round(time.Millisecond), gap.Round(time.Millisecond), from)
	assert.Less(t, first.Sub(sent), 2*time.Second, "a hand-over, not an expiry (lease 3s)")
	assert.NoError(t, procs[from].Wait(t, 10*time.Second), "a stopped replica exits cleanly")

	// SIGKILL: after the lease.
	time.Sleep(time.Second)
	victim, term, _ := led.holder("secrets")
	require.NotEqual(t, from, victim)
	killed := time.Now()
	require.NoError(t, procs[victim].Cmd.Process.Kill())
	led.killed(victim)
	require.Eventually(t, func() bool { _, n, _ := led.holder("secrets"); return n > term }, 15*time.Second, 5*time.Millisecond,
		"secrets moves after %s is killed", victim)
	to, _, first = led.holder("secrets")
	t.Logf("SIGKILL of %s: secrets reconciled by %s %v later (lease 3s)", victim, to, first.Sub(killed).Round(time.Millisecond))
	assert.Less(t, first.Sub(killed), 6*time.Second, "taken over once the lease expires")

	stopBusy()
	wg.Wait()
	for id, p := range procs {
		if id != from && id != victim {
			require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
			assert.NoError(t, p.Wait(t, 10*time.Second))
		}
	}
	led.check(t)
}

// annotated says whether every labelled object carries the annotation:
// cms on the ConfigMaps, secrets on the Secrets.
func annotated(t *testing.T, cs kubernetes.Interface, ns, cms, secrets string) bool {
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: Label + "=true"}
	cml, err := cs.CoreV1().ConfigMaps(ns).List(ctx, sel)
	require.NoError(t, err)
	sl, err := cs.CoreV1().Secrets(ns).List(ctx, sel)
	require.NoError(t, err)
	return len(cml.Items) == 3 && len(sl.Items) == 3 &&
		!slices.ContainsFunc(cml.Items, func(c corev1.ConfigMap) bool { return c.Annotations[Annotation] != cms }) &&
		!slices.ContainsFunc(sl.Items, func(s corev1.Secret) bool { return s.Annotations[Annotation] != secrets })
}

// touch changes every labelled object every 150ms until ctx is done,
// adding a key and taking it away in turn, so that each change is a
// write for the controllers.
func touch(ctx context.Context, cs kubernetes.Interface, ns string) {
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		cm, secret := `{"data":{"n":"1"}}`, `{"data":{"n":"MQ=="}}`
		if n%2 == 1 {
			cm, secret = `{"data":{"n":null}}`, `{"data":{"n":null}}`
		}
		for i := range 3 {
			name := fmt.Sprintf("obj-%d", i)
			_, _ = cs.CoreV1().ConfigMaps(ns).Patch(ctx, name, "application/merge-patch+json", []byte(cm), metav1.PatchOptions{})
			_, _ = cs.CoreV1().Secrets(ns).Patch(ctx, name, "application/merge-patch+json", []byte(secret), metav1.PatchOptions{})
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
