package framework

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
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

// Telemetry holds the providers the elections report to, as configured:
// traces exported over OTLP (or to standard output) when tracing is
// enabled, and metrics served for Prometheus on the HTTP endpoint when it
// is. Whatever is off is a no-op provider, at no cost.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Metrics serves the metrics in the Prometheus text format; nil when
	// the HTTP endpoint is off.
	Metrics http.Handler
}

// TelemetryParams are NewTelemetry's dependencies.
type TelemetryParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    *config.Config
	Identity  Identity
}

// NewTelemetry builds the providers and registers their flush on stop,
// after the elections have stopped (and released their leases).
func NewTelemetry(p TelemetryParams) (*Telemetry, error) {
	t := &Telemetry{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}
	var shutdowns []func(context.Context) error
	if p.Config.Tracing.Enabled {
		tp, err := newTracerProvider(p.Config, string(p.Identity))
		if err != nil {
			return nil, err
		}
		t.TracerProvider = tp
		shutdowns = append(shutdowns, tp.Shutdown)
	}
	if p.Config.HTTP.Address != "" {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		res, err := newResource(p.Config.Tracing.ServiceName, string(p.Identity))
		if err != nil {
			return nil, err
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
		t.MeterProvider = mp
		t.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		shutdowns = append(shutdowns, mp.Shutdown)
	}
	p.Lifecycle.Append(fx.StopHook(func(ctx context.Context) error {
		var errs []error
		for _, s := range shutdowns {
			errs = append(errs, s(ctx))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("telemetry: flush: %w", err)
		}
		return nil
	}))
	return t, nil
}

// newTracerProvider exports spans as the configuration says; the standard
// OTEL_EXPORTER_OTLP_* variables fill what it leaves unset.
func newTracerProvider(cfg *config.Config, identity string) (*sdktrace.TracerProvider, error) {
	tc := cfg.Tracing
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
	res, err := newResource(tc.ServiceName, identity)
	if err != nil {
		return nil, err
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(tc.SampleRatio))),
	), nil
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
