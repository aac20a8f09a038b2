//! One Work stream, from Hello to its end, run as a single task that owns all the state.
//!
//! It reacts to: server messages (forwarded by a reader task), handler completions, artifact
//! records from `JobContext`s, a ticker (heartbeats at the interval the Welcome gave, urgent
//! progress, local lease expiry), the batch linger timer and the worker's drain/stop
//! control. Each handler runs in its own task; when the SDK cancels a job (lease lost,
//! CancelJobs, drain timeout, stream closed) it aborts that task and drops its result.
//! Outgoing messages go through an unbounded channel that tonic turns into the request
//! stream; dropping its sender half-closes the stream.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinError};
use tokio::time::{Instant, MissedTickBehavior, sleep_until};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::digest::json_digest;
use crate::errors::{BoxError, JobError, LEASE_LOST_REASONS, RpcError, classify};
use crate::job::{ArtifactEvent, CancelReason, Job, JobContext, from_struct, to_struct};
use crate::outbox::{DEFAULT_MAX_BATCH, Outbox};
use crate::proto::{self, AckKind, work_request, work_response};
use crate::worker::{Control, HandlerFn, Inner, SDK_NAME, SDK_VERSION};

/// Assumed lease TTL when the Welcome names none.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// Heartbeat interval as a share of the lease TTL when the Welcome names no interval.
pub const HEARTBEAT_FRACTION_OF_TTL: f64 = 1.0 / 3.0;
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(50);
/// Ticker period at most; also bounds how late a heartbeat can be.
const TICK_MAX: Duration = Duration::from_millis(250);
/// `progress()` values of one job go out at most this often.
const PROGRESS_MIN_INTERVAL: Duration = Duration::from_secs(1);
const WELCOME_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a drain waits for acknowledgements and for the server to end the stream.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Drained,
    Stopped,
    ServerDrained,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Waiting for running handlers to finish (drain timeout, then cancel them).
    Draining {
        deadline: Instant,
        canceled_all: bool,
    },
    /// Waiting for every completion/failure to be acknowledged.
    AwaitAcks {
        deadline: Instant,
    },
    /// Half-closed; reading the server's remaining messages to the end.
    Closing {
        deadline: Instant,
    },
}

struct Held {
    ctx: JobContext,
    handler: HandlerFn,
    cancel: watch::Sender<Option<CancelReason>>,
    abort: Option<AbortHandle>,
    deadline: Instant,
    hb_next: Instant,
    hb_sent_at: Instant,
    progress_sent_at: Option<Instant>,
}

pub(crate) struct Done {
    seq: u64,
    result: Result<Result<Value, BoxError>, JoinError>,
}

pub(crate) struct Session {
    w: Arc<Inner>,
    out: Outbox,
    tx: Option<mpsc::UnboundedSender<proto::WorkRequest>>,
    drain_message: Option<String>,
    held: HashMap<String, Held>,
    waiting: VecDeque<String>,
    running: usize,
    unacked: usize,
    seq: u64,
    pub welcomed: bool,
    server_draining: bool,
    lease_ttl: Duration,
    hb_interval: Duration,
    heartbeat_acked: bool,
    flush_at: Option<Instant>,
    phase: Phase,
    done_tx: mpsc::UnboundedSender<Done>,
    art_tx: mpsc::UnboundedSender<ArtifactEvent>,
}

type Incoming = Result<Option<proto::WorkResponse>, tonic::Status>;

