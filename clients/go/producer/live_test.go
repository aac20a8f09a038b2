package producer

// Tests against the real scheduler and leases services. They run from
// tests/crosslang/test_go_producer.py, which starts the services in process (real
// PostgreSQL) and sets the STELLA_LIVE_* variables; without them (a plain `go test`) they
// are skipped.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
	"github.com/stella-ops/orchestrator/clients/go/worker"
)

type live struct {
	p, reader   *Producer
	leases      string
	workerToken string
	suffix      string
}

func liveSetup(t *testing.T) *live {
	t.Helper()
	env := map[string]string{}
	for _, name := range []string{"STELLA_LIVE_SCHEDULER", "STELLA_LIVE_LEASES", "STELLA_LIVE_TOKEN", "STELLA_LIVE_READER_TOKEN", "STELLA_LIVE_WORKER_TOKEN"} {
		if env[name] = os.Getenv(name); env[name] == "" {
			t.Skipf("%s is not set (tests/crosslang/test_go_producer.py sets it)", name)
		}
	}
	open := func(token string) *Producer {
		p, err := New(env["STELLA_LIVE_SCHEDULER"], WithToken(token))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &live{
		p: open(env["STELLA_LIVE_TOKEN"]), reader: open(env["STELLA_LIVE_READER_TOKEN"]),
		leases: env["STELLA_LIVE_LEASES"], workerToken: env["STELLA_LIVE_WORKER_TOKEN"], suffix: hex.EncodeToString(b[:]),
	}
}

func collect[T any](t *testing.T, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for item, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, item)
	}
	return out
}

var op = Operator{Reason: "go producer live test", Ticket: "TEST-1"}

func TestLiveSourcesAndRefusalsCarryTheirDetails(t *testing.T) {
	l := liveSetup(t)
	ctx := testContext(t)
	src, err := l.p.CreateSource(ctx, &pb.Source{Name: "go-live-" + l.suffix, SourceType: "osv", Host: "api.osv.dev", Enabled: true}, op)
	if err != nil {
		t.Fatal(err)
	}
	paused, err := l.p.PauseSource(ctx, src.GetId(), op)
	if err != nil || !paused.GetPaused() || paused.GetPausedReason() != op.Reason || paused.GetPausedTicket() != op.Ticket {
		t.Fatalf("PauseSource = %v, %v", paused, err)
	}
	resumed, err := l.p.ResumeSource(ctx, src.GetId(), op)
	if err != nil || resumed.GetPaused() {
		t.Fatalf("ResumeSource = %v, %v", resumed, err)
	}
	found := false
	for _, s := range collect(t, l.p.Sources(ctx, &pb.ListSourcesRequest{SourceType: "osv", PageSize: 1})) {
		found = found || s.GetId() == src.GetId()
	}
	if !found {
		t.Errorf("Sources (one per page) did not yield %s", src.GetId())
	}
	// A stale version loses against the stored one.
	src.Version = 1
	if _, err := l.p.UpdateSource(ctx, src, []string{"max_active"}, op); !errors.Is(err, ErrAborted) {
		t.Errorf("UpdateSource with a stale version = %v", err)
	}
	if err := l.p.DeleteSource(ctx, src.GetId(), op); err != nil {
		t.Fatal(err)
	}
	_, err = l.p.GetSource(ctx, src.GetId())
	var rpcErr *RPCError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &rpcErr) || rpcErr.ResourceName == "" {
		t.Errorf("GetSource of a deleted source = %#v", err)
	}
	// A read-only token cannot create; the server's refusal is typed like the worker's.
	run := NewRun("refused")
	run.Job("a", "go.live.never")
	if _, err := l.reader.CreateRun(ctx, run); !errors.Is(err, ErrPermission) || !errors.Is(err, worker.ErrPermission) {
		t.Errorf("CreateRun with a read-only token = %v", err)
	}
	// A DAG the server refuses: depends_on names a key that is not in the run.
	bad := NewRun("bad")
	bad.Job("a", "go.live.never", AfterKeys("ghost"))
	if _, err := l.p.CreateRun(ctx, bad); !errors.As(err, &rpcErr) || !errors.Is(err, ErrInvalid) || len(rpcErr.FieldViolations) == 0 {
		t.Errorf("CreateRun with an unknown parent key = %#v", err)
	}
}

