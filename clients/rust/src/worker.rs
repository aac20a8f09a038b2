//! [`Worker`]: handler registry, the reconnect loop and the process entry point.
//!
//! `run()` runs one [`Session`](crate::session) (one Work stream) after another. A stream
//! that fails is retried after a capped, fully jittered exponential backoff (0.1 s doubling
//! to 10 s), reset once a stream got its Welcome; statuses that retrying cannot fix
//! (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT) end `run()` at once.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::watch;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig};

use crate::backoff::{Backoff, SplitMix64};
use crate::errors::{BoxError, Error};
use crate::job::JobContext;
use crate::metrics::{self, WorkerMetrics};
use crate::proto::lease_service_client::LeaseServiceClient;
use crate::session::{Outcome, Session};
use crate::target::Targets;

/// SDK name sent in WorkerHello.
pub const SDK_NAME: &str = "rust";
/// SDK version sent in WorkerHello.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Header naming the tenant to act for when the token names several.
pub const TENANT_HEADER: &str = "x-stella-tenant";
/// Largest gRPC message either way.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// What a handler returns: a JSON object (the job's result), `Value::Null` for none, or an
/// error ([`JobError`](crate::JobError) chooses the failure class).
pub type HandlerResult = Result<Value, BoxError>;
pub(crate) type HandlerFn =
    Arc<dyn Fn(JobContext) -> Pin<Box<dyn Future<Output = HandlerResult> + Send>> + Send + Sync>;

/// Counters since the worker was created (a cheap hook for metrics).
#[derive(Debug, Default)]
pub struct Stats {
    /// Jobs assigned.
    pub assigned: AtomicU64,
    /// Completions reported.
    pub completed: AtomicU64,
    /// Failures reported.
    pub failed: AtomicU64,
    /// Jobs the SDK canceled.
    pub canceled: AtomicU64,
    /// Streams opened.
    pub connects: AtomicU64,
    /// Streams that failed.
    pub stream_failures: AtomicU64,
}

impl Stats {
    pub(crate) fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Drain/stop requests, watched by the running session.
#[derive(Debug, Clone, Default)]
pub(crate) struct Control {
    pub drain: Option<String>,
    pub stop: bool,
}

pub(crate) struct Inner {
    pub target: String,
    targets: Targets,
    token: Arc<dyn Fn() -> String + Send + Sync>,
    tenant: Option<String>,
    pub concurrency: usize,
    pub worker_id: String,
    job_types: Option<Vec<String>>,
    pub labels: HashMap<String, String>,
    pub max_batch_delay: Duration,
    pub drain_timeout: Duration,
    max_reconnect_attempts: Option<u32>,
    seed: u64,
    pub handlers: HashMap<String, HandlerFn>,
    control: watch::Sender<Control>,
    pub stats: Stats,
    pub(crate) metrics: WorkerMetrics,
}

impl Inner {
    pub fn job_types(&self) -> Vec<String> {
        self.job_types.clone().unwrap_or_else(|| {
            let mut types: Vec<String> = self.handlers.keys().cloned().collect();
            types.sort();
            types
        })
    }

    pub fn add_metadata(&self, metadata: &mut MetadataMap) {
        if let Ok(v) = MetadataValue::try_from(format!("Bearer {}", (self.token)())) {
            metadata.insert("authorization", v);
        }
        if let Some(tenant) = self
            .tenant
            .as_deref()
            .and_then(|t| MetadataValue::try_from(t).ok())
        {
            metadata.insert(TENANT_HEADER, tenant);
        }
    }
}

/// A worker process's connection to the leases service. Build one with
/// [`Worker::builder`], then `run().await`. It opens a `LeaseService.Work` stream, runs
/// assignments as tasks (never more than the concurrency at once), reports results in
/// batches, heartbeats leases on its own at the interval derived from the lease TTL, and
/// reconnects when the stream breaks. Cloning gives another handle to the same worker
/// (e.g. to call [`Worker::drain`] from another task).
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

/// Builds a [`Worker`].
pub struct WorkerBuilder {
    target: String,
    token: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    tenant: Option<String>,
    concurrency: usize,
    worker_id: Option<String>,
    job_types: Option<Vec<String>>,
    labels: HashMap<String, String>,
    max_batch_delay: Duration,
    drain_timeout: Duration,
    max_reconnect_attempts: Option<u32>,
    seed: Option<u64>,
    tls_ca_file: Option<PathBuf>,
    handlers: HashMap<String, HandlerFn>,
    metrics_addr: Option<String>,
    error: Option<Error>,
}

impl WorkerBuilder {
    /// Bearer token with scope `orch:work`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = Some(Arc::new(move || token.clone()));
        self
    }

