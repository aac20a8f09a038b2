package worker

import (
	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

// DefaultMaxBatch is the largest WorkerBatch until the Welcome names another.
const DefaultMaxBatch = 100

// outbox holds the pending reports of one stream; the session's mutex guards it and one
// sender goroutine writes it as WorkerBatch messages. Heartbeats and progress are coalesced
// per job (latest wins, in first-queued order); completions and failures are never dropped
// or merged. Artifacts still waiting when their job completes ride inside the Completion,
// so the server never sees an artifact for a job it has already closed.
type outbox struct {
	maxBatch     int
	completions  []*pb.Completion
	failures     []*pb.Failure
	heartbeats   map[string]*pb.Heartbeat
	hbOrder      []string
	progress     map[string]*pb.ProgressReport
	progOrder    []string
	artifacts    []*pb.ArtifactRecord
	credits      uint32
	drainReason  *string // a WorkerDrain to send before the next batch
	closeRequest bool    // half-close once everything is written
}

func newOutbox() *outbox {
	return &outbox{
		maxBatch:   DefaultMaxBatch,
		heartbeats: map[string]*pb.Heartbeat{},
		progress:   map[string]*pb.ProgressReport{},
	}
}

func (o *outbox) len() int {
	n := len(o.completions) + len(o.failures) + len(o.heartbeats) + len(o.progress) + len(o.artifacts)
	if o.credits > 0 {
		n++
	}
	return n
}

func (o *outbox) addHeartbeat(h *pb.Heartbeat) {
	if _, ok := o.heartbeats[h.GetJobId()]; !ok {
		o.hbOrder = append(o.hbOrder, h.GetJobId())
	}
	o.heartbeats[h.GetJobId()] = h
	o.dropProgress(h.GetJobId()) // a heartbeat with progress supersedes it
}

func (o *outbox) addProgress(p *pb.ProgressReport) {
	if _, ok := o.progress[p.GetJobId()]; !ok {
		o.progOrder = append(o.progOrder, p.GetJobId())
	}
	o.progress[p.GetJobId()] = p
}

func (o *outbox) addArtifact(a *pb.ArtifactRecord) { o.artifacts = append(o.artifacts, a) }

func (o *outbox) addCompletion(c *pb.Completion) {
	kept := o.artifacts[:0:0]
	for _, a := range o.artifacts {
		if a.GetJobId() == c.GetJobId() {
			c.Artifacts = append(c.Artifacts, a)
		} else {
			kept = append(kept, a)
		}
	}
	o.artifacts = kept
	o.forget(c.GetJobId())
	o.completions = append(o.completions, c)
}

func (o *outbox) addFailure(f *pb.Failure) {
	// Artifacts of a failed attempt still go out: they help to debug the failure.
	o.forget(f.GetJobId())
	o.failures = append(o.failures, f)
}

// addCredit frees a slot without a report (the job was canceled locally).
func (o *outbox) addCredit(jobID string) {
	o.forget(jobID)
	kept := o.artifacts[:0:0]
	for _, a := range o.artifacts {
		if a.GetJobId() != jobID {
			kept = append(kept, a)
		}
	}
	o.artifacts = kept
	o.credits++
}

// forget drops pending heartbeats/progress: the job's lease ends with its report.
func (o *outbox) forget(jobID string) {
	if _, ok := o.heartbeats[jobID]; ok {
		delete(o.heartbeats, jobID)
		o.hbOrder = remove(o.hbOrder, jobID)
	}
	o.dropProgress(jobID)
}

func (o *outbox) dropProgress(jobID string) {
	if _, ok := o.progress[jobID]; ok {
		delete(o.progress, jobID)
		o.progOrder = remove(o.progOrder, jobID)
	}
}

func remove(ids []string, id string) []string {
	for i, v := range ids {
		if v == id {
			return append(ids[:i:i], ids[i+1:]...)
		}
	}
	return ids
}

// takeBatch removes up to maxBatch entries as one message (artifacts, then results, then
// heartbeats and progress), or returns nil when nothing waits.
func (o *outbox) takeBatch() *pb.WorkerBatch {
	if o.len() == 0 {
		return nil
	}
	room := o.maxBatch
	batch := &pb.WorkerBatch{}
	n := min(room, len(o.artifacts))
	batch.Artifacts, o.artifacts, room = o.artifacts[:n], o.artifacts[n:], room-n
	n = min(room, len(o.completions))
	batch.Completions, o.completions, room = o.completions[:n], o.completions[n:], room-n
	n = min(room, len(o.failures))
	batch.Failures, o.failures, room = o.failures[:n], o.failures[n:], room-n
	for room > 0 && len(o.hbOrder) > 0 {
		id := o.hbOrder[0]
		o.hbOrder = o.hbOrder[1:]
		batch.Heartbeats = append(batch.Heartbeats, o.heartbeats[id])
		delete(o.heartbeats, id)
		room--
	}
	for room > 0 && len(o.progOrder) > 0 {
		id := o.progOrder[0]
		o.progOrder = o.progOrder[1:]
		batch.Progress = append(batch.Progress, o.progress[id])
		delete(o.progress, id)
		room--
	}
	batch.Credits, o.credits = o.credits, 0
	return batch
}
