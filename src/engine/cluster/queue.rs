//! Queue policies: the order in which pending jobs are considered.

use crate::domain::workload::Job;
use crate::domain::workload::QueuePolicy;
use std::collections::{BTreeMap, BTreeSet};

/// Sort key of a pending job: (policy key, job index). Job indices follow submit order, so equal keys are
/// first come, first served.
pub type Key = (u128, u32);

/// The pending jobs, kept in queue order.
#[derive(Debug, Clone)]
pub struct Pending {
    policy: QueuePolicy,
    set: BTreeSet<Key>,
    /// Gang sizes of the waiting jobs, with their counts: the smallest one bounds what can start.
    sizes: BTreeMap<u32, u32>,
    /// The same keys by gang size class: class `b` holds gangs of `2^b ..= 2^(b+1) - 1` GPUs, so a walk
    /// that only wants gangs up to some size skips the rest of a long queue.
    classes: Vec<BTreeSet<Key>>,
    /// LAS queue each job was inserted with, by job index.
    levels: Vec<u8>,
}

/// Size class of a gang of `gpus` GPUs.
fn class(gpus: u32) -> usize {
    (u32::BITS - 1 - gpus.max(1).leading_zeros()) as usize
}

impl Pending {
    /// An empty queue under `policy`.
    pub fn new(policy: QueuePolicy) -> Pending {
        Pending {
            policy,
            set: BTreeSet::new(),
            sizes: BTreeMap::new(),
            classes: vec![BTreeSet::new(); u32::BITS as usize],
            levels: Vec::new(),
        }
    }

    /// The policy key: fifo 0 (index order, which is submit order), sjf the expected duration,
    /// smallest-area requested GPU-seconds, priority highest first, las the job's queue (`level`, lowest
    /// first; FIFO inside a queue). Equal keys go by index.
    pub fn key(&self, job: &Job, index: usize, level: u8) -> Key {
        let k = match self.policy {
            QueuePolicy::Fifo => 0,
            QueuePolicy::Sjf => job.duration as u128,
            QueuePolicy::SmallestArea => job.total_gpus() as u128 * job.duration as u128,
            QueuePolicy::Priority => (i32::MAX as i64 - job.priority as i64) as u128,
            QueuePolicy::Las => level as u128,
            // Fair share orders by tenant shares at walk time (the engine's `fetch`); FIFO inside one.
            QueuePolicy::FairShare => 0,
        };
        (k, index as u32)
    }

    /// Adds a job; `level` is its LAS queue (ignored by the other policies).
    pub fn insert(&mut self, job: &Job, index: usize, level: u8) {
        let k = self.key(job, index, level);
        if self.levels.len() <= index {
            self.levels.resize(index + 1, 0);
        }
        self.levels[index] = level;
        if self.set.insert(k) {
            *self.sizes.entry(job.gpus).or_default() += 1;
            self.classes[class(job.gpus)].insert(k);
        }
    }

    /// Removes a job.
    pub fn remove(&mut self, job: &Job, index: usize) {
        let k = self.key(job, index, self.levels.get(index).copied().unwrap_or(0));
        if self.set.remove(&k) {
            self.classes[class(job.gpus)].remove(&k);
            if let Some(n) = self.sizes.get_mut(&job.gpus) {
                *n -= 1;
                if *n == 0 {
                    self.sizes.remove(&job.gpus);
                }
            }
        }
    }

    /// The smallest gang (GPUs per replica) of any waiting job.
    pub fn min_gpus(&self) -> Option<u32> {
        self.sizes.keys().next().copied()
    }

    /// Jobs in queue order, with their keys.
    pub fn iter_keys(&self) -> impl Iterator<Item = (Key, usize)> + '_ {
        self.set.iter().map(|&k| (k, k.1 as usize))
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

    /// Like [`Pending::next_after`], but only jobs whose size class admits gangs of at most `max_gpus` GPUs
    /// (a superset of the jobs with `gpus <= max_gpus`, in queue order). Returns the first key after `after`
    /// that it left out, if any.
    pub fn next_after_up_to(
        &self,
        after: Option<Key>,
        n: usize,
        max_gpus: u64,
        out: &mut Vec<(Key, usize)>,
    ) -> Option<Key> {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, Excluded);
        let mut left_out: Option<Key> = None;
        // A merge of the admitted classes' ranges: each class's next key beside its range, the smallest
        // key taken first.
        let mut heads = Vec::new();
        for (b, c) in self.classes.iter().enumerate() {
            if c.is_empty() {
                continue;
            }
            let mut r = c.range((lower, Unbounded));
            let Some(&k) = r.next() else { continue };
            if (1u64 << b) > max_gpus {
                left_out = Some(left_out.map_or(k, |l| l.min(k)));
            } else {
                heads.push((k, r));
            }
        }
        for _ in 0..n {
            let mut best = 0;
            for h in 1..heads.len() {
                if heads[h].0 < heads[best].0 {
                    best = h;
                }
            }
            let Some((k, r)) = heads.get_mut(best) else {
                break;
            };
            out.push((*k, k.1 as usize));
            match r.next() {
                Some(&next) => *k = next,
                None => drop(heads.swap_remove(best)),
            }
        }
        left_out
    }

    /// The first waiting job in queue order that is not in `except` (waiting jobs, sorted by key).
    pub fn first_except(&self, except: &[(Key, usize)]) -> Option<Key> {
        let mut e = except.iter().map(|&(k, _)| k).peekable();
        for &k in &self.set {
            if e.peek() == Some(&k) {
                e.next();
            } else {
                return Some(k);
            }
        }
        None
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
        self.sizes.clear();
        self.classes.iter_mut().for_each(BTreeSet::clear);
        std::mem::take(&mut self.set)
            .into_iter()
            .map(|(_, i)| i as usize)
            .collect()
    }
}
