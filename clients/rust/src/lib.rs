//! Worker SDK for Stella Orchestrator: run async job handlers against the leases service
//! over the batched, bidirectional `LeaseService.Work` stream.
//!
//! ```no_run
//! use stella_orchestrator_worker::{ArtifactRecord, JobContext, JobError, Worker};
//! use serde_json::json;
//!
//! # async fn demo() -> Result<(), stella_orchestrator_worker::Error> {
//! let worker = Worker::builder("127.0.0.1:50052")
//!     .token(std::env::var("STELLA_TOKEN").unwrap_or_default())
//!     .concurrency(20)
//!     .handler("advisory.ingest", |ctx: JobContext| async move {
//!         ctx.progress(10.0, "fetching")?;
//!         let body = b"{\"id\":\"CVE-2024-0001\"}\n".to_vec(); // fetch it; on HTTP 429:
//!         if body.is_empty() {
//!             return Err(JobError::upstream_throttled("nvd throttled", None).into());
//!         }
//!         ctx.artifact(ArtifactRecord::of("advisories.ndjson", &body).media_type("application/x-ndjson"))?;
//!         Ok(json!({"count": 1}))
//!     })
//!     .build()?;
//! worker.run_with_signals().await // SIGTERM drains gracefully
//! # }
//! ```
//!
//! # Design note
//!
//! It mirrors the Python SDK (`clients/python/stella_orchestrator/worker`) behaviour for
//! behaviour. One [`Worker`] holds one Work stream at a time; a session task owns all its
//! state (`session.rs`). The server pushes assignments up to the capacity sent in Hello;
//! each handler runs in its own task with a [`JobContext`]. Its `heartbeat`/`progress`/
//! `artifact` calls only record values; the session heartbeats every held lease at the
//! interval the Welcome gave (derived from the lease TTL) and carries the latest progress
//! along. A `lease_lost` acknowledgement, a lease that ran out without an acknowledged
//! heartbeat, a CancelJobs message or a broken stream aborts the handler's task and drops
//! its result ([`JobContext::cancelled`] tells spawned work). Reports leave through one
//! outbox as `WorkerBatch` messages. A broken stream reconnects after a capped, fully
//! jittered backoff; refusals that retrying cannot fix end `run()` with an error. Results
//! carry the sha256 of their canonical JSON (RFC 8785), the same bytes the server and the
//! Python/Go SDKs compute (`tests/vectors`). Logs go through the `log` facade and never
//! include tokens or payloads.
//!
//! # Metrics
//!
//! Metrics are off by default: `WorkerBuilder::metrics_addr("0.0.0.0:9464")` or
//! `STELLA_METRICS_PORT=9464` (bound on `STELLA_METRICS_ADDR`, default `0.0.0.0`) serves
//! Prometheus text on `/metrics` while `run` runs: jobs started/succeeded/failed/canceled,
//! handler duration, handlers in flight, labelled `sdk="rust"` and `job_type`, the same names
//! as the Python and Go SDKs (docs/metrics.md, "Worker SDKs").
//!
//! # Several leases replicas
//!
//! The target may name several replicas: a comma list (`10.0.0.1:50052,10.0.0.2:50052`,
//! also `ipv4:…`), or `dns:///name:port` (every address of the name, looked up again before
//! each stream: a Kubernetes headless Service). tonic has no gRPC load-balancing policies,
//! so the worker rotates its Work streams round-robin over the addresses itself, one
//! channel per address: each stream (a reconnect, or a stream the server drained after
//! `ORCH_WORK_STREAM_MAX_AGE_S`) goes to the next address, and an attempt on a replica that
//! is down fails at once and moves on. Against `make up REPLICAS=2`:
//! `Worker::builder("127.0.0.1:50052,127.0.0.1:50062")`.
//!
//! # TLS
//!
//! `.tls_ca_file("ca.pem")` dials every address over TLS (rustls) and trusts only that CA
//! (the same option as the Python SDK's `tls_ca_file` and Go's `WithTLSCAFile`); an
//! `https://host:port` target without it is checked against the system's roots.

#![warn(missing_docs)]

/// Generated protobuf messages and the tonic `LeaseServiceClient` (package
/// `stella.orchestrator.v1`; regenerate with `make sdk-gen`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!("gen/stella.orchestrator.v1.rs");
}

mod backoff;
mod digest;
mod errors;
mod job;
mod metrics;
mod outbox;
mod session;
mod target;
pub mod tracing;
mod worker;

pub use backoff::{
    Backoff, RECONNECT_CAP_S, RECONNECT_INITIAL_S, RECONNECT_MULTIPLIER, SplitMix64,
};
pub use digest::{MAX_JSON_DEPTH, bytes_digest, canonical_json, json_digest};
pub use errors::{
    BoxError, ERROR_CLASSES, Error, ErrorKind, JobError, LEASE_LOST_REASONS,
    MAX_ERROR_MESSAGE_CHARS, RpcError, classify, error_class_enum, error_class_label, status_kind,
};
pub use job::{
    ArtifactRecord, CancelReason, Job, JobContext, MAX_PROGRESS_MESSAGE_CHARS, from_struct,
    to_struct,
};
pub use session::{DEFAULT_LEASE_TTL, HEARTBEAT_FRACTION_OF_TTL};
pub use worker::{
    HandlerResult, MAX_MESSAGE_BYTES, SDK_NAME, SDK_VERSION, Stats, TENANT_HEADER, Worker,
    WorkerBuilder,
};
