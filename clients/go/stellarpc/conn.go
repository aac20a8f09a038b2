package stellarpc

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

// TenantHeader names the tenant to act for when the token names several.
const TenantHeader = "x-stella-tenant"

// MaxMessageBytes bounds gRPC messages both ways.
const MaxMessageBytes = 16 * 1024 * 1024

// Config holds the connection settings of a client; build it with Options and connect
// with Dial. The zero value has no token (Dial refuses it).
type Config struct {
	token       func() string
	tenant      string
	dialOptions []grpc.DialOption
}

// Option sets one connection setting. The worker and producer packages wrap each in their
// own option type (worker.WithToken, producer.WithToken, ...).
type Option func(*Config) error

// WithToken sets the bearer token sent with every call.
func WithToken(token string) Option {
	return func(c *Config) error { c.token = func() string { return token }; return nil }
}

// WithTokenFunc sets a function asked for the token before every call and stream (a
// rotating token works).
func WithTokenFunc(fn func() string) Option {
	return func(c *Config) error { c.token = fn; return nil }
}

// WithTenant names the tenant to act for (the x-stella-tenant header) when the token names
// several.
func WithTenant(tenant string) Option {
	return func(c *Config) error { c.tenant = tenant; return nil }
}

// WithTransportCredentials opens a TLS channel with the given credentials (default
// plaintext): system roots, a client certificate, ...
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(c *Config) error {
		c.dialOptions = append(c.dialOptions, grpc.WithTransportCredentials(creds))
		return nil
	}
}

// WithTLSCAFile opens a TLS channel that trusts only the CA in the PEM file at path (the
// CA that signed the server's certificate; the same option as the Python SDK's tls_ca_file
// and the Rust SDK's tls_ca_file).
func WithTLSCAFile(path string) Option {
	return func(c *Config) error {
		creds, err := credentials.NewClientTLSFromFile(path, "")
		if err != nil {
			return fmt.Errorf("%w: TLS CA file: %v", ErrInvalid, err)
		}
		c.dialOptions = append(c.dialOptions, grpc.WithTransportCredentials(creds))
		return nil
	}
}

// WithDialOptions adds gRPC dial options; they come after the defaults, so they win (e.g.
// grpc.WithDefaultServiceConfig replaces round_robin).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *Config) error { c.dialOptions = append(c.dialOptions, opts...); return nil }
}

// Apply runs opts on c in order and returns the first error.
func (c *Config) Apply(opts ...Option) error {
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return err
		}
	}
	return nil
}

// HasToken reports whether a token (or token function) was set.
func (c *Config) HasToken() bool { return c.token != nil }

// Dial opens a client connection to target ("host:port", a comma list of replicas such as
// "10.0.0.1:50051,10.0.0.2:50051", or a gRPC name such as "dns:///scheduler.orch.svc:50051")
// with the settings of c. The connection is lazy: nothing is sent before the first call.
// It fails with ErrInvalid when no token was set or the target is malformed.
func Dial(target string, c *Config) (*grpc.ClientConn, error) {
	if c.token == nil {
		return nil, fmt.Errorf("%w: a token is required (WithToken)", ErrInvalid)
	}
	resolved, opts, err := dialTarget(target)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		// Detect a vanished server within ~40 s even with no call running.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		// The channel's own reconnect backoff must not outgrow the clients' (gRPC's default is 120 s).
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 10 * time.Second,
		}, MinConnectTimeout: 5 * time.Second}),
		grpc.WithChainUnaryInterceptor(c.unaryAuth),
		grpc.WithChainStreamInterceptor(c.streamAuth),
	)
	conn, err := grpc.NewClient(resolved, append(opts, c.dialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return conn, nil
}

// outgoing adds the credentials to a call's metadata; the token function is asked anew
// each time.
func (c *Config) outgoing(ctx context.Context) context.Context {
	pairs := []string{"authorization", "Bearer " + c.token()}
	if c.tenant != "" {
		pairs = append(pairs, TenantHeader, c.tenant)
	}
	return metadata.AppendToOutgoingContext(ctx, pairs...)
}

func (c *Config) unaryAuth(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(c.outgoing(ctx), method, req, reply, cc, opts...)
}

func (c *Config) streamAuth(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(c.outgoing(ctx), desc, cc, method, opts...)
}