func TestLiveQuotasBackpressureAndIdempotentSubmission(t *testing.T) {
	l := liveSetup(t)
	ctx := testContext(t)
	jobType := "go.live.quota." + l.suffix
	q, err := l.p.CreateQuota(ctx, &pb.Quota{JobType: jobType, MaxQueued: 2}, op)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.p.DeleteQuota(context.Background(), q.GetId(), op) }()
	if _, err := l.p.CreateQuota(ctx, &pb.Quota{JobType: jobType, MaxQueued: 5}, op); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("a second quota for the job type = %v", err)
	}
	first, err := l.p.SubmitJob(ctx, "", jobType, IdempotencyKey("k-"+l.suffix))
	if err != nil || first.Existing {
		t.Fatalf("SubmitJob = %+v, %v", first, err)
	}
	again, err := l.p.SubmitJob(ctx, "", jobType, IdempotencyKey("k-"+l.suffix))
	if err != nil || !again.Existing || again.Job.GetId() != first.Job.GetId() {
		t.Fatalf("SubmitJob with the same key = %+v, %v", again, err)
	}
	// One queued job, max_queued 2: a batch of two does not fit, whole.
	batch := NewBatch()
	batch.Job("x", jobType)
	batch.Job("y", jobType)
	_, err = l.p.SubmitJobs(ctx, batch)
	var rpcErr *RPCError
	if !errors.Is(err, ErrResourceExhausted) || !errors.As(err, &rpcErr) || rpcErr.RetryDelay <= 0 || rpcErr.Reason != "QUEUE_FULL" || rpcErr.Metadata["max_queued"] != "2" {
		t.Fatalf("SubmitJobs over max_queued = %#v", err)
	}
	raised, err := l.p.UpdateQuota(ctx, &pb.Quota{Id: q.GetId(), MaxQueued: 10}, []string{"max_queued"}, op)
	if err != nil || raised.GetMaxQueued() != 10 {
		t.Fatalf("UpdateQuota = %v, %v", raised, err)
	}
	got, err := l.p.SubmitJobs(ctx, batch)
	if err != nil || len(got) != 2 || got[1].Job.GetKey() != "y" {
		t.Fatalf("SubmitJobs = %+v, %v", got, err)
	}
	listed := collect(t, l.p.Quotas(ctx, &pb.ListQuotasRequest{JobType: jobType}))
	if len(listed) != 1 || listed[0].GetId() != q.GetId() {
		t.Errorf("Quotas = %v", listed)
	}
	paused, err := l.p.PauseJobs(ctx, jobType, op)
	if err != nil || !paused.GetPaused() {
		t.Fatalf("PauseJobs = %v, %v", paused, err)
	}
	if resumed, err := l.p.ResumeJobs(ctx, jobType, op); err != nil || resumed.GetPaused() {
		t.Fatalf("ResumeJobs = %v, %v", resumed, err)
	}
	for _, s := range append(got, first) {
		if _, err := l.p.CancelJob(ctx, s.Job.GetId(), op); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLiveDeadLetterReplayedAndFinishedByAGoWorker(t *testing.T) {
	l := liveSetup(t)
	ctx := testContext(t)
	jobType := "go.live.dlq." + l.suffix
	var calls atomic.Int32
	w, err := worker.New(l.leases, worker.WithToken(l.workerToken), worker.WithWorkerID("go-live-"+l.suffix))
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Handle(jobType, func(ctx context.Context, job *worker.Job) (map[string]any, error) {
		if calls.Add(1) == 1 {
			return nil, worker.UpstreamRejected("first attempt refused on purpose")
		}
		return map[string]any{"ok": true}, nil
	})
	wctx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- w.Run(wctx) }()
	defer func() {
		stop()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()
	sub, err := l.p.SubmitJob(ctx, "dlq", jobType, Payload(map[string]any{"n": 1}))
	if err != nil {
		t.Fatal(err)
	}
	dead, err := l.p.WaitJob(ctx, sub.Job.GetId())
	if err != nil || dead.GetState() != pb.JobState_JOB_STATE_DEAD {
		t.Fatalf("WaitJob = %v, %v", dead, err)
	}
	var entry *pb.DeadLetterEntry
	for e, err := range l.p.DeadLetters(ctx, &pb.ListDeadLettersRequest{JobType: jobType}) {
		if err != nil {
			t.Fatal(err)
		}
		entry = e
		break
	}
	if entry == nil || entry.GetJobId() != sub.Job.GetId() || entry.GetErrorClass() != pb.ErrorClass_ERROR_CLASS_HTTP_4XX {
		t.Fatalf("DeadLetters = %v", entry)
	}
	replayed, job, err := l.p.ReplayDeadLetter(ctx, entry.GetId(), op)
	if err != nil || replayed.GetStatus() != pb.DeadLetterStatus_DEAD_LETTER_STATUS_REPLAYED || job.GetId() != sub.Job.GetId() {
		t.Fatalf("ReplayDeadLetter = %v, %v, %v", replayed, job, err)
	}
	done, err := l.p.WaitJob(ctx, sub.Job.GetId())
	if err != nil || done.GetState() != pb.JobState_JOB_STATE_SUCCEEDED || !done.GetResult().GetFields()["ok"].GetBoolValue() {
		t.Fatalf("WaitJob after the replay = %v, %v", done, err)
	}
	// A second replay of the same entry is refused with a typed precondition failure.
	if _, _, err := l.p.ReplayDeadLetter(ctx, entry.GetId(), op); !errors.Is(err, ErrFailedPrecondition) {
		t.Errorf("a second replay = %v", err)
	}
	// The job's history, read through WatchEvents from the oldest event, ends with its success.
	var types []string
	for ev, err := range l.p.WatchEvents(ctx, FromOldest, EventFilter{JobID: sub.Job.GetId()}) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.GetType())
		if ev.GetType() == "job.succeeded" {
			break
		}
	}
	if len(types) < 3 || types[0] != "job.created" {
		t.Errorf("events of the job: %v", types)
	}
}

