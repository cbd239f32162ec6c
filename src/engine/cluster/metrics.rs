//! Headline numbers of a run, computed from an [`Outcome`]. Pure: no I/O.

use crate::domain::cluster::Contract;
use crate::domain::workload::{time_to_s, JobKind, Workload};
use crate::engine::cluster::{JobState, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;

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
        // Unstable is exact here: values equal under `total_cmp` have the same bits, so every order of
        // them gives the same percentiles and the same sum.
        values.sort_unstable_by(f64::total_cmp);
        Stats::of_sorted(values)
    }

    /// Stats of `values` sorted by `f64::total_cmp` (as [`Stats::of`] and [`merge_sorted`] leave them).
    pub fn of_sorted(values: &[f64]) -> Stats {
        debug_assert!(values.windows(2).all(|w| w[0].total_cmp(&w[1]).is_le()));
        let n = values.len();
        if n == 0 {
            return Stats {
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
            };
        }
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

/// The values of `runs`, each sorted by `f64::total_cmp`, in one vector sorted the same way: balanced
/// merges of pairs, O(n log k) for k runs. Values equal under `total_cmp` have the same bits, so this is
/// the vector that sorting the runs' concatenation gives.
pub fn merge_sorted(runs: &[&[f64]]) -> Vec<f64> {
    fn two(a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if b[j].total_cmp(&a[i]).is_lt() {
                out.push(b[j]);
                j += 1;
            } else {
                out.push(a[i]);
                i += 1;
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        out
    }
    let mut level: Vec<Vec<f64>> = runs
        .chunks(2)
        .map(|p| two(p[0], p.get(1).copied().unwrap_or_default()))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| two(&p[0], p.get(1).map_or(&[], |v| v.as_slice())))
            .collect();
    }
    level.pop().unwrap_or_default()
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
    /// Agentic RL jobs.
    pub rl: u64,
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
    /// Training jobs with a model: slowdown of their placement against the ideal one.
    pub training: TrainingSummary,
    /// Agentic RL jobs that started.
    pub rl: RlSummary,
    /// Free GPUs stranded for the head-of-queue gang (time-weighted over the makespan).
    pub stranded_gpus: TimeWeighted,
    /// Price of the capacity over the makespan: every GPU of every committed pool, busy or not, and the
    /// GPU-hours used of on-demand pools.
    pub cost_usd: f64,
    /// Price of the GPU-hours jobs used.
    pub cost_usd_busy: f64,
    /// Energy over the makespan, MWh (idle and busy power per GPU).
    pub energy_mwh: f64,
    /// Highest total power draw, MW.
    pub peak_power_mw: f64,
}

/// RL jobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RlSummary {
    /// RL jobs that started.
    pub jobs: u64,
    /// Step time, seconds.
    pub step_s: Stats,
    /// Share of their GPU-time their GPUs sat idle.
    pub gpu_idle_share: Stats,
}

/// Slowdown of modelled training jobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrainingSummary {
    /// Training jobs with a performance model that started.
    pub modelled_jobs: u64,
    /// Run time on their last placement / run time on the ideal placement.
    pub slowdown: Stats,
}

/// A time-weighted mean and the peak.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimeWeighted {
    /// Mean over the makespan.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
}

