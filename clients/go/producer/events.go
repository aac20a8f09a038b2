package producer

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
	"github.com/stella-ops/orchestrator/clients/go/stellarpc"
)

// Positions for WatchEvents' afterSeq besides a seq the caller kept.
const (
	FromOldest int64 = 0  // the oldest retained event
	FromNow    int64 = -1 // only events committed after the watch starts
)

// EventFilter selects the events of a watch; empty fields match everything.
type EventFilter struct {
	RunID    string // only events of this run
	SourceID string // only events of this source
	JobID    string // only events of this job
	// Types are event types; an entry ending in "." (e.g. "job.") matches a prefix.
	Types []string
}

// WatchEvents yields the tenant's events with seq greater than afterSeq (FromOldest,
// FromNow, or the seq of the last event a previous watch yielded), first the history and
// then live, in seq order, each once. When the stream breaks it reconnects by itself after
// a capped, jittered backoff (stellarpc.Backoff) and resumes after the last seq it yielded,
// so no event is lost or repeated (a watch FromNow that has yielded nothing resumes after
// the head seq the server last reported, or from now again if it reported none). It ends when the loop stops, when ctx ends (yielding
// ctx's error), or when the server refuses the watch (an *RPCError that retrying cannot
// fix, e.g. ErrPermission, yielded once).
//
//	for ev, err := range p.WatchEvents(ctx, lastSeq, producer.EventFilter{RunID: id}) {
//		if err != nil { return err }
//		lastSeq = ev.GetSeq() // keep it to resume later
//	}
func (p *Producer) WatchEvents(ctx context.Context, afterSeq int64, filter EventFilter) iter.Seq2[*pb.Event, error] {
	return func(yield func(*pb.Event, error) bool) {
		bo := stellarpc.NewBackoff(p.rand)
		last := afterSeq
		for {
			received, err := p.watchOnce(ctx, &last, filter, yield)
			if err == nil { // the loop stopped
				return
			}
			if ctx.Err() != nil {
				yield(nil, context.Cause(ctx))
				return
			}
			rpcErr := stellarpc.FromError(err)
			if !rpcErr.Retryable() || errors.Is(rpcErr, ErrNotFound) {
				yield(nil, rpcErr)
				return
			}
			if received {
				bo.Reset()
			}
			select {
			case <-ctx.Done():
				yield(nil, context.Cause(ctx))
				return
			case <-time.After(bo.Next()):
			}
		}
	}
}

// watchOnce runs one StreamEvents call from *last, advancing it with every event yielded.
// It returns nil when the loop stopped, else the stream's error (io.EOF when the server
// ended it) and whether anything arrived.
func (p *Producer) watchOnce(ctx context.Context, last *int64, f EventFilter, yield func(*pb.Event, error) bool) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.events.StreamEvents(ctx, &pb.StreamEventsRequest{
		AfterSeq: *last, RunId: f.RunID, SourceId: f.SourceID, JobId: f.JobID, Types: f.Types,
	})
	if err != nil {
		return false, err
	}
	received := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = &RPCError{Code: codes.Unavailable, Message: "the server ended the event stream"}
			}
			return received, err
		}
		received = true
		for _, ev := range msg.GetEvents() {
			if ev.GetSeq() <= *last && *last >= 0 {
				continue // already yielded (a replay overlapping a resume)
			}
			*last = ev.GetSeq()
			if !yield(ev, nil) {
				return true, nil
			}
		}
		if *last < 0 && msg.GetHeadSeq() > 0 {
			// Started at the head: resume from the head the server saw, not from "now" again.
			*last = msg.GetHeadSeq()
		}
	}
}
