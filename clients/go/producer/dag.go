package producer

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

// JobOption sets one field of a job's spec.
type JobOption func(*pb.JobSpec) error

// Payload sets the job's input (a JSON object: values must be what structpb accepts, e.g.
// string, float64, int, bool, nil, []any, map[string]any).
func Payload(payload map[string]any) JobOption {
	return func(s *pb.JobSpec) error {
		st, err := structpb.NewStruct(payload)
		if err != nil {
			return fmt.Errorf("%w: payload of job %q: %v", ErrInvalid, s.GetKey(), err)
		}
		s.Payload = st
		return nil
	}
}

// Priority sets the scheduling priority (-1000..1000, higher is leased first; default 0).
func Priority(p int32) JobOption { return func(s *pb.JobSpec) error { s.Priority = p; return nil } }

// IdempotencyKey makes the submission idempotent: when a job with this key exists in the
// tenant, it is returned (Submitted.Existing) and nothing is created.
func IdempotencyKey(key string) JobOption {
	return func(s *pb.JobSpec) error { s.IdempotencyKey = key; return nil }
}

// SourceID names the source the job works on (its rate-limit key); default the run's.
func SourceID(id string) JobOption { return func(s *pb.JobSpec) error { s.SourceId = id; return nil } }

// CorrelationID sets the id carried by every event of the job; default the run's.
func CorrelationID(id string) JobOption {
	return func(s *pb.JobSpec) error { s.CorrelationId = id; return nil }
}

// Labels sets free-form key/value labels.
func Labels(labels map[string]string) JobOption {
	return func(s *pb.JobSpec) error { s.Labels = maps.Clone(labels); return nil }
}

// NotBefore keeps the job from being leased before t.
func NotBefore(t time.Time) JobOption {
	return func(s *pb.JobSpec) error { s.NotBefore = timestamppb.New(t); return nil }
}

// EventTime sets the half-open event-time window [start, end) the job covers.
func EventTime(start, end time.Time) JobOption {
	return func(s *pb.JobSpec) error {
		if !end.After(start) {
			return fmt.Errorf("%w: event-time window of job %q ends before it starts", ErrInvalid, s.GetKey())
		}
		s.EventTimeWindow = &pb.TimeWindow{Start: timestamppb.New(start), End: timestamppb.New(end)}
		return nil
	}
}

// Retry sets the retry policy: maxAttempts in total (0: server default), the first backoff
// and its cap (0: server default). The multiplier stays the server's (2.0).
func Retry(maxAttempts int32, initial, maxBackoff time.Duration) JobOption {
	return func(s *pb.JobSpec) error {
		rp := &pb.RetryPolicy{MaxAttempts: maxAttempts}
		if initial > 0 {
			rp.InitialBackoff = durationpb.New(initial)
		}
		if maxBackoff > 0 {
			rp.MaxBackoff = durationpb.New(maxBackoff)
		}
		s.RetryPolicy = rp
		return nil
	}
}

// AfterJobIDs makes the job wait for existing jobs (by id, in the same tenant) to succeed.
func AfterJobIDs(ids ...string) JobOption {
	return func(s *pb.JobSpec) error { s.DependsOnJobIds = append(s.DependsOnJobIds, ids...); return nil }
}

// Graph is a DAG of job specs under construction, the part Run and Batch share: add jobs
// with Job, chain them with JobNode.Then and JobNode.After. Keys are unique; the order of
// Job calls is the order of the request.
type Graph struct {
	nodes []*JobNode
	byKey map[string]*JobNode
	errs  []error
}

// JobNode is one job of a Graph; its methods add edges and return nodes so calls chain.
type JobNode struct {
	graph   *Graph
	spec    *pb.JobSpec
	parents []*JobNode
}

// Job adds a job with a run-local key (unique in the graph) and a job type, and returns it.
// Errors (a duplicate key, an empty type, a bad option) are reported by the call that sends
// the graph.
func (g *Graph) Job(key, jobType string, opts ...JobOption) *JobNode {
	if g.byKey == nil {
		g.byKey = map[string]*JobNode{}
	}
	spec, errs := newSpec(key, jobType, opts)
	n := &JobNode{graph: g, spec: spec}
	switch {
	case key == "":
		errs = append(errs, fmt.Errorf("%w: a job of a graph needs a key", ErrInvalid))
	case g.byKey[key] != nil:
		errs = append(errs, fmt.Errorf("%w: job key %q is used twice", ErrInvalid, key))
	default:
		g.byKey[key] = n
	}
	g.errs = append(g.errs, errs...)
	g.nodes = append(g.nodes, n)
	return n
}

// newSpec builds a job spec and returns what is wrong with it (a missing type, a bad option).
func newSpec(key, jobType string, opts []JobOption) (*pb.JobSpec, []error) {
	spec := &pb.JobSpec{Key: key, JobType: jobType}
	var errs []error
	if jobType == "" {
		errs = append(errs, fmt.Errorf("%w: job %q needs a job type", ErrInvalid, key))
	}
	for _, opt := range opts {
		if err := opt(spec); err != nil {
			errs = append(errs, err)
		}
	}
	return spec, errs
}

// Then adds a job that runs after n succeeded and returns the new job:
// run.Job("fetch", "t.fetch").Then("parse", "t.parse").Then("index", "t.index").
func (n *JobNode) Then(key, jobType string, opts ...JobOption) *JobNode {
	return n.graph.Job(key, jobType, opts...).After(n)
}