/// Computes the summary.
pub fn summarize(w: &Workload, o: &Outcome) -> Summary {
    let mut jct = Vec::new();
    let mut wait = Vec::new();
    let mut spans = Vec::new();
    let mut split = 0;
    let mut slowdowns = Vec::new();
    let mut counts = JobCounts {
        submitted: w.jobs.len() as u64,
        completed: 0,
        unschedulable: 0,
        training: 0,
        inference: 0,
        rl: 0,
        backfilled: 0,
        preemptions: 0,
    };
    for (job, out) in w.jobs.iter().zip(&o.jobs) {
        match job.kind {
            JobKind::Training => counts.training += 1,
            JobKind::Inference => counts.inference += 1,
            JobKind::Rl => counts.rl += 1,
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
                if job.model.is_some() {
                    slowdowns.push(out.slowdown);
                }
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
    let economics = economics(w, o);
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
        training: TrainingSummary {
            modelled_jobs: slowdowns.len() as u64,
            slowdown: Stats::of(&mut slowdowns),
        },
        rl: {
            let (mut steps, mut idle): (Vec<f64>, Vec<f64>) = o
                .jobs
                .iter()
                .filter_map(|j| j.rl)
                .map(|b| (b.step_s, b.gpu_idle_share))
                .unzip();
            RlSummary {
                jobs: steps.len() as u64,
                step_s: Stats::of(&mut steps),
                gpu_idle_share: Stats::of(&mut idle),
            }
        },
        stranded_gpus: stranded(o),
        cost_usd: economics.cost_usd,
        cost_usd_busy: economics.cost_usd_busy,
        energy_mwh: economics.energy_mwh,
        peak_power_mw: economics.peak_power_mw,
    }
}

fn stranded(o: &Outcome) -> TimeWeighted {
    let mut area = 0u128;
    let mut max = 0u64;
    for (i, s) in o.samples.iter().enumerate() {
        let until = o
            .samples
            .get(i + 1)
            .map_or(o.makespan, |n| n.time)
            .min(o.makespan);
        area += s.stranded_gpus as u128 * until.saturating_sub(s.time) as u128;
        max = max.max(s.stranded_gpus);
    }
    let mean = if o.makespan > 0 {
        area as f64 / o.makespan as f64
    } else {
        0.0
    };
    TimeWeighted {
        mean,
        max: max as f64,
    }
}

/// Cost and power of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Economics {
    /// Every GPU over the makespan at its pool's price.
    pub cost_usd: f64,
    /// Busy GPU-hours at their pool's price.
    pub cost_usd_busy: f64,
    /// Energy, MWh.
    pub energy_mwh: f64,
    /// Peak power, MW.
    pub peak_power_mw: f64,
}

/// Prices and powers from the pools, busy time from the placement segments.
pub fn economics(w: &Workload, o: &Outcome) -> Economics {
    let c = &w.cluster;
    let idle_w: f64 = c.pools.iter().map(|p| p.gpus() as f64 * p.idle_w).sum();
    let mut cost_busy = 0.0;
    let mut busy_joules_extra = 0.0; // busy - idle power, W x s
    let mut steps: Vec<(u64, f64)> = Vec::with_capacity(o.segments.len() * 2);
    for seg in &o.segments {
        let secs = time_to_s(seg.end - seg.start);
        for &(d, g) in &seg.domains {
            let p = c.pool_of(d);
            let extra = g as f64 * (p.busy_w - p.idle_w);
            cost_busy += g as f64 * secs / 3600.0 * p.usd_per_gpu_hour;
            busy_joules_extra += extra * secs;
            steps.push((seg.start, extra));
            steps.push((seg.end, -extra));
        }
    }
    // Ends before starts at the same instant, so back-to-back jobs do not count twice.
    steps.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let (mut now, mut peak) = (0.0f64, 0.0f64);
    for (_, d) in steps {
        now += d;
        peak = peak.max(now);
    }
    Economics {
        cost_usd: pool_costs(w, o).iter().map(|p| p.cost_usd).sum(),
        cost_usd_busy: cost_busy,
        energy_mwh: (idle_w * time_to_s(o.makespan) + busy_joules_extra) / 3.6e9,
        peak_power_mw: (idle_w + peak) / 1e6,
    }
}

/// One pool's bill: committed pools pay for every GPU over the makespan, on-demand pools for the GPU-hours
/// used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolCost {
    /// GPU-hours jobs held there.
    pub used_gpu_hours: f64,
    /// GPU-hours paid for.
    pub paid_gpu_hours: f64,
    /// USD.
    pub cost_usd: f64,
}

/// Every pool's bill, in pool order.
pub fn pool_costs(w: &Workload, o: &Outcome) -> Vec<PoolCost> {
    let c = &w.cluster;
    let mut used = vec![0u128; c.pools.len()]; // GPU-microseconds
    for seg in &o.segments {
        for &(d, g) in &seg.domains {
            used[c.domain_pool[d as usize] as usize] += g as u128 * (seg.end - seg.start) as u128;
        }
    }
    let makespan_h = time_to_s(o.makespan) / 3600.0;
    c.pools
        .iter()
        .zip(used)
        .map(|(p, u)| {
            let used_gpu_hours = u as f64 / 3.6e9;
            let paid_gpu_hours = match p.contract {
                Contract::Committed => p.gpus() as f64 * makespan_h,
                Contract::OnDemand => used_gpu_hours,
            };
            PoolCost {
                used_gpu_hours,
                paid_gpu_hours,
                cost_usd: paid_gpu_hours * p.usd_per_gpu_hour,
            }
        })
        .collect()
}

