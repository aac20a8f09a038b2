//! An example Rust worker for Stella Orchestrator.
//!
//! Against the demo stack (`make up`, then `make demo` prints the simulated upstream URL):
//!
//! ```text
//! cargo run --example worker -- -target 127.0.0.1:50052 -token "$TOKEN" -upstream http://127.0.0.1:PORT
//! ```
//!
//! serves the demo pipeline's job types (advisory.ingest, vex.ingest, sbom.scan,
//! policy.evaluate) the way demo/worker.py does. With `-types a,b` it instead serves those
//! types with an echo handler that reports 50 % progress, records one artifact
//! (`rust:<job id>:<key>`) and returns `{"worker", "key", "sdk", "artifact_digest"}`; the
//! cross-language tests use that mode; `-handler noop` makes it return `{}` at once instead
//! (make bench's burn-down).
//! SIGTERM drains gracefully; a second signal stops at once.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use stella_orchestrator_worker::{
    ArtifactRecord, BoxError, JobContext, JobError, Worker, WorkerBuilder, canonical_json,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HOSTS: [(&str, &str); 4] = [
    ("nvd", "services.nvd.nist.gov"),
    ("osv", "api.osv.dev"),
    ("ghsa", "api.github.com"),
    ("csaf-vendor", "csaf.vendor.example"),
];

/// `-name value` or `--name value` flags, Go style.
fn flags() -> HashMap<String, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        let name = args[i].trim_start_matches('-').to_string();
        let value = args.get(i + 1).cloned().unwrap_or_default();
        out.insert(name, value);
        i += 2;
    }
    out
}

fn parse_duration(text: &str) -> Duration {
    if let Some(ms) = text.strip_suffix("ms") {
        return Duration::from_millis(ms.parse().unwrap_or(30));
    }
    Duration::from_secs_f64(text.trim_end_matches('s').parse().unwrap_or(0.03))
}

#[tokio::main]
async fn main() {
    let f = flags();
    let get = |k: &str, default: &str| f.get(k).cloned().unwrap_or_else(|| default.to_string());
    let token = f
        .get("token")
        .cloned()
        .or_else(|| std::env::var("STELLA_TOKEN").ok())
        .unwrap_or_default();
    let mut builder = Worker::builder(get("target", "127.0.0.1:50052"))
        .token(token)
        .concurrency(get("concurrency", "20").parse().unwrap_or(20));
    if let Some(id) = f.get("worker-id") {
        builder = builder.worker_id(id.clone());
    }
    // -tls-ca FILE (default $STELLA_TLS_CA_FILE): TLS, trusting that CA.
    if let Some(ca) = f
        .get("tls-ca")
        .cloned()
        .or_else(|| std::env::var("STELLA_TLS_CA_FILE").ok())
        .filter(|ca| !ca.is_empty())
    {
        builder = builder.tls_ca_file(ca);
    }
    let worker_id = get("worker-id", "");
    builder = if let Some(types) = f.get("types") {
        let delay = parse_duration(&get("delay", "30ms"));
        match get("handler", "echo").as_str() {
            "echo" => types.split(',').fold(builder, |b, t| {
                let worker_id = worker_id.clone();
                b.handler(t, move |ctx| echo(ctx, worker_id.clone(), delay))
            }),
            "noop" => types.split(',').fold(builder, |b, t| {
                b.handler(t, |_ctx: JobContext| async {
                    Ok::<Value, BoxError>(json!({}))
                })
            }),
            other => {
                eprintln!("worker: -handler {other}: give echo or noop");
                std::process::exit(2);
            }
        }
    } else if let Some(upstream) = f.get("upstream") {
        demo(
            builder,
            upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
        )
    } else {
        eprintln!("worker: give -upstream (demo job types) or -types (echo handler)");
        std::process::exit(2);
    };
    let worker = builder.build().unwrap_or_else(|e| {
        eprintln!("worker: {e}");
        std::process::exit(2);
    });
    eprintln!("rust worker {} serving", worker.worker_id());
    if let Err(e) = worker.run_with_signals().await {
        eprintln!("worker: {e}");
        std::process::exit(1);
    }
}

async fn echo(ctx: JobContext, worker_id: String, delay: Duration) -> Result<Value, BoxError> {
    ctx.progress(50.0, "rust halfway")?;
    tokio::time::sleep(delay).await;
    let job = ctx.job();
    let content = format!("rust:{}:{}", job.id, job.key);
    let record =
        ctx.artifact(ArtifactRecord::of("echo.txt", content.as_bytes()).media_type("text/plain"))?;
    Ok(
        json!({"worker": worker_id, "key": job.key, "sdk": "rust", "artifact_digest": record.digest}),
    )
}

fn demo(builder: WorkerBuilder, upstream: String) -> WorkerBuilder {
    let advisories = upstream.clone();
    builder
        .handler("advisory.ingest", move |ctx| {
            fetch(ctx, advisories.clone(), "advisories")
        })
        .handler("vex.ingest", move |ctx| fetch(ctx, upstream.clone(), "vex"))
        .handler("sbom.scan", |ctx: JobContext| async move {
            let sbom =
                json!({"window": ctx.job().payload.get("window"), "components": 42}).to_string();
            ctx.artifact(
                ArtifactRecord::of("sbom.cdx.json", sbom.as_bytes())
                    .media_type("application/vnd.cyclonedx+json"),
            )?;
            Ok(json!({"components": 42}))
        })
        .handler("policy.evaluate", |ctx: JobContext| async move {
            let canonical = canonical_json(&Value::Object(ctx.job().payload.clone()))?;
            let digest = stella_orchestrator_worker::bytes_digest(&canonical);
            Ok(json!({"verdict": "pass", "digest": digest["sha256:".len().."sha256:".len() + 16]}))
        })
}

/// GET `http://<upstream>/<host>/<kind>?window=N` over plain HTTP/1.1 (the demo's local
/// simulated upstream), mapping 429/5xx/malformed JSON to the matching failure classes.
async fn fetch(ctx: JobContext, upstream: String, kind: &'static str) -> Result<Value, BoxError> {
    let job = ctx.job();
    let feed = job
        .payload
        .get("feed")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let host = HOSTS
        .iter()
        .find(|(f, _)| *f == feed)
        .map_or("unknown", |(_, h)| *h);
    let window = job
        .payload
        .get("window")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut stream = TcpStream::connect(&upstream).await?;
    let request = format!(
        "GET /{host}/{kind}?window={window} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        })
    };
    if status == 429 {
        let secs: f64 = header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1.0);
        let retry_after = Some(Duration::from_secs_f64(secs.max(1.0)));
        return Err(
            JobError::upstream_throttled(format!("{host} throttled {kind}"), retry_after).into(),
        );
    }
    if status >= 500 {
        return Err(
            JobError::upstream_unavailable(format!("{host} answered {status} for {kind}")).into(),
        );
    }
    let doc: Value = serde_json::from_str(body).map_err(|e| {
        JobError::parse_error(format!(
            "{host} sent malformed JSON for window {window}: {e}"
        ))
    })?;
    let items = doc
        .get("items")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    ctx.progress(100.0, &format!("{items} items"))?;
    let name = format!("{kind}-{window}.json");
    ctx.artifact(ArtifactRecord::of(name, body.as_bytes()).media_type("application/json"))?;
    Ok(json!({"items": items}))
}
