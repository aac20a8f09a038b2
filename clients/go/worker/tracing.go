package worker

// The handler's span, a child of the job's trace_parent (docs/tracing.md), and tracing set
// up from the standard OTEL_* variables.
//
// The same span as the Python (worker/_tracing.py) and Rust (src/tracing.rs) SDKs: name
// "stella.job.run", kind CONSUMER, attributes stella.job.id, stella.job.type,
// stella.job.attempt, stella.tenant, stella.worker.id, stella.sdk; status Error with the
// error class when the handler fails. The handler's context carries the span, so the
// handler's own instrumented calls nest under it.
//
// Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set or
// OTEL_TRACES_EXPORTER=otlp; off with OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true.
// RunWithSignals calls InitTracingFromEnv and flushes at the end; a program calling Run
// installs its own global provider (otel.SetTracerProvider) or calls InitTracingFromEnv.
// Without a provider the global tracer is OpenTelemetry's no-op one.

import (
	"context"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

const (
	// SpanName is the name of the handler's span in every SDK.
	SpanName = "stella.job.run"
	// DefaultServiceName is the service.name of a worker's spans unless OTEL_SERVICE_NAME is set.
	DefaultServiceName = "stella-worker"
	tracerName         = "github.com/stella-ops/orchestrator/clients/go/worker"
	// tracingFlushTimeout bounds the export of queued spans when RunWithSignals returns.
	tracingFlushTimeout = 10 * time.Second
)

// TracingEnabled reports whether the OTEL_* variables turn tracing on (the same rule as the
// Python and Rust SDKs).
func TracingEnabled() bool { return tracingEnabledBy(os.Getenv) }

func tracingEnabledBy(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	var exporters []string
	for _, e := range strings.Split(getenv("OTEL_TRACES_EXPORTER"), ",") {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			exporters = append(exporters, e)
		}
	}
	if len(exporters) > 0 {
		otlp := false
		for _, e := range exporters {
			if e == "none" {
				return false
			}
			otlp = otlp || e == "otlp"
		}
		return otlp
	}
	return strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) != "" ||
		strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) != ""
}

// Tracing is an installed tracer provider; Shutdown flushes queued spans.
type Tracing struct{ provider *sdktrace.TracerProvider }

// Shutdown exports what is queued and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// InitTracingFromEnv installs a global tracer provider exporting over OTLP/gRPC when the
// OTEL_* variables ask for it, and returns nil, nil when they do not. service.name is
// OTEL_SERVICE_NAME or defaultService; the exporter reads its own OTEL_EXPORTER_OTLP_*
// settings, the sampler OTEL_TRACES_SAMPLER.
func InitTracingFromEnv(ctx context.Context, defaultService string) (*Tracing, error) {
	if !TracingEnabled() {
		return nil, nil
	}
	exporter, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(os.Getenv("OTEL_SERVICE_NAME"))
	if name == "" {
		name = defaultService
	}
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(attribute.String("service.name", name)))
	if err != nil {
		return nil, err
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return &Tracing{provider: provider}, nil
}

// startHandlerSpan starts the handler's span under the job's trace_parent (a new root when
// it has none); the returned context keeps ctx's cancellation.
func startHandlerSpan(ctx context.Context, job *Job, workerID string) (context.Context, trace.Span) {
	carrier := propagation.MapCarrier{}
	if job.TraceParent != "" {
		carrier["traceparent"] = job.TraceParent
		if job.TraceState != "" {
			carrier["tracestate"] = job.TraceState
		}
	}
	parent := propagation.TraceContext{}.Extract(ctx, carrier)
	return otel.Tracer(tracerName).Start(parent, SpanName,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("stella.job.id", job.ID),
			attribute.String("stella.job.type", job.JobType),
			attribute.Int("stella.job.attempt", job.Attempt),
			attribute.String("stella.tenant", job.Tenant),
			attribute.String("stella.worker.id", workerID),
			attribute.String("stella.sdk", "go"),
		))
}

// endHandlerSpan records how the handler ended: canceled by the SDK, failed or succeeded.
func endHandlerSpan(span trace.Span, err error, canceled bool) {
	switch {
	case canceled:
		span.SetAttributes(attribute.String("stella.job.outcome", "canceled"))
	case err != nil:
		class := Classify(err).Class
		span.SetAttributes(attribute.String("stella.job.outcome", "failed"),
			attribute.String("stella.error.class", class))
		span.RecordError(err)
		span.SetStatus(codes.Error, class)
	default:
		span.SetAttributes(attribute.String("stella.job.outcome", "succeeded"))
	}
	span.End()
}
