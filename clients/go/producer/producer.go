package producer

import (
	"context"
	"fmt"
	"iter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
	"github.com/stella-ops/orchestrator/clients/go/stellarpc"
)

// Polling of WaitRun and WaitJob: the first look is immediate, then the interval grows
// from DefaultPollInterval by half each time up to MaxPollInterval.
const (
	DefaultPollInterval = 200 * time.Millisecond
	MaxPollInterval     = 2 * time.Second
)

// The errors of the client are those of package stellarpc, shared with the worker SDK: an
// *RPCError is one type in both, and errors.Is(err, producer.ErrNotFound) works on what
// any method returns.
type RPCError = stellarpc.RPCError

// Sentinels matched by errors.Is on a returned error (see stellarpc for each one's status).
var (
	ErrPermission         = stellarpc.ErrPermission
	ErrInvalid            = stellarpc.ErrInvalid
	ErrNotFound           = stellarpc.ErrNotFound
	ErrAlreadyExists      = stellarpc.ErrAlreadyExists
	ErrFailedPrecondition = stellarpc.ErrFailedPrecondition
	ErrResourceExhausted  = stellarpc.ErrResourceExhausted
	ErrAborted            = stellarpc.ErrAborted
	ErrUnavailable        = stellarpc.ErrUnavailable
)

// Producer is a client of the scheduler service (SchedulerService and EventStreamService,
// served on one port): it creates sources, runs and jobs, waits for them, watches events
// and administers dead letters, quotas, schedules and backfills. It is safe for concurrent
// use; Close releases its connection.
type Producer struct {
	conn         *grpc.ClientConn
	scheduler    pb.SchedulerServiceClient
	events       pb.EventStreamServiceClient
	pollInterval time.Duration
	rand         func() float64
}

type settings struct {
	conn         stellarpc.Config
	pollInterval time.Duration
	rand         func() float64
}

// Option configures a Producer.
type Option func(*settings) error

func connOption(o stellarpc.Option) Option { return func(s *settings) error { return o(&s.conn) } }

// WithToken sets the bearer token (scope orch:operate to write, orch:read to read; quotas
// need orch:quota and backfills orch:backfill).
func WithToken(token string) Option { return connOption(stellarpc.WithToken(token)) }

// WithTokenFunc sets a function asked for the token before every call (a rotating token works).
func WithTokenFunc(fn func() string) Option { return connOption(stellarpc.WithTokenFunc(fn)) }

// WithTenant names the tenant to act for (x-stella-tenant) when the token names several.
func WithTenant(tenant string) Option { return connOption(stellarpc.WithTenant(tenant)) }

// WithTLSCAFile opens a TLS channel that trusts only the CA in the PEM file at path (the
// same option as the worker SDKs').
func WithTLSCAFile(path string) Option { return connOption(stellarpc.WithTLSCAFile(path)) }

// WithTransportCredentials opens a TLS channel with any credentials (default plaintext).
func WithTransportCredentials(c credentials.TransportCredentials) Option {
	return connOption(stellarpc.WithTransportCredentials(c))
}

// WithDialOptions adds gRPC dial options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return connOption(stellarpc.WithDialOptions(opts...))
}

// WithPollInterval sets the first interval of WaitRun and WaitJob (default 200 ms; it grows
// by half each look up to MaxPollInterval).
func WithPollInterval(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("%w: poll interval must be > 0, got %s", ErrInvalid, d)
		}
		s.pollInterval = d
		return nil
	}
}

// WithBackoffSeed seeds the reconnect jitter of WatchEvents (SplitMix64), for tests.
func WithBackoffSeed(seed uint64) Option {
	return func(s *settings) error { s.rand = stellarpc.NewSplitMix64(seed).Float64; return nil }
}

// New creates a producer for the scheduler service at target: "host:port" (50051 in `make
// up`), a comma list of replicas or a gRPC name such as "dns:///scheduler.orch.svc:50051".
// No connection is made before the first call. It fails with ErrInvalid without a token.
func New(target string, opts ...Option) (*Producer, error) {
	s := settings{pollInterval: DefaultPollInterval}
	for _, opt := range opts {
		if err := opt(&s); err != nil {
			return nil, err
		}
	}
	conn, err := stellarpc.Dial(target, &s.conn)
	if err != nil {
		return nil, err
	}
	return &Producer{
		conn: conn, scheduler: pb.NewSchedulerServiceClient(conn), events: pb.NewEventStreamServiceClient(conn),
		pollInterval: s.pollInterval, rand: s.rand,
	}, nil
}

// Close closes the connection; calls in flight fail.
func (p *Producer) Close() error { return p.conn.Close() }

// Scheduler is the generated SchedulerService client on the producer's connection (token
// and tenant included), for the calls this package does not wrap (incidents, artifacts,
// watermarks, overview, ...). Its errors are plain gRPC statuses: stellarpc.FromError types them.
func (p *Producer) Scheduler() pb.SchedulerServiceClient { return p.scheduler }

// Operator is the justification of a control action, recorded in the audit trail. Some
// calls require Reason (quotas, backfills, pauses, replays); Ticket is optional.
type Operator struct {
	Reason string // why, at most 256 characters
	Ticket string // change or incident ticket, e.g. "OPS-1234"
}

func (o Operator) proto() *pb.OperatorContext {
	return &pb.OperatorContext{Reason: o.Reason, Ticket: o.Ticket}
}

// call runs one unary RPC and types its error.
func call[Req, Resp any](ctx context.Context, rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	resp, err := rpc(ctx, req)
	if err != nil {
		var zero Resp
		return zero, stellarpc.FromError(err)
	}
	return resp, nil
}

// pages yields every item of a paged List call: fetch gets a page token and returns a
// page's items and the next token ("" on the last page). An error is yielded once, last.
func pages[T any](ctx context.Context, fetch func(ctx context.Context, token string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		token := ""
		for {
			items, next, err := fetch(ctx, token)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range items {
				if !yield(item, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			token = next
		}
	}
}

// list adapts a generated List RPC to pages: setToken puts the token in the request and
// split takes the items and next token out of the response.
func list[Req proto.Message, Resp, T any](ctx context.Context, rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), filter Req,
	setToken func(Req, string), split func(Resp) ([]T, string)) iter.Seq2[T, error] {
	req := proto.Clone(filter).(Req) // the caller's filter is not touched
	return pages(ctx, func(ctx context.Context, token string) ([]T, string, error) {
		setToken(req, token)
		resp, err := call(ctx, rpc, req)
		if err != nil {
			return nil, "", err
		}
		items, next := split(resp)
		return items, next, nil
	})
}
