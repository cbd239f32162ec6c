//! Workloads: a cluster, scheduler settings and a stream of jobs, read from TOML or JSON at the edge of the
//! program and handed to the simulator as typed, validated values.
//!
//! [`spec`] is the file as written; [`parse`] turns text into a [`spec::WorkloadFile`] with located errors;
//! [`build`] checks what spans several fields and draws generated jobs, giving a [`Workload`].

pub mod generate;
pub mod parse;
pub mod spec;

use crate::cluster::{Cluster, Pool};
use crate::error::InputError;
use crate::kernel::{LEVEL_DOMAIN, LEVEL_NONE, LEVEL_POOL, LEVEL_RACK};
use spec::{
    KindName, LevelName, PlacementPolicy, QueuePolicy, TopologySpec, WorkloadFile, MAX_GPUS,
    MAX_JOBS,
};
use std::collections::HashSet;

pub use parse::{load, parse_str, Format};

/// Simulated time in microseconds: integers, so event order never depends on float rounding.
pub type Time = u64;

/// Seconds to simulated time (rounded to the microsecond).
pub fn time_from_s(s: f64) -> Time {
    (s * 1e6).round() as Time
}

/// Simulated time to seconds.
pub fn time_to_s(t: Time) -> f64 {
    t as f64 / 1e6
}

/// What a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// A gang that runs for its duration, then finishes.
    Training,
    /// A service of replicas that runs for its lifetime; each replica stays inside one group of its level.
    Inference,
}

impl JobKind {
    /// Name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Training => "training",
            JobKind::Inference => "inference",
        }
    }
}

/// One job, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Unique id.
    pub id: String,
    /// Kind.
    pub kind: JobKind,
    /// GPUs of one gang: the whole job for training, one replica for inference.
    pub gpus: u32,
    /// Gangs placed together (1 for training).
    pub replicas: u32,
    /// Ideal run time (training) or lifetime (inference).
    pub duration: Time,
    /// Submit time.
    pub submit: Time,
    /// Priority (higher first under the priority queue).
    pub priority: i32,
    /// Tenant label.
    pub tenant: String,
    /// Acceptable GPU models (bit per catalog model).
    pub model_mask: u32,
    /// Widest group a gang may span (kernel `LEVEL_*`).
    pub required: u32,
    /// Preferred group (kernel `LEVEL_*`, or `LEVEL_NONE`).
    pub preferred: u32,
}

impl Job {
    /// All GPUs the job holds while running.
    pub fn total_gpus(&self) -> u64 {
        self.gpus as u64 * self.replicas as u64
    }
}

/// Scheduler settings, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheduler {
    /// Queue order.
    pub queue: QueuePolicy,
    /// EASY backfill.
    pub backfill: bool,
    /// Jobs behind the head that backfill considers.
    pub backfill_depth: u32,
    /// Priority preemption.
    pub preemption: bool,
    /// Work a preempted job redoes on restart.
    pub restart_cost: Time,
    /// Placement policy.
    pub placement: PlacementPolicy,
}

/// A validated workload: what the simulator runs.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Display name.
    pub name: String,
    /// Seed of every random draw.
    pub seed: u64,
    /// The fleet.
    pub cluster: Cluster,
    /// Scheduler settings.
    pub scheduler: Scheduler,
    /// Jobs ordered by submit time, then by declaration order (explicit jobs, then generators).
    pub jobs: Vec<Job>,
}

/// Overrides from the command line, applied before cross-field checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--queue`.
    pub queue: Option<QueuePolicy>,
    /// `--placement`.
    pub placement: Option<PlacementPolicy>,
}

fn level(l: Option<LevelName>, default: u32) -> u32 {
    match l {
        None => default,
        Some(LevelName::Domain) => LEVEL_DOMAIN,
        Some(LevelName::Rack) => LEVEL_RACK,
        Some(LevelName::Any) => LEVEL_POOL,
    }
}

/// Turns a topology spec into (required, preferred) kernel levels, checking they make sense together.
fn topology(
    t: &TopologySpec,
    default_required: u32,
    file: &str,
    path: &str,
) -> Result<(u32, u32), InputError> {
    let required = level(t.required, default_required);
    let preferred = level(t.preferred, LEVEL_NONE);
    if preferred != LEVEL_NONE && preferred >= required {
        return Err(InputError::field(
            file,
            format!("{path}.topology.preferred"),
            "must be narrower than `required` (domain < rack < any); drop it or widen `required`",
        ));
    }
    Ok((required, preferred))
}

fn model_mask(m: Option<spec::GpuModelName>) -> u32 {
    m.map_or(u32::MAX, |m| 1u32 << m.0)
}

