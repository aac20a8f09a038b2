//! The SDK's error types and the one table from error-class labels to the proto enum.
//!
//! [`Error`] is the single root. Handlers fail a job deliberately by returning a
//! [`JobError`] (build one with [`JobError::new`] or the `upstream_*`/`parse_error`/
//! `schema_mismatch` helpers); any other error is classified by [`classify`].

use std::fmt;
use std::time::Duration;

use prost::Message;

use crate::proto::ErrorClass;

/// Failure messages are cut to this many characters before they leave the worker.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 2000;

/// Error-class label (the lower-case enum suffix that metrics, REST and the ledger use) →
/// proto enum.
pub const ERROR_CLASSES: [(&str, ErrorClass); 11] = [
    ("http_429", ErrorClass::Http429),
    ("http_5xx", ErrorClass::Http5xx),
    ("http_4xx", ErrorClass::Http4xx),
    ("timeout", ErrorClass::Timeout),
    ("parse_error", ErrorClass::ParseError),
    ("schema_mismatch", ErrorClass::SchemaMismatch),
    ("lease_expired", ErrorClass::LeaseExpired),
    ("worker_crash", ErrorClass::WorkerCrash),
    ("canceled", ErrorClass::Canceled),
    ("internal", ErrorClass::Internal),
    ("other", ErrorClass::Other),
];

/// Map a label (case-insensitive) to the proto enum.
///
/// # Errors
/// [`Error::Invalid`] for an unknown label.
pub fn error_class_enum(label: &str) -> Result<ErrorClass, Error> {
    let lower = label.to_lowercase();
    ERROR_CLASSES
        .iter()
        .find(|(l, _)| *l == lower)
        .map(|(_, v)| *v)
        .ok_or_else(|| Error::Invalid(format!("unknown error class {label:?}")))
}

/// Map the proto enum to its label; UNSPECIFIED reads "other".
pub fn error_class_label(value: ErrorClass) -> &'static str {
    ERROR_CLASSES
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("other", |(l, _)| *l)
}

/// Ack / ErrorInfo reasons that mean the lease is gone.
pub const LEASE_LOST_REASONS: [&str; 3] = ["already_completed", "lease_lost", "not_found"];

/// How a gRPC status is handled (shared with the Python and Go SDKs:
/// `tests/vectors/errors.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// UNAUTHENTICATED or PERMISSION_DENIED: ends `run()` at once.
    Permission,
    /// INVALID_ARGUMENT: ends `run()` at once.
    Invalid,
    /// The lease is no longer current (concerns one job).
    LeaseLost,
    /// Anything else: reconnect with backoff.
    Transient,
}

impl ErrorKind {
    /// The label used in the shared vectors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permission => "permission",
            Self::Invalid => "invalid",
            Self::LeaseLost => "lease_lost",
            Self::Transient => "transient",
        }
    }
}

/// Classify a status code and its ErrorInfo reason.
pub fn status_kind(code: tonic::Code, reason: &str) -> ErrorKind {
    match code {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => ErrorKind::Permission,
        tonic::Code::InvalidArgument => ErrorKind::Invalid,
        _ if LEASE_LOST_REASONS.contains(&reason) => ErrorKind::LeaseLost,
        _ => ErrorKind::Transient,
    }
}

/// A gRPC call failed with a status the SDK does not retry (or retries ran out).
#[derive(Debug, Clone)]
pub struct RpcError {
    /// The status code.
    pub code: tonic::Code,
    /// The status message.
    pub message: String,
    /// `google.rpc.ErrorInfo.reason` from the status details, or "".
    pub reason: String,
}

impl RpcError {
    /// How the SDK treats this status.
    pub fn kind(&self) -> ErrorKind {
        status_kind(self.code, &self.reason)
    }

    /// Whether a reconnect may help.
    pub fn retryable(&self) -> bool {
        !matches!(self.kind(), ErrorKind::Permission | ErrorKind::Invalid)
    }

    pub(crate) fn unavailable(message: &str) -> Self {
        Self {
            code: tonic::Code::Unavailable,
            message: message.to_string(),
            reason: String::new(),
        }
    }
}

impl From<tonic::Status> for RpcError {
    fn from(status: tonic::Status) -> Self {
        Self {
            code: status.code(),
            message: status.message().to_string(),
            reason: error_info_reason(status.details()),
        }
    }
}

// google.rpc.Status / ErrorInfo, just the fields the SDK reads (the SDK depends on generated
// code and transport libraries only).
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

#[derive(Clone, PartialEq, Message)]
struct ErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
}

