package worker

// Worker-side Prometheus metrics, off by default: WithMetricsAddr(":9464") or
// STELLA_METRICS_PORT=9464 (bound on STELLA_METRICS_ADDR, default 0.0.0.0) serves them on
// /metrics while Run runs. The Python and Rust SDKs export the same names, labels and
// buckets (docs/metrics.md, "Worker SDKs"); sdk tells the languages apart. The metrics live
// in a registry of their own, shared by every worker of the process, never in
// prometheus.DefaultRegisterer.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	metricsPortEnv = "STELLA_METRICS_PORT"
	metricsAddrEnv = "STELLA_METRICS_ADDR"
	sdkLabel       = "go"
)

// durationBuckets are the handler duration buckets of every SDK (5 ms to 10 min).
var durationBuckets = []float64{0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30, 60, 300, 600}

type metricFamilies struct {
	registry                             *prometheus.Registry
	started, succeeded, failed, canceled *prometheus.CounterVec
	duration                             *prometheus.HistogramVec
	inFlight                             *prometheus.GaugeVec
}

var (
	familiesOnce sync.Once
	families     *metricFamilies
)

func sharedFamilies() *metricFamilies {
	familiesOnce.Do(func() {
		common := []string{"sdk", "job_type"}
		f := &metricFamilies{
			registry: prometheus.NewRegistry(),
			started: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "stella_worker_jobs_started_total", Help: "Jobs whose handler started."}, common),
			succeeded: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "stella_worker_jobs_succeeded_total", Help: "Jobs whose result was reported."}, common),
			failed: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "stella_worker_jobs_failed_total", Help: "Jobs whose failure was reported, by error class."},
				append(append([]string(nil), common...), "error_class")),
			canceled: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "stella_worker_jobs_canceled_total", Help: "Handlers the SDK canceled (lease lost, job canceled, drain timeout)."}, common),
			duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "stella_worker_handler_duration_seconds", Help: "Handler run time, whatever its outcome.",
				Buckets: durationBuckets}, common),
			inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "stella_worker_jobs_in_flight", Help: "Handlers running now."}, common),
		}
		f.registry.MustRegister(f.started, f.succeeded, f.failed, f.canceled, f.duration, f.inFlight)
		families = f
	})
	return families
}

// WithMetricsAddr serves Prometheus metrics on addr ("host:port"; port 0 picks a free one)
// while Run runs. Without it, STELLA_METRICS_PORT (and STELLA_METRICS_ADDR) decide; with
// neither the worker exports nothing.
func WithMetricsAddr(addr string) Option {
	return func(w *Worker) error {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%w: metrics address %q: %v", ErrInvalid, addr, err)
		}
		w.metrics = &workerMetrics{addr: addr, f: sharedFamilies()}
		return nil
	}
}

// metricsFromEnv is the metrics STELLA_METRICS_PORT asks for (nil: none).
func metricsFromEnv() (*workerMetrics, error) {
	raw := os.Getenv(metricsPortEnv)
	if raw == "" {
		return nil, nil
	}
	port, err := strconv.Atoi(raw)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: %s=%q is not a port", ErrInvalid, metricsPortEnv, raw)
	}
	host := os.Getenv(metricsAddrEnv)
	if host == "" {
		host = "0.0.0.0"
	}
	return &workerMetrics{addr: net.JoinHostPort(host, strconv.Itoa(port)), f: sharedFamilies()}, nil
}

// workerMetrics holds the hooks the session calls; every method is a no-op on nil.
type workerMetrics struct {
	addr string
	f    *metricFamilies

	mu       sync.Mutex
	boundTo  string
	shutdown func()
}

// MetricsAddr is the address the metrics endpoint listens on while Run runs ("" otherwise).
func (w *Worker) MetricsAddr() string {
	if w.metrics == nil {
		return ""
	}
	w.metrics.mu.Lock()
	defer w.metrics.mu.Unlock()
	return w.metrics.boundTo
}

// serve starts the endpoint; the returned func stops it.
func (m *workerMetrics) serve(logf func(string, ...any)) (func(), error) {
	if m == nil {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", m.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: metrics endpoint: %v", ErrInvalid, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.f.registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("metrics endpoint stopped: %v", err)
		}
	}()
	m.mu.Lock()
	m.boundTo = ln.Addr().String()
	m.mu.Unlock()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		m.mu.Lock()
		m.boundTo = ""
		m.mu.Unlock()
	}, nil
}

func (m *workerMetrics) started(jobType string) {
	if m != nil {
		m.f.started.WithLabelValues(sdkLabel, jobType).Inc()
		m.f.inFlight.WithLabelValues(sdkLabel, jobType).Inc()
	}
}

// finished: the handler returned (any outcome).
func (m *workerMetrics) finished(jobType string, took time.Duration) {
	if m != nil {
		m.f.inFlight.WithLabelValues(sdkLabel, jobType).Dec()
		m.f.duration.WithLabelValues(sdkLabel, jobType).Observe(took.Seconds())
	}
}

func (m *workerMetrics) succeeded(jobType string) {
	if m != nil {
		m.f.succeeded.WithLabelValues(sdkLabel, jobType).Inc()
	}
}

func (m *workerMetrics) failed(jobType, errorClass string) {
	if m != nil {
		m.f.failed.WithLabelValues(sdkLabel, jobType, errorClass).Inc()
	}
}

func (m *workerMetrics) canceled(jobType string) {
	if m != nil {
		m.f.canceled.WithLabelValues(sdkLabel, jobType).Inc()
	}
}
