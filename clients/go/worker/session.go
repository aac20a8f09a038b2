package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
	"github.com/stella-ops/orchestrator/clients/go/stellarpc"
)

// Session tunables.
const (
	DefaultLeaseTTL        = 30 * time.Second
	HeartbeatFractionOfTTL = 1.0 / 3
	MinHeartbeatInterval   = 50 * time.Millisecond
	TickMax                = 250 * time.Millisecond // ticker period at most; bounds heartbeat lateness
	ProgressMinInterval    = time.Second            // Progress values of one job go out at most this often
	WelcomeTimeout         = 30 * time.Second
	FlushTimeout           = 10 * time.Second // a drain waits this long for acks and for the stream's end
	CancelGrace            = 5 * time.Second  // how long canceled handlers get to unwind
	DefaultMaxBatchDelay   = 2 * time.Millisecond
	DefaultDrainTimeout    = 30 * time.Second
	outcomeDrained         = "drained"
	outcomeStopped         = "stopped"
	outcomeServerDrained   = "server_drained"
	cancelLeaseLost        = "lease_lost"
	cancelLeaseExpired     = "lease_expired"
	cancelServerCanceled   = "server_canceled"
	cancelDrainTimeout     = "drain_timeout"
	cancelStreamClosed     = "stream_closed"
)

// held is the bookkeeping of one lease the session holds (running or waiting for a slot).
// Every field is guarded by s.mu.
type held struct {
	s              *session
	job            *Job
	handler        Handler
	ctx            context.Context
	cancel         context.CancelCauseFunc
	cancelReason   string // set when the SDK cancels the handler
	started        bool
	deadline       time.Time
	hbNext         time.Time
	hbSentAt       time.Time
	progressSentAt time.Time
	percent        float64
	message        string
	progressDirty  bool // changed since the last heartbeat/progress sent
	progressUrgent bool // set by Progress: send without waiting for a heartbeat
	artifactNames  map[string]bool
}

// session is one Work stream, from Hello to its end. Goroutines: reader (applies server
// messages), sender (the only writer, drains the outbox), ticker (heartbeats, urgent
// progress, local lease expiry) and one per running handler; run() itself is the control
// loop (drain sequence). When the stream breaks every handler is canceled and its result
// dropped: the server releases the leases of a dead stream.
type session struct {
	w      *Worker
	stream pb.LeaseService_WorkClient
	ctx    context.Context // canceled when the session ends: closes the stream, stops handlers
	cancel context.CancelFunc

	mu             sync.Mutex
	out            *outbox
	held           map[string]*held
	waiting        []*held
	running        int
	unacked        int // completions/failures sent but not acknowledged
	welcomed       bool
	serverDraining bool
	closed         bool
	leaseTTL       time.Duration
	hbInterval     time.Duration
	heartbeatAcked bool
	sessionID      string

	wake     chan struct{} // sender: the outbox changed
	changed  chan struct{} // control: held/acks/server drain changed
	parent   context.Context
	readDone chan struct{} // closed when the reader ended; readErr says why
	readErr  error         // io.EOF or the stream's error; written before readDone closes
	sendDone chan error
	handlers sync.WaitGroup
}

