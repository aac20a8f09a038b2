package producer

import (
	"context"
	"fmt"
	"iter"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

// ---- sources

// CreateSource registers an upstream source (name, source_type, host, base_url, ...;
// server-assigned fields are ignored).
func (p *Producer) CreateSource(ctx context.Context, source *pb.Source, op Operator) (*pb.Source, error) {
	resp, err := call(ctx, p.scheduler.CreateSource, &pb.CreateSourceRequest{Source: source, Operator: op.proto()})
	return resp.GetSource(), err
}

// GetSource returns one source.
func (p *Producer) GetSource(ctx context.Context, sourceID string) (*pb.Source, error) {
	resp, err := call(ctx, p.scheduler.GetSource, &pb.GetSourceRequest{SourceId: sourceID})
	return resp.GetSource(), err
}

// Sources yields the tenant's sources that match filter (nil: all) in id order.
func (p *Producer) Sources(ctx context.Context, filter *pb.ListSourcesRequest) iter.Seq2[*pb.Source, error] {
	return list(ctx, p.scheduler.ListSources, orNew(filter),
		func(r *pb.ListSourcesRequest, t string) { r.PageToken = t },
		func(r *pb.ListSourcesResponse) ([]*pb.Source, string) { return r.GetSources(), r.GetNextPageToken() })
}

// UpdateSource changes the fields of source named in fields (e.g. "max_active",
// "labels"); a non-zero source.Version must match the stored one (else ErrAborted).
func (p *Producer) UpdateSource(ctx context.Context, source *pb.Source, fields []string, op Operator) (*pb.Source, error) {
	resp, err := call(ctx, p.scheduler.UpdateSource, &pb.UpdateSourceRequest{
		Source: source, UpdateMask: &fieldmaskpb.FieldMask{Paths: fields}, Operator: op.proto(),
	})
	return resp.GetSource(), err
}

// PauseSource stops leasing the source's jobs (they stay queued); op.Reason is required and
// becomes the source's paused_reason (op.Ticket its paused_ticket).
func (p *Producer) PauseSource(ctx context.Context, sourceID string, op Operator) (*pb.Source, error) {
	return p.UpdateSource(ctx, &pb.Source{Id: sourceID, Paused: true}, []string{"paused"}, op)
}

// ResumeSource lets a paused source's jobs be leased again; op.Reason is required.
func (p *Producer) ResumeSource(ctx context.Context, sourceID string, op Operator) (*pb.Source, error) {
	return p.UpdateSource(ctx, &pb.Source{Id: sourceID}, []string{"paused"}, op)
}

// DeleteSource removes a source that has no non-terminal jobs (else ErrFailedPrecondition).
func (p *Producer) DeleteSource(ctx context.Context, sourceID string, op Operator) error {
	_, err := call(ctx, p.scheduler.DeleteSource, &pb.DeleteSourceRequest{SourceId: sourceID, Operator: op.proto()})
	return err
}

// ---- dead letters

// DeadLetters yields the tenant's dead-letter entries that match filter (nil: all), newest first.
func (p *Producer) DeadLetters(ctx context.Context, filter *pb.ListDeadLettersRequest) iter.Seq2[*pb.DeadLetterEntry, error] {
	return list(ctx, p.scheduler.ListDeadLetters, orNew(filter),
		func(r *pb.ListDeadLettersRequest, t string) { r.PageToken = t },
		func(r *pb.ListDeadLettersResponse) ([]*pb.DeadLetterEntry, string) {
			return r.GetEntries(), r.GetNextPageToken()
		})
}

// GetDeadLetter returns one dead-letter entry.
func (p *Producer) GetDeadLetter(ctx context.Context, entryID string) (*pb.DeadLetterEntry, error) {
	resp, err := call(ctx, p.scheduler.GetDeadLetter, &pb.GetDeadLetterRequest{EntryId: entryID})
	return resp.GetEntry(), err
}

// ReplayDeadLetter retries the dead job of a pending entry (op.Reason required) and returns
// the entry (now replayed) and the job (now ready).
func (p *Producer) ReplayDeadLetter(ctx context.Context, entryID string, op Operator) (*pb.DeadLetterEntry, *pb.Job, error) {
	resp, err := call(ctx, p.scheduler.ReplayDeadLetter, &pb.ReplayDeadLetterRequest{EntryId: entryID, Operator: op.proto()})
	return resp.GetEntry(), resp.GetJob(), err
}

// ---- quotas

// CreateQuota sets the quota of the tenant (JobType "") or of one job type (scope
// orch:quota, op.Reason required); ErrAlreadyExists if that job type has one.
func (p *Producer) CreateQuota(ctx context.Context, quota *pb.Quota, op Operator) (*pb.Quota, error) {
	resp, err := call(ctx, p.scheduler.CreateQuota, &pb.CreateQuotaRequest{Quota: quota, Operator: op.proto()})
	return resp.GetQuota(), err
}

// GetQuota returns one quota.
func (p *Producer) GetQuota(ctx context.Context, quotaID string) (*pb.Quota, error) {
	resp, err := call(ctx, p.scheduler.GetQuota, &pb.GetQuotaRequest{QuotaId: quotaID})
	return resp.GetQuota(), err
}

// Quotas yields the tenant's quotas that match filter (nil: all) in id order.
func (p *Producer) Quotas(ctx context.Context, filter *pb.ListQuotasRequest) iter.Seq2[*pb.Quota, error] {
	return list(ctx, p.scheduler.ListQuotas, orNew(filter),
		func(r *pb.ListQuotasRequest, t string) { r.PageToken = t },
		func(r *pb.ListQuotasResponse) ([]*pb.Quota, string) { return r.GetQuotas(), r.GetNextPageToken() })
}

// UpdateQuota changes the fields of quota named in fields (max_active, max_per_hour,
// burst, max_queued, paused); op.Reason is required.
func (p *Producer) UpdateQuota(ctx context.Context, quota *pb.Quota, fields []string, op Operator) (*pb.Quota, error) {
	resp, err := call(ctx, p.scheduler.UpdateQuota, &pb.UpdateQuotaRequest{
		Quota: quota, UpdateMask: &fieldmaskpb.FieldMask{Paths: fields}, Operator: op.proto(),
	})
	return resp.GetQuota(), err
}

// DeleteQuota removes a quota; op.Reason is required.
func (p *Producer) DeleteQuota(ctx context.Context, quotaID string, op Operator) error {
	_, err := call(ctx, p.scheduler.DeleteQuota, &pb.DeleteQuotaRequest{QuotaId: quotaID, Operator: op.proto()})
	return err
}

// PauseJobs stops leasing the tenant's jobs (jobType "") or one job type's; they stay
// ready. It returns the quota that holds the pause; op.Reason is required.
func (p *Producer) PauseJobs(ctx context.Context, jobType string, op Operator) (*pb.Quota, error) {
	resp, err := call(ctx, p.scheduler.PauseJobs, &pb.PauseJobsRequest{JobType: jobType, Operator: op.proto()})
	return resp.GetQuota(), err
}

// ResumeJobs undoes PauseJobs for the tenant (jobType "") or one job type.
func (p *Producer) ResumeJobs(ctx context.Context, jobType string, op Operator) (*pb.Quota, error) {
	resp, err := call(ctx, p.scheduler.ResumeJobs, &pb.ResumeJobsRequest{JobType: jobType, Operator: op.proto()})
	return resp.GetQuota(), err
}

// ---- schedules

// Schedule describes a cron schedule to create: at each fire time (UTC) it creates the run
// Template describes (the run's name may hold "{fire_time}").
type Schedule struct {
	Name     string           // unique in the tenant
	Cron     string           // five fields, UTC, e.g. "0 */6 * * *"
	SourceID string           // source the created runs work on; may be empty
	Template *Run             // the run created at each fire time (NewRun(...).Job(...)...)
	CatchUp  pb.CatchUpPolicy // default ONE
	Overlap  pb.OverlapPolicy // default SKIP
	// CatchUpWindow bounds how old a missed fire time may be to be caught up (0: no limit).
	CatchUpWindow time.Duration
	Disabled      bool // create it disabled (it does not fire until enabled)
}

// CreateSchedule registers a schedule and returns it with its next fire time.
func (p *Producer) CreateSchedule(ctx context.Context, s Schedule, op Operator) (*pb.Schedule, error) {
	if s.Template == nil {
		return nil, fmt.Errorf("%w: schedule %q needs a run template", ErrInvalid, s.Name)
	}
	template, err := s.Template.Template()
	if err != nil {
		return nil, err
	}
	msg := &pb.Schedule{
		Name: s.Name, Cron: s.Cron, SourceId: s.SourceID, RunTemplate: template,
		CatchUp: s.CatchUp, Overlap: s.Overlap, Enabled: !s.Disabled,
	}
	if s.CatchUpWindow > 0 {
		msg.CatchUpWindow = durationpb.New(s.CatchUpWindow)
	}
	resp, err := call(ctx, p.scheduler.CreateSchedule, &pb.CreateScheduleRequest{Schedule: msg, Operator: op.proto()})
	return resp.GetSchedule(), err
}

// GetSchedule returns one schedule.
func (p *Producer) GetSchedule(ctx context.Context, scheduleID string) (*pb.Schedule, error) {
	resp, err := call(ctx, p.scheduler.GetSchedule, &pb.GetScheduleRequest{ScheduleId: scheduleID})
	return resp.GetSchedule(), err
}

// Schedules yields the tenant's schedules that match filter (nil: all) in id order.
func (p *Producer) Schedules(ctx context.Context, filter *pb.ListSchedulesRequest) iter.Seq2[*pb.Schedule, error] {
	return list(ctx, p.scheduler.ListSchedules, orNew(filter),
		func(r *pb.ListSchedulesRequest, t string) { r.PageToken = t },
		func(r *pb.ListSchedulesResponse) ([]*pb.Schedule, string) {
			return r.GetSchedules(), r.GetNextPageToken()
		})
}

// UpdateSchedule changes the fields of schedule named in fields (name, cron, source_id,
// run_template, catch_up, catch_up_window, overlap, enabled).
func (p *Producer) UpdateSchedule(ctx context.Context, schedule *pb.Schedule, fields []string, op Operator) (*pb.Schedule, error) {
	resp, err := call(ctx, p.scheduler.UpdateSchedule, &pb.UpdateScheduleRequest{
		Schedule: schedule, UpdateMask: &fieldmaskpb.FieldMask{Paths: fields}, Operator: op.proto(),
	})
	return resp.GetSchedule(), err
}

// DeleteSchedule removes a schedule; the runs it created stay.
func (p *Producer) DeleteSchedule(ctx context.Context, scheduleID string, op Operator) error {
	_, err := call(ctx, p.scheduler.DeleteSchedule, &pb.DeleteScheduleRequest{ScheduleId: scheduleID, Operator: op.proto()})
	return err
}

// ---- backfills

// Backfill describes a backfill: re-process [Start, End) of a source in windows of Window,
// one job of JobType each.
type Backfill struct {
	SourceID   string        // source to backfill
	JobType    string        // job type of the window jobs
	Start, End time.Time     // event-time range, half-open [Start, End); at most 100,000 windows
	Window     time.Duration // window length; the last window may be shorter
	// Priority of the window jobs; nil means the server's -10 (below live ingestion).
	Priority *int32
	// Payload given to every window job (the window itself is the job's event-time window).
	Payload map[string]any
}

func (b Backfill) request(dryRun bool, op Operator) (*pb.CreateBackfillRequest, error) {
	req := &pb.CreateBackfillRequest{
		SourceId: b.SourceID, JobType: b.JobType, Priority: b.Priority, DryRun: dryRun, Operator: op.proto(),
		Range:      &pb.TimeWindow{Start: timestamppb.New(b.Start), End: timestamppb.New(b.End)},
		WindowSize: durationpb.New(b.Window),
	}
	if b.Payload != nil {
		st, err := structpb.NewStruct(b.Payload)
		if err != nil {
			return nil, fmt.Errorf("%w: backfill payload: %v", ErrInvalid, err)
		}
		req.Payload = st
	}
	return req, nil
}

// CreateBackfill plans the backfill (scope orch:backfill; op.Reason and op.Ticket
// required). The answer holds the backfill (or the identical active one, Existing) and
// its preview (windows, jobs, suppressed windows, estimated duration, quota impact).
func (p *Producer) CreateBackfill(ctx context.Context, b Backfill, op Operator) (*pb.CreateBackfillResponse, error) {
	req, err := b.request(false, op)
	if err != nil {
		return nil, err
	}
	return call(ctx, p.scheduler.CreateBackfill, req)
}

// PreviewBackfill answers what CreateBackfill would do, writing nothing (a dry run).
func (p *Producer) PreviewBackfill(ctx context.Context, b Backfill, op Operator) (*pb.BackfillPreview, error) {
	req, err := b.request(true, op)
	if err != nil {
		return nil, err
	}
	resp, err := call(ctx, p.scheduler.CreateBackfill, req)
	return resp.GetPreview(), err
}

// GetBackfill returns one backfill with its progress.
func (p *Producer) GetBackfill(ctx context.Context, backfillID string) (*pb.Backfill, error) {
	resp, err := call(ctx, p.scheduler.GetBackfill, &pb.GetBackfillRequest{BackfillId: backfillID})
	return resp.GetBackfill(), err
}

// Backfills yields the tenant's backfills (of one source, or all: sourceID "") in id order.
func (p *Producer) Backfills(ctx context.Context, sourceID string) iter.Seq2[*pb.Backfill, error] {
	return list(ctx, p.scheduler.ListBackfills, &pb.ListBackfillsRequest{SourceId: sourceID},
		func(r *pb.ListBackfillsRequest, t string) { r.PageToken = t },
		func(r *pb.ListBackfillsResponse) ([]*pb.Backfill, string) {
			return r.GetBackfills(), r.GetNextPageToken()
		})
}

// CancelBackfill cancels the unfinished window jobs of a backfill (op.Reason and op.Ticket required).
func (p *Producer) CancelBackfill(ctx context.Context, backfillID string, op Operator) (*pb.Backfill, error) {
	resp, err := call(ctx, p.scheduler.CancelBackfill, &pb.CancelBackfillRequest{BackfillId: backfillID, Operator: op.proto()})
	return resp.GetBackfill(), err
}
