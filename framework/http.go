package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/fx"
)

// leaderStatus is one election in the /leaders document.
type leaderStatus struct {
	Election string `json:"election"`
	Lock     string `json:"lock"`
	// Holder is the holder of the lock as this replica last saw it.
	Holder string `json:"holder"`
	// Self is true when this replica leads the election.
	Self bool `json:"self"`
	// FencingToken is the record's leader transitions: the current
	// term's token.
	FencingToken int32 `json:"fencingToken"`
	// TermStart is when this replica's term began (only when Self).
	TermStart *time.Time `json:"termStart,omitempty"`
	// LastRenew is the record's renew time, on the holder's clock.
	LastRenew *time.Time `json:"lastRenew,omitempty"`
	// HandOverTo is the replica this one was asked to hand over to (only
	// when Self, while the hand-over is under way).
	HandOverTo string `json:"handOverTo,omitempty"`
	// Waiting is true while this replica does not campaign yet, its
	// component not ready to lead.
	Waiting bool `json:"waiting,omitempty"`
}

// Handler serves the operator's endpoints, to mount on the app's own mux:
// /healthz and /healthz/<component> (see HealthChecks; ?verbose lists
// every check, as Kubernetes components do), /readyz (ok between start
// and stop) and /leaders (JSON: each election's lock, holder, whether it
// is this replica, fencing token, term start, last renewal, and the
// replica it is handing over to). The
// endpoint on http.address serves it, and /metrics.
func (r *Runner) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", r.healthz)
	mux.HandleFunc("GET /healthz/{component}", r.healthzOf)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.running.Load() {
			http.Error(w, "not running", http.StatusServiceUnavailable)
			return
		}
		plainText(w)
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /leaders", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.leaders())
	})
	return mux
}

func (r *Runner) leaders() []leaderStatus {
	out := []leaderStatus{}
	for _, st := range r.Status() {
		ls := leaderStatus{Election: st.Name, Lock: st.Lock, Holder: st.Leader, Self: st.Leading, Waiting: st.Waiting}
		if st.Observed {
			ls.Holder, ls.FencingToken = st.Record.HolderIdentity, st.Record.LeaderTransitions
			if !st.Record.RenewTime.IsZero() {
				ls.LastRenew = &st.Record.RenewTime
			}
		}
		if st.Leading {
			ls.FencingToken = st.Term.FencingToken
			ls.TermStart = &st.Term.Started
			ls.HandOverTo = st.HandOverTo
		}
		out = append(out, ls)
	}
	return out
}

// httpHook serves Handler, and metrics on /metrics if it is not nil, on
// the configured address.
func (r *Runner) httpHook(metrics http.Handler) fx.Hook {
	mux := http.NewServeMux()
	mux.Handle("/", r.Handler())
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	// A server and its done channel per start: an http.Server does not
	// serve again after Shutdown, and fx may start a stopped app again.
	var (
		srv  *http.Server
		done chan struct{}
	)
	return fx.Hook{
		OnStart: func(ctx context.Context) error {
			ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", r.cfg.HTTP.Address)
			if err != nil {
				return fmt.Errorf("http.address: %w", err)
			}
			srv, done = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, make(chan struct{})
			r.httpAddr.Store(ln.Addr().String())
			r.log.Info("serving /healthz, /readyz, /leaders", "address", ln.Addr().String(), "metrics", metrics != nil)
			go func() {
				defer close(done)
				if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					r.log.Error("http endpoint", "err", err)
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			err := srv.Shutdown(ctx)
			if err != nil {
				_ = srv.Close() // the stop's deadline passed: drop the connections still busy
			}
			<-done
			return err
		},
	}
}
