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
use crate::perfmodel::TrainingModel;
use crate::rl::{RlJob, RlMode};
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
    /// An agentic RL job: a training gang (and, async, rollout replicas) looping for its steps.
    Rl,
}

impl JobKind {
    /// Name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Training => "training",
            JobKind::Inference => "inference",
            JobKind::Rl => "rl",
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
    /// Training model: when set, the run time is `duration` times the placement's slowdown.
    pub model: Option<TrainingModel>,
    /// RL: the loop. `duration` is then an estimate (steps x the ideal step) used for queue order only.
    pub rl: Option<Box<RlJob>>,
    /// Async RL: the rollout replicas, placed together with the training gang.
    pub rollout: Option<Gang>,
    /// Inference: the model served and its traffic.
    pub serving: Option<Box<crate::inference::traffic::Serve>>,
}

/// A group of identical gangs placed with a job's main gangs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gang {
    /// GPUs per gang.
    pub gpus: u32,
    /// Gangs.
    pub count: u32,
    /// Acceptable GPU models.
    pub model_mask: u32,
    /// Widest group a gang may span.
    pub required: u32,
    /// Preferred group.
    pub preferred: u32,
}

impl Job {
    /// All GPUs the job holds while running.
    pub fn total_gpus(&self) -> u64 {
        self.gpus as u64 * self.replicas as u64
            + self.rollout.map_or(0, |g| g.gpus as u64 * g.count as u64)
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

/// The training model of a spec, if any.
fn training_model(m: Option<spec::TrainingModelSpec>) -> Option<TrainingModel> {
    m.map(|m| TrainingModel {
        params: m.params_b.0 * 1e9,
        tokens_per_step: m.tokens_per_step.0,
        tp: m.tp.map_or(1, |c| c.0),
        mfu: m.mfu.map_or(0.4, |f| f.0),
    })
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
            usd_per_gpu_hour: p
                .usd_per_gpu_hour
                .map_or(p.preset.0.model().usd_per_gpu_hour, |x| x.0),
            idle_w: p.idle_w.map_or(p.preset.0.model().idle_w, |x| x.0),
            busy_w: p.busy_w.map_or(p.preset.0.model().power_w, |x| x.0),
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
        jobs.push(explicit_job(j, i, file, &cluster)?);
    }
    for (gi, g) in spec.generators.iter().enumerate() {
        generate::draw(g, gi, seed, file, &cluster, &mut jobs)?;
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

fn explicit_job(
    j: &spec::JobSpecEntry,
    i: usize,
    file: &str,
    cluster: &Cluster,
) -> Result<Job, InputError> {
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
    if j.kind != KindName::Rl && j.rl.is_some() {
        return Err(forbid("rl", "rl"));
    }
    let (kind, gpus, replicas, duration, default_level) = match j.kind {
        KindName::Rl => {
            for (set, f) in [
                (j.replicas.is_some(), "replicas"),
                (j.gpus_per_replica.is_some(), "gpus_per_replica"),
                (j.lifetime_s.is_some(), "lifetime_s"),
                (j.duration_s.is_some(), "duration_s"),
                (j.model.is_some(), "model"),
            ] {
                if set {
                    return Err(InputError::field(
                        file,
                        format!("{path}.{f}"),
                        "does not apply to rl jobs: the `rl` table describes the loop (steps, rollouts)",
                    ));
                }
            }
            let gpus = j.gpus.ok_or_else(|| need("gpus"))?.0;
            j.rl.as_ref().ok_or_else(|| need("rl"))?;
            (JobKind::Rl, gpus, 1, 1.0, LEVEL_POOL)
        }
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
    let mut job = Job {
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
        model: training_model(j.model),
        rl: None,
        rollout: None,
        serving: None,
    };
    if let Some(spec) = &j.rl {
        rl_job(spec, &mut job, cluster, file, &format!("{path}.rl"))?;
    }
    if let Some(spec) = &j.serving {
        if kind != JobKind::Inference {
            return Err(forbid("serving", "inference"));
        }
        serving(spec, &mut job, cluster, file, &format!("{path}.serving"))?;
    }
    Ok(job)
}

/// Builds an inference job's serving: the model must fit a replica on some pool (the job is narrowed to
/// those pools) and the traffic over the lifetime must stay within the simulator's limits.
pub(crate) fn serving(
    spec: &crate::inference::traffic::ServeSpec,
    job: &mut Job,
    cluster: &Cluster,
    file: &str,
    path: &str,
) -> Result<(), InputError> {
    let serve = spec.build(path, file)?;
    let mut ok = 0u32;
    for p in pools_in(cluster, job.model_mask) {
        let fits = crate::inference::perf::Roofline::new(
            serve.model.clone(),
            *p.preset.model(),
            job.gpus,
            crate::inference::perf::Efficiency::default(),
        );
        if fits.is_ok() {
            ok |= 1 << p.preset.gpu_model;
        }
    }
    if ok == 0 {
        return Err(InputError::field(
            file,
            format!("{path}.model"),
            format!(
                "{} does not fit a replica of {} GPUs on any acceptable pool; raise gpus_per_replica",
                serve.model.name, job.gpus
            ),
        ));
    }
    job.model_mask = ok;
    serve.check_volume(job.duration)?;
    job.serving = Some(Box::new(serve));
    Ok(())
}

/// Pools whose GPU model is in `mask`.
fn pools_in(cluster: &Cluster, mask: u32) -> impl Iterator<Item = &Pool> {
    cluster
        .pools
        .iter()
        .filter(move |p| (mask >> p.preset.gpu_model) & 1 == 1)
}

/// Narrows `mask` to the pools where a rollout replica of `rl` can run; an error naming why when none can.
fn rollout_mask(
    rl: &RlJob,
    mask: u32,
    cluster: &Cluster,
    file: &str,
    path: &str,
) -> Result<u32, InputError> {
    let mut ok = 0u32;
    let mut why = String::from("no pool of an acceptable GPU model");
    for p in pools_in(cluster, mask) {
        match crate::rl::rollout_roofline(rl, p.preset) {
            Ok(_) => ok |= 1 << p.preset.gpu_model,
            Err(e) => why = format!("pool `{}`: {e}", p.name),
        }
    }
    if ok == 0 {
        return Err(InputError::field(file, path, format!("no pool can host a rollout replica ({why}); raise rollout_tp or pick a smaller llm")));
    }
    Ok(ok)
}

/// Builds the RL loop of `job`, its rollout replicas (async), and the duration estimate for queue order.
fn rl_job(
    spec: &spec::RlSpec,
    job: &mut Job,
    cluster: &Cluster,
    file: &str,
    path: &str,
) -> Result<(), InputError> {
    let llm = crate::inference::model::builtin(&spec.llm).ok_or_else(|| {
        InputError::field(
            file,
            format!("{path}.llm"),
            format!(
                "unknown llm `{}`; allowed: {}",
                spec.llm,
                crate::inference::model::builtin_names()
            ),
        )
    })?;
    let mode = match spec.mode {
        spec::RlModeName::Colocated => RlMode::Colocated,
        spec::RlModeName::Async => RlMode::Async,
    };
    let rl = RlJob {
        mode,
        staleness: spec.staleness.unwrap_or(1),
        steps: spec.steps.0 as u64,
        llm,
        train_tp: spec.train_tp.map_or(1, |c| c.0),
        mfu: spec.mfu.map_or(0.4, |f| f.0),
        rollout_tp: spec.rollout_tp.map_or(1, |g| g.0),
        episodes_per_step: spec.episodes_per_step.0,
        turns: spec.turns.0,
        prompt_tokens: spec.prompt_tokens.0,
        turn_tokens: spec.turn_tokens.map_or(512, |t| t.0),
        output_tokens: spec.output_tokens.0,
        tool_wait_s: spec.tool_wait_s.map_or(0.0, |s| s.0),
        reward_s: spec.reward_s.map_or(0.0, |s| s.0),
        switch_s: spec.switch_s.map_or(10.0, |s| s.0),
        max_batch: spec.max_batch.map_or(256, |c| c.0),
    };
    match mode {
        RlMode::Colocated => {
            if spec.rollout_replicas.is_some() || spec.rollout_gpu_model.is_some() {
                return Err(InputError::field(
                    file,
                    format!("{path}.rollout_replicas"),
                    "applies to mode = \"async\" only: colocated rollouts run on the training gang",
                ));
            }
            if rl.rollout_tp > job.gpus {
                return Err(InputError::field(
                    file,
                    format!("{path}.rollout_tp"),
                    "must not exceed the training gang's gpus",
                ));
            }
            job.model_mask = rollout_mask(&rl, job.model_mask, cluster, file, path)?;
        }
        RlMode::Async => {
            let count = spec.rollout_replicas.ok_or_else(|| {
                InputError::field(
                    file,
                    format!("{path}.rollout_replicas"),
                    "is required for mode = \"async\"",
                )
            })?;
            let mask = rollout_mask(&rl, model_mask(spec.rollout_gpu_model), cluster, file, path)?;
            job.rollout = Some(Gang {
                gpus: rl.rollout_tp,
                count: count.0,
                model_mask: mask,
                required: LEVEL_DOMAIN,
                preferred: LEVEL_NONE,
            });
        }
    }
    // Estimate for queue order: the ideal step on the first acceptable pools.
    let train = pools_in(cluster, job.model_mask).next().map(|p| p.preset);
    let roll = job.rollout.and_then(|g| {
        pools_in(cluster, g.model_mask)
            .next()
            .map(|p| (p.preset, g.count))
    });
    let step = train.and_then(|t| {
        let placement = roll.map(|(p, n)| crate::rl::RolloutPlacement {
            preset: p,
            replicas: n,
            same_domain: false,
        });
        crate::rl::step(
            &rl,
            t,
            &crate::perfmodel::ideal_split(t, job.gpus),
            placement,
        )
    });
    job.duration = step.map_or(1, |b| {
        time_from_s((b.step_s * rl.steps as f64).min(spec::MAX_SECONDS)).max(1)
    });
    job.rl = Some(Box::new(rl));
    Ok(())
}

fn kind_name(k: KindName) -> &'static str {
    match k {
        KindName::Training => "training",
        KindName::Inference => "inference",
        KindName::Rl => "rl",
    }
}
