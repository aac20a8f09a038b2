// Package worker is the Go worker SDK of Stella Orchestrator: it runs job handlers against
// the leases service over the batched, bidirectional LeaseService.Work stream.
//
//	w, err := worker.New("127.0.0.1:50052", worker.WithToken(token), worker.WithConcurrency(20))
//	w.Handle("advisory.ingest", func(ctx context.Context, job *worker.Job) (map[string]any, error) {
//		_ = job.Progress(10, "fetching")
//		body, err := fetch(ctx, job.Payload["url"].(string)) // return worker.UpstreamThrottled(...) on 429
//		if err != nil {
//			return nil, err
//		}
//		_, _ = job.Artifact("advisories.ndjson", body, worker.WithMediaType("application/x-ndjson"))
//		return map[string]any{"bytes": len(body)}, nil
//	})
//	err = w.RunWithSignals(context.Background()) // SIGTERM drains gracefully
//
// # Design note
//
// It mirrors the Python SDK (clients/python/stella_orchestrator/worker) behaviour for
// behaviour. One Worker holds one Work stream at a time (session.go). The server pushes
// assignments up to the capacity sent in Hello; each runs in its own goroutine with a
// context the SDK cancels when the lease is lost (a lease_lost ack, or no acknowledged
// heartbeat within the lease TTL), when the server sends CancelJobs, or when the stream
// breaks; the handler's result is then dropped. Job.Heartbeat/Progress/Artifact only record
// values; a ticker heartbeats every held lease at the interval the Welcome gave (derived
// from the lease TTL) and carries the latest progress along. All reports leave through one
// outbox (outbox.go) written by a single sender goroutine as WorkerBatch messages. A broken
// stream reconnects after a capped, fully jittered backoff (backoff.go); refusals that
// retrying cannot fix end Run with an *RPCError. Results carry the sha256 of their
// canonical JSON (RFC 8785, digest.go), the same bytes the server and the Python/Rust SDKs
// compute (tests/vectors). Logs never include tokens or payloads.
package worker
