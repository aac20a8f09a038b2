//! A multi-address target spreads the worker's Work streams over every address,
//! round-robin, and keeps going when one replica disappears. The replicas are plain TCP
//! listeners on loopback that accept and hang up (the worker sees UNAVAILABLE and opens
//! its next stream), so each accepted connection is one stream attempt on that replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use stella_orchestrator_worker::{JobContext, Worker};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A listener that counts and drops every connection until its task is aborted.
async fn replica() -> (String, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (address, accepted, task)
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn streams_go_round_robin_and_skip_a_replica_that_is_gone() {
    let (a, on_a, task_a) = replica().await;
    let (b, on_b, _task_b) = replica().await;
    let worker = Worker::builder(format!("{a},{b}"))
        .token("tok")
        .backoff_seed(7)
        .handler("t", |_ctx: JobContext| async move { Ok(json!({})) })
        .build()
        .expect("a valid worker");
    let runner = worker.clone();
    let run = tokio::spawn(async move { runner.run().await });

    // Attempts alternate A, B, A, B...: after four, each replica saw two.
    wait_for("four stream attempts", || {
        on_a.load(Ordering::SeqCst) + on_b.load(Ordering::SeqCst) >= 4
    })
    .await;
    let (na, nb) = (on_a.load(Ordering::SeqCst), on_b.load(Ordering::SeqCst));
    assert!(na >= 2 && nb >= 2, "not round-robin: {na} on A, {nb} on B");

    // A goes away (connection refused from now on): B keeps getting the attempts.
    task_a.abort();
    let _ = task_a.await;
    let before = on_b.load(Ordering::SeqCst);
    wait_for("attempts on the surviving replica", || {
        on_b.load(Ordering::SeqCst) >= before + 2
    })
    .await;

    worker.stop();
    let result = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("run() returns after stop()")
        .expect("the run task");
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_list_entry_without_a_port_is_refused_at_build() {
    let built = Worker::builder("127.0.0.1:50052,leases")
        .token("tok")
        .handler("t", |_ctx: JobContext| async move { Ok(json!({})) })
        .build();
    assert!(built.is_err());
}
