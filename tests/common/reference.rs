//! A reference scheduler for differential testing, written from the definitions and not from the engine:
//! one pool of `capacity` GPUs, gangs that may take any free GPUs of the pool, durations known exactly.
//! Deliberately simple and slow: a loop over event instants and a linear scan of the sorted queue.
//!
//! At each instant: jobs that end now release their GPUs, jobs submitted now join the queue, then one round
//! walks the queue in policy order (ties by workload order):
//! - every job is started while it fits; the first one that does not is the head;
//! - `none`: the round ends at the head;
//! - `greedy`: every later job that fits starts (list scheduling, no reservation);
//! - `easy` (EASY backfill, Lifka 1995 / Mu'alem & Feitelson 2001): the head's shadow time is the earliest
//!   end of running jobs at which the free GPUs reach its size; `extra` is what is free then beyond the
//!   head's size. A later job starts if it fits now and either ends by the shadow time or takes no more than
//!   `extra` (which it then uses up).
//!
//! `depth` bounds how many jobs behind the head a round looks at.

#![allow(dead_code)]

/// One job as the reference sees it (times in microseconds).
#[derive(Debug, Clone, Copy)]
pub struct RefJob {
    pub submit: u64,
    pub duration: u64,
    pub gpus: u64,
    pub priority: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefQueue {
    Fifo,
    Sjf,
    SmallestArea,
    Priority,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefBackfill {
    None,
    Easy,
    Greedy,
}

/// Start time of every job (`None`: it never fits the pool).
pub fn schedule(
    jobs: &[RefJob],
    capacity: u64,
    queue: RefQueue,
    backfill: RefBackfill,
    depth: usize,
) -> Vec<Option<u64>> {
    let key = |i: usize| -> (i128, usize) {
        let j = &jobs[i];
        let k = match queue {
            RefQueue::Fifo => 0,
            RefQueue::Sjf => j.duration as i128,
            RefQueue::SmallestArea => j.gpus as i128 * j.duration as i128,
            RefQueue::Priority => -(j.priority as i128),
        };
        (k, i)
    };
    let mut start: Vec<Option<u64>> = vec![None; jobs.len()];
    let mut waiting: Vec<usize> = Vec::new();
    let mut running: Vec<(u64, usize)> = Vec::new(); // (end, job)
    let mut free = capacity;
    let mut next = 0; // next job to arrive (jobs are in submit order)
    loop {
        let next_submit = jobs.get(next).map(|j| j.submit);
        let next_end = running.iter().map(|&(e, _)| e).min();
        let now = match (next_submit, next_end) {
            (None, None) => break,
            (a, b) => a.unwrap_or(u64::MAX).min(b.unwrap_or(u64::MAX)),
        };
        // Ends, then arrivals.
        running.retain(|&(e, j)| {
            if e == now {
                free += jobs[j].gpus;
                false
            } else {
                true
            }
        });
        while next < jobs.len() && jobs[next].submit == now {
            if jobs[next].gpus <= capacity {
                waiting.push(next);
            }
            next += 1;
        }
        // One round.
        waiting.sort_by_key(|&i| key(i));
        let mut started = Vec::new();
        let mut head: Option<(u64, u64)> = None; // (shadow, extra)
        let mut blocked = false;
        let mut behind = 0;
        for &i in &waiting {
            let j = &jobs[i];
            if blocked {
                if backfill == RefBackfill::None || behind >= depth {
                    break;
                }
                behind += 1;
            }
            let fits = j.gpus <= free;
            let ok = match (blocked, backfill) {
                (false, _) | (true, RefBackfill::Greedy) => fits,
                (true, RefBackfill::None) => false,
                (true, RefBackfill::Easy) => {
                    let (shadow, extra) = head.expect("easy has a head");
                    if fits && now + j.duration <= shadow {
                        true
                    } else if fits && j.gpus <= extra {
                        head = Some((shadow, extra - j.gpus));
                        true
                    } else {
                        false
                    }
                }
            };
            if ok {
                free -= j.gpus;
                running.push((now + j.duration, i));
                start[i] = Some(now);
                started.push(i);
                continue;
            }
            if !blocked {
                blocked = true;
                if backfill == RefBackfill::Easy {
                    head = Some(shadow(jobs, &running, free, j.gpus));
                }
            }
        }
        waiting.retain(|i| !started.contains(i));
    }
    start
}

/// (shadow time, extra GPUs) of a head needing `need` GPUs: release running jobs in end order until it fits.
fn shadow(jobs: &[RefJob], running: &[(u64, usize)], free: u64, need: u64) -> (u64, u64) {
    let mut ends: Vec<(u64, usize)> = running.to_vec();
    ends.sort();
    let mut avail = free;
    let mut k = 0;
    while k < ends.len() {
        let t = ends[k].0;
        while k < ends.len() && ends[k].0 == t {
            avail += jobs[ends[k].1].gpus;
            k += 1;
        }
        if avail >= need {
            return (t, avail - need);
        }
    }
    (u64::MAX, 0)
}
