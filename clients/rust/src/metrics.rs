// Worker-side Prometheus metrics, off by default: `WorkerBuilder::metrics_addr("0.0.0.0:9464")`
// or STELLA_METRICS_PORT=9464 (bound on STELLA_METRICS_ADDR, default 0.0.0.0) serves them on
// /metrics while `Worker::run` runs. The Python and Go SDKs export the same names, labels
// and buckets (docs/metrics.md, "Worker SDKs"); `sdk` tells the languages apart. The metrics
// live in a registry of their own, shared by every worker of the process. The endpoint is a
// few lines over tokio (one response per connection), so the SDK needs no HTTP server crate.

use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::errors::Error;

const PORT_ENV: &str = "STELLA_METRICS_PORT";
const ADDR_ENV: &str = "STELLA_METRICS_ADDR";
const SDK: &str = "rust";
/// Handler duration buckets of every SDK (5 ms to 10 min).
const DURATION_BUCKETS_S: [f64; 11] = [
    0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0, 60.0, 300.0, 600.0,
];

struct Families {
    registry: Registry,
    started: CounterVec,
    succeeded: CounterVec,
    failed: CounterVec,
    canceled: CounterVec,
    duration: HistogramVec,
    in_flight: GaugeVec,
}

fn families() -> &'static Families {
    static FAMILIES: OnceLock<Families> = OnceLock::new();
    FAMILIES.get_or_init(|| {
        let common = &["sdk", "job_type"];
        let counter = |name: &str, help: &str, labels: &[&str]| {
            CounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let f = Families {
            registry: Registry::new(),
            started: counter(
                "stella_worker_jobs_started_total",
                "Jobs whose handler started.",
                common,
            ),
            succeeded: counter(
                "stella_worker_jobs_succeeded_total",
                "Jobs whose result was reported.",
                common,
            ),
            failed: counter(
                "stella_worker_jobs_failed_total",
                "Jobs whose failure was reported, by error class.",
                &["sdk", "job_type", "error_class"],
            ),
            canceled: counter(
                "stella_worker_jobs_canceled_total",
                "Handlers the SDK canceled (lease lost, job canceled, drain timeout).",
                common,
            ),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "stella_worker_handler_duration_seconds",
                    "Handler run time, whatever its outcome.",
                )
                .buckets(DURATION_BUCKETS_S.to_vec()),
                common,
            )
            .expect("valid metric"),
            in_flight: GaugeVec::new(
                Opts::new("stella_worker_jobs_in_flight", "Handlers running now."),
                common,
            )
            .expect("valid metric"),
        };
        for c in [&f.started, &f.succeeded, &f.failed, &f.canceled] {
            f.registry.register(Box::new(c.clone())).expect("unique");
        }
        f.registry
            .register(Box::new(f.duration.clone()))
            .expect("unique");
        f.registry
            .register(Box::new(f.in_flight.clone()))
            .expect("unique");
        f
    })
}

/// The address STELLA_METRICS_PORT (and STELLA_METRICS_ADDR) ask for; None when unset.
pub(crate) fn addr_from_env() -> Result<Option<String>, Error> {
    let raw = std::env::var(PORT_ENV).unwrap_or_default();
    if raw.is_empty() {
        return Ok(None);
    }
    let port: u16 = raw
        .parse()
        .map_err(|_| Error::Invalid(format!("{PORT_ENV}={raw:?} is not a port")))?;
    let host = std::env::var(ADDR_ENV)
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "0.0.0.0".into());
    Ok(Some(format!("{host}:{port}")))
}

/// The hooks the session calls; every one is a no-op while metrics are off.
pub(crate) struct WorkerMetrics {
    addr: Option<String>,
    bound: Mutex<Option<SocketAddr>>,
}

/// Stops the endpoint when dropped (at the end of `run`).
pub(crate) struct Serving<'a> {
    task: Option<JoinHandle<()>>,
    metrics: &'a WorkerMetrics,
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        *self.metrics.bound.lock().expect("not poisoned") = None;
    }
}

impl WorkerMetrics {
    pub(crate) fn new(addr: Option<String>) -> Self {
        if addr.is_some() {
            families();
        }
        WorkerMetrics {
            addr,
            bound: Mutex::new(None),
        }
    }

