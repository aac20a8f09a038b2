// Package producer is the Go client for submitting and managing work in Stella
// Orchestrator: sources, runs with a DAG of jobs, job submission with idempotency keys,
// waiting for a job or a run, watching events (resumable from a seq), dead letters,
// quotas, schedules and backfills. It talks to the scheduler service (SchedulerService and
// EventStreamService on one port, 50051 in `make up`); workers use package worker.
//
//	p, err := producer.New("127.0.0.1:50051", producer.WithToken(token)) // scope orch:operate
//	defer p.Close()
//	run := producer.NewRun("nvd nightly").IdempotencyKey("nvd-2026-12-04")
//	fetch := run.Job("fetch", "nvd.fetch", producer.Payload(map[string]any{"page": 1}))
//	parse := fetch.Then("parse", "nvd.parse")
//	run.Job("index", "nvd.index").After(parse)
//	created, err := p.CreateRun(ctx, run) // created.Existing on a repeated key
//	done, err := p.WaitRun(ctx, created.Run.GetId())
//	for ev, err := range p.WatchEvents(ctx, producer.FromOldest, producer.EventFilter{RunID: created.Run.GetId()}) {
//		...
//	}
//
// A runnable program is in examples/producer.
//
// # Design note
//
// The client is a thin typed layer over the generated stubs (package orchestratorv1 in
// gen/): requests and answers are the generated messages, so every field the API has is
// there, and what this package adds is what the stubs lack. The connection (target forms,
// token, tenant, TLS, keepalive) comes from package stellarpc, shared with the worker SDK,
// as do the errors: every method returns an *RPCError (the same type as worker.RPCError)
// with the google.rpc details of the status unpacked (reason, field violations,
// precondition violations, resource, retry delay), matched by errors.Is against
// ErrNotFound, ErrInvalid, ErrFailedPrecondition, ErrResourceExhausted, ... Run and Batch
// (dag.go) build a DAG by key (Job, Then, After) and check it before sending: duplicate
// keys, missing types and cycles fail with ErrInvalid and a message that names the jobs.
// List calls are iterators (iter.Seq2) that fetch page after page as the loop goes on.
// WaitRun and WaitJob poll (immediately, then every 200 ms growing by half to 2 s) and look
// past UNAVAILABLE, so a restarting scheduler does not end a wait. WatchEvents (events.go)
// is a StreamEvents call that reconnects by itself with the SDKs' capped, jittered backoff
// and resumes after the last seq it yielded: events come in seq order, each once. The
// names follow the Python producer client (Producer.create_run, submit_jobs, wait_run,
// watch_events, dead_letters, ...).
package producer
