package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
	"github.com/stella-ops/orchestrator/clients/go/stellarpc"
)

// SDK identity sent in WorkerHello.
const (
	SDKName    = "go"
	SDKVersion = "0.1.0"
)

// TenantHeader names the tenant to act for when the token names several.
const TenantHeader = stellarpc.TenantHeader

// MaxMessageBytes bounds gRPC messages both ways.
const MaxMessageBytes = stellarpc.MaxMessageBytes

// Handler runs one job. It returns the job's result (a JSON object, or nil) or an error:
// a *JobError fails the attempt with its class, anything else as "internal" (a deadline as
// "timeout"). ctx is canceled when the SDK stops the job: context.Cause(ctx) is then
// ErrLeaseLost, ErrJobCanceled or ErrDrainTimeout, and the result is dropped.
type Handler func(ctx context.Context, job *Job) (map[string]any, error)

// Stats counts events since the worker was created (a cheap hook for metrics).
type Stats struct {
	Assigned, Completed, Failed, Canceled, Connects, StreamFailures int64
}

type stats struct {
	Assigned, Completed, Failed, Canceled, Connects, StreamFailures atomic.Int64
}

func (s *stats) add(c *atomic.Int64) { c.Add(1) }

// Worker is a worker process's connection to the leases service: register handlers with
// Handle, then Run. It opens a LeaseService.Work stream, runs assignments (never more than
// the concurrency at once), reports results in batches, heartbeats leases on its own at the
// interval derived from the lease TTL and reconnects with capped, jittered backoff when the
// stream breaks. UNAUTHENTICATED, PERMISSION_DENIED and INVALID_ARGUMENT end Run at once.
type Worker struct {
	target        string
	conn          stellarpc.Config // token, tenant, TLS and dial options
	concurrency   int
	workerID      string
	types         []string
	labels        map[string]string
	maxBatchDelay time.Duration
	drainTimeout  time.Duration
	maxReconnects int // 0: forever
	rand          func() float64
	logger        *slog.Logger

	handlers map[string]Handler
	client   pb.LeaseServiceClient
	stats    stats
	metrics  *workerMetrics // nil: off

	mu        sync.Mutex
	running   bool
	drainCh   chan struct{}
	drainOnce sync.Once
	reason    string
}

// Option configures a Worker.
type Option func(*Worker) error

// connOption makes a shared connection option (package stellarpc) a worker Option.
func connOption(o stellarpc.Option) Option { return func(w *Worker) error { return o(&w.conn) } }

// WithToken sets the bearer token (scope orch:work).
func WithToken(token string) Option { return connOption(stellarpc.WithToken(token)) }

// WithTokenFunc sets a function called at every connect (a rotating token works).
func WithTokenFunc(fn func() string) Option { return connOption(stellarpc.WithTokenFunc(fn)) }

// WithConcurrency sets how many handlers run at once (also the capacity in Hello; default 10).
func WithConcurrency(n int) Option {
	return func(w *Worker) error {
		if n < 1 {
			return fmt.Errorf("%w: concurrency must be >= 1, got %d", ErrInvalid, n)
		}
		w.concurrency = n
		return nil
	}
}

// WithWorkerID sets the id shown in leases (default hostname-pid-random).
func WithWorkerID(id string) Option { return func(w *Worker) error { w.workerID = id; return nil } }

// WithTenant names the tenant to act for (x-stella-tenant) when the token names several.
func WithTenant(t string) Option { return connOption(stellarpc.WithTenant(t)) }

// WithJobTypes sets the job types asked for (default: those with a handler).
func WithJobTypes(types ...string) Option {
	return func(w *Worker) error { w.types = append([]string(nil), types...); return nil }
}

// WithLabels sets free-form labels sent in Hello.
func WithLabels(labels map[string]string) Option {
	return func(w *Worker) error { w.labels = labels; return nil }
}

// WithDrainTimeout sets how long a drain lets handlers finish before it cancels them (default 30 s).
func WithDrainTimeout(d time.Duration) Option {
	return func(w *Worker) error { w.drainTimeout = d; return nil }
}

