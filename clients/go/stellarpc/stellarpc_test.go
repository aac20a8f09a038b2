package stellarpc

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

func TestDialTargetForms(t *testing.T) {
	for target, want := range map[string]string{
		"127.0.0.1:50052":                 "127.0.0.1:50052",
		" dns:///leases.orch.svc:50052 ":  "dns:///leases.orch.svc:50052",
		"127.0.0.1:50052,127.0.0.1:50062": listScheme + ":///replicas",
		"ipv6:[::1]:50052,[::1]:50062":    listScheme + ":///replicas",
		"leases-0:50052, leases-1:50052":  listScheme + ":///replicas",
	} {
		got, opts, err := dialTarget(target)
		if err != nil || got != want || len(opts) == 0 {
			t.Errorf("dialTarget(%q) = %q, %d options, %v; want %q", target, got, len(opts), err, want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:50052,no-port", "a:1,,b:2"} {
		if _, _, err := dialTarget(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("dialTarget(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestDialRefusesAMissingToken(t *testing.T) {
	if _, err := Dial("127.0.0.1:1", &Config{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Dial without a token = %v, want ErrInvalid", err)
	}
}

func TestFromErrorUnpacksEveryDetail(t *testing.T) {
	st, err := status.New(codes.ResourceExhausted, "queue full").WithDetails(
		&errdetails.ErrorInfo{Reason: "QUOTA_MAX_QUEUED", Domain: "orchestrator.stella-ops.org", Metadata: map[string]string{"job_type": "a"}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
	)
	if err != nil {
		t.Fatal(err)
	}
	e := FromError(st.Err())
	if e.Code != codes.ResourceExhausted || e.Reason != "QUOTA_MAX_QUEUED" || e.Metadata["job_type"] != "a" ||
		e.RetryDelay != 1500*time.Millisecond || len(e.Details) != 2 {
		t.Fatalf("FromError = %+v", e)
	}
	if !errors.Is(e, ErrResourceExhausted) || errors.Is(e, ErrInvalid) || !e.Retryable() {
		t.Errorf("sentinels of %v", e)
	}

	st, _ = status.New(codes.InvalidArgument, "bad run").WithDetails(
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "jobs[1].depends_on", Description: "unknown key x"}}},
	)
	e = FromError(st.Err())
	if len(e.FieldViolations) != 1 || e.FieldViolations[0].Field != "jobs[1].depends_on" || !errors.Is(e, ErrInvalid) || e.Retryable() {
		t.Fatalf("FromError = %+v", e)
	}
	if got := e.Error(); got != "stella: InvalidArgument: bad run" {
		t.Errorf("Error() = %q", got)
	}

	st, _ = status.New(codes.FailedPrecondition, "not dead").WithDetails(
		&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{Type: "JOB_STATE", Subject: "job/1", Description: "succeeded"}}},
	)
	e = FromError(st.Err())
	if len(e.PreconditionViolations) != 1 || e.PreconditionViolations[0].Subject != "job/1" || !errors.Is(e, ErrFailedPrecondition) {
		t.Fatalf("FromError = %+v", e)
	}

	st, _ = status.New(codes.NotFound, "no run").WithDetails(&errdetails.ResourceInfo{ResourceType: "run", ResourceName: "r1"})
	e = FromError(st.Err())
	if e.ResourceType != "run" || e.ResourceName != "r1" || !errors.Is(e, ErrNotFound) {
		t.Fatalf("FromError = %+v", e)
	}
}

func TestFromErrorOfPlainAndContextErrors(t *testing.T) {
	if FromError(nil) != nil {
		t.Error("FromError(nil) is not nil")
	}
	if e := FromError(context.Canceled); e.Code != codes.Canceled || !errors.Is(e, context.Canceled) {
		t.Errorf("FromError(context.Canceled) = %+v", e)
	}
	if e := FromError(errors.New("boom")); e.Code != codes.Unavailable || !errors.Is(e, ErrUnavailable) {
		t.Errorf("FromError(plain) = %+v", e)
	}
	already := &RPCError{Code: codes.Aborted}
	if FromError(already) != already || !errors.Is(already, ErrAborted) {
		t.Error("an *RPCError is not returned as is")
	}
	if e := (&RPCError{Code: codes.NotFound, Reason: "not_found"}); !errors.Is(e, ErrLeaseLost) || !errors.Is(e, ErrNotFound) {
		t.Errorf("a lease-lost reason matches both sentinels: %+v", e)
	}
}

// echoEvents is an EventStreamService on loopback that records the metadata of each call.
type echoEvents struct {
	pb.UnimplementedEventStreamServiceServer
	seen chan metadata.MD
}

func (s *echoEvents) ListEvents(ctx context.Context, _ *pb.ListEventsRequest) (*pb.ListEventsResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.seen <- md
	return &pb.ListEventsResponse{}, nil
}

func (s *echoEvents) StreamEvents(_ *pb.StreamEventsRequest, stream pb.EventStreamService_StreamEventsServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	s.seen <- md
	return nil
}

func TestDialSendsTheCurrentTokenAndTenantOnCallsAndStreams(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	s := &echoEvents{seen: make(chan metadata.MD, 4)}
	pb.RegisterEventStreamServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	var cfg Config
	tokens := []string{"t1", "t2"}
	n := 0
	if err := cfg.Apply(WithTokenFunc(func() string { n++; return tokens[n-1] }), WithTenant("acme")); err != nil {
		t.Fatal(err)
	}
	conn, err := Dial(lis.Addr().String(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewEventStreamServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.ListEvents(ctx, &pb.ListEventsRequest{}); err != nil {
		t.Fatal(err)
	}
	stream, err := client.StreamEvents(ctx, &pb.StreamEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = stream.Recv()
	for _, want := range tokens {
		md := <-s.seen
		if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+want {
			t.Errorf("authorization = %v, want Bearer %s", got, want)
		}
		if got := md.Get(TenantHeader); len(got) != 1 || got[0] != "acme" {
			t.Errorf("%s = %v", TenantHeader, got)
		}
	}
}