impl Session {
    pub fn new(
        w: Arc<Inner>,
    ) -> (
        Self,
        mpsc::UnboundedReceiver<Done>,
        mpsc::UnboundedReceiver<ArtifactEvent>,
    ) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (art_tx, art_rx) = mpsc::unbounded_channel();
        let session = Self {
            w,
            out: Outbox::default(),
            tx: None,
            drain_message: None,
            held: HashMap::new(),
            waiting: VecDeque::new(),
            running: 0,
            unacked: 0,
            seq: 0,
            welcomed: false,
            server_draining: false,
            lease_ttl: DEFAULT_LEASE_TTL,
            hb_interval: DEFAULT_LEASE_TTL.mul_f64(HEARTBEAT_FRACTION_OF_TTL),
            heartbeat_acked: false,
            flush_at: None,
            phase: Phase::Running,
            done_tx,
            art_tx,
        };
        (session, done_rx, art_rx)
    }

    /// Run the stream to its end.
    pub async fn run(
        &mut self,
        client: &mut proto::lease_service_client::LeaseServiceClient<tonic::transport::Channel>,
        mut control: watch::Receiver<Control>,
        mut done_rx: mpsc::UnboundedReceiver<Done>,
        mut art_rx: mpsc::UnboundedReceiver<ArtifactEvent>,
    ) -> Result<Outcome, RpcError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let hello = proto::WorkerHello {
            worker_id: self.w.worker_id.clone(),
            job_types: self.w.job_types(),
            capacity: self.w.concurrency as i32,
            sdk: SDK_NAME.into(),
            sdk_version: SDK_VERSION.into(),
            labels: self.w.labels.clone(),
        };
        tx.send(proto::WorkRequest {
            body: Some(work_request::Body::Hello(hello)),
        })
        .expect("receiver alive");
        self.tx = Some(tx);
        let mut request = tonic::Request::new(UnboundedReceiverStream::new(rx));
        self.w.add_metadata(request.metadata_mut());
        let mut stream = tokio::select! {
            r = client.work(request) => r.map_err(RpcError::from)?.into_inner(),
            _ = stopped(&mut control) => return Ok(Outcome::Stopped),
        };
        let welcome = tokio::select! {
            r = tokio::time::timeout(WELCOME_TIMEOUT, stream.message()) => match r {
                Err(_) => return Err(RpcError { code: tonic::Code::DeadlineExceeded, message: "no Welcome from the server".into(), reason: String::new() }),
                Ok(Err(status)) => return Err(status.into()),
                Ok(Ok(None)) => return Err(RpcError::unavailable("server ended the Work stream")),
                Ok(Ok(Some(m))) => m,
            },
            _ = stopped(&mut control) => return Ok(Outcome::Stopped),
        };
        match welcome.body {
            Some(work_response::Body::Welcome(w)) => self.on_welcome(&w),
            _ => {
                return Err(RpcError {
                    code: tonic::Code::Internal,
                    message: "the server's first message was not a Welcome".into(),
                    reason: String::new(),
                });
            }
        }
        // The reader forwards server messages; it ends with the stream (Ok(None) = EOF).
        let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Incoming>();
        let reader = tokio::spawn(async move {
            loop {
                let item = stream.message().await;
                let last = !matches!(item, Ok(Some(_)));
                if in_tx.send(item).is_err() || last {
                    return;
                }
            }
        });
        let result = self
            .event_loop(&mut control, &mut in_rx, &mut done_rx, &mut art_rx)
            .await;
        reader.abort();
        self.shutdown();
        result
    }

    fn on_welcome(&mut self, w: &proto::ServerWelcome) {
        self.welcomed = true;
        if let Some(ttl) = w
            .lease_ttl
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero())
        {
            self.lease_ttl = ttl;
        }
        let interval = w
            .heartbeat_interval
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or_else(|| self.lease_ttl.mul_f64(HEARTBEAT_FRACTION_OF_TTL));
        // Never let a lease run out between two heartbeats, whatever the server said.
        self.hb_interval = interval.min(self.lease_ttl / 2).max(MIN_HEARTBEAT_INTERVAL);
        self.out.max_batch = if w.max_batch > 0 {
            w.max_batch as usize
        } else {
            DEFAULT_MAX_BATCH
        };
        log::info!(
            "connected to {} (session {}, lease ttl {:?}, heartbeat every {:?})",
            self.w.target,
            w.session_id,
            self.lease_ttl,
            self.hb_interval
        );
    }

    async fn event_loop(
        &mut self,
        control: &mut watch::Receiver<Control>,
        in_rx: &mut mpsc::UnboundedReceiver<Incoming>,
        done_rx: &mut mpsc::UnboundedReceiver<Done>,
        art_rx: &mut mpsc::UnboundedReceiver<ArtifactEvent>,
    ) -> Result<Outcome, RpcError> {
        let mut ticker = tokio::time::interval((self.hb_interval / 4).min(TICK_MAX));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let far = Instant::now() + Duration::from_secs(86_400);
        loop {
            if control.borrow().stop {
                return Ok(Outcome::Stopped);
            }
            if let Some(outcome) = self.advance(control)? {
                return Ok(outcome);
            }
            let flush_at = self.flush_at.unwrap_or(far);
            let phase_deadline = match self.phase {
                Phase::Running => far,
                Phase::Draining { deadline, .. }
                | Phase::AwaitAcks { deadline }
                | Phase::Closing { deadline } => deadline,
            };
            tokio::select! {
                item = in_rx.recv() => match item {
                    Some(Ok(Some(message))) => self.on_message(message),
                    Some(Err(status)) => return Err(status.into()),
                    Some(Ok(None)) | None => {
                        // EOF: expected once we half-closed, or after a server drain.
                        if matches!(self.phase, Phase::Closing { .. }) {
                            return Ok(self.final_outcome(control));
                        }
                        if self.server_draining {
                            return Ok(Outcome::ServerDrained);
                        }
                        return Err(RpcError::unavailable("server ended the Work stream"));
                    }
                },
                Some(done) = done_rx.recv() => {
                    // A handler's artifacts were sent before it finished: record them first
                    // so they ride inside its completion.
                    while let Ok(event) = art_rx.try_recv() {
                        self.on_artifact(event);
                    }
                    self.on_done(done);
                }
                Some(event) = art_rx.recv() => self.on_artifact(event),
                _ = ticker.tick() => self.tick(Instant::now()),
                _ = sleep_until(flush_at), if self.flush_at.is_some() => self.flush(),
                _ = sleep_until(phase_deadline), if self.phase != Phase::Running => {
                    if let Some(outcome) = self.on_phase_deadline(control) {
                        return Ok(outcome);
                    }
                }
                r = control.changed() => if r.is_err() { return Ok(Outcome::Stopped) },
            }
        }
    }

    fn final_outcome(&self, control: &watch::Receiver<Control>) -> Outcome {
        if control.borrow().drain.is_some() {
            Outcome::Drained
        } else {
            Outcome::ServerDrained
        }
    }

    /// Move the drain sequence forward; Some(outcome) when the session is done.
    fn advance(&mut self, control: &watch::Receiver<Control>) -> Result<Option<Outcome>, RpcError> {
        let now = Instant::now();
        if self.phase == Phase::Running {
            let drain = control.borrow().drain.clone();
            if let Some(reason) = drain {
                log::info!("draining: {} job(s) in flight", self.held.len());
                self.drain_message = Some(reason);
                self.schedule_flush(true);
            } else if !self.server_draining {
                return Ok(None);
            }
            self.phase = Phase::Draining {
                deadline: now + self.w.drain_timeout,
                canceled_all: false,
            };
        }
        if matches!(self.phase, Phase::Draining { .. }) && self.held.is_empty() {
            self.phase = Phase::AwaitAcks {
                deadline: now + FLUSH_TIMEOUT,
            };
        }
        if matches!(self.phase, Phase::AwaitAcks { .. }) && self.unacked == 0 {
            self.close(now);
        }
        Ok(None)
    }

    /// A phase ran out of time; Some(outcome) when the session is done.
    fn on_phase_deadline(&mut self, control: &watch::Receiver<Control>) -> Option<Outcome> {
        let now = Instant::now();
        match self.phase {
            Phase::Draining {
                canceled_all: false,
                ..
            } => {
                log::warn!(
                    "drain timeout ({:?}): canceling {} job(s)",
                    self.w.drain_timeout,
                    self.held.len()
                );
                let ids: Vec<String> = self.held.keys().cloned().collect();
                for id in ids {
                    self.cancel(&id, CancelReason::DrainTimeout);
                }
                self.phase = Phase::Draining {
                    deadline: now + FLUSH_TIMEOUT,
                    canceled_all: true,
                };
            }
            Phase::Draining {
                canceled_all: true, ..
            }
            | Phase::AwaitAcks { .. } => self.close(now),
            Phase::Closing { .. } => {
                // The server did not end the stream in time: everything was acknowledged,
                // so give up on reading the rest.
                return Some(self.final_outcome(control));
            }
            Phase::Running => {}
        }
        None
    }

    fn close(&mut self, now: Instant) {
        self.flush();
        self.tx = None; // half-close
        self.phase = Phase::Closing {
            deadline: now + FLUSH_TIMEOUT,
        };
    }

    fn shutdown(&mut self) {
        let ids: Vec<String> = self.held.keys().cloned().collect();
        self.tx = None;
        for id in ids {
            self.cancel(&id, CancelReason::StreamClosed);
        }
    }

    // ------------------------------------------------------------------ server messages

    fn on_message(&mut self, message: proto::WorkResponse) {
        match message.body {
            Some(work_response::Body::Assignments(batch)) => {
                for a in &batch.assignments {
                    self.on_assignment(a);
                }
            }
            Some(work_response::Body::Results(results)) => self.on_acks(&results.acks),
            Some(work_response::Body::Cancel(cancel)) => {
                for id in &cancel.job_ids {
                    self.cancel(id, CancelReason::Canceled);
                }
            }
            Some(work_response::Body::Drain(d)) => {
                log::info!("server drains the stream ({})", d.reason);
                self.server_draining = true;
            }
            Some(work_response::Body::Welcome(w)) => self.on_welcome(&w),
            None => {}
        }
    }

    fn on_assignment(&mut self, a: &proto::Assignment) {
        let job = Job::from_assignment(a);
        if self.held.contains_key(&job.id) {
            return; // assigned twice on one stream: keep the first
        }
        let Some(handler) = self.w.handlers.get(&job.job_type).cloned() else {
            // Only a server ignoring Hello.job_types gets here; another worker may serve it.
            let message = format!("no handler for job type {:?}", job.job_type);
            self.report_failure(&job, &JobError::new("internal", message, true));
            return;
        };
        self.seq += 1;
        let (cancel, canceled) = watch::channel(None);
        let now = Instant::now();
        let id = job.id.clone();
        let ctx = JobContext::new(job, self.seq, self.art_tx.clone(), canceled);
        self.held.insert(
            id.clone(),
            Held {
                ctx,
                handler,
                cancel,
                abort: None,
                deadline: now + self.lease_ttl,
                hb_next: now + self.hb_interval,
                hb_sent_at: now,
                progress_sent_at: None,
            },
        );
        self.w.stats.bump(&self.w.stats.assigned);
        if self.running < self.w.concurrency {
            self.start(&id);
        } else {
            self.waiting.push_back(id);
        }
    }

    fn on_acks(&mut self, acks: &[proto::ResultAck]) {
        for ack in acks {
            let kind = ack.kind();
            if kind == AckKind::Completion || kind == AckKind::Failure {
                self.unacked = self.unacked.saturating_sub(1);
                if !ack.ok {
                    log::warn!(
                        "server refused the result of job {}: {}",
                        ack.job_id,
                        ack.error_reason
                    );
                }
                continue;
            }
            let Some(held) = self.held.get_mut(&ack.job_id) else {
                continue;
            };
            if held.ctx.job().lease_id != ack.lease_id {
                continue;
            }
            if !ack.ok && LEASE_LOST_REASONS.contains(&ack.error_reason.as_str()) {
                let id = ack.job_id.clone();
                self.cancel(&id, CancelReason::LeaseLost);
            } else if ack.ok && kind == AckKind::Heartbeat {
                self.heartbeat_acked = true;
                held.deadline = held.hb_sent_at + self.lease_ttl;
            }
        }
    }

    // ------------------------------------------------------------------ handlers

    fn start(&mut self, id: &str) {
        let Some(held) = self.held.get_mut(id) else {
            return;
        };
        self.running += 1;
        let seq = held.ctx.seq;
        let job_type = held.ctx.job().job_type.clone();
        self.w.metrics.started(&job_type);
        let run = (held.handler)(held.ctx.clone());
        let task = tokio::spawn(crate::tracing::instrument(
            held.ctx.job(),
            &self.w.worker_id,
            run,
        ));
        held.abort = Some(task.abort_handle());
        let done_tx = self.done_tx.clone();
        let w = Arc::clone(&self.w);
        tokio::spawn(async move {
            let begin = Instant::now();
            let result = task.await;
            w.metrics.finished(&job_type, begin.elapsed());
            let _ = done_tx.send(Done { seq, result });
        });
    }

    fn on_done(&mut self, done: Done) {
        let Some(id) = self
            .held
            .iter()
            .find(|(_, h)| h.ctx.seq == done.seq)
            .map(|(id, _)| id.clone())
        else {
            return; // canceled by the SDK: already released, the result is dropped
        };
        let held = self.held.remove(&id).expect("found above");
        let job = held.ctx.job().clone();
        match done.result {
            Ok(Ok(value)) => self.report_result(&job, value),
            Ok(Err(error)) => {
                let info = classify(&error);
                log::warn!(
                    "job {} ({}, attempt {}) failed: class {}, retryable {}",
                    job.id,
                    job.job_type,
                    job.attempt,
                    info.class,
                    info.retryable
                );
                self.report_failure(&job, &info);
            }
            Err(join_error) => {
                let message = if join_error.is_panic() {
                    "handler panicked"
                } else {
                    "handler task ended"
                };
                self.report_failure(&job, &JobError::new("internal", message, true));
            }
        }
        self.release();
    }

    fn release(&mut self) {
        self.running -= 1;
        while self.running < self.w.concurrency && self.tx.is_some() {
            let Some(next) = self.waiting.pop_front() else {
                break;
            };
            self.start(&next);
        }
    }

    fn report_result(&mut self, job: &Job, value: Value) {
        let (result, digest) = match value {
            Value::Null => (None, String::new()),
            Value::Object(map) => {
                let st = to_struct(&map);
                // Digest what the server will store: the Struct form (numbers are doubles).
                match json_digest(&Value::Object(from_struct(&st))) {
                    Ok(d) => (Some(st), d),
                    Err(e) => {
                        let error = JobError::new(
                            "internal",
                            format!("handler result is not JSON: {e}"),
                            false,
                        );
                        self.report_failure(job, &error);
                        return;
                    }
                }
            }
            other => {
                let message = format!("handler returned {other}; expected a JSON object or null");
                self.report_failure(job, &JobError::new("internal", message, false));
                return;
            }
        };
        if self.tx.is_none() {
            return;
        }
        self.w.stats.bump(&self.w.stats.completed);
        self.w.metrics.succeeded(&job.job_type);
        self.unacked += 1;
        self.out.add_completion(proto::Completion {
            job_id: job.id.clone(),
            lease_id: job.lease_id.clone(),
            result,
            result_digest: digest,
            artifacts: Vec::new(),
        });
        self.schedule_flush(false);
    }

    fn report_failure(&mut self, job: &Job, error: &JobError) {
        if self.tx.is_none() {
            return;
        }
        self.w.stats.bump(&self.w.stats.failed);
        self.w.metrics.failed(&job.job_type, &error.class);
        self.unacked += 1;
        self.out.add_failure(proto::Failure {
            job_id: job.id.clone(),
            lease_id: job.lease_id.clone(),
            error: Some(error.to_proto()),
        });
        self.schedule_flush(false);
    }

    fn cancel(&mut self, id: &str, reason: CancelReason) {
        let Some(held) = self.held.remove(id) else {
            return;
        };
        if reason != CancelReason::StreamClosed {
            log::info!("canceling job {id}: {reason:?}");
        }
        let _ = held.cancel.send(Some(reason));
        let started = held.abort.is_some();
        if let Some(abort) = &held.abort {
            abort.abort();
        } else {
            self.waiting.retain(|w| w != id);
        }
        self.w.stats.bump(&self.w.stats.canceled);
        let job = held.ctx.job();
        self.w.metrics.canceled(&job.job_type);
        if reason == CancelReason::DrainTimeout {
            let error = JobError::new(
                "canceled",
                "worker drained: the handler outlived the drain timeout",
                true,
            );
            self.report_failure(job, &error);
        } else if self.tx.is_some() {
            // No report will free this slot on the server: hand the credit back.
            self.out.add_credit(id);
            self.schedule_flush(false);
        }
        if started {
            self.release();
        }
    }

    fn on_artifact(&mut self, event: ArtifactEvent) {
        let live = self
            .held
            .get(&event.record.job_id)
            .is_some_and(|h| h.ctx.seq == event.seq);
        if live && self.tx.is_some() {
            self.out.add_artifact(event.record);
            self.schedule_flush(false);
        }
    }

    // ------------------------------------------------------------------ ticker and flushing

    /// Send due heartbeats and urgent progress; cancel jobs whose lease ran out.
    fn tick(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let mut sent = false;
        for (id, held) in &mut self.held {
            // Only once the server has acked a heartbeat on this stream is our deadline
            // trusted: a server that never acks would otherwise kill every job after a TTL.
            if self.heartbeat_acked && now > held.deadline {
                expired.push(id.clone());
                continue;
            }
            let lease_id = held.ctx.job().lease_id.clone();
            let mut p = held.ctx.progress.lock().expect("progress lock");
            let snapshot = |p: &mut crate::job::ProgressState| {
                p.dirty = false;
                p.urgent = false;
                proto::Progress {
                    percent: p.percent,
                    message: p.message.clone(),
                    updated_at: None,
                }
            };
            if now >= held.hb_next {
                let progress = if p.dirty {
                    held.progress_sent_at = Some(now);
                    Some(snapshot(&mut p))
                } else {
                    None
                };
                self.out.add_heartbeat(proto::Heartbeat {
                    job_id: id.clone(),
                    lease_id,
                    progress,
                });
                held.hb_sent_at = now;
                held.hb_next = now + self.hb_interval;
                sent = true;
            } else if p.urgent
                && held
                    .progress_sent_at
                    .is_none_or(|t| now - t >= PROGRESS_MIN_INTERVAL)
            {
                let progress = Some(snapshot(&mut p));
                self.out.add_progress(proto::ProgressReport {
                    job_id: id.clone(),
                    lease_id,
                    progress,
                });
                held.progress_sent_at = Some(now);
                sent = true;
            }
        }
        for id in expired {
            self.cancel(&id, CancelReason::LeaseLost);
        }
        if sent {
            self.schedule_flush(false);
        }
    }

    fn schedule_flush(&mut self, now: bool) {
        let at = if now || self.out.len() >= self.out.max_batch {
            Instant::now()
        } else {
            Instant::now() + self.w.max_batch_delay // linger: let concurrent results join
        };
        self.flush_at = Some(self.flush_at.map_or(at, |t| t.min(at)));
    }

    fn flush(&mut self) {
        self.flush_at = None;
        let Some(tx) = &self.tx else { return };
        if let Some(reason) = self.drain_message.take() {
            let drain = proto::WorkerDrain { reason };
            let _ = tx.send(proto::WorkRequest {
                body: Some(work_request::Body::Drain(drain)),
            });
        }
        while let Some(batch) = self.out.take_batch() {
            let _ = tx.send(proto::WorkRequest {
                body: Some(work_request::Body::Batch(batch)),
            });
        }
    }
}

async fn stopped(control: &mut watch::Receiver<Control>) {
    loop {
        if control.borrow_and_update().stop {
            return;
        }
        if control.changed().await.is_err() {
            return;
        }
    }
}
