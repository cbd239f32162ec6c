//! Reports at the edge: report.json, jobs.csv and the summary table. Everything outside the `run` object is
//! a function of the workload and seed alone, so two runs give byte-identical files there.

use crate::domain::workload::{time_to_s, Workload};
use crate::engine::cluster::metrics::{summarize, Stats, Summary};
use crate::engine::cluster::{JobState, Outcome};
use serde::Serialize;
use std::fmt::Write as _;

/// What legitimately differs between identical runs.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// ultrasched version.
    pub version: String,
    /// Backend name ("cpu", "gpu", "verify").
    pub backend: String,
    /// Adapter description.
    pub adapter: String,
    /// Wall-clock seconds of the simulation.
    pub wall_s: f64,
    /// Of which the cluster engine (scheduling and placing every job).
    pub cluster_s: f64,
    /// Of which request-level serving of the inference services (services in parallel).
    pub serving_s: f64,
    /// Under `--backend auto` with a GPU: the crossover and how many calls and pairs each backend took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_usage: Option<crate::kernel::placement::KernelUsage>,
    /// The workload file as given on the command line (`check` reads it back; empty when not from a file).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub workload_file: String,
}

/// report.json.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Workload name.
    pub workload: String,
    /// Seed used.
    pub seed: u64,
    /// Scheduler settings.
    pub scheduler: SchedulerInfo,
    /// The fleet.
    pub cluster: ClusterInfo,
    /// Headline numbers.
    pub summary: Summary,
    /// Kernel and engine counters.
    pub engine: EngineInfo,
    /// Agentic RL jobs: step time breakdown and GPU idle share (last placement of each started job).
    pub rl_jobs: Vec<RlJobInfo>,
    /// Request-level results of inference services with a `serving` spec (absent when there are none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference: Option<crate::engine::serving::InferenceReport>,
    /// How training and inference shared the fleet (present with autoscaled services, elastic or
    /// checkpointed jobs, or a sharing policy other than static).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing: Option<crate::engine::cluster::metrics::SharingReport>,
    /// Node failures and what they cost (with `[failures]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<crate::engine::cluster::metrics::FailuresReport>,
    /// Cost by provider and contract, committed utilisation, power per site.
    #[serde(flatten)]
    pub capacity: crate::engine::cluster::metrics::CapacityReport,
    /// Run-specific facts (excluded from determinism checks).
    pub run: RunInfo,
}

/// Scheduler settings as run.
#[derive(Debug, Clone, Serialize)]
pub struct SchedulerInfo {
    /// Queue policy.
    pub queue: crate::domain::workload::QueuePolicy,
    /// Backfill mode.
    pub backfill: crate::domain::workload::Backfill,
    /// Priority preemption on.
    pub preemption: bool,
    /// Placement policy.
    pub placement: crate::domain::workload::PlacementPolicy,
}

/// One pool.
#[derive(Debug, Clone, Serialize)]
pub struct PoolInfo {
    /// Name.
    pub name: String,
    /// Preset.
    pub preset: String,
    /// GPU model.
    pub gpu_model: String,
    /// NVLink domains.
    pub domains: u32,
    /// GPUs.
    pub gpus: u64,
}

/// The fleet.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterInfo {
    /// GPUs.
    pub total_gpus: u64,
    /// NVLink domains.
    pub domains: usize,
    /// Pools.
    pub pools: Vec<PoolInfo>,
}

/// One RL job's loop.
#[derive(Debug, Clone, Serialize)]
pub struct RlJobInfo {
    /// Job id.
    pub id: String,
    /// Colocated or async.
    pub mode: crate::domain::workload::RlMode,
    /// Optimizer steps.
    pub steps: u64,
    /// Training gang GPUs.
    pub train_gpus: u32,
    /// Rollout GPUs (async; colocated rollouts use the training gang).
    pub rollout_gpus: u64,
    /// Where a step's time goes.
    #[serde(flatten)]
    pub breakdown: crate::perf::rl::RlBreakdown,
}

/// Engine counters.
#[derive(Debug, Clone, Serialize)]
pub struct EngineInfo {
    /// Scheduling rounds.
    pub rounds: u64,
    /// Kernel calls.
    pub kernel_calls: u64,
    /// (job, candidate) pairs scored.
    pub pairs_scored: u64,
}

