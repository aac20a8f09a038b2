package worker

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestTracingIsOffUnlessTheOtelVariablesAsk(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317"}, false},
	}
	for _, c := range cases {
		if got := tracingEnabledBy(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("%v: enabled = %v, want %v", c.env, got, c.want)
		}
	}
}

func TestHandlerSpanIsAChildOfTheJobsTraceParent(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	previous := otel.GetTracerProvider()
	otel.SetTracerProvider(provider)
	defer otel.SetTracerProvider(previous)

	job := &Job{ID: "j1", JobType: "t", Attempt: 2, Tenant: "acme",
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	_, span := startHandlerSpan(context.Background(), job, "w1")
	endHandlerSpan(span, UpstreamRejected("nope"), false)

	ended := recorder.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	got := ended[0]
	if got.Name() != SpanName || got.Parent().TraceID().String() != "0af7651916cd43dd8448eb211c80319c" ||
		got.Parent().SpanID().String() != "b7ad6b7169203331" || !got.Parent().IsRemote() {
		t.Fatalf("span %s has parent %v", got.Name(), got.Parent())
	}
	attrs := map[string]string{}
	for _, kv := range got.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	want := map[string]string{"stella.job.id": "j1", "stella.job.type": "t", "stella.job.attempt": "2",
		"stella.tenant": "acme", "stella.worker.id": "w1", "stella.sdk": "go",
		"stella.job.outcome": "failed", "stella.error.class": "http_4xx"}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}
	if got.Status().Code != codes.Error {
		t.Errorf("status %v, want Error", got.Status())
	}
}
