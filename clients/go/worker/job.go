package worker

import (
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

// MaxProgressMessageChars bounds a progress message.
const MaxProgressMessageChars = 256

// TimeWindow is the event-time window [Start, End) a job covers.
type TimeWindow struct{ Start, End time.Time }

// Job is one leased job as its handler sees it (a view of an Assignment), plus the
// job-bound calls Heartbeat, Progress and Artifact. The calls only record values; the
// session sends them (heartbeats at the interval the server gave, progress at most every
// ProgressMinInterval), so calling them in a tight loop is cheap. They are safe from any
// goroutine.
type Job struct {
	ID              string
	RunID           string
	Tenant          string
	Project         string
	JobType         string
	Key             string
	Attempt         int
	MaxAttempts     int
	IdempotencyKey  string // pass it to upstream side effects so retries do not repeat them
	CorrelationID   string
	Payload         map[string]any // numbers are float64 (protobuf Struct)
	PayloadDigest   string
	LeaseID         string
	LeaseExpiresAt  time.Time
	TraceParent     string
	TraceState      string
	EventTimeWindow *TimeWindow
	SourceID        string

	held *held // nil for a Job the SDK did not create
}

func jobFromAssignment(a *pb.Assignment) *Job {
	job := &Job{
		ID: a.GetJobId(), RunID: a.GetRunId(), Tenant: a.GetTenant(), Project: a.GetProject(),
		JobType: a.GetJobType(), Key: a.GetKey(), Attempt: int(a.GetAttempt()),
		MaxAttempts: int(a.GetMaxAttempts()), IdempotencyKey: a.GetIdempotencyKey(),
		CorrelationID: a.GetCorrelationId(), Payload: a.GetPayload().AsMap(),
		PayloadDigest: a.GetPayloadDigest(), LeaseID: a.GetLeaseId(),
		TraceParent: a.GetTraceParent(), TraceState: a.GetTraceState(), SourceID: a.GetSourceId(),
	}
	if a.GetLeaseExpiresAt() != nil {
		job.LeaseExpiresAt = a.GetLeaseExpiresAt().AsTime()
	}
	if w := a.GetEventTimeWindow(); w != nil && w.GetStart() != nil && w.GetEnd() != nil {
		job.EventTimeWindow = &TimeWindow{Start: w.GetStart().AsTime(), End: w.GetEnd().AsTime()}
	}
	return job
}

func checkPercent(p float64) error {
	if math.IsNaN(p) || p < 0 || p > 100 {
		return fmt.Errorf("%w: progress must be between 0 and 100, got %v", ErrInvalid, p)
	}
	return nil
}

// Heartbeat records that the job is alive with progress. Coalesced: the SDK heartbeats
// every lease on its own and carries the latest value with the next heartbeat.
func (j *Job) Heartbeat(percent float64, message string) error {
	if err := checkPercent(percent); err != nil {
		return err
	}
	return j.recordProgress(percent, message, false)
}

// Progress reports progress (percent 0-100 and a short status line); it reaches the server
// within about a second. Coalesced like Heartbeat.
func (j *Job) Progress(percent float64, message string) error {
	if err := checkPercent(percent); err != nil {
		return err
	}
	return j.recordProgress(percent, message, true)
}

func (j *Job) recordProgress(percent float64, message string, urgent bool) error {
	h := j.held
	if h == nil {
		return ErrNotInJob
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	h.percent = percent
	h.message = truncateUTF8(message, MaxProgressMessageChars)
	h.progressDirty = true
	if urgent {
		h.progressUrgent = true
	}
	return nil
}

// ArtifactRecord is an artifact a job produced, as reported to the server.
type ArtifactRecord struct {
	Name      string
	Digest    string // "sha256:<64 lowercase hex>"
	SizeBytes int64
	MediaType string
	URI       string // where the bytes are stored ("" if the worker keeps none)
}

// ArtifactOption sets an optional field of an artifact.
type ArtifactOption func(*ArtifactRecord)

// WithMediaType sets the IANA media type (default application/octet-stream).
func WithMediaType(mediaType string) ArtifactOption {
	return func(r *ArtifactRecord) { r.MediaType = mediaType }
}

// WithURI says where the bytes are stored.
func WithURI(uri string) ArtifactOption { return func(r *ArtifactRecord) { r.URI = uri } }

// Artifact records an artifact with the given content: the SDK hashes it (sha256) and
// measures it; it does not upload it (store it yourself and pass WithURI). The record goes
// out with the next batch, or inside the job's completion if that comes first.
func (j *Job) Artifact(name string, data []byte, opts ...ArtifactOption) (ArtifactRecord, error) {
	return j.ArtifactRef(name, BytesDigest(data), int64(len(data)), opts...)
}

// ArtifactRef records an artifact stored elsewhere by its digest and size.
func (j *Job) ArtifactRef(name, digest string, size int64, opts ...ArtifactOption) (ArtifactRecord, error) {
	record := ArtifactRecord{Name: name, Digest: digest, SizeBytes: size, MediaType: "application/octet-stream"}
	for _, opt := range opts {
		opt(&record)
	}
	if err := validateArtifact(record); err != nil {
		return ArtifactRecord{}, err
	}
	h := j.held
	if h == nil {
		return ArtifactRecord{}, ErrNotInJob
	}
	if err := h.s.recordArtifact(h, record); err != nil {
		return ArtifactRecord{}, err
	}
	return record, nil
}

func validateArtifact(r ArtifactRecord) error {
	if r.Name == "" {
		return fmt.Errorf("%w: artifact name must not be empty", ErrInvalid)
	}
	hexPart, ok := strings.CutPrefix(r.Digest, "sha256:")
	if !ok || len(hexPart) != 64 || strings.Trim(hexPart, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: digest must be 'sha256:' and 64 lowercase hex digits, got %q", ErrInvalid, r.Digest)
	}
	if r.SizeBytes < 0 {
		return fmt.Errorf("%w: size must be >= 0, got %d", ErrInvalid, r.SizeBytes)
	}
	return nil
}

func (r ArtifactRecord) toProto(jobID, leaseID string) *pb.ArtifactRecord {
	return &pb.ArtifactRecord{
		JobId: jobID, LeaseId: leaseID, Name: r.Name, MediaType: r.MediaType,
		SizeBytes: r.SizeBytes, Digest: r.Digest, Uri: r.URI,
	}
}

// resultStruct converts a handler result and computes its digest over what the server will
// store (the Struct form, where every number is a double).
func resultStruct(result map[string]any) (*structpb.Struct, string, error) {
	if result == nil {
		return nil, "", nil
	}
	st, err := structpb.NewStruct(result)
	if err != nil {
		return nil, "", fmt.Errorf("handler result is not JSON: %w", err)
	}
	digest, err := JSONDigest(st.AsMap())
	if err != nil {
		return nil, "", fmt.Errorf("handler result is not JSON: %w", err)
	}
	return st, digest, nil
}
