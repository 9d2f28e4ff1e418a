package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.uber.org/fx"

	"github.com/tenure/tenure/config"
)

// LeaderStatus is one election in the /leaders document.
type LeaderStatus struct {
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
}

// Handler serves the operator's endpoint: /metrics (if metrics is not
// nil), /healthz, /readyz and /leaders.
func (r *Runner) Handler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		var errs []error
		for _, st := range r.Status() {
			errs = append(errs, st.Healthy)
		}
		if err := errors.Join(errs...); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.running.Load() {
			http.Error(w, "not running", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /leaders", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.leaders())
	})
	return mux
}

func (r *Runner) leaders() []LeaderStatus {
	out := []LeaderStatus{}
	for _, st := range r.Status() {
		ls := LeaderStatus{Election: st.Name, Lock: st.Lock, Holder: st.Leader, Self: st.Leading}
		if st.Observed {
			ls.Holder, ls.FencingToken = st.Record.HolderIdentity, st.Record.LeaderTransitions
			if !st.Record.RenewTime.IsZero() {
				ls.LastRenew = &st.Record.RenewTime
			}
		}
		if st.Leading {
			ls.FencingToken = st.Term.FencingToken
			ls.TermStart = &st.Term.Started
		}
		out = append(out, ls)
	}
	return out
}

// HTTPParams are registerHTTP's dependencies.
type HTTPParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    *config.Config
	Runner    *Runner
	Telemetry *Telemetry
	Logger    *slog.Logger `optional:"true"`
}

// registerHTTP serves Runner.Handler on the configured address, if any,
// from start to after the elections have stopped.
func registerHTTP(p HTTPParams) {
	addr := p.Config.HTTP.Address
	if addr == "" {
		return
	}
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{Handler: p.Runner.Handler(p.Telemetry.Metrics), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
			if err != nil {
				return fmt.Errorf("http.address: %w", err)
			}
			p.Runner.httpAddr.Store(ln.Addr().String())
			log.Info("serving /metrics, /healthz, /readyz, /leaders", "address", ln.Addr().String())
			go func() {
				defer close(done)
				if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					log.Error("http endpoint", "err", err)
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			err := srv.Shutdown(ctx)
			<-done
			return err
		},
	})
}

// HTTPAddress is the address the HTTP endpoint listens on (useful with
// port 0), or "" if it does not.
func (r *Runner) HTTPAddress() string {
	s, _ := r.httpAddr.Load().(string)
	return s
}
