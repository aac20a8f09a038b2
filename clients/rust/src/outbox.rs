//! The pending reports of one Work stream, written as `WorkerBatch` messages.
//!
//! Heartbeats and progress are coalesced per job (latest wins, in first-queued order);
//! completions and failures are never dropped or merged. Artifacts still waiting when their
//! job completes ride inside the Completion, so the server never sees an artifact for a job
//! it has already closed.

use std::collections::HashMap;

use crate::proto;

/// Largest batch until the Welcome names another.
pub const DEFAULT_MAX_BATCH: usize = 100;

#[derive(Debug)]
pub(crate) struct Outbox {
    pub max_batch: usize,
    completions: Vec<proto::Completion>,
    failures: Vec<proto::Failure>,
    heartbeats: HashMap<String, proto::Heartbeat>,
    hb_order: Vec<String>,
    progress: HashMap<String, proto::ProgressReport>,
    progress_order: Vec<String>,
    artifacts: Vec<proto::ArtifactRecord>,
    credits: u32,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            max_batch: DEFAULT_MAX_BATCH,
            completions: Vec::new(),
            failures: Vec::new(),
            heartbeats: HashMap::new(),
            hb_order: Vec::new(),
            progress: HashMap::new(),
            progress_order: Vec::new(),
            artifacts: Vec::new(),
            credits: 0,
        }
    }
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.completions.len()
            + self.failures.len()
            + self.heartbeats.len()
            + self.progress.len()
            + self.artifacts.len()
            + usize::from(self.credits > 0)
    }

    pub fn add_heartbeat(&mut self, hb: proto::Heartbeat) {
        if !self.heartbeats.contains_key(&hb.job_id) {
            self.hb_order.push(hb.job_id.clone());
        }
        self.drop_progress(&hb.job_id); // a heartbeat with progress supersedes it
        self.heartbeats.insert(hb.job_id.clone(), hb);
    }

    pub fn add_progress(&mut self, report: proto::ProgressReport) {
        if !self.progress.contains_key(&report.job_id) {
            self.progress_order.push(report.job_id.clone());
        }
        self.progress.insert(report.job_id.clone(), report);
    }

    pub fn add_artifact(&mut self, record: proto::ArtifactRecord) {
        self.artifacts.push(record);
    }

    pub fn add_completion(&mut self, mut completion: proto::Completion) {
        let (mine, rest): (Vec<_>, Vec<_>) = self
            .artifacts
            .drain(..)
            .partition(|a| a.job_id == completion.job_id);
        self.artifacts = rest;
        completion.artifacts.extend(mine);
        self.forget(&completion.job_id);
        self.completions.push(completion);
    }

    pub fn add_failure(&mut self, failure: proto::Failure) {
        // Artifacts of a failed attempt still go out: they help to debug the failure.
        self.forget(&failure.job_id);
        self.failures.push(failure);
    }

    /// A slot freed without a report (the job was canceled locally).
    pub fn add_credit(&mut self, job_id: &str) {
        self.forget(job_id);
        self.artifacts.retain(|a| a.job_id != job_id);
        self.credits += 1;
    }

    /// The job's lease ends with its report: pending heartbeats/progress are moot.
    fn forget(&mut self, job_id: &str) {
        if self.heartbeats.remove(job_id).is_some() {
            self.hb_order.retain(|id| id != job_id);
        }
        self.drop_progress(job_id);
    }

    fn drop_progress(&mut self, job_id: &str) {
        if self.progress.remove(job_id).is_some() {
            self.progress_order.retain(|id| id != job_id);
        }
    }

    /// Remove up to `max_batch` entries as one message (artifacts, results, heartbeats,
    /// progress), or None when nothing waits.
    pub fn take_batch(&mut self) -> Option<proto::WorkerBatch> {
        if self.len() == 0 {
            return None;
        }
        let mut room = self.max_batch;
        let mut take = |n: usize| {
            let k = n.min(room);
            room -= k;
            k
        };
        let mut batch = proto::WorkerBatch {
            artifacts: self.artifacts.drain(..take(self.artifacts.len())).collect(),
            ..Default::default()
        };
        batch.completions = self
            .completions
            .drain(..take(self.completions.len()))
            .collect();
        batch.failures = self.failures.drain(..take(self.failures.len())).collect();
        let n = take(self.hb_order.len());
        for id in self.hb_order.drain(..n) {
            batch.heartbeats.extend(self.heartbeats.remove(&id));
        }
        let n = take(self.progress_order.len());
        for id in self.progress_order.drain(..n) {
            batch.progress.extend(self.progress.remove(&id));
        }
        batch.credits = std::mem::take(&mut self.credits);
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(job: &str, name: &str) -> proto::ArtifactRecord {
        proto::ArtifactRecord {
            job_id: job.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn pending_artifacts_ride_inside_their_completion() {
        let mut o = Outbox::default();
        o.add_artifact(artifact("a", "x"));
        o.add_artifact(artifact("b", "y"));
        o.add_heartbeat(proto::Heartbeat {
            job_id: "a".into(),
            ..Default::default()
        });
        o.add_completion(proto::Completion {
            job_id: "a".into(),
            ..Default::default()
        });
        let batch = o.take_batch().expect("a batch");
        assert_eq!(batch.completions[0].artifacts, vec![artifact("a", "x")]);
        assert_eq!(batch.artifacts, vec![artifact("b", "y")]);
        assert!(
            batch.heartbeats.is_empty(),
            "the completion supersedes the heartbeat"
        );
        assert!(o.take_batch().is_none());
    }

    #[test]
    fn heartbeats_coalesce_and_batches_respect_max_batch() {
        let mut o = Outbox {
            max_batch: 2,
            ..Outbox::default()
        };
        for job in ["a", "b", "a", "c"] {
            o.add_heartbeat(proto::Heartbeat {
                job_id: job.into(),
                ..Default::default()
            });
        }
        o.add_credit("z");
        let first = o.take_batch().expect("first");
        let ids: Vec<_> = first.heartbeats.iter().map(|h| h.job_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(first.credits, 1);
        let second = o.take_batch().expect("second");
        assert_eq!(second.heartbeats.len(), 1);
        assert_eq!(second.credits, 0);
        assert!(o.take_batch().is_none());
    }
}