    fn on(&self) -> Option<&'static Families> {
        self.addr.as_ref().map(|_| families())
    }

    /// The endpoint's address while `run` runs.
    pub(crate) fn bound(&self) -> Option<SocketAddr> {
        *self.bound.lock().expect("not poisoned")
    }

    /// Serve `/metrics` until the returned guard drops (nothing when off).
    pub(crate) async fn serve(&self) -> Result<Serving<'_>, Error> {
        let Some(addr) = &self.addr else {
            return Ok(Serving {
                task: None,
                metrics: self,
            });
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Invalid(format!("metrics endpoint {addr}: {e}")))?;
        *self.bound.lock().expect("not poisoned") = listener.local_addr().ok();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = vec![0u8; 4096];
                    let read =
                        tokio::time::timeout(Duration::from_secs(10), conn.read(&mut request));
                    let Ok(Ok(n)) = read.await else { return };
                    let path_ok = request[..n].starts_with(b"GET /metrics");
                    let (status, body) = if path_ok {
                        let mut body = Vec::new();
                        let _ = TextEncoder::new().encode(&families().registry.gather(), &mut body);
                        ("200 OK", body)
                    } else {
                        ("404 Not Found", b"try /metrics\n".to_vec())
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(&body).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Ok(Serving {
            task: Some(task),
            metrics: self,
        })
    }

    pub(crate) fn started(&self, job_type: &str) {
        if let Some(f) = self.on() {
            f.started.with_label_values(&[SDK, job_type]).inc();
            f.in_flight.with_label_values(&[SDK, job_type]).inc();
        }
    }

    /// The handler's task ended (any outcome).
    pub(crate) fn finished(&self, job_type: &str, took: Duration) {
        if let Some(f) = self.on() {
            f.in_flight.with_label_values(&[SDK, job_type]).dec();
            f.duration
                .with_label_values(&[SDK, job_type])
                .observe(took.as_secs_f64());
        }
    }

    pub(crate) fn succeeded(&self, job_type: &str) {
        if let Some(f) = self.on() {
            f.succeeded.with_label_values(&[SDK, job_type]).inc();
        }
    }

    pub(crate) fn failed(&self, job_type: &str, error_class: &str) {
        if let Some(f) = self.on() {
            f.failed
                .with_label_values(&[SDK, job_type, error_class])
                .inc();
        }
    }

    pub(crate) fn canceled(&self, job_type: &str) {
        if let Some(f) = self.on() {
            f.canceled.with_label_values(&[SDK, job_type]).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        conn.write_all(request.as_bytes()).await.expect("write");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.expect("read");
        reply
    }

    #[tokio::test]
    async fn hooks_show_on_the_endpoint_while_it_serves() {
        let m = WorkerMetrics::new(Some("127.0.0.1:0".into()));
        let serving = m.serve().await.expect("bind");
        let addr = m.bound().expect("bound while serving");
        for _ in 0..3 {
            m.started("rs.metrics");
            m.finished("rs.metrics", Duration::from_millis(20));
        }
        m.succeeded("rs.metrics");
        m.failed("rs.metrics", "parse_error");
        m.failed("rs.metrics", "parse_error");
        let body = get(addr, "/metrics").await;
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        for line in [
            r#"stella_worker_jobs_started_total{job_type="rs.metrics",sdk="rust"} 3"#,
            r#"stella_worker_jobs_succeeded_total{job_type="rs.metrics",sdk="rust"} 1"#,
            r#"stella_worker_jobs_failed_total{error_class="parse_error",job_type="rs.metrics",sdk="rust"} 2"#,
            r#"stella_worker_handler_duration_seconds_count{job_type="rs.metrics",sdk="rust"} 3"#,
            r#"stella_worker_handler_duration_seconds_bucket{job_type="rs.metrics",sdk="rust",le="0.025"} 3"#,
            r#"stella_worker_jobs_in_flight{job_type="rs.metrics",sdk="rust"} 0"#,
        ] {
            assert!(body.contains(line), "missing {line} in\n{body}");
        }
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 404"));
        drop(serving);
        assert_eq!(m.bound(), None);
    }

    #[tokio::test]
    async fn off_without_an_address() {
        let m = WorkerMetrics::new(None);
        let _serving = m.serve().await.expect("nothing to bind");
        assert_eq!(m.bound(), None);
        m.started("rs.off"); // a no-op, never a panic
    }
}
