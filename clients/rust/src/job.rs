//! What a handler sees: [`Job`] (a view of an Assignment) and [`JobContext`], the handle
//! for the job-bound calls `heartbeat`, `progress` and `artifact`. The calls only record
//! values; the session sends them (heartbeats at the interval the server gave, progress at
//! most every second), so calling them in a tight loop is cheap.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Map, Number, Value};
use tokio::sync::{mpsc, watch};

use crate::digest::bytes_digest;
use crate::errors::Error;
use crate::proto;

/// Progress messages are cut to this many characters.
pub const MAX_PROGRESS_MESSAGE_CHARS: usize = 256;
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0; // 2^53

/// One leased job as its handler sees it.
#[derive(Clone)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// Run of the job; "" for a standalone job.
    pub run_id: String,
    /// Tenant the job belongs to.
    pub tenant: String,
    /// Project inside the tenant, or "".
    pub project: String,
    /// Job type that selected the handler.
    pub job_type: String,
    /// Run-local name of the job, or "".
    pub key: String,
    /// Attempt number of this lease, from 1.
    pub attempt: i32,
    /// Attempts the retry policy allows.
    pub max_attempts: i32,
    /// Pass it to upstream side effects so retries do not repeat them.
    pub idempotency_key: String,
    /// Put it in logs.
    pub correlation_id: String,
    /// Input of the job (integral numbers within 2^53 read as integers).
    pub payload: Map<String, Value>,
    /// `sha256:` digest of the canonical JSON of the payload.
    pub payload_digest: String,
    /// Fencing token of this lease (the SDK presents it in every report).
    pub lease_id: String,
    /// When the lease expires unless heartbeats extend it.
    pub lease_expires_at: Option<SystemTime>,
    /// W3C traceparent to join the job's trace.
    pub trace_parent: String,
    /// W3C tracestate.
    pub trace_state: String,
    /// Event-time window `(start, end)`, if any.
    pub event_time_window: Option<(SystemTime, SystemTime)>,
    /// Source the job works on, or "".
    pub source_id: String,
}

// Payloads never reach logs through Debug.
impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("job_type", &self.job_type)
            .field("key", &self.key)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

fn time(ts: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    ts.and_then(|t| SystemTime::try_from(*t).ok())
}

impl Job {
    pub(crate) fn from_assignment(a: &proto::Assignment) -> Self {
        let window = a
            .event_time_window
            .as_ref()
            .and_then(|w| Some((time(w.start.as_ref())?, time(w.end.as_ref())?)));
        Self {
            id: a.job_id.clone(),
            run_id: a.run_id.clone(),
            tenant: a.tenant.clone(),
            project: a.project.clone(),
            job_type: a.job_type.clone(),
            key: a.key.clone(),
            attempt: a.attempt,
            max_attempts: a.max_attempts,
            idempotency_key: a.idempotency_key.clone(),
            correlation_id: a.correlation_id.clone(),
            payload: a.payload.as_ref().map(from_struct).unwrap_or_default(),
            payload_digest: a.payload_digest.clone(),
            lease_id: a.lease_id.clone(),
            lease_expires_at: time(a.lease_expires_at.as_ref()),
            trace_parent: a.trace_parent.clone(),
            trace_state: a.trace_state.clone(),
            event_time_window: window,
            source_id: a.source_id.clone(),
        }
    }
}

/// A `Struct` as a JSON object (integral numbers within 2^53 as integers).
pub fn from_struct(s: &prost_types::Struct) -> Map<String, Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), from_value(v)))
        .collect()
}

fn from_value(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &v.kind {
        Some(Kind::StructValue(s)) => Value::Object(from_struct(s)),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(from_value).collect()),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INT {
                Value::Number(Number::from(*n as i64))
            } else {
                Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NullValue(_)) | None => Value::Null,
    }
}

/// A JSON object as a `Struct` (every number becomes a double, as on the wire).
pub fn to_struct(m: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: m
            .iter()
            .map(|(k, v)| (k.clone(), to_value(v)))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn to_value(v: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        Value::Object(m) => Kind::StructValue(to_struct(m)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// An artifact a job produced, as reported to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRecord {
    /// Name, unique within the job.
    pub name: String,
    /// `"sha256:<64 lowercase hex>"` of the bytes.
    pub digest: String,
    /// Size of the content in bytes.
    pub size_bytes: i64,
    /// IANA media type.
    pub media_type: String,
    /// Where the bytes are stored ("" if the worker keeps none).
    pub uri: String,
}

impl ArtifactRecord {
    /// A record of `data` (hashed and measured here) with media type
    /// `application/octet-stream`.
    pub fn of(name: impl Into<String>, data: &[u8]) -> Self {
        Self {
            name: name.into(),
            digest: bytes_digest(data),
            size_bytes: data.len() as i64,
            media_type: "application/octet-stream".to_string(),
            uri: String::new(),
        }
    }

    /// Set the media type.
    pub fn media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = media_type.into();
        self
    }

    /// Set where the bytes are stored.
    pub fn uri(mut self, uri: impl Into<String>) -> Self {
        self.uri = uri.into();
        self
    }

    fn validate(&self) -> Result<(), Error> {
        if self.name.is_empty() {
            return Err(Error::Invalid("artifact name must not be empty".into()));
        }
        let hex_ok = self.digest.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if !hex_ok {
            return Err(Error::Invalid(format!(
                "digest must be 'sha256:' and 64 lowercase hex digits, got {:?}",
                self.digest
            )));
        }
        if self.size_bytes < 0 {
            return Err(Error::Invalid(format!(
                "size must be >= 0, got {}",
                self.size_bytes
            )));
        }
        Ok(())
    }

    pub(crate) fn to_proto(&self, job_id: &str, lease_id: &str) -> proto::ArtifactRecord {
        proto::ArtifactRecord {
            job_id: job_id.to_string(),
            lease_id: lease_id.to_string(),
            name: self.name.clone(),
            media_type: self.media_type.clone(),
            size_bytes: self.size_bytes,
            digest: self.digest.clone(),
            uri: self.uri.clone(),
        }
    }
}

/// Why the SDK stopped a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The lease is gone (acknowledged as lost, or ran out without an acknowledged heartbeat).
    LeaseLost,
    /// The server asked the worker to stop the job (CancelJobs).
    Canceled,
    /// The worker drained and the handler outlived the drain timeout.
    DrainTimeout,
    /// The stream closed (the server releases the lease).
    StreamClosed,
}