/// Where the money and the power went: by provider and contract, and per site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityReport {
    /// USD per provider.
    pub cost_by_provider: BTreeMap<String, f64>,
    /// USD per contract (`committed`, `on-demand`).
    pub cost_by_contract: BTreeMap<String, f64>,
    /// GPU-hours used on committed pools / GPU-hours committed (what the contract bought vs what ran).
    pub committed_utilization: f64,
    /// GPU-hours run on on-demand pools.
    pub on_demand_gpu_hours: f64,
    /// Jobs that ran on on-demand capacity at least once.
    pub jobs_spilled: u64,
    /// Per `[[sites]]` entry, in workload order.
    pub sites: Vec<SiteReport>,
}

/// One site's power over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteReport {
    /// Name.
    pub name: String,
    /// Cap, MW (absent: none).
    pub cap_mw: Option<f64>,
    /// Power usage effectiveness.
    pub pue: f64,
    /// Highest facility power (IT x PUE: every GPU at idle power, busy ones at busy power), MW.
    pub peak_mw: f64,
    /// Time-weighted mean over the makespan, MW.
    pub mean_mw: f64,
    /// Energy over the makespan, MWh.
    pub energy_mwh: f64,
    /// Seconds at the cap: the site drew so much that not one more of its NVLink domains (the smallest)
    /// could turn busy.
    pub time_at_cap_s: f64,
}

/// Cost by provider and contract, committed utilisation and site power, from the placement segments.
pub fn capacity_report(w: &Workload, o: &Outcome) -> CapacityReport {
    let c = &w.cluster;
    let costs = pool_costs(w, o);
    let (mut by_provider, mut by_contract) = (BTreeMap::new(), BTreeMap::new());
    let (mut committed_used, mut committed_paid, mut on_demand) = (0.0, 0.0, 0.0);
    for (p, cost) in c.pools.iter().zip(&costs) {
        *by_provider.entry(p.provider.clone()).or_insert(0.0) += cost.cost_usd;
        *by_contract
            .entry(p.contract.as_str().to_string())
            .or_insert(0.0) += cost.cost_usd;
        match p.contract {
            Contract::Committed => {
                committed_used += cost.used_gpu_hours;
                committed_paid += cost.paid_gpu_hours;
            }
            Contract::OnDemand => on_demand += cost.used_gpu_hours,
        }
    }
    let mut spilled = vec![false; w.jobs.len()];
    for seg in &o.segments {
        if seg
            .domains
            .iter()
            .any(|&(d, _)| c.pool_of(d).contract == Contract::OnDemand)
        {
            spilled[seg.job as usize] = true;
        }
    }
    // Site power: every GPU idle, plus busy-minus-idle on held GPUs, times PUE.
    let idle = c.site_power_w(&crate::domain::cluster::ClusterState::new(c), &[]);
    let mut steps: Vec<Vec<(u64, f64)>> = vec![Vec::new(); c.sites.len()];
    for seg in &o.segments {
        for &(d, g) in &seg.domains {
            let p = c.pool_of(d);
            if let Some(s) = p.site {
                let extra = g as f64 * p.busy_w_extra() * c.sites[s as usize].pue;
                steps[s as usize].push((seg.start, extra));
                steps[s as usize].push((seg.end, -extra));
            }
        }
    }
    let sites = c
        .sites
        .iter()
        .enumerate()
        .map(|(k, site)| {
            let step = &mut steps[k];
            // Ends before starts at the same instant.
            step.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            // At the cap: the site could not turn one more NVLink domain busy (its smallest domain's step).
            let one_domain = c
                .pools
                .iter()
                .filter(|p| p.site == Some(k as u32))
                .map(|p| p.domain_gpus() as f64 * p.busy_w_extra() * site.pue)
                .fold(f64::INFINITY, f64::min);
            let (mut now_w, mut peak, mut area, mut at_cap) = (idle[k], idle[k], 0.0f64, 0u64);
            let mut last = 0u64;
            for &(t, dw) in step.iter() {
                let t = t.min(o.makespan);
                area += now_w * time_to_s(t - last.min(t));
                if site
                    .power_cap_w
                    .is_some_and(|cap| now_w + one_domain > cap * (1.0 + 1e-12))
                {
                    at_cap += t - last.min(t);
                }
                last = last.max(t);
                now_w += dw;
                peak = peak.max(now_w);
            }
            let tail = o.makespan.saturating_sub(last);
            area += now_w * time_to_s(tail);
            let span = time_to_s(o.makespan);
            SiteReport {
                name: site.name.clone(),
                cap_mw: site.power_cap_w.map(|w| w / 1e6),
                pue: site.pue,
                peak_mw: peak / 1e6,
                mean_mw: if span > 0.0 {
                    area / span / 1e6
                } else {
                    idle[k] / 1e6
                },
                energy_mwh: area / 3.6e9,
                time_at_cap_s: time_to_s(at_cap),
            }
        })
        .collect();
    CapacityReport {
        cost_by_provider: by_provider,
        cost_by_contract: by_contract,
        committed_utilization: if committed_paid > 0.0 {
            committed_used / committed_paid
        } else {
            0.0
        },
        on_demand_gpu_hours: on_demand,
        jobs_spilled: spilled.iter().filter(|&&x| x).count() as u64,
        sites,
    }
}

