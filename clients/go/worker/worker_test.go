package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

// scriptServer is a LeaseService over a real gRPC server on loopback whose Work stream
// runs a per-test script; every WorkRequest it receives is recorded.
type scriptServer struct {
	pb.UnimplementedLeaseServiceServer
	script func(stream pb.LeaseService_WorkServer, recv <-chan *pb.WorkRequest) error
	mu     sync.Mutex
	auth   []string
	opened int
}

func (s *scriptServer) Work(stream pb.LeaseService_WorkServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	s.mu.Lock()
	s.auth = append(s.auth, md.Get("authorization")...)
	s.opened++
	s.mu.Unlock()
	recv := make(chan *pb.WorkRequest, 64)
	go func() {
		defer close(recv)
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			recv <- m
		}
	}()
	return s.script(stream, recv)
}

func serve(t *testing.T, s *scriptServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterLeaseServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func welcome(ttl time.Duration) *pb.WorkResponse {
	return &pb.WorkResponse{Body: &pb.WorkResponse_Welcome{Welcome: &pb.ServerWelcome{
		SessionId: "s1", LeaseTtl: durationpb.New(ttl), MaxBatch: 50,
	}}}
}

func assign(id, jobType string) *pb.WorkResponse {
	payload, _ := structpb.NewStruct(map[string]any{"page": 3})
	return &pb.WorkResponse{Body: &pb.WorkResponse_Assignments{Assignments: &pb.AssignmentBatch{
		Assignments: []*pb.Assignment{{JobId: id, LeaseId: "L-" + id, JobType: jobType, Attempt: 1, Payload: payload}},
	}}}
}

func ack(jobID string, kind pb.AckKind, ok bool, reason string) *pb.WorkResponse {
	return &pb.WorkResponse{Body: &pb.WorkResponse_Results{Results: &pb.ResultBatch{Acks: []*pb.ResultAck{{
		JobId: jobID, LeaseId: "L-" + jobID, Ok: ok, ErrorReason: reason, Kind: kind,
	}}}}}
}

// next returns the next batch (skipping hello/drain), failing the test after a timeout.
func next(t *testing.T, recv <-chan *pb.WorkRequest, want func(*pb.WorkerBatch) bool) *pb.WorkerBatch {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-recv:
			if !ok {
				t.Error("stream closed while waiting for a batch")
				return nil
			}
			if b := m.GetBatch(); b != nil && want(b) {
				return b
			}
		case <-deadline:
			t.Error("timed out waiting for a batch")
			return nil
		}
	}
}