/// Checks what spans several fields, applies overrides, draws generated jobs.
pub fn build(
    spec: WorkloadFile,
    file: &str,
    default_name: &str,
    ov: Overrides,
) -> Result<Workload, InputError> {
    let seed = ov.seed.unwrap_or(spec.seed);
    // Cluster.
    if spec.cluster.pools.is_empty() {
        return Err(InputError::field(
            file,
            "cluster.pools",
            "needs at least one pool",
        ));
    }
    let mut total: u64 = 0;
    let mut names = HashSet::new();
    let mut pools = Vec::new();
    for (i, p) in spec.cluster.pools.iter().enumerate() {
        let gpus = p.count.0 as u64 * p.preset.0.domain_gpus() as u64;
        total += gpus;
        if total > MAX_GPUS {
            return Err(InputError::field(
                file,
                format!("cluster.pools[{i}].count"),
                format!("the cluster would hold {total} GPUs; at most {MAX_GPUS} are allowed"),
            ));
        }
        let name = p
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{i}", p.preset.0.id));
        if !names.insert(name.clone()) {
            return Err(InputError::field(
                file,
                format!("cluster.pools[{i}].name"),
                format!("pool name `{name}` is used twice"),
            ));
        }
        pools.push(Pool {
            name,
            preset: p.preset.0,
            provider: p.provider.clone().unwrap_or_else(|| "aws".into()),
            first_domain: 0,
            domains: p.count.0,
            domains_per_rack: p
                .domains_per_rack
                .map_or(p.preset.0.domains_per_rack, |c| c.0),
            first_rack: 0,
        });
    }
    let cluster = Cluster::new(pools);

    // Scheduler.
    let s = &spec.scheduler;
    let queue = ov.queue.unwrap_or(s.queue);
    if s.preemption && queue != QueuePolicy::Priority {
        return Err(InputError::field(
            file,
            "scheduler.preemption",
            "needs queue = \"priority\" (preemption goes by priority)",
        ));
    }
    let scheduler = Scheduler {
        queue,
        backfill: s.backfill,
        backfill_depth: s.backfill_depth.map_or(256, |c| c.0),
        preemption: s.preemption,
        restart_cost: time_from_s(s.restart_cost_s.map_or(300.0, |x| x.0)),
        placement: ov.placement.unwrap_or(s.placement),
    };

    // Jobs.
    let generated: u64 = spec.generators.iter().map(|g| g.count.0 as u64).sum();
    if spec.jobs.len() as u64 + generated > MAX_JOBS {
        return Err(InputError::field(
            file,
            "generators",
            format!("the workload would hold more than {MAX_JOBS} jobs"),
        ));
    }
    let mut jobs = Vec::with_capacity(spec.jobs.len() + generated as usize);
    for (i, j) in spec.jobs.iter().enumerate() {
        jobs.push(explicit_job(j, i, file)?);
    }
    for (gi, g) in spec.generators.iter().enumerate() {
        generate::draw(g, gi, seed, file, &mut jobs)?;
    }
    let mut ids = HashSet::new();
    for (i, j) in jobs.iter().enumerate() {
        if !ids.insert(j.id.as_str()) {
            return Err(InputError::field(
                file,
                format!("jobs[{i}].id"),
                format!("job id `{}` is used twice", j.id),
            ));
        }
    }
    // Stable: equal submit times keep declaration order.
    jobs.sort_by_key(|j| j.submit);
    Ok(Workload {
        name: spec.name.unwrap_or_else(|| default_name.to_string()),
        seed,
        cluster,
        scheduler,
        jobs,
    })
}

fn explicit_job(j: &spec::JobSpecEntry, i: usize, file: &str) -> Result<Job, InputError> {
    let path = format!("jobs[{i}]");
    let need = |what: &str| {
        InputError::field(
            file,
            format!("{path}.{what}"),
            format!("is required for a {} job", kind_name(j.kind)),
        )
    };
    let forbid = |what: &str, other: &str| {
        InputError::field(
            file,
            format!("{path}.{what}"),
            format!("belongs to {other} jobs; this job is {}", kind_name(j.kind)),
        )
    };
    let submit = j.submit_s.or(j.start_s).map_or(0, |s| time_from_s(s.0));
    let (kind, gpus, replicas, duration, default_level) = match j.kind {
        KindName::Training => {
            for (set, f) in [
                (j.replicas.is_some(), "replicas"),
                (j.gpus_per_replica.is_some(), "gpus_per_replica"),
                (j.lifetime_s.is_some(), "lifetime_s"),
            ] {
                if set {
                    return Err(forbid(f, "inference"));
                }
            }
            let gpus = j.gpus.ok_or_else(|| need("gpus"))?.0;
            let d = j.duration_s.ok_or_else(|| need("duration_s"))?.0;
            (JobKind::Training, gpus, 1, d, LEVEL_POOL)
        }
        KindName::Inference => {
            for (set, f) in [
                (j.gpus.is_some(), "gpus"),
                (j.duration_s.is_some(), "duration_s"),
            ] {
                if set {
                    return Err(forbid(f, "training"));
                }
            }
            let r = j.replicas.ok_or_else(|| need("replicas"))?.0;
            let g = j
                .gpus_per_replica
                .ok_or_else(|| need("gpus_per_replica"))?
                .0;
            if r as u64 * g as u64 > MAX_GPUS {
                return Err(InputError::field(
                    file,
                    format!("{path}.replicas"),
                    format!("replicas x gpus_per_replica is above {MAX_GPUS}"),
                ));
            }
            let d = j.lifetime_s.ok_or_else(|| need("lifetime_s"))?.0;
            (JobKind::Inference, g, r, d, LEVEL_DOMAIN)
        }
    };
    if duration <= 0.0 {
        let f = if kind == JobKind::Training {
            "duration_s"
        } else {
            "lifetime_s"
        };
        return Err(InputError::field(
            file,
            format!("{path}.{f}"),
            "must be above 0 seconds",
        ));
    }
    let (required, preferred) = topology(&j.topology, default_level, file, &path)?;
    Ok(Job {
        id: j.id.clone().unwrap_or_else(|| format!("job-{i}")),
        kind,
        gpus,
        replicas,
        duration: time_from_s(duration).max(1),
        submit,
        priority: j.priority,
        tenant: j.tenant.clone().unwrap_or_else(|| "default".into()),
        model_mask: model_mask(j.gpu_model),
        required,
        preferred,
    })
}

fn kind_name(k: KindName) -> &'static str {
    match k {
        KindName::Training => "training",
        KindName::Inference => "inference",
    }
}