func TestLiveSchedulesAndBackfills(t *testing.T) {
	l := liveSetup(t)
	ctx := testContext(t)
	template := NewRun("go live {fire_time}")
	template.Job("a", "go.live.sched").Then("b", "go.live.sched")
	s, err := l.p.CreateSchedule(ctx, Schedule{Name: "go-live-" + l.suffix, Cron: "0 0 1 1 *", Template: template}, op)
	if err != nil {
		t.Fatal(err)
	}
	if !s.GetEnabled() || s.GetNextFireAt() == nil || len(s.GetRunTemplate().GetJobs()) != 2 || s.GetRunTemplate().GetJobs()[1].GetDependsOn()[0] != "a" {
		t.Errorf("CreateSchedule = %v", s)
	}
	found := false
	for _, got := range collect(t, l.p.Schedules(ctx, nil)) {
		found = found || got.GetId() == s.GetId()
	}
	if !found {
		t.Errorf("Schedules did not yield %s", s.GetId())
	}
	s.Enabled = false
	if off, err := l.p.UpdateSchedule(ctx, s, []string{"enabled"}, op); err != nil || off.GetEnabled() {
		t.Errorf("UpdateSchedule = %v, %v", off, err)
	}
	if err := l.p.DeleteSchedule(ctx, s.GetId(), op); err != nil {
		t.Fatal(err)
	}
	if _, err := l.p.GetSchedule(ctx, s.GetId()); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetSchedule of a deleted schedule = %v", err)
	}

	src, err := l.p.CreateSource(ctx, &pb.Source{Name: "go-live-bf-" + l.suffix, SourceType: "nvd", Host: "nvd.example", Enabled: true}, op)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bf := Backfill{SourceID: src.GetId(), JobType: "go.live.bf." + l.suffix, Start: start, End: start.Add(6 * time.Hour), Window: time.Hour}
	preview, err := l.p.PreviewBackfill(ctx, bf, op)
	if err != nil || preview.GetWindowCount() != 6 || preview.GetJobCount() != 6 {
		t.Fatalf("PreviewBackfill = %v, %v", preview, err)
	}
	if got := collect(t, l.p.Backfills(ctx, src.GetId())); len(got) != 0 {
		t.Errorf("a dry run created backfills: %v", got)
	}
	created, err := l.p.CreateBackfill(ctx, bf, op)
	if err != nil || created.GetExisting() || created.GetBackfill().GetJobCount() != 6 {
		t.Fatalf("CreateBackfill = %v, %v", created, err)
	}
	again, err := l.p.CreateBackfill(ctx, bf, op)
	if err != nil || !again.GetExisting() || again.GetBackfill().GetId() != created.GetBackfill().GetId() {
		t.Errorf("an identical backfill = %v, %v", again, err)
	}
	if got := collect(t, l.p.Backfills(ctx, src.GetId())); len(got) != 1 {
		t.Errorf("Backfills = %v", got)
	}
	canceled, err := l.p.CancelBackfill(ctx, created.GetBackfill().GetId(), op)
	if err != nil || canceled.GetState() != pb.BackfillState_BACKFILL_STATE_CANCELED {
		t.Errorf("CancelBackfill = %v, %v", canceled, err)
	}
	if _, err := l.p.CreateBackfill(ctx, bf, Operator{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a backfill without a reason = %v", err)
	}
}
