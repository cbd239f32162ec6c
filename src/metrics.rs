//! Headline numbers of a run, computed from an [`Outcome`]. Pure: no I/O.

use crate::sim::{JobState, Outcome};
use crate::workload::{time_to_s, JobKind, Workload};
use serde::Serialize;

/// Mean and percentiles of a sample (nearest-rank percentiles; all 0 for an empty sample).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    /// Mean.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Stats {
    /// Stats of `values` (any order).
    pub fn of(values: &mut [f64]) -> Stats {
        if values.is_empty() {
            return Stats {
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
            };
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        // Nearest rank: the smallest value with at least p% of the sample at or below it.
        let rank = |p: f64| values[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Stats {
            mean: values.iter().sum::<f64>() / n as f64,
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: values[n - 1],
        }
    }
}

/// Job counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    /// Jobs in the workload.
    pub submitted: u64,
    /// Jobs that ran to completion.
    pub completed: u64,
    /// Jobs that can never fit.
    pub unschedulable: u64,
    /// Training gangs.
    pub training: u64,
    /// Inference services.
    pub inference: u64,
    /// Jobs started by backfill.
    pub backfilled: u64,
    /// Preemptions (a job preempted twice counts twice).
    pub preemptions: u64,
}

/// The `summary` object of report.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Time of the last completion, seconds.
    pub makespan_s: f64,
    /// Job counts.
    pub jobs: JobCounts,
    /// Job completion time (end - submit) of completed jobs, seconds.
    pub jct_s: Stats,
    /// Wait (first start - submit) of started jobs, seconds.
    pub wait_s: Stats,
    /// Busy GPU-time / (GPUs x makespan), 0..1.
    pub gpu_utilization: f64,
    /// NVLink domains spanned per started training gang.
    pub training_domains_spanned: Stats,
    /// Started training gangs that span more domains than the fewest they could fit in.
    pub training_gangs_split: u64,
    /// Jobs ever waiting at once.
    pub max_queue_length: u32,
}

/// Computes the summary.
pub fn summarize(w: &Workload, o: &Outcome) -> Summary {
    let mut jct = Vec::new();
    let mut wait = Vec::new();
    let mut spans = Vec::new();
    let mut split = 0;
    let mut counts = JobCounts {
        submitted: w.jobs.len() as u64,
        completed: 0,
        unschedulable: 0,
        training: 0,
        inference: 0,
        backfilled: 0,
        preemptions: 0,
    };
    for (job, out) in w.jobs.iter().zip(&o.jobs) {
        match job.kind {
            JobKind::Training => counts.training += 1,
            JobKind::Inference => counts.inference += 1,
        }
        counts.preemptions += out.preemptions as u64;
        counts.backfilled += out.backfilled as u64;
        match out.state {
            JobState::Unschedulable => counts.unschedulable += 1,
            JobState::Completed => counts.completed += 1,
        }
        if let Some(start) = out.start {
            wait.push(time_to_s(start - job.submit));
            if job.kind == JobKind::Training {
                spans.push(out.domains as f64);
                if out.domains > min_domains(w, job) {
                    split += 1;
                }
            }
        }
        if let Some(end) = out.end {
            jct.push(time_to_s(end - job.submit));
        }
    }
    let capacity = w.cluster.total_gpus as f64 * o.makespan as f64;
    Summary {
        makespan_s: time_to_s(o.makespan),
        jobs: counts,
        jct_s: Stats::of(&mut jct),
        wait_s: Stats::of(&mut wait),
        gpu_utilization: if capacity > 0.0 {
            (o.busy_gpu_time as f64 / capacity).min(1.0)
        } else {
            0.0
        },
        training_domains_spanned: Stats::of(&mut spans),
        training_gangs_split: split,
        max_queue_length: o.samples.iter().map(|s| s.queued).max().unwrap_or(0),
    }
}

/// Fewest domains the job's gang could span in any pool of an acceptable GPU model.
fn min_domains(w: &Workload, job: &crate::workload::Job) -> u32 {
    w.cluster
        .pools
        .iter()
        .filter(|p| (job.model_mask >> p.preset.gpu_model) & 1 == 1)
        .map(|p| job.gpus.div_ceil(p.domain_gpus().max(1)))
        .min()
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::Stats;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = Stats::of(&mut v);
        assert_eq!(
            (s.mean, s.p50, s.p90, s.p99, s.max),
            (50.5, 50.0, 90.0, 99.0, 100.0)
        );
        let s = Stats::of(&mut [7.0]);
        assert_eq!((s.p50, s.p99), (7.0, 7.0));
        assert_eq!(Stats::of(&mut []).mean, 0.0);
    }
}