/// Fewest domains the job's gang could span in any pool of an acceptable GPU model.
fn min_domains(w: &Workload, job: &crate::domain::workload::Job) -> u32 {
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
    use super::{merge_sorted, Stats};
    use proptest::prelude::*;

    proptest! {
        /// Merging sorted runs gives, bit for bit, what sorting their concatenation gives (negative zero,
        /// repeats and empty runs included), and so the same stats.
        #[test]
        fn merged_runs_are_the_sorted_concatenation(
            runs in prop::collection::vec(
                prop::collection::vec(prop_oneof![(-50i32..50).prop_map(|x| f64::from(x) / 4.0), Just(-0.0)], 0..40),
                0..9,
            )
        ) {
            let mut sorted_runs = runs.clone();
            for r in &mut sorted_runs {
                r.sort_unstable_by(f64::total_cmp);
            }
            let refs: Vec<&[f64]> = sorted_runs.iter().map(|r| r.as_slice()).collect();
            let merged = merge_sorted(&refs);
            let mut all: Vec<f64> = runs.concat();
            let stats = Stats::of(&mut all);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
            prop_assert_eq!(bits(&merged), bits(&all));
            prop_assert_eq!(Stats::of_sorted(&merged), stats);
        }
    }

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

/// A time-weighted mean and the extremes of a quantity over the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Level {
    /// Time-weighted mean.
    pub mean: f64,
    /// Lowest.
    pub min: f64,
    /// Highest.
    pub max: f64,
}

impl Level {
    /// Of a step function given as (time, value) changes, from the first change to `end`.
    pub fn of_steps(points: &[(u64, f64)], end: u64) -> Level {
        let (Some(&(t0, _)), true) = (points.first(), end > 0) else {
            return Level {
                mean: 0.0,
                min: 0.0,
                max: 0.0,
            };
        };
        let (mut area, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
        for (k, &(t, v)) in points.iter().enumerate() {
            let next = points.get(k + 1).map_or(end, |p| p.0).min(end);
            if t < end {
                area += v * next.saturating_sub(t) as f64;
            }
            min = min.min(v);
            max = max.max(v);
        }
        let span = end.saturating_sub(t0).max(1) as f64;
        Level {
            mean: area / span,
            min,
            max,
        }
    }
}

/// Replicas of one autoscaled service over its lifetime.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceReplicas {
    /// Job id.
    pub id: String,
    /// Replicas serving or starting.
    pub replicas: Level,
    /// (time s, replicas) at the start and every change.
    pub timeline: Vec<(f64, u32)>,
}