/// Progress recorded by the handler, read by the session's ticker.
#[derive(Debug, Default)]
pub(crate) struct ProgressState {
    pub percent: f64,
    pub message: String,
    pub dirty: bool,  // changed since the last heartbeat/progress sent
    pub urgent: bool, // set by progress(): send without waiting for a heartbeat
}

/// Sent from a JobContext to its session.
#[derive(Debug)]
pub(crate) struct ArtifactEvent {
    pub seq: u64,
    pub record: proto::ArtifactRecord,
}

/// The handle a handler gets: the job plus its job-bound calls. Cheap to clone and `Send`,
/// so it can move into spawned tasks.
#[derive(Clone)]
pub struct JobContext {
    job: Arc<Job>,
    pub(crate) seq: u64,
    pub(crate) progress: Arc<Mutex<ProgressState>>,
    names: Arc<Mutex<HashSet<String>>>,
    artifacts: mpsc::UnboundedSender<ArtifactEvent>,
    canceled: watch::Receiver<Option<CancelReason>>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

fn check_percent(percent: f64) -> Result<(), Error> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(Error::Invalid(format!(
            "progress must be between 0 and 100, got {percent}"
        )));
    }
    Ok(())
}

impl JobContext {
    pub(crate) fn new(
        job: Job,
        seq: u64,
        artifacts: mpsc::UnboundedSender<ArtifactEvent>,
        canceled: watch::Receiver<Option<CancelReason>>,
    ) -> Self {
        Self {
            job: Arc::new(job),
            seq,
            progress: Arc::default(),
            names: Arc::default(),
            artifacts,
            canceled,
        }
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Record that the job is alive with progress; coalesced, it rides on the next
    /// heartbeat the SDK sends on its own.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a percent outside 0-100.
    pub fn heartbeat(&self, percent: f64, message: &str) -> Result<(), Error> {
        check_percent(percent)?;
        self.record(percent, message, false);
        Ok(())
    }

    /// Report progress; it reaches the server within about a second. Coalesced.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a percent outside 0-100.
    pub fn progress(&self, percent: f64, message: &str) -> Result<(), Error> {
        check_percent(percent)?;
        self.record(percent, message, true);
        Ok(())
    }

    fn record(&self, percent: f64, message: &str, urgent: bool) {
        let mut p = self.progress.lock().expect("progress lock");
        p.percent = percent;
        p.message = message.chars().take(MAX_PROGRESS_MESSAGE_CHARS).collect();
        p.dirty = true;
        p.urgent |= urgent;
    }

    /// Record an artifact (content-addressed by sha256). The SDK does not upload bytes:
    /// store them yourself and set `uri`. The record goes out with the next batch, or inside
    /// the job's completion if that comes first.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty or repeated name or a malformed digest;
    /// [`Error::LeaseLost`] once the SDK has stopped the job.
    pub fn artifact(&self, record: ArtifactRecord) -> Result<ArtifactRecord, Error> {
        record.validate()?;
        if self.cancel_reason().is_some() {
            return Err(Error::LeaseLost);
        }
        if !self
            .names
            .lock()
            .expect("names lock")
            .insert(record.name.clone())
        {
            return Err(Error::Invalid(format!(
                "artifact {:?} was already recorded for this job",
                record.name
            )));
        }
        let event = ArtifactEvent {
            seq: self.seq,
            record: record.to_proto(&self.job.id, &self.job.lease_id),
        };
        self.artifacts.send(event).map_err(|_| Error::LeaseLost)?;
        Ok(record)
    }

    /// Why the SDK stopped the job, if it did.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        *self.canceled.borrow()
    }

    /// Resolves when the SDK stops the job (lease lost, canceled, drain timeout, stream
    /// closed). The SDK also aborts the handler's task, so this matters only for work the
    /// handler spawned elsewhere.
    pub async fn cancelled(&self) -> CancelReason {
        let mut rx = self.canceled.clone();
        loop {
            if let Some(reason) = *rx.borrow_and_update() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return CancelReason::StreamClosed;
            }
        }
    }
}
