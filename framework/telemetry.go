package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"

	"github.com/tenure/tenure/config"
)

// telemetry holds the providers the elections report to, and what
// /metrics serves.
type telemetry struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	// metrics serves the metrics in the Prometheus text format on
	// http.address; nil when there is nothing to serve there.
	metrics http.Handler
}

// telemetryParams are newTelemetry's dependencies: the configuration, and
// what the app provides of its own.
type telemetryParams struct {
	fx.In
	Lifecycle      fx.Lifecycle
	Config         *config.Config
	Identity       identity
	Logger         *slog.Logger          `optional:"true"`
	TracerProvider trace.TracerProvider  `optional:"true"`
	MeterProvider  metric.MeterProvider  `optional:"true"`
	Registerer     prometheus.Registerer `optional:"true"`
}

// newTelemetry chooses the providers and registers the flush of the
// tracer provider it makes on stop, after the elections have stopped (and released their
// leases).
//
// Spans go to the app's TracerProvider if it provides one, else as the
// tracing section says, else nowhere. Metrics go to the app's
// MeterProvider if it provides one; else to the app's Registerer if it
// provides one; else, with http.address, to a registry of the module's
// own with the Go and process collectors, served on /metrics; else
// nowhere. What is off is a no-op provider, at no cost.
func newTelemetry(p telemetryParams) (*telemetry, error) {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	t := &telemetry{tracerProvider: tracenoop.NewTracerProvider(), meterProvider: metricnoop.NewMeterProvider()}
	var own *tracing        // the module's own span export, if any
	var onApp *whileRunning // the app's registry, if it gets the metrics
	switch {
	case p.TracerProvider != nil:
		t.tracerProvider = p.TracerProvider
		if p.Config.Tracing.Enabled {
			log.Info("tracing section ignored: spans go to the app's TracerProvider")
		}
	case p.Config.Tracing.Enabled:
		tr, err := newTracing(p.Config, string(p.Identity))
		if err != nil {
			return nil, err
		}
		own = tr
		t.tracerProvider = tr.tp
	}
	switch {
	case p.MeterProvider != nil:
		t.meterProvider = p.MeterProvider
	case p.Registerer != nil:
		// The app's registry describes the process already, and may hold
		// another OpenTelemetry exporter's target_info.
		onApp = &whileRunning{reg: p.Registerer}
		mp, err := newMeterProvider(p.Config, string(p.Identity), onApp, otelprom.WithoutTargetInfo())
		if err != nil {
			return nil, err
		}
		t.meterProvider = mp
		if g, ok := p.Registerer.(prometheus.Gatherer); ok {
			t.metrics = promhttp.HandlerFor(g, promhttp.HandlerOpts{})
		}
	case p.Config.HTTP.Address != "":
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		mp, err := newMeterProvider(p.Config, string(p.Identity), reg)
		if err != nil {
			return nil, err
		}
		t.meterProvider = mp
		t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	// The MeterProviders export to Prometheus, which pulls: there is
	// nothing to flush, and one shut down would export nothing after a
	// restart (fx allows Start after Stop).
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			if err := onApp.start(); err != nil {
				return err
			}
			if err := own.start(); err != nil {
				onApp.stop()
				return err
			}
			return nil
		},
		OnStop: func(ctx context.Context) error {
			onApp.stop()
			return own.stop(ctx)
		},
	})
	return t, nil
}

// whileRunning is the app's Registerer as the module's Prometheus exporter
// sees it: the exporter's collector goes on the app's registry behind a
// gate that lets its metrics through only from the app's start to its
// stop. So an app that failed to build or has stopped exports nothing
// that would collide with another app's metrics on the same registry
// (tests that run app after app on prometheus.DefaultRegisterer), and an
// app started again exports again. (The exporter's collector describes
// nothing, and a registry cannot unregister such a collector.) A nil
// whileRunning does nothing.
type whileRunning struct {
	reg prometheus.Registerer
	on  atomic.Bool
}

// gate is a collector that collects from inner while its whileRunning is
// on.
type gate struct {
	w     *whileRunning
	inner prometheus.Collector
}

// Describe implements prometheus.Collector: like the exporter's
// collector, it describes nothing.
func (gate) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (g gate) Collect(ch chan<- prometheus.Metric) {
	if g.w.on.Load() {
		g.inner.Collect(ch)
	}
}

// Register implements prometheus.Registerer.
func (w *whileRunning) Register(c prometheus.Collector) error {
	return w.reg.Register(gate{w: w, inner: c})
}

// MustRegister implements prometheus.Registerer.
func (w *whileRunning) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := w.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (w *whileRunning) Unregister(c prometheus.Collector) bool {
	return w.reg.Unregister(gate{w: w, inner: c})
}

// exporting are the registries a running app's module exports to: two
// at once would export the same series (the metrics are labelled by
// election name only), and the registry would fail every gather.
var exporting = struct {
	sync.Mutex
	to map[prometheus.Registerer]bool
}{to: map[prometheus.Registerer]bool{}}