/// `sharing` in report.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharingReport {
    /// Policy as run.
    pub policy: crate::domain::workload::Sharing,
    /// GPUs held by inference services (time-weighted over the makespan).
    pub inference_gpus: Level,
    /// GPUs held by training and RL jobs.
    pub training_gpus: Level,
    /// Autoscaled services.
    pub services: Vec<ServiceReplicas>,
    /// Scale-ups that preempted or shrank training.
    pub reclaims: u64,
    /// Training jobs preempted for them.
    pub preempted: u64,
    /// Elastic jobs shrunk for them.
    pub shrunk: u64,
    /// From the evaluation that wanted the replica to the replica serving, seconds.
    pub reclaim_latency_s: Stats,
    /// Training GPU-hours lost to preemptions and resizes (since the last checkpoint, plus restart cost).
    pub lost_gpu_hours: f64,
    /// Training GPU-hours spent writing checkpoints.
    pub checkpoint_gpu_hours: f64,
    /// Training GPU-hours held.
    pub training_gpu_hours: f64,
    /// Useful training GPU-hours / training GPU-hours held (held less lost and checkpoint time).
    pub goodput: f64,
    /// Elastic resizes and replica changes.
    pub resizes: u64,
}

/// The sharing section, when the run has anything to say about it.
pub fn sharing_report(w: &Workload, o: &Outcome) -> Option<SharingReport> {
    let relevant = w.scheduler.sharing != crate::domain::workload::Sharing::Static
        || !o.services.is_empty()
        || w.jobs
            .iter()
            .any(|j| j.elastic.is_some() || j.checkpoint.is_some());
    if !relevant {
        return None;
    }
    let end = o.samples.last().map_or(0, |s| s.time).max(o.makespan);
    let inf: Vec<(u64, f64)> = o
        .samples
        .iter()
        .map(|s| (s.time, s.inference_gpus as f64))
        .collect();
    let train: Vec<(u64, f64)> = o
        .samples
        .iter()
        .map(|s| (s.time, (s.busy_gpus - s.inference_gpus) as f64))
        .collect();
    let mut held = 0u128;
    for seg in &o.segments {
        if w.jobs[seg.job as usize].kind != JobKind::Inference {
            let g: u64 = seg.domains.iter().map(|&(_, g)| g as u64).sum();
            held += (seg.end - seg.start) as u128 * g as u128;
        }
    }
    let lost: u128 = o.jobs.iter().map(|j| j.lost_gpu_time).sum();
    let ckpt: u128 = o.jobs.iter().map(|j| j.checkpoint_gpu_time).sum();
    let hours = |x: u128| x as f64 / 3.6e9;
    let mut latency: Vec<f64> = o.reclaims.latencies.iter().map(|&t| time_to_s(t)).collect();
    Some(SharingReport {
        policy: w.scheduler.sharing,
        inference_gpus: Level::of_steps(&inf, end),
        training_gpus: Level::of_steps(&train, end),
        services: o
            .services
            .iter()
            .map(|s| {
                let pts: Vec<(u64, f64)> = s.timeline.iter().map(|&(t, n)| (t, n as f64)).collect();
                ServiceReplicas {
                    id: w.jobs[s.job].id.clone(),
                    replicas: Level::of_steps(&pts[..pts.len().saturating_sub(1)], s.end),
                    timeline: s.timeline.iter().map(|&(t, n)| (time_to_s(t), n)).collect(),
                }
            })
            .collect(),
        reclaims: o.reclaims.count,
        preempted: o.reclaims.preempted,
        shrunk: o.reclaims.shrunk,
        reclaim_latency_s: Stats::of(&mut latency),
        lost_gpu_hours: hours(lost),
        checkpoint_gpu_hours: hours(ckpt),
        training_gpu_hours: hours(held),
        goodput: if held > 0 {
            1.0 - (lost + ckpt).min(held) as f64 / held as f64
        } else {
            1.0
        },
        resizes: o.jobs.iter().map(|j| u64::from(j.resizes)).sum(),
    })
}

/// Count per failure cause, named as in workload files.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ByCause {
    /// The GPU itself.
    pub gpu: u64,
    /// HBM.
    pub hbm: u64,
    /// Switches, cables, NICs.
    pub network: u64,
    /// Host hardware and maintenance.
    pub host: u64,
    /// Software and NCCL.
    pub software: u64,
}