fn error_info_reason(details: &[u8]) -> String {
    let Ok(status) = RpcStatus::decode(details) else {
        return String::new();
    };
    status
        .details
        .iter()
        .filter(|any| any.type_url.ends_with("google.rpc.ErrorInfo"))
        .find_map(|any| ErrorInfo::decode(any.value.as_slice()).ok())
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The root error of the SDK.
#[derive(Debug, Clone)]
pub enum Error {
    /// A gRPC status (see [`RpcError::kind`]).
    Rpc(RpcError),
    /// An argument the SDK (or the server) refused.
    Invalid(String),
    /// The job's lease is gone (a job-bound call after the SDK canceled the job).
    LeaseLost,
    /// The channel could not be set up.
    Transport(String),
}

impl Error {
    /// The error kind (Transport reads as Transient).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Rpc(e) => e.kind(),
            Self::Invalid(_) => ErrorKind::Invalid,
            Self::LeaseLost => ErrorKind::LeaseLost,
            Self::Transport(_) => ErrorKind::Transient,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rpc(e) if e.reason.is_empty() => write!(f, "{:?}: {}", e.code, e.message),
            Self::Rpc(e) => write!(f, "{:?}: {} ({})", e.code, e.message, e.reason),
            Self::Invalid(m) => write!(f, "invalid: {m}"),
            Self::LeaseLost => f.write_str("lease lost"),
            Self::Transport(m) => write!(f, "transport: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<RpcError> for Error {
    fn from(e: RpcError) -> Self {
        Self::Rpc(e)
    }
}

/// Fails the current attempt with a chosen class; return it from a handler (`Err(e.into())`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    /// A label of [`ERROR_CLASSES`].
    pub class: String,
    /// Human-readable reason (no secrets: it is stored and shown in the Console).
    pub message: String,
    /// Whether another attempt may succeed; false dead-letters the job.
    pub retryable: bool,
    /// Minimum delay before the next attempt (an upstream Retry-After).
    pub retry_after: Option<Duration>,
    /// Machine-readable detail code, e.g. "nvd.api_key_invalid".
    pub code: String,
}

impl JobError {
    /// A failure of the given class (an unknown label becomes "other").
    pub fn new(class: &str, message: impl Into<String>, retryable: bool) -> Self {
        let class = error_class_enum(class)
            .map_or("other", error_class_label)
            .to_string();
        Self {
            class,
            message: message.into(),
            retryable,
            retry_after: None,
            code: String::new(),
        }
    }

    /// HTTP 429 from the upstream: retryable; `retry_after` also pauses the source's bucket.
    pub fn upstream_throttled(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self {
            retry_after,
            ..Self::new("http_429", message, true)
        }
    }

    /// HTTP 5xx from the upstream: retryable.
    pub fn upstream_unavailable(message: impl Into<String>) -> Self {
        Self::new("http_5xx", message, true)
    }

    /// HTTP 4xx (not 429) from the upstream: not retryable.
    pub fn upstream_rejected(message: impl Into<String>) -> Self {
        Self::new("http_4xx", message, false)
    }

    /// The upstream response could not be parsed: not retryable.
    pub fn parse_error(message: impl Into<String>) -> Self {
        Self::new("parse_error", message, false)
    }

    /// The response parsed but broke the expected schema: not retryable.
    pub fn schema_mismatch(message: impl Into<String>) -> Self {
        Self::new("schema_mismatch", message, false)
    }

    /// Set the machine-readable detail code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = code.into();
        self
    }

    pub(crate) fn to_proto(&self) -> crate::proto::JobError {
        crate::proto::JobError {
            error_class: error_class_enum(&self.class).unwrap_or(ErrorClass::Other) as i32,
            message: self.message.chars().take(MAX_ERROR_MESSAGE_CHARS).collect(),
            retryable: self.retryable,
            retry_after: self
                .retry_after
                .and_then(|d| prost_types::Duration::try_from(d).ok()),
            code: self.code.clone(),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

impl std::error::Error for JobError {}

/// The error type handlers return: anything that converts into a boxed error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Turn a handler's error into the failure it reports: a [`JobError`] keeps its class; a
/// tokio timeout is "timeout" (retryable); anything else is "internal" (retryable: a bug may
/// be transient, and the retry policy bounds the attempts).
pub fn classify(error: &BoxError) -> JobError {
    if let Some(job_error) = error.downcast_ref::<JobError>() {
        return job_error.clone();
    }
    if error.is::<tokio::time::error::Elapsed>() {
        return JobError::new("timeout", error.to_string(), true);
    }
    JobError::new("internal", error.to_string(), true)
}
