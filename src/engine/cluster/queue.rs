//! Queue policies: the order in which pending jobs are considered.

use crate::domain::workload::Job;
use crate::domain::workload::QueuePolicy;
use std::collections::BTreeSet;

/// Sort key of a pending job: (policy key, job index). Job indices follow submit order, so equal keys are
/// first come, first served.
pub type Key = (u128, u32);

/// The pending jobs, kept in queue order.
#[derive(Debug, Clone)]
pub struct Pending {
    policy: QueuePolicy,
    set: BTreeSet<Key>,
}

impl Pending {
    /// An empty queue under `policy`.
    pub fn new(policy: QueuePolicy) -> Pending {
        Pending {
            policy,
            set: BTreeSet::new(),
        }
    }

    /// The policy key: fifo 0 (index order, which is submit order), sjf the expected duration,
    /// smallest-area requested GPU-seconds, priority highest first. Equal keys go by index.
    pub fn key(&self, job: &Job, index: usize) -> Key {
        let k = match self.policy {
            QueuePolicy::Fifo => 0,
            QueuePolicy::Sjf => job.duration as u128,
            QueuePolicy::SmallestArea => job.total_gpus() as u128 * job.duration as u128,
            QueuePolicy::Priority => (i32::MAX as i64 - job.priority as i64) as u128,
        };
        (k, index as u32)
    }

    /// Adds a job.
    pub fn insert(&mut self, job: &Job, index: usize) {
        let k = self.key(job, index);
        self.set.insert(k);
    }

    /// Removes a job.
    pub fn remove(&mut self, job: &Job, index: usize) {
        let k = self.key(job, index);
        self.set.remove(&k);
    }

    /// Jobs in queue order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.set.iter().map(|&(_, i)| i as usize)
    }

    /// Up to `n` jobs in queue order after `after` (from the head when `None`), with their keys.
    pub fn next_after(&self, after: Option<Key>, n: usize, out: &mut Vec<(Key, usize)>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, Excluded);
        out.extend(
            self.set
                .range((lower, Unbounded))
                .take(n)
                .map(|&k| (k, k.1 as usize)),
        );
    }

    /// Number waiting.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Empties the queue, returning the jobs in order.
    pub fn drain(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.set)
            .into_iter()
            .map(|(_, i)| i as usize)
            .collect()
    }
}