func newSession(w *Worker, parent context.Context) *session {
	ctx, cancel := context.WithCancel(parent)
	return &session{
		w: w, ctx: ctx, cancel: cancel, out: newOutbox(), held: map[string]*held{},
		leaseTTL: DefaultLeaseTTL, hbInterval: time.Duration(float64(DefaultLeaseTTL) * HeartbeatFractionOfTTL),
		wake: make(chan struct{}, 1), changed: make(chan struct{}, 1),
		parent: parent, readDone: make(chan struct{}), sendDone: make(chan error, 1),
	}
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run drives the stream to its end: outcomeDrained, outcomeStopped (the worker's context
// ended) or outcomeServerDrained (reconnect); an error when the stream failed.
func (s *session) run(stop <-chan struct{}) (string, error) {
	defer s.shutdown()
	stream, err := s.w.client.Work(s.ctx)
	if err != nil {
		return "", stellarpc.FromError(err)
	}
	s.stream = stream
	hello := &pb.WorkerHello{
		WorkerId: s.w.workerID, JobTypes: s.w.jobTypes(), Capacity: int32(s.w.concurrency),
		Sdk: SDKName, SdkVersion: SDKVersion, Labels: s.w.labels,
	}
	if err := stream.Send(&pb.WorkRequest{Body: &pb.WorkRequest_Hello{Hello: hello}}); err != nil {
		return "", s.streamError(err)
	}
	if err := s.awaitWelcome(); err != nil {
		return "", err
	}
	go s.readLoop()
	go s.sendLoop()
	go s.tickLoop()
	return s.control(stop)
}

func (s *session) awaitWelcome() error {
	timer := time.AfterFunc(WelcomeTimeout, s.cancel)
	defer timer.Stop()
	msg, err := s.stream.Recv()
	if err != nil {
		if s.ctx.Err() != nil && s.parent.Err() == nil {
			return &RPCError{Code: codes.DeadlineExceeded, Message: "no Welcome from the server"}
		}
		return s.streamError(err)
	}
	welcome := msg.GetWelcome()
	if welcome == nil {
		return &RPCError{Code: codes.Internal, Message: "the server's first message was not a Welcome"}
	}
	s.onWelcome(welcome)
	return nil
}

func (s *session) onWelcome(wm *pb.ServerWelcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.welcomed = true
	s.sessionID = wm.GetSessionId()
	if ttl := wm.GetLeaseTtl().AsDuration(); wm.GetLeaseTtl() != nil && ttl > 0 {
		s.leaseTTL = ttl
	}
	interval := time.Duration(float64(s.leaseTTL) * HeartbeatFractionOfTTL)
	if wm.GetHeartbeatInterval() != nil && wm.GetHeartbeatInterval().AsDuration() > 0 {
		interval = wm.GetHeartbeatInterval().AsDuration()
	}
	// Never let a lease run out between two heartbeats, whatever the server said.
	s.hbInterval = max(MinHeartbeatInterval, min(interval, s.leaseTTL/2))
	if wm.GetMaxBatch() > 0 {
		s.out.maxBatch = int(wm.GetMaxBatch())
	}
	s.w.logf("connected to %s (session %s, lease ttl %s, heartbeat every %s)",
		s.w.target, s.sessionID, s.leaseTTL, s.hbInterval)
}

// streamError turns a failed Send/Recv into the typed error (a Send error only says EOF;
// the real status comes from Recv).
func (s *session) streamError(err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := s.stream.Recv(); rerr != nil && !errors.Is(rerr, io.EOF) {
			return stellarpc.FromError(rerr)
		}
		return &RPCError{Code: codes.Unavailable, Message: "server ended the Work stream"}
	}
	return stellarpc.FromError(err)
}

func (s *session) shutdown() {
	s.mu.Lock()
	s.closed = true
	for id := range s.held {
		s.cancelLocked(id, cancelStreamClosed)
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select { // handlers that ignore their context are left behind, not waited for forever
	case <-done:
	case <-time.After(CancelGrace):
		s.w.logf("%s: handlers still running after cancel", cancelStreamClosed)
	}
}

// ------------------------------------------------------------------ server messages

func (s *session) readLoop() {
	for {
		msg, err := s.stream.Recv()
		if err != nil {
			s.readErr = err
			close(s.readDone)
			poke(s.changed)
			return
		}
		s.mu.Lock()
		switch body := msg.GetBody().(type) {
		case *pb.WorkResponse_Assignments:
			for _, a := range body.Assignments.GetAssignments() {
				s.onAssignment(a)
			}
		case *pb.WorkResponse_Results:
			s.onAcks(body.Results.GetAcks())
		case *pb.WorkResponse_Cancel:
			for _, id := range body.Cancel.GetJobIds() {
				s.cancelLocked(id, cancelServerCanceled)
			}
		case *pb.WorkResponse_Drain:
			s.w.logf("server drains the stream (%s)", body.Drain.GetReason())
			s.serverDraining = true
		}
		s.mu.Unlock()
		poke(s.changed)
	}
}

func (s *session) onAssignment(a *pb.Assignment) {
	job := jobFromAssignment(a)
	if _, dup := s.held[job.ID]; dup {
		return // assigned twice on one stream: keep the first
	}
	handler := s.w.handlers[job.JobType]
	if handler == nil {
		// Only a server ignoring Hello.job_types gets here; another worker may serve it.
		s.reportFailureLocked(job, &JobError{Class: "internal", Message: fmt.Sprintf("no handler for job type %q", job.JobType), Retryable: true})
		return
	}
	now := time.Now()
	h := &held{s: s, job: job, handler: handler, deadline: now.Add(s.leaseTTL), hbSentAt: now,
		hbNext: now.Add(s.hbInterval), artifactNames: map[string]bool{}}
	job.held = h
	s.held[job.ID] = h
	s.w.stats.add(&s.w.stats.Assigned)
	if s.running < s.w.concurrency {
		s.startLocked(h)
	} else {
		s.waiting = append(s.waiting, h)
	}
}

func (s *session) onAcks(acks []*pb.ResultAck) {
	for _, ack := range acks {
		kind := ack.GetKind()
		if kind == pb.AckKind_ACK_KIND_COMPLETION || kind == pb.AckKind_ACK_KIND_FAILURE {
			s.unacked = max(0, s.unacked-1)
			if !ack.GetOk() {
				s.w.logf("server refused the result of job %s: %s", ack.GetJobId(), ack.GetErrorReason())
			}
			continue
		}
		h := s.held[ack.GetJobId()]
		if h == nil || h.job.LeaseID != ack.GetLeaseId() {
			continue
		}
		if !ack.GetOk() && LeaseLostReasons[ack.GetErrorReason()] {
			s.cancelLocked(ack.GetJobId(), cancelLeaseLost)
		} else if ack.GetOk() && kind == pb.AckKind_ACK_KIND_HEARTBEAT {
			s.heartbeatAcked = true
			h.deadline = h.hbSentAt.Add(s.leaseTTL)
		}
	}
}

// ------------------------------------------------------------------ handlers

func (s *session) startLocked(h *held) {
	s.running++
	h.started = true
	h.ctx, h.cancel = context.WithCancelCause(s.ctx)
	s.handlers.Add(1)
	go s.runHandler(h)
}

func (s *session) runHandler(h *held) {
	defer s.handlers.Done()
	s.w.metrics.started(h.job.JobType)
	begin := time.Now()
	ctx, span := startHandlerSpan(h.ctx, h.job, s.w.workerID)
	result, err := callHandler(ctx, h)
	s.w.metrics.finished(h.job.JobType, time.Since(begin))
	s.mu.Lock()
	defer s.mu.Unlock()
	endHandlerSpan(span, err, h.cancelReason != "")
	switch {
	case h.cancelReason != "":
		s.afterCancelLocked(h) // canceled by the SDK: the result is dropped
	case err != nil:
		info := Classify(err)
		s.w.logf("job %s (%s, attempt %d) failed: class %s, retryable %v", h.job.ID, h.job.JobType, h.job.Attempt, info.Class, info.Retryable)
		s.reportFailureLocked(h.job, info)
	default:
		s.reportResultLocked(h.job, result)
	}
	h.cancel(nil)
	s.releaseLocked(h)
}

// callHandler runs the handler, turning a panic into an internal failure.
func callHandler(ctx context.Context, h *held) (result map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return h.handler(ctx, h.job)
}

func (s *session) afterCancelLocked(h *held) {
	s.w.stats.add(&s.w.stats.Canceled)
	s.w.metrics.canceled(h.job.JobType)
	if h.cancelReason == cancelDrainTimeout {
		s.reportFailureLocked(h.job, &JobError{Class: "canceled", Message: "worker drained: the handler outlived the drain timeout", Retryable: true})
	} else if !s.closed {
		// No report will free this slot on the server: hand the credit back.
		s.out.addCredit(h.job.ID)
		poke(s.wake)
	}
}

func (s *session) reportResultLocked(job *Job, result map[string]any) {
	st, digest, err := resultStruct(result)
	if err != nil {
		s.reportFailureLocked(job, &JobError{Class: "internal", Message: err.Error(), Retryable: false})
		return
	}
	if s.closed {
		return
	}
	s.w.stats.add(&s.w.stats.Completed)
	s.w.metrics.succeeded(job.JobType)
	s.unacked++
	s.out.addCompletion(&pb.Completion{JobId: job.ID, LeaseId: job.LeaseID, Result: st, ResultDigest: digest})
	poke(s.wake)
}

func (s *session) reportFailureLocked(job *Job, info *JobError) {
	if s.closed {
		return
	}
	s.w.stats.add(&s.w.stats.Failed)
	s.w.metrics.failed(job.JobType, info.Class)
	s.unacked++
	s.out.addFailure(&pb.Failure{JobId: job.ID, LeaseId: job.LeaseID, Error: info.toProto()})
	poke(s.wake)
}

func (s *session) releaseLocked(h *held) {
	delete(s.held, h.job.ID)
	s.running--
	for len(s.waiting) > 0 && s.running < s.w.concurrency && !s.closed {
		next := s.waiting[0]
		s.waiting = s.waiting[1:]
		s.startLocked(next)
	}
	poke(s.changed)
}

func (s *session) cancelLocked(jobID, reason string) {
	h := s.held[jobID]
	if h == nil || h.cancelReason != "" {
		return
	}
	h.cancelReason = reason
	if reason != cancelStreamClosed {
		s.w.logf("canceling job %s: %s", jobID, reason)
	}
	if h.started {
		h.cancel(causeOf(reason))
		return
	}
	// Still waiting for a slot: nothing runs, just give the lease back.
	for i, w := range s.waiting {
		if w == h {
			s.waiting = append(s.waiting[:i:i], s.waiting[i+1:]...)
			break
		}
	}
	delete(s.held, jobID)
	s.afterCancelLocked(h)
	poke(s.changed)
}

func causeOf(reason string) error {
	switch reason {
	case cancelLeaseLost, cancelLeaseExpired:
		return ErrLeaseLost
	case cancelServerCanceled:
		return ErrJobCanceled
	case cancelDrainTimeout:
		return ErrDrainTimeout
	}
	return context.Canceled
}

func (s *session) recordArtifact(h *held, record ArtifactRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.artifactNames[record.Name] {
		return fmt.Errorf("%w: artifact %q was already recorded for this job", ErrInvalid, record.Name)
	}
	if s.closed || h.cancelReason != "" {
		return ErrLeaseLost
	}
	h.artifactNames[record.Name] = true
	s.out.addArtifact(record.toProto(h.job.ID, h.job.LeaseID))
	poke(s.wake)
	return nil
}

// ------------------------------------------------------------------ ticker and sender

func (s *session) tickLoop() {
	for {
		s.mu.Lock()
		period := min(TickMax, s.hbInterval/4)
		s.mu.Unlock()
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(period):
			s.tick(time.Now())
		}
	}
}

// tick sends due heartbeats and urgent progress and cancels jobs whose lease ran out.
func (s *session) tick(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sent := false
	for id, h := range s.held {
		if h.cancelReason != "" {
			continue
		}
		// Only once the server has acked a heartbeat on this stream is our deadline
		// trusted: a server that never acks would otherwise kill every job after one TTL.
		if s.heartbeatAcked && now.After(h.deadline) {
			s.cancelLocked(id, cancelLeaseExpired)
			continue
		}
		if !now.Before(h.hbNext) {
			hb := &pb.Heartbeat{JobId: id, LeaseId: h.job.LeaseID}
			if h.progressDirty {
				hb.Progress = h.takeProgress()
				h.progressSentAt = now
			}
			s.out.addHeartbeat(hb)
			h.hbSentAt, h.hbNext = now, now.Add(s.hbInterval)
			sent = true
		} else if h.progressUrgent && now.Sub(h.progressSentAt) >= ProgressMinInterval {
			s.out.addProgress(&pb.ProgressReport{JobId: id, LeaseId: h.job.LeaseID, Progress: h.takeProgress()})
			h.progressSentAt = now
			sent = true
		}
	}
	if sent {
		poke(s.wake)
	}
}

func (h *held) takeProgress() *pb.Progress {
	h.progressDirty, h.progressUrgent = false, false
	return &pb.Progress{Percent: h.percent, Message: h.message}
}

func (s *session) sendLoop() {
	err := s.sendAll()
	s.sendDone <- err
}

func (s *session) sendAll() error {
	for {
		select {
		case <-s.ctx.Done():
			return nil
		case <-s.wake:
		}
		s.mu.Lock()
		pending := s.out.len()
		maxBatch := s.out.maxBatch
		s.mu.Unlock()
		if pending > 0 && pending < maxBatch && s.w.maxBatchDelay > 0 {
			time.Sleep(s.w.maxBatchDelay) // linger: let concurrent results join
		}
		for {
			s.mu.Lock()
			var msgs []*pb.WorkRequest
			if s.out.drainReason != nil {
				msgs = append(msgs, &pb.WorkRequest{Body: &pb.WorkRequest_Drain{Drain: &pb.WorkerDrain{Reason: *s.out.drainReason}}})
				s.out.drainReason = nil
			}
			if batch := s.out.takeBatch(); batch != nil {
				msgs = append(msgs, &pb.WorkRequest{Body: &pb.WorkRequest_Batch{Batch: batch}})
			}
			closeNow := len(msgs) == 0 && s.out.closeRequest
			s.mu.Unlock()
			if closeNow {
				return s.stream.CloseSend()
			}
			if len(msgs) == 0 {
				break
			}
			for _, m := range msgs {
				if err := s.stream.Send(m); err != nil {
					return err
				}
			}
		}
	}
}

// ------------------------------------------------------------------ control and drain

func (s *session) control(stop <-chan struct{}) (string, error) {
	drain := s.w.drainCh
	for {
		s.mu.Lock()
		serverDraining := s.serverDraining
		s.mu.Unlock()
		if serverDraining {
			break
		}
		select {
		case <-stop:
			return outcomeStopped, nil
		case <-drain:
			s.w.logf("draining: %d job(s) in flight", s.heldCount())
			s.mu.Lock()
			reason := s.w.drainReason()
			s.out.drainReason = &reason
			s.mu.Unlock()
			poke(s.wake)
			return s.finish(stop, outcomeDrained)
		case <-s.readDone:
			return "", s.endedError(s.readErr)
		case err := <-s.sendDone:
			if err != nil {
				return "", s.streamError(err)
			}
		case <-s.changed:
		}
	}
	return s.finish(stop, outcomeServerDrained)
}

// errServerEnded: a draining server ended the stream before our drain sequence finished.
var errServerEnded = errors.New("server ended the drained stream")

// finish lets running handlers end (canceling them after the drain timeout), waits for
// every result to be acknowledged, half-closes and reads the stream to its end.
func (s *session) finish(stop <-chan struct{}, outcome string) (string, error) {
	result, err := s.drainSteps(stop, outcome)
	if errors.Is(err, errServerEnded) {
		return outcomeServerDrained, nil
	}
	return result, err
}

func (s *session) drainSteps(stop <-chan struct{}, outcome string) (string, error) {
	ok, err := s.waitUntil(stop, s.w.drainTimeout, func() bool { return len(s.held) == 0 })
	if err != nil {
		return "", err
	}
	if !ok {
		select {
		case <-stop:
			return outcomeStopped, nil
		default:
		}
		s.mu.Lock()
		s.w.logf("drain timeout (%s): canceling %d job(s)", s.w.drainTimeout, len(s.held))
		for id := range s.held {
			s.cancelLocked(id, cancelDrainTimeout)
		}
		s.mu.Unlock()
		if _, err := s.waitUntil(stop, CancelGrace, func() bool { return len(s.held) == 0 }); err != nil {
			return "", err
		}
	}
	if _, err := s.waitUntil(stop, FlushTimeout, func() bool { return s.unacked == 0 }); err != nil {
		return "", err
	}
	select {
	case <-stop:
		return outcomeStopped, nil
	default:
	}
	s.mu.Lock()
	s.out.closeRequest = true
	s.mu.Unlock()
	poke(s.wake)
	select {
	case <-s.readDone:
	case <-time.After(FlushTimeout):
	case <-stop:
		return outcomeStopped, nil
	}
	return outcome, nil
}

// waitUntil waits for cond (checked under the lock) up to timeout; false on timeout or stop;
// an error if the stream failed meanwhile.
func (s *session) waitUntil(stop <-chan struct{}, timeout time.Duration, cond func() bool) (bool, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		done := cond()
		s.mu.Unlock()
		if done {
			return true, nil
		}
		select {
		case <-stop:
			return false, nil
		case <-deadline.C:
			return false, nil
		case <-s.readDone:
			// A server that drains may end the stream once it has what it needs.
			if s.isServerDraining() && errors.Is(s.readErr, io.EOF) {
				return false, errServerEnded
			}
			return false, s.endedError(s.readErr)
		case err := <-s.sendDone:
			if err != nil {
				return false, s.streamError(err)
			}
		case <-s.changed:
		}
	}
}

// endedError is the error for a stream the reader saw end without our half-close.
func (s *session) endedError(err error) error {
	if errors.Is(err, io.EOF) {
		return &RPCError{Code: codes.Unavailable, Message: "server ended the Work stream"}
	}
	return stellarpc.FromError(err)
}

func (s *session) isServerDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serverDraining
}

func (s *session) heldCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}
