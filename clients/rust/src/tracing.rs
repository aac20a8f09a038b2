//! The handler's span, a child of the job's `trace_parent` (docs/tracing.md), and tracing
//! set up from the standard `OTEL_*` variables.
//!
//! The same span as the Python (`worker/_tracing.py`) and Go (`worker/tracing.go`) SDKs:
//! name `stella.job.run`, kind CONSUMER, attributes `stella.job.id`, `stella.job.type`,
//! `stella.job.attempt`, `stella.tenant`, `stella.worker.id`, `stella.sdk`; status ERROR with
//! the error class when the handler fails. The span is the handler future's current context
//! (`FutureExt::with_context`), so the handler's own instrumented calls nest under it.
//!
//! Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set or
//! `OTEL_TRACES_EXPORTER=otlp`; off with `OTEL_TRACES_EXPORTER=none` or
//! `OTEL_SDK_DISABLED=true`. [`Worker::run_with_signals`](crate::Worker::run_with_signals)
//! calls [`init_from_env`] and flushes at the end; an application running
//! [`Worker::run`](crate::Worker::run) installs its own global provider or calls
//! [`init_from_env`] itself. Without the cargo feature `otel` (on by default) every function
//! here is a no-op and the OpenTelemetry crates are not built.

use std::future::Future;

use crate::job::Job;
use crate::worker::HandlerResult;

/// Name of the handler's span in every SDK.
pub const SPAN_NAME: &str = "stella.job.run";
/// `service.name` of a worker's spans unless `OTEL_SERVICE_NAME` is set.
pub const DEFAULT_SERVICE_NAME: &str = "stella-worker";

/// Whether the `OTEL_*` variables turn tracing on (the same rule as the Python and Go SDKs).
pub fn tracing_enabled() -> bool {
    enabled_by(|name| std::env::var(name).ok())
}

fn enabled_by(get: impl Fn(&str) -> Option<String>) -> bool {
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return false;
    }
    let exporters: Vec<String> = get("OTEL_TRACES_EXPORTER")
        .unwrap_or_default()
        .split(',')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    if !exporters.is_empty() {
        return exporters.iter().any(|e| e == "otlp") && !exporters.iter().any(|e| e == "none");
    }
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|name| get(name).is_some_and(|v| !v.trim().is_empty()))
}

/// The installed tracer provider; [`Tracing::shutdown`] flushes queued spans.
pub struct Tracing {
    #[cfg(feature = "otel")]
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing").finish_non_exhaustive()
    }
}

impl Tracing {
    /// Export what is queued and stop (runs the blocking flush off the async threads).
    pub async fn shutdown(self) {
        #[cfg(feature = "otel")]
        {
            let provider = self.provider;
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = flushed {
                log::warn!("tracing shutdown: {e}");
            }
        }
    }
}

/// Install a global tracer provider exporting over OTLP/gRPC when the `OTEL_*` variables
/// ask for it; `None` when tracing is off (or the feature `otel` is not built). Call it inside
/// a tokio runtime. `service.name` is `OTEL_SERVICE_NAME` or `default_service`; the exporter
/// reads its own `OTEL_EXPORTER_OTLP_*` settings, the sampler `OTEL_TRACES_SAMPLER`.
pub fn init_from_env(default_service: &str) -> Option<Tracing> {
    if !tracing_enabled() {
        return None;
    }
    init(default_service)
}

#[cfg(not(feature = "otel"))]
fn init(_default_service: &str) -> Option<Tracing> {
    log::warn!("OTEL_* asks for tracing but the SDK was built without the `otel` feature");
    None
}

#[cfg(feature = "otel")]
fn init(default_service: &str) -> Option<Tracing> {
    use opentelemetry_otlp::SpanExporter;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    let exporter = match SpanExporter::builder().with_tonic().build() {
        Ok(exporter) => exporter,
        Err(e) => {
            log::warn!("tracing off: the OTLP exporter could not be built: {e}");
            return None;
        }
    };
    let name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| default_service.to_string());
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(name.clone()).build())
        .with_batch_exporter(exporter)
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    log::info!("tracing on: service.name {name}, exporter otlp");
    Some(Tracing { provider })
}