impl ByCause {
    fn of(counts: [u64; 5]) -> ByCause {
        let [gpu, hbm, network, host, software] = counts;
        ByCause {
            gpu,
            hbm,
            network,
            host,
            software,
        }
    }
}

/// report.json `failures` (with `[failures]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailuresReport {
    /// Jobs stopped by a node failure (one per job per failure).
    pub interruptions: u64,
    /// Of them, by cause.
    pub by_cause: ByCause,
    /// Node failures, whether a job was on the node or not.
    pub node_failures: u64,
    /// Of them, by cause.
    pub node_failures_by_cause: ByCause,
    /// GPU-hours lost to failures: work since the last checkpoint plus restart time.
    pub lost_gpu_hours: f64,
    /// Of them, restart time.
    pub restart_gpu_hours: f64,
    /// GPU-hours of all jobs spent writing checkpoints.
    pub checkpoint_gpu_hours: f64,
    /// Interrupted jobs that moved to a spare node.
    pub spare_swaps: u64,
    /// Interrupted jobs that went back to the queue.
    pub requeued: u64,
    /// Over completed training and RL jobs: useful GPU time / (GPUs x wall time from first start to end).
    pub effective_training_time: f64,
    /// (day, cause, jobs interrupted) of every failure that interrupted a job.
    pub timeline: Vec<(f64, &'static str, u32)>,
}

/// Each completed training or RL job's effective training time: the GPU time it held less the time lost
/// to preemptions, resizes and failures and the time spent writing checkpoints, over its GPUs x its wall
/// time from first start to end (Llama 3's measure: time training / time elapsed). `None` for services and
/// jobs that did not complete.
pub fn effective_training_times(w: &Workload, o: &Outcome) -> Vec<Option<f64>> {
    useful_and_wall(w, o)
        .into_iter()
        .map(|x| x.map(|(u, t)| if t > 0 { u as f64 / t as f64 } else { 1.0 }))
        .collect()
}

/// Per job: (useful GPU-microseconds, GPUs x wall microseconds) of a completed training or RL job.
fn useful_and_wall(w: &Workload, o: &Outcome) -> Vec<Option<(u128, u128)>> {
    let mut held = vec![0u128; w.jobs.len()];
    for s in &o.segments {
        let g: u64 = s.domains.iter().map(|&(_, g)| g as u64).sum();
        held[s.job as usize] += (s.end - s.start) as u128 * g as u128;
    }
    w.jobs
        .iter()
        .zip(&o.jobs)
        .zip(held)
        .map(|((job, out), held)| {
            if job.kind == JobKind::Inference || out.state != JobState::Completed {
                return None;
            }
            let (start, end) = (out.start?, out.end?);
            let useful = held.saturating_sub(out.lost_gpu_time + out.checkpoint_gpu_time);
            let wall = (end - start) as u128 * job.total_gpus() as u128;
            Some((useful.min(wall), wall))
        })
        .collect()
}

/// The failures section, with `[failures]`.
pub fn failures_report(w: &Workload, o: &Outcome) -> Option<FailuresReport> {
    let f = o.failures.as_ref()?;
    let hours = |x: u128| x as f64 / 3.6e9;
    let (mut useful, mut wall) = (0u128, 0u128);
    for (u, t) in useful_and_wall(w, o).into_iter().flatten() {
        useful += u;
        wall += t;
    }
    Some(FailuresReport {
        interruptions: f.interruptions.iter().sum(),
        by_cause: ByCause::of(f.interruptions),
        node_failures: f.node_failures.iter().sum(),
        node_failures_by_cause: ByCause::of(f.node_failures),
        lost_gpu_hours: hours(f.lost_gpu_time),
        restart_gpu_hours: hours(f.restart_gpu_time),
        checkpoint_gpu_hours: hours(o.jobs.iter().map(|j| j.checkpoint_gpu_time).sum()),
        spare_swaps: f.spare_swaps,
        requeued: f.requeued,
        effective_training_time: if wall > 0 {
            useful as f64 / wall as f64
        } else {
            1.0
        },
        timeline: f
            .timeline
            .iter()
            .map(|&(t, c, n)| (time_to_s(t) / 86_400.0, c.as_str(), n))
            .collect(),
    })
}