    /// A function returning the token, called at every connect (a rotating token works).
    pub fn token_fn(mut self, f: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.token = Some(Arc::new(f));
        self
    }

    /// Tenant to act for (`x-stella-tenant`) when the token names several.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Most handlers running at once; also the capacity sent in Hello (default 10).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Id shown in leases (default hostname-pid-random).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Job types to ask for (default: those with a handler).
    pub fn job_types(mut self, types: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.job_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// A free-form label sent in Hello (region, pool...).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// How long a report waits for others to share its message (default 2 ms).
    pub fn max_batch_delay(mut self, d: Duration) -> Self {
        self.max_batch_delay = d;
        self
    }

    /// How long a drain lets handlers finish before it cancels them (default 30 s).
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }

    /// Consecutive failed connects before `run()` returns the last error (default: forever).
    pub fn max_reconnect_attempts(mut self, n: u32) -> Self {
        self.max_reconnect_attempts = Some(n);
        self
    }

    /// Seed of the reconnect jitter (SplitMix64), for tests.
    pub fn backoff_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Connect over TLS, trusting only the CA in this PEM file (the CA that signed the
    /// server's certificate; the same option as the Python SDK's `tls_ca_file` and the Go
    /// SDK's `WithTLSCAFile`). Without it `host:port` targets are plaintext.
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_ca_file = Some(path.into());
        self
    }

    /// Register the async handler of a job type (one per type).
    pub fn handler<F, Fut>(mut self, job_type: impl Into<String>, f: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let job_type = job_type.into();
        if job_type.is_empty() || self.handlers.contains_key(&job_type) {
            self.error = Some(Error::Invalid(format!(
                "empty or repeated job type {job_type:?}"
            )));
            return self;
        }
        self.handlers
            .insert(job_type, Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// Serve Prometheus metrics on `addr` (`host:port`; port 0 picks a free one) while
    /// `run` runs. Without it, `STELLA_METRICS_PORT` (and `STELLA_METRICS_ADDR`) decide; with
    /// neither the worker exports nothing (docs/metrics.md, "Worker SDKs").
    pub fn metrics_addr(mut self, addr: impl Into<String>) -> Self {
        self.metrics_addr = Some(addr.into());
        self
    }

    /// Build the worker.
    ///
    /// # Errors
    /// [`Error::Invalid`]: no token, no handler, concurrency 0, a job type without a
    /// handler, a repeated handler, a target that is not `host:port`, a URL, a comma
    /// list of them or `dns:///name:port`, or an unreadable `tls_ca_file`.
    pub fn build(self) -> Result<Worker, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let token = self
            .token
            .ok_or_else(|| Error::Invalid("a token is required".into()))?;
        if self.concurrency == 0 {
            return Err(Error::Invalid("concurrency must be >= 1".into()));
        }
        if self.handlers.is_empty() {
            return Err(Error::Invalid("register at least one handler".into()));
        }
        if let Some(t) = self
            .job_types
            .iter()
            .flatten()
            .find(|t| !self.handlers.contains_key(*t))
        {
            return Err(Error::Invalid(format!("job type {t:?} has no handler")));
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = self.seed.unwrap_or(nanos ^ u64::from(std::process::id()));
        let worker_id = self.worker_id.unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
            let tag = SplitMix64::new(seed).next_u64() & 0xff_ffff;
            format!("{host}-{}-{tag:06x}", std::process::id())
        });
        let tls = match &self.tls_ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| Error::Invalid(format!("TLS CA file {}: {e}", path.display())))?;
                Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            }
            None => None,
        };
        let targets = Targets::parse(&self.target, tls)?;
        let metrics_addr = match self.metrics_addr {
            Some(addr) => Some(addr),
            None => metrics::addr_from_env()?,
        };
        Ok(Worker {
            inner: Arc::new(Inner {
                target: self.target,
                targets,
                token,
                tenant: self.tenant,
                concurrency: self.concurrency,
                worker_id,
                job_types: self.job_types,
                labels: self.labels,
                max_batch_delay: self.max_batch_delay,
                drain_timeout: self.drain_timeout,
                max_reconnect_attempts: self.max_reconnect_attempts,
                seed,
                handlers: self.handlers,
                control: watch::Sender::new(Control::default()),
                stats: Stats::default(),
                metrics: WorkerMetrics::new(metrics_addr),
            }),
        })
    }
}

