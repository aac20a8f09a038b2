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
// stream reconnects after a capped, fully jittered backoff (stellarpc/backoff.go); refusals that
// retrying cannot fix end Run with an *RPCError. Results carry the sha256 of their
// canonical JSON (RFC 8785, digest.go), the same bytes the server and the Python/Rust SDKs
// compute (tests/vectors). Logs never include tokens or payloads.
//
// # Metrics
//
// Off by default. WithMetricsAddr(":9464") or STELLA_METRICS_PORT=9464 (bound on
// STELLA_METRICS_ADDR, default 0.0.0.0) serves Prometheus text on /metrics while Run runs
// (metrics.go): jobs started/succeeded/failed/canceled, handler duration, handlers in
// flight, labelled sdk="go" and job_type, the same names as the Python and Rust SDKs
// (docs/metrics.md, "Worker SDKs").
//
// # Several leases replicas
//
// The target may name several replicas: a comma list ("10.0.0.1:50052,10.0.0.2:50052", also
// "ipv4:…"), resolved by a resolver registered on the worker's own connection, or a gRPC
// name that resolves to many addresses ("dns:///orchestrator-leases-headless:50052", a
// Kubernetes headless Service). The connection uses gRPC's round_robin policy: each Work
// stream (a reconnect, or a stream the server drained after ORCH_WORK_STREAM_MAX_AGE_S)
// goes to the next replica that is up, so a killed replica is skipped and new ones are
// picked up. Against `make up REPLICAS=2`:
//
//	w, err := worker.New("127.0.0.1:50052,127.0.0.1:50062", worker.WithToken(token))
//
// # Shared with the producer client
//
// The target forms, the connection options (token, tenant, TLS, dial options), the typed
// errors (*RPCError and the ErrPermission/ErrInvalid/ErrLeaseLost sentinels) and the
// reconnect Backoff are package stellarpc's; this package re-exports them, and package
// producer (submitting and managing work) does the same, so both return one error type.
//
// # TLS
//
// WithTLSCAFile("ca.pem") connects over TLS trusting only that CA (the same option as the
// Python SDK's tls_ca_file and the Rust SDK's tls_ca_file); WithTransportCredentials takes
// any other credentials (system roots, a client certificate).
package worker