// WithMaxBatchDelay sets how long a report waits for others to share its message (default 2 ms).
func WithMaxBatchDelay(d time.Duration) Option {
	return func(w *Worker) error { w.maxBatchDelay = d; return nil }
}

// WithMaxReconnectAttempts ends Run with the last error after n consecutive failed
// connects (default 0: retry forever).
func WithMaxReconnectAttempts(n int) Option {
	return func(w *Worker) error { w.maxReconnects = n; return nil }
}

// WithBackoffSeed seeds the reconnect jitter (SplitMix64), for tests.
func WithBackoffSeed(seed uint64) Option {
	return func(w *Worker) error { w.rand = NewSplitMix64(seed).Float64; return nil }
}

// WithTransportCredentials opens a TLS channel (default plaintext).
func WithTransportCredentials(c credentials.TransportCredentials) Option {
	return connOption(stellarpc.WithTransportCredentials(c))
}

// WithTLSCAFile opens a TLS channel that trusts only the CA in the PEM file at path (the
// CA that signed the server's certificate; the same option as the Python SDK's
// tls_ca_file and the Rust SDK's tls_ca_file).
func WithTLSCAFile(path string) Option { return connOption(stellarpc.WithTLSCAFile(path)) }

// WithDialOptions adds gRPC dial options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return connOption(stellarpc.WithDialOptions(opts...))
}

// WithLogger sets the logger (default slog.Default()). Logs never include tokens or payloads.
func WithLogger(l *slog.Logger) Option { return func(w *Worker) error { w.logger = l; return nil } }

// New creates a worker for the leases service at target: "host:port", a comma list of
// replicas ("10.0.0.1:50052,10.0.0.2:50052") or a gRPC name such as
// "dns:///leases.orch.svc:50052" (every address of the name). The connection balances
// round_robin: each Work stream (a reconnect, a stream the server drained) goes to the next
// replica that is up. A WithDialOptions(grpc.WithDefaultServiceConfig(...)) overrides it.
func New(target string, opts ...Option) (*Worker, error) {
	w := &Worker{
		target: target, concurrency: 10, maxBatchDelay: DefaultMaxBatchDelay,
		drainTimeout: DefaultDrainTimeout, handlers: map[string]Handler{}, logger: slog.Default(),
		drainCh: make(chan struct{}), reason: "shutdown",
	}
	for _, opt := range opts {
		if err := opt(w); err != nil {
			return nil, err
		}
	}
	if !w.conn.HasToken() {
		return nil, fmt.Errorf("%w: a token is required (WithToken)", ErrInvalid)
	}
	if w.metrics == nil {
		m, err := metricsFromEnv()
		if err != nil {
			return nil, err
		}
		w.metrics = m
	}
	if w.workerID == "" {
		w.workerID = defaultWorkerID()
	}
	return w, nil
}

func defaultWorkerID() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// WorkerID is the id sent in Hello.
func (w *Worker) WorkerID() string { return w.workerID }

// Stats is a snapshot of the counters.
func (w *Worker) Stats() Stats {
	return Stats{
		Assigned: w.stats.Assigned.Load(), Completed: w.stats.Completed.Load(), Failed: w.stats.Failed.Load(),
		Canceled: w.stats.Canceled.Load(), Connects: w.stats.Connects.Load(), StreamFailures: w.stats.StreamFailures.Load(),
	}
}

// Handle registers the handler of a job type; one handler per type.
func (w *Worker) Handle(jobType string, h Handler) error {
	if jobType == "" || h == nil {
		return fmt.Errorf("%w: a job type and a handler are required", ErrInvalid)
	}
	if _, ok := w.handlers[jobType]; ok {
		return fmt.Errorf("%w: a handler for %q is already registered", ErrInvalid, jobType)
	}
	w.handlers[jobType] = h
	return nil
}