func newTestWorker(t *testing.T, target string, opts ...Option) *Worker {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := []Option{WithToken("tok"), WithWorkerID("w1"), WithBackoffSeed(1), WithConcurrency(2), WithLogger(quiet)}
	w, err := New(target, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestCompletesWithDigestArtifactAndHeartbeatsFromTTL(t *testing.T) {
	done := make(chan *pb.WorkerBatch, 1)
	var heartbeats []time.Time
	var arts []*pb.ArtifactRecord // sent alone (the job still runs) or inside the completion
	srv := &scriptServer{script: func(stream pb.LeaseService_WorkServer, recv <-chan *pb.WorkRequest) error {
		hello := <-recv
		if hello.GetHello().GetSdk() != "go" || hello.GetHello().GetCapacity() != 2 {
			t.Errorf("hello: %v", hello)
		}
		_ = stream.Send(welcome(600 * time.Millisecond))
		_ = stream.Send(assign("j1", "t"))
		b := next(t, recv, func(b *pb.WorkerBatch) bool {
			arts = append(arts, b.GetArtifacts()...)
			for range b.GetHeartbeats() {
				heartbeats = append(heartbeats, time.Now())
				_ = stream.Send(ack("j1", pb.AckKind_ACK_KIND_HEARTBEAT, true, ""))
			}
			return len(b.GetCompletions()) > 0
		})
		done <- b
		_ = stream.Send(ack("j1", pb.AckKind_ACK_KIND_COMPLETION, true, ""))
		<-stream.Context().Done()
		return nil
	}}
	w := newTestWorker(t, serve(t, srv))
	_ = w.Handle("t", func(ctx context.Context, job *Job) (map[string]any, error) {
		if job.Payload["page"] != 3.0 {
			t.Errorf("payload %v", job.Payload)
		}
		if err := job.Progress(50, "half"); err != nil {
			t.Error(err)
		}
		if _, err := job.Artifact("out.txt", []byte("abc")); err != nil {
			t.Error(err)
		}
		time.Sleep(time.Second) // longer than the 600 ms TTL: heartbeats must keep it
		return map[string]any{"n": 1, "b": "x"}, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	b := <-done
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	c := b.GetCompletions()[0]
	want, _ := JSONDigest(map[string]any{"b": "x", "n": 1.0})
	canonical, _ := CanonicalJSON(c.GetResult().AsMap())
	if c.GetResultDigest() != want || string(canonical) != `{"b":"x","n":1}` {
		t.Errorf("digest %s, want %s", c.GetResultDigest(), want)
	}
	arts = append(arts, c.GetArtifacts()...)
	if len(arts) != 1 || arts[0].GetDigest() != BytesDigest([]byte("abc")) || arts[0].GetSizeBytes() != 3 {
		t.Errorf("artifacts %v", arts)
	}
	// Heartbeat interval = TTL/3 = 200 ms: about 4-5 heartbeats in one second.
	if len(heartbeats) < 3 || len(heartbeats) > 8 {
		t.Errorf("%d heartbeats in ~1 s with a 600 ms TTL", len(heartbeats))
	}
	if srv.auth[0] != "Bearer tok" {
		t.Errorf("authorization %q", srv.auth)
	}
}

func TestLeaseLostAndServerCancelCancelTheHandlerContext(t *testing.T) {
	causes := make(chan error, 2)
	credits := make(chan uint32, 1)
	srv := &scriptServer{script: func(stream pb.LeaseService_WorkServer, recv <-chan *pb.WorkRequest) error {
		<-recv
		_ = stream.Send(welcome(30 * time.Second))
		_ = stream.Send(assign("lost", "t"))
		_ = stream.Send(assign("gone", "t"))
		time.Sleep(100 * time.Millisecond)
		_ = stream.Send(ack("lost", pb.AckKind_ACK_KIND_HEARTBEAT, false, "lease_lost"))
		_ = stream.Send(&pb.WorkResponse{Body: &pb.WorkResponse_Cancel{Cancel: &pb.CancelJobs{JobIds: []string{"gone"}, Reason: "user_canceled"}}})
		total := uint32(0)
		next(t, recv, func(b *pb.WorkerBatch) bool {
			if len(b.GetCompletions())+len(b.GetFailures()) > 0 {
				t.Errorf("a canceled job reported a result: %v", b)
			}
			total += b.GetCredits()
			return total >= 2
		})
		credits <- total
		<-stream.Context().Done()
		return nil
	}}
	w := newTestWorker(t, serve(t, srv))
	_ = w.Handle("t", func(ctx context.Context, job *Job) (map[string]any, error) {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return map[string]any{"late": true}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Run(ctx) }()
	got := map[error]bool{}
	for range 2 {
		select {
		case c := <-causes:
			got[c] = true
		case <-time.After(10 * time.Second):
			t.Fatal("handler context not canceled")
		}
	}
	if !got[ErrLeaseLost] || !got[ErrJobCanceled] {
		t.Errorf("causes %v", got)
	}
	if c := <-credits; c != 2 {
		t.Errorf("credits %d, want 2", c)
	}
}

func TestPermissionDeniedEndsRunWithoutRetry(t *testing.T) {
	srv := &scriptServer{script: func(pb.LeaseService_WorkServer, <-chan *pb.WorkRequest) error {
		return status.Error(codes.PermissionDenied, "job type not allowed")
	}}
	w := newTestWorker(t, serve(t, srv))
	_ = w.Handle("t", func(context.Context, *Job) (map[string]any, error) { return nil, nil })
	err := w.Run(context.Background())
	var rpcErr *RPCError
	if !errors.Is(err, ErrPermission) || !errors.As(err, &rpcErr) || rpcErr.Code != codes.PermissionDenied {
		t.Fatalf("Run: %v", err)
	}
	if srv.opened != 1 {
		t.Errorf("%d streams opened, want 1", srv.opened)
	}
}

func TestReconnectsAfterUnavailableThenDrainsGracefully(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	result := make(chan *pb.Completion, 1)
	srv := &scriptServer{script: func(stream pb.LeaseService_WorkServer, recv <-chan *pb.WorkRequest) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n < 3 {
			return status.Error(codes.Unavailable, "restarting")
		}
		<-recv
		_ = stream.Send(welcome(30 * time.Second))
		_ = stream.Send(assign("j", "t"))
		for m := range recv {
			if m.GetDrain() != nil {
				continue
			}
			for _, c := range m.GetBatch().GetCompletions() {
				result <- c
				_ = stream.Send(ack("j", pb.AckKind_ACK_KIND_COMPLETION, true, ""))
			}
		}
		return nil // the worker half-closed: end the stream
	}}
	w := newTestWorker(t, serve(t, srv))
	started := make(chan struct{})
	_ = w.Handle("t", func(ctx context.Context, job *Job) (map[string]any, error) {
		close(started)
		time.Sleep(300 * time.Millisecond) // still running when the drain starts
		return map[string]any{"ok": true}, nil
	})
	errc := make(chan error, 1)
	go func() { errc <- w.Run(context.Background()) }()
	<-started
	w.Drain("test")
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("drain did not finish")
	}
	if c := <-result; c.GetJobId() != "j" {
		t.Errorf("completion %v", c)
	}
	if st := w.Stats(); st.Connects != 3 || st.StreamFailures != 2 || st.Completed != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestArtifactValidationAndClassify(t *testing.T) {
	job := &Job{}
	if _, err := job.Artifact("x", []byte("a")); !errors.Is(err, ErrNotInJob) {
		t.Errorf("artifact outside a job: %v", err)
	}
	if _, err := job.ArtifactRef("x", "sha256:ABC", 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad digest: %v", err)
	}
	if err := job.Progress(101, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("progress 101: %v", err)
	}
	if c := Classify(context.DeadlineExceeded); c.Class != "timeout" || !c.Retryable {
		t.Errorf("deadline: %+v", c)
	}
	if c := Classify(errors.New("boom")); c.Class != "internal" || !c.Retryable {
		t.Errorf("plain error: %+v", c)
	}
	wrapped := errors.Join(errors.New("ctx"), UpstreamThrottled("429", 2*time.Second))
	if c := Classify(wrapped); c.Class != "http_429" || c.toProto().GetRetryAfter().AsDuration() != 2*time.Second {
		t.Errorf("wrapped JobError: %+v", c)
	}
}