func (w *whileRunning) start() error {
	if w == nil {
		return nil
	}
	exporting.Lock()
	defer exporting.Unlock()
	if reflect.ValueOf(w.reg).Comparable() {
		if exporting.to[w.reg] {
			return errors.New("telemetry: another running tenure module exports its metrics to the app's prometheus.Registerer; give each app a registry of its own (their series would collide)")
		}
		exporting.to[w.reg] = true
	}
	w.on.Store(true)
	return nil
}

func (w *whileRunning) stop() {
	if w == nil || !w.on.Swap(false) {
		return
	}
	exporting.Lock()
	defer exporting.Unlock()
	if reflect.ValueOf(w.reg).Comparable() {
		delete(exporting.to, w.reg)
	}
}

// newMeterProvider exports the metrics to reg in the Prometheus format.
func newMeterProvider(cfg *config.Config, identity string, reg prometheus.Registerer, opts ...otelprom.Option) (*sdkmetric.MeterProvider, error) {
	exp, err := otelprom.New(append([]otelprom.Option{otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo()}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	res, err := newResource(cfg.Tracing.ServiceName, identity)
	if err != nil {
		return nil, err
	}
	return sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res)), nil
}

// tracing is the module's own span export: a TracerProvider made with
// the app, whose exporter and batch processor live from the app's start
// to its stop, so that an app that failed to build leaves nothing
// running, and one started again after a stop exports again (an exporter
// cannot be restarted).
type tracing struct {
	tp          *sdktrace.TracerProvider
	newExporter func() (sdktrace.SpanExporter, error)
	bsp         sdktrace.SpanProcessor // from start to stop
}

// newTracing makes the TracerProvider the configuration asks for; the
// standard OTEL_EXPORTER_OTLP_* variables fill what it leaves unset. It
// makes an exporter once, and shuts it down, to report a bad setting now.
func newTracing(cfg *config.Config, identity string) (*tracing, error) {
	tc := cfg.Tracing
	newExporter := func() (sdktrace.SpanExporter, error) {
		ctx := context.Background()
		var (
			exp sdktrace.SpanExporter
			err error
		)
		switch {
		case tc.Exporter == "stdout":
			exp, err = stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
		case otlpProtocol(tc.Protocol) == "http/protobuf":
			var opts []otlptracehttp.Option
			if tc.Endpoint != "" {
				opts = append(opts, otlptracehttp.WithEndpointURL(tc.Endpoint))
			}
			if tc.Insecure {
				opts = append(opts, otlptracehttp.WithInsecure())
			}
			exp, err = otlptracehttp.New(ctx, opts...)
		default:
			var opts []otlptracegrpc.Option
			if tc.Endpoint != "" {
				opts = append(opts, otlptracegrpc.WithEndpointURL(tc.Endpoint))
			}
			if tc.Insecure {
				opts = append(opts, otlptracegrpc.WithInsecure())
			}
			exp, err = otlptracegrpc.New(ctx, opts...)
		}
		if err != nil {
			return nil, fmt.Errorf("tracing: exporter: %w", err)
		}
		return exp, nil
	}
	exp, err := newExporter()
	if err != nil {
		return nil, err
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	res, err := newResource(tc.ServiceName, identity)
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(tc.SampleRatio))),
	)
	return &tracing{tp: tp, newExporter: newExporter}, nil
}

// start exports spans from now on. A nil t does nothing.
func (t *tracing) start() error {
	if t == nil {
		return nil
	}
	exp, err := t.newExporter()
	if err != nil {
		return err
	}
	t.bsp = sdktrace.NewBatchSpanProcessor(exp)
	t.tp.RegisterSpanProcessor(t.bsp)
	return nil
}

// stop exports the spans still queued, within ctx, and stops exporting.
// A nil t does nothing.
func (t *tracing) stop(ctx context.Context) error {
	if t == nil || t.bsp == nil {
		return nil
	}
	err := t.bsp.Shutdown(ctx)
	t.tp.UnregisterSpanProcessor(t.bsp) // already shut down: does not block
	t.bsp = nil
	if err != nil {
		return fmt.Errorf("telemetry: flush: %w", err)
	}
	return nil
}

// otlpProtocol is the configured OTLP protocol, else the one the standard
// environment variables name, else "grpc".
func otlpProtocol(configured string) string {
	for _, p := range []string{configured, os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")} {
		if p != "" {
			return p
		}
	}
	return "grpc"
}

// newResource describes this replica to the telemetry backends.
func newResource(serviceName, identity string) (*resource.Resource, error) {
	res, err := resource.New(context.Background(),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
		resource.WithTelemetrySDK(),
		resource.WithAttributes(resourceAttributes(serviceName, identity)...),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

func resourceAttributes(serviceName, identity string) []attribute.KeyValue {
	if serviceName == "" {
		serviceName = os.Getenv("OTEL_SERVICE_NAME")
	}
	if serviceName == "" {
		serviceName = filepath.Base(os.Args[0])
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(serviceName), semconv.ServiceInstanceID(identity)}
	if pod := os.Getenv("POD_NAME"); pod != "" {
		attrs = append(attrs, semconv.K8SPodName(pod))
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		attrs = append(attrs, semconv.K8SNamespaceName(ns))
	}
	return attrs
}