func (w *Worker) jobTypes() []string {
	if w.types != nil {
		return w.types
	}
	types := make([]string, 0, len(w.handlers))
	for t := range w.handlers {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

func (w *Worker) logf(format string, args ...any) {
	w.logger.Info(fmt.Sprintf(format, args...), "worker_id", w.workerID)
}

// Drain starts a graceful drain without waiting for it (safe from any goroutine): the server
// stops assigning, running handlers finish (up to the drain timeout), their results are
// flushed and acknowledged, the stream closes and Run returns nil.
func (w *Worker) Drain(reason string) {
	w.drainOnce.Do(func() {
		w.mu.Lock()
		w.reason = reason
		w.mu.Unlock()
		close(w.drainCh)
	})
}

func (w *Worker) drainReason() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason
}

func (w *Worker) draining() bool {
	select {
	case <-w.drainCh:
		return true
	default:
		return false
	}
}

// Run serves jobs until Drain completes (nil), ctx ends (nil: running handlers are
// canceled, the server re-leases their jobs) or the server refuses the worker (*RPCError
// matching ErrPermission or ErrInvalid), or MaxReconnectAttempts ran out.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("stella worker: Run is already running")
	}
	w.running = true
	w.mu.Unlock()
	defer func() { w.mu.Lock(); w.running = false; w.mu.Unlock() }()
	if len(w.handlers) == 0 {
		return fmt.Errorf("%w: register at least one handler before Run", ErrInvalid)
	}
	for _, t := range w.jobTypes() {
		if w.handlers[t] == nil {
			return fmt.Errorf("%w: job type %q has no handler", ErrInvalid, t)
		}
	}
	conn, err := stellarpc.Dial(w.target, &w.conn)
	if err != nil {
		return err
	}
	defer conn.Close()
	w.client = pb.NewLeaseServiceClient(conn)
	stopMetrics, err := w.metrics.serve(w.logf)
	if err != nil {
		return err
	}
	defer stopMetrics()
	bo := NewBackoff(w.rand)
	failures := 0
	for ctx.Err() == nil && !w.draining() {
		// (A drain requested while disconnected has nothing in flight to finish.)
		w.stats.add(&w.stats.Connects)
		s := newSession(w, ctx)
		outcome, err := s.run(ctx.Done())
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			rpcErr := stellarpc.FromError(err)
			if !rpcErr.Retryable() {
				w.logger.Error("the server refused the worker", "error", rpcErr.Error())
				return rpcErr
			}
			w.stats.add(&w.stats.StreamFailures)
			if s.welcomed {
				failures = 0
			} else {
				failures++
			}
			if w.maxReconnects > 0 && failures >= w.maxReconnects {
				return rpcErr
			}
			w.logger.Warn("Work stream failed", "error", rpcErr.Error())
		} else if outcome == outcomeDrained || outcome == outcomeStopped {
			return nil
		}
		if s.welcomed {
			bo.Reset()
		}
		delay := bo.Next()
		select {
		case <-ctx.Done():
		case <-w.drainCh:
		case <-time.After(delay):
		}
	}
	return nil
}

// RunWithSignals is Run for a process: the first SIGTERM/SIGINT drains gracefully, a second
// one stops at once. Tracing is set up from the OTEL_* variables (off unless they ask for
// it; see InitTracingFromEnv) and flushed before it returns.
func (w *Worker) RunWithSignals(ctx context.Context) error {
	tracing, err := InitTracingFromEnv(ctx, DefaultServiceName)
	if err != nil {
		w.logf("tracing off: %v", err)
	}
	defer func() {
		flush, done := context.WithTimeout(context.Background(), tracingFlushTimeout)
		defer done()
		if err := tracing.Shutdown(flush); err != nil {
			w.logf("tracing shutdown: %v", err)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	go func() {
		seen := 0
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-signals:
				seen++
				if seen == 1 {
					w.logf("%s: draining (send it again to stop at once)", sig)
					w.Drain(sig.String())
				} else {
					w.logf("%s again: stopping", sig)
					cancel()
					return
				}
			}
		}
	}()
	return w.Run(ctx)
}
