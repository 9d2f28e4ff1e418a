package main

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/examples/internal/clitest"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/proctest"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/locks/lockstest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// TestSecretLockPassesTheLockSuite runs the suite every tenure lock
// passes on the Secret lock, against the real API server.
func TestSecretLockPassesTheLockSuite(t *testing.T) {
	lockstest.Run(t, func(t *testing.T) lockstest.Subject {
		cs := kubetest.Client(t)
		ns := kubetest.Namespace(t)
		secrets := cs.CoreV1().Secrets(ns)
		return lockstest.Subject{
			Lock:  NewSecretLock(cs.CoreV1(), ns, "lock"),
			Other: NewSecretLock(cs.CoreV1(), ns, "lock"),
			Corrupt: func(t *testing.T) []byte {
				s, err := secrets.Get(context.Background(), "lock", metav1.GetOptions{})
				require.NoError(t, err)
				s.Data[RecordKey] = []byte(`{"holderIdentity":`)
				_, err = secrets.Update(context.Background(), s, metav1.UpdateOptions{})
				require.NoError(t, err)
				return s.Data[RecordKey]
			},
			Delete: func(t *testing.T) {
				require.NoError(t, secrets.Delete(context.Background(), "lock", metav1.DeleteOptions{}))
			},
		}
	})
}

// TestOtherKeysAreKept: adopting and updating a Secret leaves its other
// keys alone.
func TestOtherKeysAreKept(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "lock"}, Data: map[string][]byte{"password": []byte("hunter2")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	l := NewSecretLock(cs.CoreV1(), ns, "lock")
	obs, err := l.Create(ctx, locks.Record{HolderIdentity: "a", LeaseDuration: 15 * time.Second})
	require.NoError(t, err)
	_, err = l.Update(ctx, obs.Version, locks.Record{HolderIdentity: "b", LeaseDuration: 15 * time.Second})
	require.NoError(t, err)
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, "lock", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "hunter2", string(s.Data["password"]))
}

// TestTheProgramElectsOnASecret runs two copies of the program.
func TestTheProgramElectsOnASecret(t *testing.T) {
	ns := kubetest.Namespace(t)
	bin := proctest.Build(t, ".")
	start := func(id string) *proctest.Process { return clitest.Start(t, bin, ns, id) }
	a := start("a")
	a.WaitFor(t, "a started leading", 10*time.Second)
	b := start("b")
	time.Sleep(time.Second)
	require.NoError(t, a.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, a.Wait(t, 5*time.Second))
	b.WaitFor(t, "b started leading", 2*time.Second)
}
