package framework_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/proctest"
)

// receiver is an OTLP/gRPC trace collector that keeps what it receives.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	name     string
	attrs    map[string]string
	resource map[string]string
}

func flatten(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[kv.GetKey()] = v.GetStringValue()
		default:
			m[kv.GetKey()] = fmt.Sprint(v.GetIntValue())
		}
	}
	return m
}

func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		res := flatten(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, receivedSpan{name: s.GetName(), attrs: flatten(s.GetAttributes()), resource: res})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func startReceiver(t *testing.T) (*receiver, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	r := &receiver{}
	collectortrace.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return r, "http://" + ln.Addr().String()
}

// startHTTPReceiver serves r as an OTLP/HTTP trace collector (protobuf
// on /v1/traces) and returns its endpoint.
func startHTTPReceiver(t *testing.T, r *receiver) string {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var export collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &export); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, _ := r.Export(req.Context(), &export)
		out, _ := proto.Marshal(resp)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSpansReachAnOTLPCollector runs an election on a real Lease with
// tracing to a real OTLP receiver, over gRPC as the YAML configures it and
// over HTTP as the standard OTEL_* variables configure it: after the app
// stops (which flushes), the receiver has the attempts and the term, with
// the election's attributes and the replica's resource.
func TestSpansReachAnOTLPCollector(t *testing.T) {
	cs := kubetest.Client(t)
	for name, setUp := range map[string]func(t *testing.T) (*receiver, string){
		"grpc from the YAML": func(t *testing.T) (*receiver, string) {
			recv, endpoint := startReceiver(t)
			return recv, fmt.Sprintf("  endpoint: %s\n  insecure: true\n  service_name: billing-service\n", endpoint)
		},
		"http from OTEL variables": func(t *testing.T) (*receiver, string) {
			recv := &receiver{}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", startHTTPReceiver(t, recv))
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
			t.Setenv("OTEL_SERVICE_NAME", "billing-service")
			return recv, ""
		},
	} {
		t.Run(name, func(t *testing.T) {
			ns := kubetest.Namespace(t)
			recv, tracing := setUp(t)
			t.Setenv("POD_NAME", "pod-a")
			led := newLedgers()
			app := replica(t, "r1", fmt.Sprintf(`
namespace: %s
lease_duration: 2s
renew_deadline: 1500ms
retry_period: 100ms
renew_interval: 100ms
placement: none
tracing:
  enabled: true
%s`, ns, tracing), withClient(cs), recorded(led, "billing"))
			app.RequireStart()
			led.of("billing").Leader(t)
			time.Sleep(300 * time.Millisecond) // a few renewals
			app.RequireStop()

			recv.mu.Lock()
			defer recv.mu.Unlock()
			names := map[string]int{}
			for _, s := range recv.spans {
				names[s.name]++
				assert.Equal(t, "billing", s.attrs["tenure.election.name"], s.name)
				assert.Equal(t, "r1", s.attrs["tenure.election.identity"])
				assert.Equal(t, "leases", s.attrs["tenure.lock.kind"])
				assert.Equal(t, ns, s.attrs["k8s.namespace.name"])
				assert.Equal(t, "billing-service", s.resource["service.name"])
				assert.Equal(t, "r1", s.resource["service.instance.id"])
				assert.Equal(t, "pod-a", s.resource["k8s.pod.name"])
			}
			assert.GreaterOrEqual(t, names["acquire lease"], 1)
			assert.GreaterOrEqual(t, names["renew lease"], 1)
			assert.Equal(t, 1, names["lead billing"])
			assert.Equal(t, 1, names["release lease"])
		})
	}
}

// leaderGauge scrapes /metrics and returns tenure_election_leader of the
// election named name (-1 if absent).
func leaderGauge(t *testing.T, addr, name string) float64 {
	t.Helper()
	_, body := proctest.Get(t, "http://"+addr+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	fam, ok := families["tenure_election_leader"]
	if !ok {
		return -1
	}
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "tenure_election_name" && l.GetValue() == name {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

const httpYAML = `
namespace: %s
lease_duration: 2s
renew_deadline: 1500ms
retry_period: 100ms
http:
  address: 127.0.0.1:0
  healthz_margin: 500ms
`

// TestMetricsFollowAFailOver scrapes two replicas' /metrics while the
// leader stops: the leader gauge moves from one to the other.
func TestMetricsFollowAFailOver(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	led := newLedgers()
	runners := map[string]*framework.Runner{}
	apps := map[string]*fxtest.App{}
	for _, id := range []string{"r1", "r2"} {
		var r *framework.Runner
		apps[id] = replica(t, id, fmt.Sprintf(httpYAML, ns), fx.Options(withClient(cs), fx.Populate(&r)), recorded(led, "billing"))
		apps[id].RequireStart()
		runners[id] = r
	}
	first := led.of("billing").Leader(t)
	second := map[string]string{"r1": "r2", "r2": "r1"}[first]
	require.Eventually(t, func() bool {
		return leaderGauge(t, runners[first].HTTPAddress(), "billing") == 1 && leaderGauge(t, runners[second].HTTPAddress(), "billing") == 0
	}, 5*time.Second, 20*time.Millisecond, "the leader reports 1, the standby 0")
	scrape := func(id string) string {
		_, body := proctest.Get(t, "http://"+runners[id].HTTPAddress()+"/metrics")
		return body
	}
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(first), "tenure_election_renew_duration_seconds_bucket") &&
			strings.Contains(scrape(second), `tenure_outcome="held by other"`)
	}, 5*time.Second, 20*time.Millisecond, "the leader renewed; the standby saw it")
	for _, name := range []string{"tenure_election_attempts_total", "tenure_election_leader_transitions", "tenure_election_renew_duration_seconds_count", "tenure_election_time_to_first_leadership_seconds", "tenure_election_since_last_renewal_seconds"} {
		assert.Contains(t, scrape(first), name+"{", "the leader reports %s", name)
	}
	for _, name := range []string{"tenure_election_attempts_total", "tenure_election_leader_transitions"} {
		assert.Contains(t, scrape(second), name+"{", "the standby reports %s", name)
	}
	assert.Contains(t, scrape(second), `target_info{service_instance_id="`+second+`"`)

	apps[first].RequireStop()
	require.Eventually(t, func() bool { return leaderGauge(t, runners[second].HTTPAddress(), "billing") == 1 },
		5*time.Second, 20*time.Millisecond, "the standby's gauge moves to 1")
	apps[second].RequireStop()
}