impl Report {
    /// Builds the report of a run.
    pub fn new(w: &Workload, o: &Outcome, run: RunInfo) -> Report {
        Report {
            workload: w.name.clone(),
            seed: w.seed,
            scheduler: SchedulerInfo {
                queue: w.scheduler.queue,
                backfill: w.scheduler.backfill,
                preemption: w.scheduler.preemption,
                placement: w.scheduler.placement,
            },
            cluster: ClusterInfo {
                total_gpus: w.cluster.total_gpus,
                domains: w.cluster.num_domains(),
                pools: w
                    .cluster
                    .pools
                    .iter()
                    .map(|p| PoolInfo {
                        name: p.name.clone(),
                        preset: p.preset.id.to_string(),
                        gpu_model: p.preset.model().id.to_string(),
                        domains: p.domains,
                        gpus: p.gpus(),
                    })
                    .collect(),
            },
            summary: summarize(w, o),
            rl_jobs: w
                .jobs
                .iter()
                .zip(&o.jobs)
                .filter_map(|(job, out)| {
                    let (rl, b) = (job.rl.as_ref()?, out.rl?);
                    Some(RlJobInfo {
                        id: job.id.clone(),
                        mode: rl.mode,
                        steps: rl.steps,
                        train_gpus: job.gpus,
                        rollout_gpus: job.rollout.map_or(0, |g| g.gpus as u64 * g.count as u64),
                        breakdown: b,
                    })
                })
                .collect(),
            inference: None,
            sharing: crate::engine::cluster::metrics::sharing_report(w, o),
            failures: crate::engine::cluster::metrics::failures_report(w, o),
            capacity: crate::engine::cluster::metrics::capacity_report(w, o),
            engine: EngineInfo {
                rounds: o.rounds,
                kernel_calls: o.kernel.kernel_calls,
                pairs_scored: o.kernel.pairs,
            },
            run,
        }
    }

    /// Attaches the request-level inference results ([`crate::engine::serving::serve_services`]).
    pub fn with_inference(
        mut self,
        inference: Option<crate::engine::serving::InferenceReport>,
    ) -> Report {
        self.inference = inference;
        self
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    }