impl Worker {
    /// Start building a worker for the leases service at `target`: `host:port`, a URL, a
    /// comma list of replicas (`10.0.0.1:50052,10.0.0.2:50052`) or `dns:///name:port` (every
    /// address of the name, looked up before each stream). Each Work stream (a reconnect, a
    /// stream the server drained) goes to the next address, round-robin.
    pub fn builder(target: impl Into<String>) -> WorkerBuilder {
        WorkerBuilder {
            target: target.into(),
            token: None,
            tenant: None,
            concurrency: 10,
            worker_id: None,
            job_types: None,
            labels: HashMap::new(),
            max_batch_delay: Duration::from_millis(2),
            drain_timeout: Duration::from_secs(30),
            max_reconnect_attempts: None,
            seed: None,
            tls_ca_file: None,
            handlers: HashMap::new(),
            metrics_addr: None,
            error: None,
        }
    }

    /// The id sent in Hello.
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// Counters since the worker was created.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Where the metrics endpoint listens while `run` runs (None when off or not running).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.metrics.bound()
    }

    /// Start a graceful drain without waiting for it: the server stops assigning, running
    /// handlers finish (up to the drain timeout), their results are flushed and
    /// acknowledged, the stream closes and `run()` returns `Ok(())`.
    pub fn drain(&self, reason: &str) {
        self.inner.control.send_modify(|c| {
            c.drain.get_or_insert_with(|| reason.to_string());
        });
    }

    /// Stop at once: abort running handlers (the server re-leases their jobs), close the
    /// stream; `run()` then returns `Ok(())`.
    pub fn stop(&self) {
        self.inner.control.send_modify(|c| c.stop = true);
    }

    /// Serve jobs until a drain completes or [`Worker::stop`].
    ///
    /// # Errors
    /// [`Error::Rpc`] when the server refused the worker (kind Permission or Invalid) or
    /// `max_reconnect_attempts` ran out.
    pub async fn run(&self) -> Result<(), Error> {
        let w = &self.inner;
        let _metrics = w.metrics.serve().await?;
        let mut control = w.control.subscribe();
        let mut backoff = Backoff::new(SplitMix64::new(w.seed));
        let mut failures = 0u32;
        loop {
            {
                // (A drain requested while disconnected has nothing in flight to finish.)
                let c = control.borrow_and_update();
                if c.stop || c.drain.is_some() {
                    return Ok(());
                }
            }
            w.stats.bump(&w.stats.connects);
            let (mut session, done_rx, art_rx) = Session::new(Arc::clone(w));
            let result = match w.targets.next_channel().await {
                Ok((address, channel)) => {
                    log::debug!("opening a Work stream to {address}");
                    let mut client = LeaseServiceClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES);
                    session
                        .run(&mut client, control.clone(), done_rx, art_rx)
                        .await
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(Outcome::Drained | Outcome::Stopped) => return Ok(()),
                Ok(Outcome::ServerDrained) => failures = 0,
                Err(error) => {
                    if !error.retryable() {
                        log::error!("the server refused the worker: {error:?}");
                        return Err(error.into());
                    }
                    w.stats.bump(&w.stats.stream_failures);
                    failures = if session.welcomed { 0 } else { failures + 1 };
                    if w.max_reconnect_attempts.is_some_and(|max| failures >= max) {
                        return Err(error.into());
                    }
                    log::warn!("Work stream failed: {} {}", error.code, error.message);
                }
            }
            if session.welcomed {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = control.changed() => {}
            }
        }
    }

    /// [`Worker::run`] for a process: the first SIGTERM/SIGINT drains gracefully, a second
    /// one stops at once. Tracing is set up from the `OTEL_*` variables (off unless they ask
    /// for it; [`crate::tracing`]) and flushed before it returns.
    ///
    /// # Errors
    /// As [`Worker::run`].
    pub async fn run_with_signals(&self) -> Result<(), Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| Error::Transport(e.to_string()))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| Error::Transport(e.to_string()))?;
        let me = self.clone();
        let watcher = tokio::spawn(async move {
            let mut seen = 0;
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                seen += 1;
                if seen == 1 {
                    log::info!("signal: draining (send it again to stop at once)");
                    me.drain("signal");
                } else {
                    log::warn!("signal again: stopping");
                    me.stop();
                    return;
                }
            }
        });
        let tracing = crate::tracing::init_from_env(crate::tracing::DEFAULT_SERVICE_NAME);
        let result = self.run().await;
        watcher.abort();
        if let Some(tracing) = tracing {
            tracing.shutdown().await;
        }
        result
    }
}