// TestHealthzFailsForALeaderCutOff runs a leader whose every request goes
// through a proxy, then cuts the proxy: /healthz fails once the renew
// deadline and the margin have passed, and passes again after healing.
func TestHealthzFailsForALeaderCutOff(t *testing.T) {
	ns := kubetest.Namespace(t)
	proxy, cs := kubetest.ViaProxy(t, time.Second)

	led := newLedgers()
	var r *framework.Runner
	app := replica(t, "r1", fmt.Sprintf(httpYAML, ns), fx.Options(withClient(cs), fx.Populate(&r)), recorded(led, "billing"))
	app.RequireStart()
	led.of("billing").Leader(t)
	healthz := func() int { code, _ := proctest.Get(t, "http://"+r.HTTPAddress()+"/healthz"); return code }
	require.Equal(t, http.StatusOK, healthz())
	code, _ := proctest.Get(t, "http://"+r.HTTPAddress()+"/readyz")
	require.Equal(t, http.StatusOK, code)

	cut := time.Now()
	proxy.Block()
	require.Eventually(t, func() bool { return healthz() == http.StatusInternalServerError }, 10*time.Second, 20*time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(cut), 1500*time.Millisecond, "not before the renew deadline")
	assert.Empty(t, led.of("billing").Leaders(), "the cut-off leader stopped its work")
	_, body := proctest.Get(t, "http://"+r.HTTPAddress()+"/healthz")
	assert.Contains(t, body, "[-]billing failed: election billing: no successful call to leases/"+ns+"/billing")
	assert.True(t, strings.HasSuffix(body, "\nhealthz check failed\n"), body)
	code, body = proctest.Get(t, "http://"+r.HTTPAddress()+"/healthz/billing")
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.Contains(t, body, "internal server error: election billing: no successful call")

	proxy.Heal()
	require.Eventually(t, func() bool { return healthz() == http.StatusOK }, 10*time.Second, 20*time.Millisecond, "healthy again")
	led.of("billing").Leader(t)
	app.RequireStop()
}

// TestLeadersMatchTheLeases compares /leaders with the Leases.
func TestLeadersMatchTheLeases(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	led := newLedgers()
	var r1, r2 *framework.Runner
	names := []string{"billing", "reports", "mailer"}
	comps := func() []components.Component {
		var out []components.Component
		for _, n := range names {
			out = append(out, recorded(led, n))
		}
		return out
	}
	a1 := replica(t, "r1", fmt.Sprintf(httpYAML, ns), fx.Options(withClient(cs), fx.Populate(&r1)), comps()...)
	a1.RequireStart()
	for _, n := range names {
		led.of(n).Leader(t)
	}
	a2 := replica(t, "r2", fmt.Sprintf(httpYAML, ns), fx.Options(withClient(cs), fx.Populate(&r2)), comps()...)
	a2.RequireStart()
	for _, r := range []*framework.Runner{r1, r2} {
		require.Eventually(t, func() bool {
			var doc []framework.LeaderStatus
			_, body := proctest.Get(t, "http://"+r.HTTPAddress()+"/leaders")
			require.NoError(t, json.Unmarshal([]byte(body), &doc))
			if len(doc) != len(names) {
				return false
			}
			for _, ls := range doc {
				lease, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), ls.Election, metav1.GetOptions{})
				require.NoError(t, err)
				if ls.Holder != *lease.Spec.HolderIdentity || ls.FencingToken != *lease.Spec.LeaseTransitions ||
					ls.Self != (ls.Holder == r.Identity()) || ls.Lock != "leases/"+ns+"/"+ls.Election {
					return false
				}
				if ls.Self && ls.TermStart == nil {
					return false
				}
			}
			return true
		}, 5*time.Second, 50*time.Millisecond, "/leaders of %s matches the Leases", r.Identity())
	}
	a2.RequireStop()
	a1.RequireStop()
}

// TestEventsOnTheLock: with events on, starting and stopping to lead are
// Events on the Lease, as client-go records them.
func TestEventsOnTheLock(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	led := newLedgers()
	app := replica(t, "r1", fmt.Sprintf("namespace: %s\nevents: true\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 100ms\n", ns),
		withClient(cs), recorded(led, "billing"))
	app.RequireStart()
	led.of("billing").Leader(t)
	app.RequireStop()
	require.Eventually(t, func() bool {
		list, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=billing"})
		require.NoError(t, err)
		var msgs []string
		for _, e := range list.Items {
			assert.Equal(t, "Lease", e.InvolvedObject.Kind)
			assert.Equal(t, "LeaderElection", e.Reason)
			msgs = append(msgs, e.Message)
		}
		return assert.ObjectsAreEqual([]string{"r1 became leader", "r1 stopped leading"}, msgs)
	}, 5*time.Second, 50*time.Millisecond)
}
