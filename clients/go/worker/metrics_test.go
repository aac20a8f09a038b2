package worker

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

func TestMetricsCountJobsOnTheirEndpointWhileRunRuns(t *testing.T) {
	results := make(chan *pb.WorkerBatch, 4)
	srv := &scriptServer{script: func(stream pb.LeaseService_WorkServer, recv <-chan *pb.WorkRequest) error {
		<-recv
		_ = stream.Send(welcome(30e9))
		_ = stream.Send(assign("ok1", "metrics.ok"))
		_ = stream.Send(assign("bad1", "metrics.bad"))
		seen := 0
		next(t, recv, func(b *pb.WorkerBatch) bool {
			seen += len(b.GetCompletions()) + len(b.GetFailures())
			if len(b.GetCompletions())+len(b.GetFailures()) > 0 {
				results <- b
			}
			return seen == 2
		})
		<-stream.Context().Done()
		return nil
	}}
	w := newTestWorker(t, serve(t, srv), WithMetricsAddr("127.0.0.1:0"))
	_ = w.Handle("metrics.ok", func(ctx context.Context, job *Job) (map[string]any, error) { return nil, nil })
	_ = w.Handle("metrics.bad", func(ctx context.Context, job *Job) (map[string]any, error) {
		return nil, ParseError("unexpected '<'")
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	for got := 0; got < 2; {
		b := <-results
		got += len(b.GetCompletions()) + len(b.GetFailures())
	}
	f := sharedFamilies()
	checks := map[string]float64{
		"started ok":  testutil.ToFloat64(f.started.WithLabelValues("go", "metrics.ok")),
		"started bad": testutil.ToFloat64(f.started.WithLabelValues("go", "metrics.bad")),
		"succeeded":   testutil.ToFloat64(f.succeeded.WithLabelValues("go", "metrics.ok")),
		"failed":      testutil.ToFloat64(f.failed.WithLabelValues("go", "metrics.bad", "parse_error")),
		"in flight":   1 + testutil.ToFloat64(f.inFlight.WithLabelValues("go", "metrics.ok")),
	}
	for what, v := range checks {
		if v != 1 {
			t.Errorf("%s: %v, want 1", what, v)
		}
	}
	resp, err := http.Get("http://" + w.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`stella_worker_jobs_failed_total{error_class="parse_error",job_type="metrics.bad",sdk="go"} 1`,
		`stella_worker_handler_duration_seconds_count{job_type="metrics.ok",sdk="go"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if w.MetricsAddr() != "" {
		t.Errorf("endpoint still open after Run: %s", w.MetricsAddr())
	}
}

func TestMetricsAreOffByDefaultAndTheEnvironmentIsChecked(t *testing.T) {
	t.Setenv(metricsPortEnv, "")
	if w := newTestWorker(t, "127.0.0.1:1"); w.metrics != nil {
		t.Error("metrics on without an option or STELLA_METRICS_PORT")
	}
	t.Setenv(metricsPortEnv, "not-a-port")
	if _, err := New("127.0.0.1:1", WithToken("t")); err == nil || !strings.Contains(err.Error(), metricsPortEnv) {
		t.Errorf("bad STELLA_METRICS_PORT accepted: %v", err)
	}
	t.Setenv(metricsPortEnv, "9464")
	if w := newTestWorker(t, "127.0.0.1:1"); w.metrics == nil || w.metrics.addr != "0.0.0.0:9464" {
		t.Errorf("STELLA_METRICS_PORT ignored: %+v", w.metrics)
	}
}
