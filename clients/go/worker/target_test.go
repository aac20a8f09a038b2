package worker

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

// replica is one LeaseService process stand-in: a real gRPC server on loopback whose Work
// stream welcomes the worker and then drains it at once (as the leases service does when a
// stream reaches ORCH_WORK_STREAM_MAX_AGE_S), so the worker opens stream after stream.
func replica(t *testing.T) (*scriptServer, *grpc.Server, string) {
	t.Helper()
	s := &scriptServer{script: func(stream pb.LeaseService_WorkServer, recv <-chan *pb.WorkRequest) error {
		<-recv // Hello
		_ = stream.Send(welcome(30 * time.Second))
		return status.Error(codes.Unavailable, "draining")
	}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterLeaseServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return s, srv, lis.Addr().String()
}

func opened(s *scriptServer) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMultiAddressTargetRoundRobinsAndSkipsADeadReplica(t *testing.T) {
	for _, form := range []string{"list", "ipv4"} {
		t.Run(form, func(t *testing.T) {
			a, srvA, addrA := replica(t)
			b, _, addrB := replica(t)
			target := addrA + "," + addrB
			if form == "ipv4" {
				target = "ipv4:" + target
			}
			w := newTestWorker(t, target)
			_ = w.Handle("t", func(ctx context.Context, job *Job) (map[string]any, error) { return nil, nil })
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- w.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-errc; err != nil {
					t.Error(err)
				}
			}()
			// Both replicas serve streams; once both are connected, round_robin alternates.
			waitFor(t, "streams on both replicas", func() bool { return opened(a) >= 3 && opened(b) >= 3 })
			if na, nb := opened(a), opened(b); na-nb > 2 || nb-na > 2 {
				t.Errorf("streams not spread round-robin: %d on A, %d on B", na, nb)
			}
			// One replica goes away: the worker keeps opening streams on the other.
			srvA.Stop()
			before := opened(b)
			waitFor(t, "streams on the surviving replica", func() bool { return opened(b) >= before+5 })
		})
	}
}

func TestRunRefusesABadReplicaList(t *testing.T) {
	w := newTestWorker(t, "127.0.0.1:1,bad")
	_ = w.Handle("t", func(ctx context.Context, job *Job) (map[string]any, error) { return nil, nil })
	if err := w.Run(context.Background()); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not host:port") {
		t.Errorf("Run with a bad list: %v", err)
	}
}