    /// The readable summary table.
    pub fn to_table(&self) -> String {
        let s = &self.summary;
        let mut t = String::new();
        let _ = writeln!(t, "workload   {}  (seed {})", self.workload, self.seed);
        let pools: Vec<String> = self
            .cluster
            .pools
            .iter()
            .map(|p| format!("{} x{} ({} GPUs)", p.preset, p.domains, p.gpus))
            .collect();
        let _ = writeln!(
            t,
            "cluster    {} GPUs in {} NVLink domains: {}",
            self.cluster.total_gpus,
            self.cluster.domains,
            pools.join(", ")
        );
        let sc = &self.scheduler;
        let _ = writeln!(
            t,
            "scheduler  queue {}{}{}, placement {}, backend {}",
            enum_name(&sc.queue),
            sc.backfill.label(),
            if sc.preemption { " + preemption" } else { "" },
            enum_name(&sc.placement),
            self.run.backend
        );
        let _ = writeln!(t);
        let j = &s.jobs;
        let _ = writeln!(
            t,
            "jobs       {} submitted, {} completed, {} unschedulable ({} training, {} inference; {} backfilled, {} preemptions)",
            j.submitted, j.completed, j.unschedulable, j.training, j.inference, j.backfilled, j.preemptions
        );
        let _ = writeln!(t, "makespan   {}", human_s(s.makespan_s));
        let _ = writeln!(t, "GPU util   {:.1} %", s.gpu_utilization * 100.0);
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "{:<24} {:>10} {:>10} {:>10} {:>10}",
            "", "mean", "p50", "p99", "max"
        );
        row(&mut t, "JCT", &s.jct_s, true);
        row(&mut t, "wait", &s.wait_s, true);
        row(
            &mut t,
            "domains per gang",
            &s.training_domains_spanned,
            false,
        );
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "gangs split beyond the fewest domains: {}; longest queue: {}; kernel: {} calls, {} pairs",
            s.training_gangs_split, s.max_queue_length, self.engine.kernel_calls, self.engine.pairs_scored
        );
        if s.training.modelled_jobs > 0 {
            let sd = &s.training.slowdown;
            let _ = writeln!(
                t,
                "training slowdown vs ideal placement ({} modelled jobs): mean {:.3}, p99 {:.3}, max {:.3}",
                s.training.modelled_jobs, sd.mean, sd.p99, sd.max
            );
        }
        for r in &self.rl_jobs {
            let b = &r.breakdown;
            let _ = writeln!(
                t,
                "rl {} ({}, {} steps): step {} = rollout {} + reward {} + train {} + sync {} + switch {}; GPUs idle {:.0} %",
                r.id,
                enum_name(&r.mode),
                r.steps,
                human_s(b.step_s),
                human_s(b.rollout_s),
                human_s(b.reward_s),
                human_s(b.train_s),
                human_s(b.sync_s),
                human_s(b.switch_s),
                b.gpu_idle_share * 100.0
            );
        }
        if let Some(inf) = &self.inference {
            let _ = writeln!(
                t,
                "inference  {} services, {} requests ({} completed): TTFT p50 {} p99 {}; TPOT p50 {:.1} ms p99 {:.1} ms; \
                 SLO met {:.1} %; ${:.2} per million output tokens",
                inf.services,
                inf.requests,
                inf.completed,
                human_ms(inf.ttft_s.p50),
                human_ms(inf.ttft_s.p99),
                inf.tpot_s.p50 * 1e3,
                inf.tpot_s.p99 * 1e3,
                inf.slo_attainment * 100.0,
                inf.usd_per_million_output_tokens
            );
        }
        if let Some(sh) = &self.sharing {
            let _ = writeln!(
                t,
                "sharing    {}: GPUs held by inference {:.0}, training {:.0} (mean); {} reclaims ({} preempted, {} shrunk, \
                 latency mean {}); lost {:.1} GPU-h; goodput {:.1} %",
                sh.policy.as_str(),
                sh.inference_gpus.mean,
                sh.training_gpus.mean,
                sh.reclaims,
                sh.preempted,
                sh.shrunk,
                human_s(sh.reclaim_latency_s.mean),
                sh.lost_gpu_hours,
                sh.goodput * 100.0
            );
        }
        if let Some(f) = &self.failures {
            let b = &f.by_cause;
            let _ = writeln!(
                t,
                "failures   {} interruptions (gpu {}, hbm {}, network {}, host {}, software {}) of {} node failures; \
                 lost {:.1} GPU-h; {} spare swaps, {} requeued; effective training time {:.1} %",
                f.interruptions,
                b.gpu,
                b.hbm,
                b.network,
                b.host,
                b.software,
                f.node_failures,
                f.lost_gpu_hours,
                f.spare_swaps,
                f.requeued,
                f.effective_training_time * 100.0
            );
        }
        let _ = writeln!(
            t,
            "stranded GPUs (free but too few for the head gang): mean {:.1}, max {}",
            s.stranded_gpus.mean, s.stranded_gpus.max
        );
        let _ = writeln!(
            t,
            "cost ${:.0} for the capacity (${:.0} of it busy); energy {:.2} MWh; peak power {:.3} MW",
            s.cost_usd, s.cost_usd_busy, s.energy_mwh, s.peak_power_mw
        );
        let cap = &self.capacity;
        let on_demand = cap.cost_by_contract.contains_key("on-demand");
        if on_demand || cap.cost_by_provider.len() > 1 || !cap.sites.is_empty() {
            let providers: Vec<String> = cap
                .cost_by_provider
                .iter()
                .map(|(p, usd)| format!("{p} {}", musd(*usd)))
                .collect();
            let get = |k: &str| cap.cost_by_contract.get(k).copied().unwrap_or(0.0);
            let _ = writeln!(
                t,
                "providers  {}; committed {} ({:.1} % used), on-demand {} ({:.0} GPU-h, {} jobs spilled)",
                providers.join(", "),
                musd(get("committed")),
                cap.committed_utilization * 100.0,
                musd(get("on-demand")),
                cap.on_demand_gpu_hours,
                cap.jobs_spilled
            );
        }
        for site in &cap.sites {
            let _ = writeln!(
                t,
                "site       {}: peak {:.3} MW of {}, mean {:.3} MW (PUE {}); at the cap {}",
                site.name,
                site.peak_mw,
                site.cap_mw
                    .map_or("no cap".to_string(), |c| format!("{c} MW cap")),
                site.mean_mw,
                site.pue,
                human_s(site.time_at_cap_s)
            );
        }
        t
    }
}

/// USD in millions above a million.
fn musd(v: f64) -> String {
    if v >= 1e6 {
        format!("${:.2}M", v / 1e6)
    } else {
        format!("${v:.0}")
    }
}

