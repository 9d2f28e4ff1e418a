package framework_test

// From a review of the demo's placement test: a periodic announcement of
// the member record, its snapshot taken before a stop marked the replica
// as shutting down, could be written after the mark and say the replica
// stays; the coordinator then moved leaderships to the stopping replica,
// which never took them (taken back after 2.5 retry periods, leaderless
// meanwhile).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/kubetest"
)

// slowAnnouncements delays, once armed, the patches of member record
// tenure-member-a that do not mark it shutting down (the periodic
// announcements), as an API server that applies them late would, and
// ignores their cancellation, as a request already sent does.
type slowAnnouncements struct {
	next     http.RoundTripper
	armed    atomic.Bool
	inFlight chan struct{}
	once     sync.Once
}

func (s *slowAnnouncements) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.armed.Load() && strings.Contains(req.URL.Path, "/leases/tenure-member-a") {
		switch req.Method {
		case http.MethodPatch:
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			if !bytes.Contains(body, []byte(`shutting-down":"true"`)) {
				s.once.Do(func() { close(s.inFlight) })
				time.Sleep(400 * time.Millisecond)
				req = req.WithContext(context.WithoutCancel(req.Context()))
			}
		case http.MethodDelete:
			time.Sleep(600 * time.Millisecond) // the record outlives the stop a little
			req = req.WithContext(context.WithoutCancel(req.Context()))
		}
	}
	return s.next.RoundTrip(req)
}

// handOvers counts the elections' "handed the lock over" records by target.
type handOvers struct {
	slog.Handler
	mu *sync.Mutex
	to map[string]int
}

func (h handOvers) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "handed the lock over" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "to" {
				h.mu.Lock()
				h.to[a.Value.String()]++
				h.mu.Unlock()
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, r)
}

func (h handOvers) WithAttrs(as []slog.Attr) slog.Handler {
	return handOvers{h.Handler.WithAttrs(as), h.mu, h.to}
}

func (h handOvers) WithGroup(n string) slog.Handler {
	return handOvers{h.Handler.WithGroup(n), h.mu, h.to}
}

func TestNoHandOverToAReplicaWhoseStaleAnnouncementLandedAfterItsStop(t *testing.T) {
	ns := kubetest.Namespace(t)
	cfgA := rest.CopyConfig(kubetest.Config(t))
	slow := &slowAnnouncements{inFlight: make(chan struct{})}
	cfgA.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { slow.next = rt; return slow }
	csA, err := kubernetes.NewForConfig(cfgA)
	require.NoError(t, err)
	yaml := fmt.Sprintf("namespace: %s\nlease_duration: 3s\nrenew_deadline: 2s\nretry_period: 200ms\nplacement: balanced\nplacement_group: g\n", ns)
	var mu sync.Mutex
	handed := map[string]int{}
	start := func(id string, cs kubernetes.Interface) (*fx.App, *framework.Runner) {
		var r *framework.Runner
		logger := slog.New(handOvers{slog.NewTextHandler(io.Discard, nil), &mu, handed})
		opts := []fx.Option{
			framework.Module,
			framework.ConfigYAML("t.yaml", []byte(yaml+"identity: "+id+"\n")),
			fx.Provide(func() kubernetes.Interface { return cs }),
			fx.Supply(logger),
			fx.Populate(&r),
			fx.NopLogger,
		}
		for i := range 4 {
			opts = append(opts, framework.Component(func() components.Component {
				return components.New(fmt.Sprintf("c%d", i), func(ctx context.Context) error { <-ctx.Done(); return nil })
			}))
		}
		app := fx.New(opts...)
		require.NoError(t, app.Start(context.Background()))
		return app, r
	}
	appA, ra := start("a", csA)
	time.Sleep(300 * time.Millisecond)
	appB, rb := start("b", kubetest.Client(t))
	t.Cleanup(func() { _ = appB.Stop(context.Background()) })
	leading := func(r *framework.Runner) int {
		n := 0
		for _, st := range r.Status() {
			if st.Leading {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return leading(ra) == 2 && leading(rb) == 2 }, 15*time.Second, 50*time.Millisecond, "2/2")
	slow.armed.Store(true)
	<-slow.inFlight // a periodic announcement of a is under way
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	require.NoError(t, appA.Stop(ctx))
	time.Sleep(3 * time.Second) // a lease: b's coordinator rounds after the stop
	mu.Lock()
	defer mu.Unlock()
	assert.Zero(t, handed["a"], "b handed leaderships to a, which had stopped")
	assert.Equal(t, 4, leading(rb), "b leads all four")
}