// After makes n wait for every parent to succeed (fan-in) and returns n. Parents must be
// nodes of the same graph.
func (n *JobNode) After(parents ...*JobNode) *JobNode {
	for _, parent := range parents {
		if parent == nil || parent.graph != n.graph {
			n.graph.errs = append(n.graph.errs, fmt.Errorf("%w: a parent of job %q is not a job of the same graph", ErrInvalid, n.Key()))
			continue
		}
		if !slices.Contains(n.parents, parent) {
			n.parents = append(n.parents, parent)
		}
	}
	return n
}

// Key is the job's run-local key.
func (n *JobNode) Key() string { return n.spec.GetKey() }

// Len is the number of jobs in the graph.
func (g *Graph) Len() int { return len(g.nodes) }

// Specs validates the graph (keys, types, options, no cycle) and returns copies of its job
// specs in the order the jobs were added, its parents' keys appended to each depends_on.
func (g *Graph) Specs() ([]*pb.JobSpec, error) {
	if len(g.errs) > 0 {
		return nil, errors.Join(g.errs...)
	}
	if len(g.nodes) == 0 {
		return nil, fmt.Errorf("%w: the graph has no job", ErrInvalid)
	}
	if cycle := g.cycle(); cycle != nil {
		return nil, fmt.Errorf("%w: the jobs form a cycle: %s", ErrInvalid, strings.Join(cycle, " -> "))
	}
	specs := make([]*pb.JobSpec, len(g.nodes))
	for i, n := range g.nodes {
		spec := proto.Clone(n.spec).(*pb.JobSpec) // the graph stays reusable (a schedule's template, a retry)
		for _, parent := range n.parents {
			spec.DependsOn = append(spec.DependsOn, parent.Key())
		}
		specs[i] = spec
	}
	return specs, nil
}

// cycle returns the keys of a dependency cycle (first key repeated at the end), or nil.
func (g *Graph) cycle() []string {
	const (
		unseen = iota
		onPath
		done
	)
	mark := map[*JobNode]int{}
	var path []*JobNode
	var visit func(n *JobNode) []string
	visit = func(n *JobNode) []string {
		mark[n] = onPath
		path = append(path, n)
		for _, parent := range n.parents {
			switch mark[parent] {
			case onPath:
				start := slices.Index(path, parent)
				keys := []string{}
				for _, m := range path[start:] {
					keys = append(keys, m.Key())
				}
				return append(keys, parent.Key())
			case unseen:
				if c := visit(parent); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
		return nil
	}
	for _, n := range g.nodes {
		if mark[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

// Run describes a run to create: its fields and its DAG of jobs (Job, Then, After). Build
// it with NewRun, send it with Producer.CreateRun, or use it as a schedule's template.
type Run struct {
	Graph
	name           string
	project        string
	sourceID       string
	correlationID  string
	idempotencyKey string
	labels         map[string]string
}

// NewRun starts the description of a run named name.
func NewRun(name string) *Run { return &Run{name: name} }

// Project sets the project inside the tenant.
func (r *Run) Project(project string) *Run { r.project = project; return r }

// Source sets the default source of the run's jobs.
func (r *Run) Source(sourceID string) *Run { r.sourceID = sourceID; return r }

// CorrelationID sets the id carried by every job and event of the run (default: generated).
func (r *Run) CorrelationID(id string) *Run { r.correlationID = id; return r }

// IdempotencyKey makes CreateRun idempotent: when a run with this key exists in the
// tenant, it is returned (CreatedRun.Existing) and nothing is created.
func (r *Run) IdempotencyKey(key string) *Run { r.idempotencyKey = key; return r }

// Label sets one label of the run.
func (r *Run) Label(key, value string) *Run {
	if r.labels == nil {
		r.labels = map[string]string{}
	}
	r.labels[key] = value
	return r
}

// Request validates the run and returns the CreateRun request it describes.
func (r *Run) Request() (*pb.CreateRunRequest, error) {
	specs, err := r.Specs()
	if err != nil {
		return nil, err
	}
	return &pb.CreateRunRequest{
		Project: r.project, Name: r.name, SourceId: r.sourceID, CorrelationId: r.correlationID,
		IdempotencyKey: r.idempotencyKey, Labels: maps.Clone(r.labels), Jobs: specs,
	}, nil
}

// Template validates the run and returns it as a schedule's run template (its name may
// hold "{fire_time}"; source and idempotency key are not part of a template).
func (r *Run) Template() (*pb.RunTemplate, error) {
	specs, err := r.Specs()
	if err != nil {
		return nil, err
	}
	return &pb.RunTemplate{Name: r.name, Jobs: specs, Project: r.project, Labels: maps.Clone(r.labels)}, nil
}

// Batch describes jobs to submit together (Producer.SubmitJobs), standalone or into an
// existing run; its jobs may depend on each other (Then, After) and, in a run, on the run's
// jobs by key (AfterKeys).
type Batch struct {
	Graph
	runID string
}

// NewBatch starts an empty batch of standalone jobs.
func NewBatch() *Batch { return &Batch{} }

// InRun adds the batch's jobs to an existing run.
func (b *Batch) InRun(runID string) *Batch { b.runID = runID; return b }

// AfterKeys makes a job of a batch wait for jobs already in the target run, by key.
func AfterKeys(keys ...string) JobOption {
	return func(s *pb.JobSpec) error { s.DependsOn = append(s.DependsOn, keys...); return nil }
}