/// The serialised (kebab-case) name of a policy enum, as written in workload files and flags.
pub fn enum_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn row(t: &mut String, name: &str, s: &Stats, seconds: bool) {
    let f = |v: f64| {
        if seconds {
            human_s(v)
        } else {
            format!("{v:.2}")
        }
    };
    let _ = writeln!(
        t,
        "{:<24} {:>10} {:>10} {:>10} {:>10}",
        name,
        f(s.mean),
        f(s.p50),
        f(s.p99),
        f(s.max)
    );
}

/// Short latencies in milliseconds, longer ones as [`human_s`].
fn human_ms(s: f64) -> String {
    if s < 10.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        human_s(s)
    }
}

/// Seconds in a readable unit.
pub fn human_s(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{:.1}m", s / 60.0)
    } else if s < 86400.0 * 3.0 {
        format!("{:.2}h", s / 3600.0)
    } else {
        format!("{:.2}d", s / 86400.0)
    }
}

/// jobs.csv: one row per job, in workload order.
pub fn jobs_csv(w: &Workload, o: &Outcome) -> String {
    let mut wtr = csv::Writer::from_writer(Vec::new());
    let _ = wtr.write_record([
        "id",
        "kind",
        "tenant",
        "priority",
        "gpus",
        "replicas",
        "submit_s",
        "start_s",
        "end_s",
        "wait_s",
        "jct_s",
        "domains",
        "nodes",
        "preemptions",
        "backfilled",
        "slowdown",
        "state",
        "resizes",
        "lost_gpu_hours",
        "interruptions",
        "effective_training_time",
    ]);
    let opt = |t: Option<u64>| t.map_or(String::new(), |t| fmt_s(time_to_s(t)));
    let ett = crate::engine::cluster::metrics::effective_training_times(w, o);
    for ((job, out), ett) in w.jobs.iter().zip(&o.jobs).zip(ett) {
        let wait = out.start.map(|s| s - job.submit);
        let jct = out.end.map(|e| e - job.submit);
        let state = match out.state {
            JobState::Completed => "completed",
            JobState::Unschedulable => "unschedulable",
        };
        let _ = wtr.write_record([
            job.id.clone(),
            job.kind.as_str().to_string(),
            job.tenant.clone(),
            job.priority.to_string(),
            job.total_gpus().to_string(),
            job.replicas.to_string(),
            fmt_s(time_to_s(job.submit)),
            opt(out.start),
            opt(out.end),
            opt(wait),
            opt(jct),
            out.domains.to_string(),
            out.nodes.to_string(),
            out.preemptions.to_string(),
            out.backfilled.to_string(),
            format!("{:.4}", out.slowdown),
            state.to_string(),
            out.resizes.to_string(),
            format!("{:.6}", out.lost_gpu_time as f64 / 3.6e9),
            out.interruptions().to_string(),
            ett.map_or(String::new(), |e| format!("{e:.6}")),
        ]);
    }
    String::from_utf8(wtr.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// placements.csv: one row per node of every gang of every segment a job held GPUs, in segment start order:
/// `job, segment` (0 first, one more after each preemption), `gang` (the training gang or each replica, then
/// async rollout replicas), `start_s, end_s` (the segment holds `[start, end)`), `pool` (name), `domain`
/// (index inside the pool), `node` (index inside the domain), `gpus` (taken on that node).
pub fn placements_csv(w: &Workload, o: &Outcome) -> String {
    let c = &w.cluster;
    let mut out = String::from("job,segment,gang,start_s,end_s,pool,domain,node,gpus\n");
    let mut segment_of = vec![0u32; w.jobs.len()];
    for seg in &o.segments {
        let job = &w.jobs[seg.job as usize];
        let k = segment_of[seg.job as usize];
        segment_of[seg.job as usize] += 1;
        let (start, end) = (fmt_s(time_to_s(seg.start)), fmt_s(time_to_s(seg.end)));
        for (g, gang) in seg.gangs.iter().enumerate() {
            for &(node, gpus) in gang {
                let d = c.domain_of_node(node);
                let pool = c.pool_of(d);
                let _ = writeln!(
                    out,
                    "{},{k},{g},{start},{end},{},{},{},{gpus}",
                    csv_field(&job.id),
                    csv_field(&pool.name),
                    d - pool.first_domain,
                    node - c.domain_first_node[d as usize],
                );
            }
        }
    }
    out
}

/// A CSV field, quoted when it holds a separator, quote or line break.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Seconds with microsecond precision, without trailing zeros.
fn fmt_s(s: f64) -> String {
    let t = format!("{s:.6}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}
