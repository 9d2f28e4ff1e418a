package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/proctest"
)

// TestReplicasUnderFaults runs three replicas of the example while every
// labelled object changes every 150ms, and every 1 to 3 seconds faults a
// random replica, mostly a leader: a SIGTERM (a new replica starts at
// once), a SIGKILL (a new one starts within a second), a SIGSTOP of 0.5 to
// 4 seconds (lease 3s, renew deadline 2s), a SIGTERM followed within 50ms
// by a SIGKILL of the same replica (or a SIGSTOP, then the SIGKILL) while
// it hands over, or by a SIGKILL of another replica (half the time the
// one it hands over to). Reconciles work 100ms and wind down when their
// term ends. Throughout, no write is decided in a term after the first
// reconcile of a later term, and each term is one replica's; after the
// last fault both controllers reconcile again.
//
// CHAOS_DURATION (default 40s) and CHAOS_SEED set the run.
func TestReplicasUnderFaults(t *testing.T) {
	duration := 40 * time.Second
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "CHAOS_DURATION")
		duration = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "CHAOS_SEED")
		seed = s
	}
	t.Logf("CHAOS_SEED=%d CHAOS_DURATION=%v", seed, duration)
	rng := rand.New(rand.NewPCG(seed, 0))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }

	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	bin := proctest.Build(t, ".")
	led := newLedger()
	generation := map[int]int{}
	start := func(slot int) *proctest.Process {
		generation[slot]++
		id := fmt.Sprintf("p%d-%d", slot, generation[slot])
		return proctest.Start(t, id, func(s string) { led.line(t, s) },
			[]string{"TENURE_LEASE_DURATION=3s", "TENURE_RENEW_DEADLINE=2s", "TENURE_RETRY_PERIOD=200ms", "TENURE_SHUTDOWN_TIMEOUT=5s"},
			bin, "--kubeconfig", kubetest.Kubeconfig(t), "--namespace", ns, "--identity", id, "--work", "100ms")
	}
	procs := []*proctest.Process{start(0), start(1), start(2)}
	labels := map[string]string{Label: "true"}
	for i := range 3 {
		name := fmt.Sprintf("obj-%d", i)
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Data: map[string][]byte{"a": []byte("1")}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return annotated(t, cs, ns, "1", "1") }, 30*time.Second, 50*time.Millisecond,
		"the controllers write their annotations")
	busy, stopBusy := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { touch(busy, cs, ns) })
	defer func() { stopBusy(); wg.Wait() }()

	counts := map[string]int{}
	for end := time.Now().Add(duration); time.Now().Before(end); {
		time.Sleep(between(time.Second, 3*time.Second))
		// Mostly a leader: a fault on a standby tests little.
		slot := rng.IntN(len(procs))
		if rng.IntN(3) > 0 {
			who, _, _ := led.holder([]string{"configmaps", "secrets"}[rng.IntN(2)])
			for i, p := range procs {
				if p.Name == who {
					slot = i
				}
			}
		}
		p := procs[slot]
		switch rng.IntN(5) {
		case 0:
			counts["SIGTERM"]++
			require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
			require.NoError(t, p.Wait(t, 15*time.Second), "%s stops cleanly", p.Name)
			procs[slot] = start(slot)
		case 3:
			// Killed while it hands over (or frozen: then killed later).
			counts["SIGTERM, then SIGKILL or SIGSTOP"]++
			require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
			time.Sleep(between(0, 50*time.Millisecond))
			if rng.IntN(2) == 0 {
				// A replica with nothing to wind down may have exited by
				// now: then there is nothing to freeze.
				_ = p.Cmd.Process.Signal(syscall.SIGSTOP)
				time.Sleep(between(500*time.Millisecond, 4*time.Second))
			}
			_ = p.Cmd.Process.Kill()
			<-p.Done()
			procs[slot] = start(slot)
		case 4:
			// The replica it hands over to, half of the time, is killed.
			counts["SIGTERM, then SIGKILL of another"]++
			other := (slot + 1 + rng.IntN(len(procs)-1)) % len(procs)
			require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
			time.Sleep(between(0, 50*time.Millisecond))
			require.NoError(t, procs[other].Cmd.Process.Kill())
			<-procs[other].Done()
			require.NoError(t, p.Wait(t, 15*time.Second), "%s stops cleanly", p.Name)
			procs[slot], procs[other] = start(slot), start(other)
		case 1:
			counts["SIGKILL"]++
			require.NoError(t, p.Cmd.Process.Kill())
			<-p.Done()
			time.Sleep(between(0, time.Second))
			procs[slot] = start(slot)
		case 2:
			counts["SIGSTOP"]++
			require.NoError(t, p.Cmd.Process.Signal(syscall.SIGSTOP))
			time.Sleep(between(500*time.Millisecond, 4*time.Second))
			require.NoError(t, p.Cmd.Process.Signal(syscall.SIGCONT))
		}
	}
	t.Logf("faults: %v", counts)
	after := time.Now()
	for _, component := range []string{"configmaps", "secrets"} {
		require.Eventually(t, func() bool {
			led.mu.Lock()
			defer led.mu.Unlock()
			for _, r := range led.all {
				if r.component == component && r.begin.After(after) {
					return true
				}
			}
			return false
		}, 15*time.Second, 50*time.Millisecond, "%s reconciles after the last fault", component)
	}
	stopBusy()
	wg.Wait()
	for _, p := range procs {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		_ = p.Wait(t, 15*time.Second)
	}
	led.checkWrites(t)
}

// errorCount counts the errors a check reports.
type errorCount struct {
	testing.TB
	n int
}

func (e *errorCount) Errorf(string, ...any) { e.n++ }

// TestCheckWritesFindsAWriteAfterALaterTerm: the check of the fault run
// reports a write decided after a later term began, and a term of two
// replicas; not a write decided before.
func TestCheckWritesFindsAWriteAfterALaterTerm(t *testing.T) {
	at := func(ms int) string {
		return strconv.FormatInt(time.Unix(0, 0).Add(time.Duration(ms)*time.Millisecond).UnixNano(), 10)
	}
	for _, c := range []struct {
		name  string
		lines []string
		want  int
	}{
		{"in order", []string{"secrets a term 1 begins x at " + at(0), "secrets a term 1 writes x at " + at(10), "secrets b term 2 begins x at " + at(20)}, 0},
		{"write after a later term began", []string{"secrets a term 1 begins x at " + at(0), "secrets b term 2 begins x at " + at(5), "secrets a term 1 writes x at " + at(10)}, 1},
		{"one term, two replicas", []string{"secrets a term 1 begins x at " + at(0), "secrets b term 1 begins x at " + at(5)}, 1},
		{"other components", []string{"secrets b term 2 begins x at " + at(0), "configmaps a term 1 writes x at " + at(10)}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLedger()
			for _, s := range c.lines {
				l.line(t, s)
			}
			e := &errorCount{TB: t}
			l.checkWrites(e)
			if e.n != c.want {
				t.Errorf("%d errors, want %d", e.n, c.want)
			}
		})
	}
}
