package producer

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
	"github.com/stella-ops/orchestrator/clients/go/worker"
)

// scheduler stands in for the scheduler service on a real gRPC server on loopback; the
// producer's behaviour under faults (a broken event stream, an unavailable server) cannot
// be produced on demand with the real service, so each test scripts the answers.
type scheduler struct {
	pb.UnimplementedSchedulerServiceServer
	pb.UnimplementedEventStreamServiceServer
	mu       sync.Mutex
	getRun   []func() (*pb.Run, error) // answers of successive GetRun calls
	streams  []func(*pb.StreamEventsRequest, pb.EventStreamService_StreamEventsServer) error
	requests []*pb.StreamEventsRequest
	auth     []string
	pages    map[string]*pb.ListRunsResponse // by page token
}

func (s *scheduler) GetRun(ctx context.Context, _ *pb.GetRunRequest) (*pb.GetRunResponse, error) {
	s.mu.Lock()
	md, _ := metadata.FromIncomingContext(ctx)
	s.auth = append(s.auth, md.Get("authorization")...)
	next := s.getRun[0]
	if len(s.getRun) > 1 {
		s.getRun = s.getRun[1:]
	}
	s.mu.Unlock()
	run, err := next()
	return &pb.GetRunResponse{Run: run}, err
}

func (s *scheduler) ListRuns(_ context.Context, req *pb.ListRunsRequest) (*pb.ListRunsResponse, error) {
	return s.pages[req.GetPageToken()], nil
}

func (s *scheduler) CreateRun(_ context.Context, req *pb.CreateRunRequest) (*pb.CreateRunResponse, error) {
	st, _ := status.New(codes.InvalidArgument, "invalid run").WithDetails(
		&errdetails.ErrorInfo{Reason: "INVALID_ARGUMENT"},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "jobs[0].job_type", Description: "unknown to " + req.GetName()}}},
	)
	return nil, st.Err()
}

func (s *scheduler) StreamEvents(req *pb.StreamEventsRequest, stream pb.EventStreamService_StreamEventsServer) error {
	s.mu.Lock()
	s.requests = append(s.requests, req)
	script := s.streams[0]
	if len(s.streams) > 1 {
		s.streams = s.streams[1:]
	}
	s.mu.Unlock()
	return script(req, stream)
}

func start(t *testing.T, s *scheduler) *Producer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterSchedulerServiceServer(srv, s)
	pb.RegisterEventStreamServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	p, err := New(lis.Addr().String(), WithToken("tok"), WithPollInterval(time.Millisecond), WithBackoffSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // generous: loaded CI
	t.Cleanup(cancel)
	return ctx
}

func events(seqs ...int64) *pb.StreamEventsResponse {
	msg := &pb.StreamEventsResponse{}
	for _, seq := range seqs {
		msg.Events = append(msg.Events, &pb.Event{Seq: seq, Type: "job.succeeded"})
	}
	return msg
}

func TestWatchEventsResumesAfterTheLastSeqWhenTheStreamBreaks(t *testing.T) {
	s := &scheduler{streams: []func(*pb.StreamEventsRequest, pb.EventStreamService_StreamEventsServer) error{
		func(_ *pb.StreamEventsRequest, st pb.EventStreamService_StreamEventsServer) error {
			_ = st.Send(events(5, 6))
			return status.Error(codes.Unavailable, "scheduler restarting")
		},
		func(_ *pb.StreamEventsRequest, st pb.EventStreamService_StreamEventsServer) error {
			// A replay that overlaps what was already yielded is not yielded twice.
			_ = st.Send(events(6, 7))
			return nil // the server ends the stream: also a break
		},
		func(_ *pb.StreamEventsRequest, st pb.EventStreamService_StreamEventsServer) error {
			_ = st.Send(events(8))
			<-st.Context().Done()
			return nil
		},
	}}
	p := start(t, s)
	var got []int64
	for ev, err := range p.WatchEvents(testContext(t), 4, EventFilter{RunID: "r1", Types: []string{"job."}}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.GetSeq())
		if len(got) == 4 {
			break
		}
	}
	if !slices.Equal(got, []int64{5, 6, 7, 8}) {
		t.Errorf("events yielded: %v", got)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	after := []int64{}
	for _, r := range s.requests {
		after = append(after, r.GetAfterSeq())
		if r.GetRunId() != "r1" || !slices.Equal(r.GetTypes(), []string{"job."}) {
			t.Errorf("filter lost on reconnect: %v", r)
		}
	}
	if !slices.Equal(after, []int64{4, 6, 7}) {
		t.Errorf("after_seq of successive streams: %v", after)
	}
}

func TestWatchEventsEndsWithATypedErrorWhenRefused(t *testing.T) {
	s := &scheduler{streams: []func(*pb.StreamEventsRequest, pb.EventStreamService_StreamEventsServer) error{
		func(*pb.StreamEventsRequest, pb.EventStreamService_StreamEventsServer) error {
			return status.Error(codes.PermissionDenied, "scope orch:read required")
		},
	}}
	p := start(t, s)
	n := 0
	for ev, err := range p.WatchEvents(testContext(t), FromNow, EventFilter{}) {
		n++
		var rpcErr *RPCError
		if ev != nil || !errors.Is(err, ErrPermission) || !errors.Is(err, worker.ErrPermission) || !errors.As(err, &rpcErr) || rpcErr.Code != codes.PermissionDenied {
			t.Errorf("yielded %v, %v", ev, err)
		}
	}
	if n != 1 {
		t.Errorf("yielded %d times, want the error once", n)
	}
}