/// Run `handler` as the handler of `job`, inside its span (the future unchanged without
/// the feature `otel`).
pub(crate) fn instrument<F>(
    job: &Job,
    worker_id: &str,
    handler: F,
) -> impl Future<Output = HandlerResult> + Send + 'static
where
    F: Future<Output = HandlerResult> + Send + 'static,
{
    #[cfg(feature = "otel")]
    {
        traced(job, worker_id, handler)
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = (job, worker_id);
        handler
    }
}

#[cfg(feature = "otel")]
fn traced<F>(
    job: &Job,
    worker_id: &str,
    handler: F,
) -> impl Future<Output = HandlerResult> + Send + 'static + use<F>
where
    F: Future<Output = HandlerResult> + Send + 'static,
{
    use opentelemetry::trace::{
        FutureExt, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
    };
    use opentelemetry::{Context, KeyValue, global};

    let tracer = global::tracer_provider().tracer("stella_orchestrator_worker");
    let parent = parent_context(&job.trace_parent, &job.trace_state);
    let span = tracer
        .span_builder(SPAN_NAME)
        .with_kind(SpanKind::Consumer)
        .with_attributes([
            KeyValue::new("stella.job.id", job.id.clone()),
            KeyValue::new("stella.job.type", job.job_type.clone()),
            KeyValue::new("stella.job.attempt", i64::from(job.attempt)),
            KeyValue::new("stella.tenant", job.tenant.clone()),
            KeyValue::new("stella.worker.id", worker_id.to_string()),
            KeyValue::new("stella.sdk", "rust"),
        ])
        .start_with_context(&tracer, &parent);
    let cx = Context::current_with_span(span);
    let done = cx.clone();
    async move {
        // An aborted handler (lease lost, canceled) drops this future: the span ends on drop.
        let result = handler.with_context(cx).await;
        let span = done.span();
        match &result {
            Ok(_) => span.set_attribute(KeyValue::new("stella.job.outcome", "succeeded")),
            Err(e) => {
                let class = crate::errors::classify(e).class;
                span.set_attribute(KeyValue::new("stella.job.outcome", "failed"));
                span.set_attribute(KeyValue::new("stella.error.class", class.clone()));
                span.set_status(Status::error(class));
            }
        }
        span.end();
        result
    }
}

/// The context whose remote parent is the W3C `traceparent` (a fresh root when it is empty
/// or malformed, never the caller's current context).
#[cfg(feature = "otel")]
fn parent_context(trace_parent: &str, trace_state: &str) -> opentelemetry::Context {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use std::collections::HashMap;

    let mut carrier = HashMap::new();
    if !trace_parent.is_empty() {
        carrier.insert("traceparent".to_string(), trace_parent.to_string());
        if !trace_state.is_empty() {
            carrier.insert("tracestate".to_string(), trace_state.to_string());
        }
    }
    TraceContextPropagator::new().extract_with_context(&opentelemetry::Context::new(), &carrier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn off_unless_the_otel_variables_ask() {
        assert!(!enabled_by(env(&[])));
        assert!(enabled_by(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4317"
        )])));
        assert!(enabled_by(env(&[("OTEL_TRACES_EXPORTER", "otlp")])));
        assert!(!enabled_by(env(&[
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ])));
        assert!(!enabled_by(env(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ])));
    }

    #[cfg(feature = "otel")]
    #[test]
    fn the_parent_is_the_jobs_traceparent() {
        use opentelemetry::trace::TraceContextExt;
        let cx = parent_context(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "",
        );
        let parent = cx.span().span_context().clone();
        assert!(parent.is_remote());
        assert_eq!(
            parent.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(parent.span_id().to_string(), "b7ad6b7169203331");
        assert!(
            !parent_context("garbage", "")
                .span()
                .span_context()
                .is_valid()
        );
    }
}
