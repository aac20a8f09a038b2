package producer

import (
	"context"
	"errors"
	"iter"
	"time"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

// CreatedRun is the answer of CreateRun.
type CreatedRun struct {
	// Run is the run as stored, with its state and job counts.
	Run *pb.Run
	// Jobs of the run in the order they were added to the Run; JobByKey finds one.
	Jobs []*pb.Job
	// Existing is true when the idempotency key matched a run that already existed: nothing
	// was created and Run/Jobs describe that run.
	Existing bool
}

// JobByKey returns the job with the run-local key, or nil.
func (c *CreatedRun) JobByKey(key string) *pb.Job {
	for _, j := range c.Jobs {
		if j.GetKey() == key {
			return j
		}
	}
	return nil
}

// Submitted is one job of SubmitJob or SubmitJobs.
type Submitted struct {
	// Job is the job as stored (or the existing one).
	Job *pb.Job
	// Existing is true when the job's idempotency key matched a job that already existed.
	Existing bool
}

// CreateRun creates the run and its DAG of jobs in one transaction (scope orch:operate).
// With an idempotency key, a second call returns the first run with Existing set. A run
// the client can tell is invalid (duplicate keys, a cycle, ...) fails with ErrInvalid
// before anything is sent.
func (p *Producer) CreateRun(ctx context.Context, run *Run) (*CreatedRun, error) {
	req, err := run.Request()
	if err != nil {
		return nil, err
	}
	resp, err := call(ctx, p.scheduler.CreateRun, req)
	if err != nil {
		return nil, err
	}
	return &CreatedRun{Run: resp.GetRun(), Jobs: resp.GetJobs(), Existing: resp.GetExisting()}, nil
}

// GetRun returns a run with its state and job counts.
func (p *Producer) GetRun(ctx context.Context, runID string) (*pb.Run, error) {
	resp, err := call(ctx, p.scheduler.GetRun, &pb.GetRunRequest{RunId: runID})
	return resp.GetRun(), err
}

// GetRunDag returns every job of a run in topological order and the edges between them.
func (p *Producer) GetRunDag(ctx context.Context, runID string) (*pb.GetRunDagResponse, error) {
	return call(ctx, p.scheduler.GetRunDag, &pb.GetRunDagRequest{RunId: runID})
}

// Runs yields the tenant's runs that match filter (nil: all) in creation order, fetching
// page after page; the loop may stop early. An error ends the sequence.
func (p *Producer) Runs(ctx context.Context, filter *pb.ListRunsRequest) iter.Seq2[*pb.Run, error] {
	return list(ctx, p.scheduler.ListRuns, orNew(filter),
		func(r *pb.ListRunsRequest, t string) { r.PageToken = t },
		func(r *pb.ListRunsResponse) ([]*pb.Run, string) { return r.GetRuns(), r.GetNextPageToken() })
}

// CancelRun cancels every non-terminal job of a run.
func (p *Producer) CancelRun(ctx context.Context, runID string, op Operator) (*pb.CancelRunResponse, error) {
	return call(ctx, p.scheduler.CancelRun, &pb.CancelRunRequest{RunId: runID, Operator: op.proto()})
}

// ResumeRun resumes a failed run from its failure: dead jobs run again, the jobs canceled
// below them come back, succeeded jobs do not run again (op.Reason required).
func (p *Producer) ResumeRun(ctx context.Context, runID string, op Operator) (*pb.ResumeRunResponse, error) {
	return call(ctx, p.scheduler.ResumeRun, &pb.ResumeRunRequest{RunId: runID, Operator: op.proto()})
}

// SubmitJob creates one standalone job (key optional: pass "" for none). With
// IdempotencyKey, a second call returns the first job with Existing set.
func (p *Producer) SubmitJob(ctx context.Context, key, jobType string, opts ...JobOption) (Submitted, error) {
	spec, errs := newSpec(key, jobType, opts)
	if len(errs) > 0 {
		return Submitted{}, errors.Join(errs...)
	}
	resp, err := call(ctx, p.scheduler.SubmitJob, &pb.SubmitJobRequest{Job: spec})
	return Submitted{Job: resp.GetJob(), Existing: resp.GetExisting()}, err
}

// SubmitJobs creates the batch's jobs in one transaction, standalone or in the batch's
// run; the result is in the order the jobs were added.
func (p *Producer) SubmitJobs(ctx context.Context, batch *Batch) ([]Submitted, error) {
	specs, err := batch.Specs()
	if err != nil {
		return nil, err
	}
	resp, err := call(ctx, p.scheduler.SubmitJobs, &pb.SubmitJobsRequest{Jobs: specs, RunId: batch.runID})
	if err != nil {
		return nil, err
	}
	out := make([]Submitted, len(resp.GetJobs()))
	for i, j := range resp.GetJobs() {
		out[i] = Submitted{Job: j, Existing: i < len(resp.GetExisting()) && resp.GetExisting()[i]}
	}
	return out, nil
}

// GetJob returns one job.
func (p *Producer) GetJob(ctx context.Context, jobID string) (*pb.Job, error) {
	resp, err := call(ctx, p.scheduler.GetJob, &pb.GetJobRequest{JobId: jobID})
	return resp.GetJob(), err
}

// Jobs yields the tenant's jobs that match filter (nil: all) in creation order.
func (p *Producer) Jobs(ctx context.Context, filter *pb.ListJobsRequest) iter.Seq2[*pb.Job, error] {
	return list(ctx, p.scheduler.ListJobs, orNew(filter),
		func(r *pb.ListJobsRequest, t string) { r.PageToken = t },
		func(r *pb.ListJobsResponse) ([]*pb.Job, string) { return r.GetJobs(), r.GetNextPageToken() })
}

// CancelJob cancels a non-terminal job; its descendants are canceled as upstream_failed.
func (p *Producer) CancelJob(ctx context.Context, jobID string, op Operator) (*pb.Job, error) {
	resp, err := call(ctx, p.scheduler.CancelJob, &pb.CancelJobRequest{JobId: jobID, Operator: op.proto()})
	return resp.GetJob(), err
}

// RetryJob moves a dead job back to READY with a renewed attempt budget.
func (p *Producer) RetryJob(ctx context.Context, jobID string, op Operator) (*pb.Job, error) {
	resp, err := call(ctx, p.scheduler.RetryJob, &pb.RetryJobRequest{JobId: jobID, Operator: op.proto()})
	return resp.GetJob(), err
}

// ReplayJob runs a succeeded job again as a new job whose replay_of names it.
func (p *Producer) ReplayJob(ctx context.Context, jobID string, op Operator) (*pb.Job, error) {
	resp, err := call(ctx, p.scheduler.ReplayJob, &pb.ReplayJobRequest{JobId: jobID, Operator: op.proto()})
	return resp.GetJob(), err
}

// PrioritizeJob sets the priority (-1000..1000) of a pending or ready job.
func (p *Producer) PrioritizeJob(ctx context.Context, jobID string, priority int32, op Operator) (*pb.Job, error) {
	resp, err := call(ctx, p.scheduler.PrioritizeJob, &pb.PrioritizeJobRequest{JobId: jobID, Priority: priority, Operator: op.proto()})
	return resp.GetJob(), err
}

// RunDone reports whether a run state is terminal (succeeded, failed, canceled).
func RunDone(s pb.RunState) bool {
	return s == pb.RunState_RUN_STATE_SUCCEEDED || s == pb.RunState_RUN_STATE_FAILED || s == pb.RunState_RUN_STATE_CANCELED
}

// JobDone reports whether a job state ends a wait: succeeded, canceled, or dead (an
// operator may still retry a dead job).
func JobDone(s pb.JobState) bool {
	return s == pb.JobState_JOB_STATE_SUCCEEDED || s == pb.JobState_JOB_STATE_DEAD || s == pb.JobState_JOB_STATE_CANCELED
}

// WaitRun returns the run once it is terminal (succeeded, failed or canceled: check
// Run.State), or ctx's error. It looks at once, then at growing intervals (WithPollInterval).
func (p *Producer) WaitRun(ctx context.Context, runID string) (*pb.Run, error) {
	return waitFor(ctx, p.pollInterval, func(ctx context.Context) (*pb.Run, bool, error) {
		run, err := p.GetRun(ctx, runID)
		return run, err == nil && RunDone(run.GetState()), err
	})
}

// WaitJob returns the job once it succeeded, died or was canceled (check Job.State), or
// ctx's error.
func (p *Producer) WaitJob(ctx context.Context, jobID string) (*pb.Job, error) {
	return waitFor(ctx, p.pollInterval, func(ctx context.Context) (*pb.Job, bool, error) {
		job, err := p.GetJob(ctx, jobID)
		return job, err == nil && JobDone(job.GetState()), err
	})
}

// waitFor calls look until it reports done or fails with an error that is not transient.
// A transient failure (UNAVAILABLE: a restarting server) is looked past.
func waitFor[T any](ctx context.Context, interval time.Duration, look func(context.Context) (T, bool, error)) (T, error) {
	for {
		got, done, err := look(ctx)
		if done {
			return got, nil
		}
		if err != nil && !errors.Is(err, ErrUnavailable) {
			return got, err
		}
		select {
		case <-ctx.Done():
			var zero T
			return zero, context.Cause(ctx)
		case <-time.After(interval):
		}
		interval = min(interval*3/2, MaxPollInterval)
	}
}

func orNew[T any](filter *T) *T {
	if filter == nil {
		return new(T)
	}
	return filter
}