func TestWaitRunLooksPastUnavailableUntilTerminal(t *testing.T) {
	state := func(s pb.RunState) func() (*pb.Run, error) {
		return func() (*pb.Run, error) { return &pb.Run{Id: "r1", State: s}, nil }
	}
	s := &scheduler{getRun: []func() (*pb.Run, error){
		state(pb.RunState_RUN_STATE_PENDING),
		func() (*pb.Run, error) { return nil, status.Error(codes.Unavailable, "restarting") },
		state(pb.RunState_RUN_STATE_RUNNING),
		state(pb.RunState_RUN_STATE_FAILED),
	}}
	p := start(t, s)
	run, err := p.WaitRun(testContext(t), "r1")
	if err != nil || run.GetState() != pb.RunState_RUN_STATE_FAILED {
		t.Fatalf("WaitRun = %v, %v", run, err)
	}
	s.mu.Lock()
	if len(s.auth) != 4 || s.auth[0] != "Bearer tok" {
		t.Errorf("GetRun calls and their authorization: %v", s.auth)
	}
	s.mu.Unlock()

	s.getRun = []func() (*pb.Run, error){func() (*pb.Run, error) {
		st, _ := status.New(codes.NotFound, "no run r2").WithDetails(&errdetails.ResourceInfo{ResourceType: "run", ResourceName: "r2"})
		return nil, st.Err()
	}}
	_, err = p.WaitRun(testContext(t), "r2")
	var rpcErr *RPCError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &rpcErr) || rpcErr.ResourceName != "r2" {
		t.Errorf("WaitRun of a missing run = %v", err)
	}

	s.getRun = []func() (*pb.Run, error){state(pb.RunState_RUN_STATE_RUNNING)}
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	if _, err := p.WaitRun(ctx, "r1"); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitRun with a canceled context = %v", err)
	}
}

func TestRunsPagesThroughEveryPageAndLeavesTheFilterAlone(t *testing.T) {
	s := &scheduler{pages: map[string]*pb.ListRunsResponse{
		"":   {Runs: []*pb.Run{{Id: "a"}, {Id: "b"}}, NextPageToken: "p2"},
		"p2": {Runs: []*pb.Run{{Id: "c"}}},
	}}
	p := start(t, s)
	filter := &pb.ListRunsRequest{PageSize: 2}
	var ids []string
	for run, err := range p.Runs(testContext(t), filter) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.GetId())
	}
	if !slices.Equal(ids, []string{"a", "b", "c"}) || filter.GetPageToken() != "" {
		t.Errorf("runs %v, filter %v", ids, filter)
	}
}

func TestServerRefusalsCarryTheirFieldViolations(t *testing.T) {
	p := start(t, &scheduler{})
	run := NewRun("r")
	run.Job("a", "t")
	_, err := p.CreateRun(testContext(t), run)
	var rpcErr *RPCError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &rpcErr) || len(rpcErr.FieldViolations) != 1 ||
		rpcErr.FieldViolations[0].Field != "jobs[0].job_type" || rpcErr.Reason != "INVALID_ARGUMENT" {
		t.Errorf("CreateRun = %v", err)
	}
}

func TestSubmitJobChecksItsSpecBeforeSending(t *testing.T) {
	p := start(t, &scheduler{}) // SubmitJob is unimplemented there: reaching it would be UNIMPLEMENTED
	_, err := p.SubmitJob(testContext(t), "", "", Payload(map[string]any{"ch": make(chan int)}))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "needs a job type") || !strings.Contains(err.Error(), "payload") {
		t.Errorf("SubmitJob without a type and with a bad payload = %v", err)
	}
}

func TestWatchFromNowResumesAfterTheHeadTheServerReported(t *testing.T) {
	s := &scheduler{streams: []func(*pb.StreamEventsRequest, pb.EventStreamService_StreamEventsServer) error{
		func(_ *pb.StreamEventsRequest, st pb.EventStreamService_StreamEventsServer) error {
			_ = st.Send(&pb.StreamEventsResponse{KeepAlive: true, HeadSeq: 41})
			return status.Error(codes.Unavailable, "restarting")
		},
		func(_ *pb.StreamEventsRequest, st pb.EventStreamService_StreamEventsServer) error {
			_ = st.Send(events(42))
			<-st.Context().Done()
			return nil
		},
	}}
	p := start(t, s)
	for ev, err := range p.WatchEvents(testContext(t), FromNow, EventFilter{}) {
		if err != nil || ev.GetSeq() != 42 {
			t.Fatalf("yielded %v, %v", ev, err)
		}
		break
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Not -1 again: events committed while it was disconnected would be skipped.
	if len(s.requests) != 2 || s.requests[0].GetAfterSeq() != FromNow || s.requests[1].GetAfterSeq() != 41 {
		t.Errorf("after_seq of successive streams: %v", s.requests)
	}
}
