// Package tracing sets up OpenTelemetry traces for a berth process. They
// are exported over OTLP/HTTP only when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
// set; otherwise the global tracer provider stays OpenTelemetry's no-op
// one and a span costs a few nanoseconds. The trace context crosses to
// the monitor and the runtime in TRACEPARENT, as OpenTelemetry's
// environment carriers do, so that one `berth run` is one trace.
package tracing

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Enabled tells whether traces are exported: an OTLP endpoint is set.
func Enabled() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the exporter when Enabled, and returns the context
// continuing the trace of TRACEPARENT (from the process that started
// this one), and a function that flushes and stops the exporter.
func Setup(ctx context.Context, service string) (context.Context, func()) {
	if !Enabled() {
		return ctx, func() {}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		slog.Warn("traces not exported", "err", err)
		return ctx, func() {}
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	ctx = propagation.TraceContext{}.Extract(ctx, envCarrier{})
	return ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			slog.Warn("traces not exported", "err", err)
		}
	}
}

// Flush exports the spans ended so far (a long-lived monitor's start).
func Flush(ctx context.Context) {
	if tp, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		_ = tp.ForceFlush(ctx)
	}
}

// Start starts a span of berth's tracer.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return otel.Tracer("berth").Start(ctx, name, trace.WithAttributes(attrs...))
}

// Container is the attributes of a container's spans.
func Container(id, name string) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.String("container.id", id), attribute.String("container.name", name)}
}

// End ends a span, recording err when there is one.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Traceparent is ctx's span as a W3C traceparent value, for a process
// that continues the trace; "" when ctx has no span being exported.
func Traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceparent continues the trace of a traceparent value.
func WithTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

// envCarrier reads the trace context from the environment.
type envCarrier struct{}

func (envCarrier) Get(key string) string { return os.Getenv(strings.ToUpper(key)) }
func (envCarrier) Set(string, string)    {}
func (envCarrier) Keys() []string        { return []string{"traceparent", "tracestate"} }
