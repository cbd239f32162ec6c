//! One job of a workload file into the domain's [`Job`]: its kind's fields, topology levels, GPU-model
//! constraint, training model, RL loop and serving, each checked against the cluster it will run on.
//! Shared by explicit `[[jobs]]` and `[[generators]]`.

use super::spec::{self, KindName, LevelName, TopologySpec, MAX_GPUS};
use crate::domain::cluster::{Cluster, Pool, LEVEL_DOMAIN, LEVEL_NONE, LEVEL_POOL, LEVEL_RACK};
use crate::domain::workload::{time_from_s, Gang, Job, JobKind, RlJob, RlMode, TrainingModel};
use crate::error::InputError;

fn level(l: Option<LevelName>, default: u32) -> u32 {
    match l {
        None => default,
        Some(LevelName::Domain) => LEVEL_DOMAIN,
        Some(LevelName::Rack) => LEVEL_RACK,
        Some(LevelName::Any) => LEVEL_POOL,
    }
}

/// Turns a topology spec into (required, preferred) kernel levels, checking they make sense together.
pub(crate) fn topology(
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
pub(crate) fn training_model(m: Option<spec::TrainingModelSpec>) -> Option<TrainingModel> {
    m.map(|m| TrainingModel {
        params: m.params_b.0 * 1e9,
        tokens_per_step: m.tokens_per_step.0,
        tp: m.tp.map_or(1, |c| c.0),
        mfu: m.mfu.map_or(0.4, |f| f.0),
    })
}

pub(crate) fn model_mask(m: Option<spec::GpuModelName>) -> u32 {
    m.map_or(u32::MAX, |m| 1u32 << m.0)
}

pub(crate) fn explicit_job(
    j: &spec::JobSpecEntry,
    i: usize,
    file: &str,
    cluster: &Cluster,
    failures: Option<&crate::domain::failures::Failures>,
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
            let gpus = match (j.gpus, j.elastic) {
                (Some(g), _) => g.0,
                (None, Some(e)) => e.max_gpus.0,
                (None, None) => return Err(need("gpus")),
            };
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
        elastic: None,
        checkpoint: None,
    };
    yielding(
        &Yield {
            elastic: j.elastic,
            interval: j.checkpoint_interval_s,
            cost: j.checkpoint_s,
            policy: j.checkpoint,
            failures,
        },
        &mut job,
        file,
        &path,
    )?;
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

/// The fields that let a job yield capacity, as written.
pub(crate) struct Yield<'a> {
    /// `elastic = { min_gpus, max_gpus }`.
    pub elastic: Option<spec::ElasticSpec>,
    /// `checkpoint_interval_s`.
    pub interval: Option<crate::input::value::Seconds>,
    /// `checkpoint_s`.
    pub cost: Option<crate::input::value::Seconds>,
    /// `checkpoint = "young-daly"`.
    pub policy: Option<spec::CheckpointPolicy>,
    /// The workload's failure model (for `young-daly`).
    pub failures: Option<&'a crate::domain::failures::Failures>,
}

/// Checks and sets a job's elastic range (training only, in whole tensor-parallel groups of its model)
/// and checkpoints (training and RL).
pub(crate) fn yielding(
    y: &Yield<'_>,
    job: &mut Job,
    file: &str,
    path: &str,
) -> Result<(), InputError> {
    let err = |f: &str, m: String| InputError::field(file, format!("{path}.{f}"), m);
    if let Some(e) = y.elastic {
        if job.kind != JobKind::Training {
            return Err(err(
                "elastic",
                format!(
                    "applies to training jobs only; this job is {}",
                    job.kind.as_str()
                ),
            ));
        }
        let (min, max) = (e.min_gpus.0, e.max_gpus.0);
        if max != job.gpus {
            return Err(err(
                "elastic.max_gpus",
                format!(
                    "{max}: must equal the job's gpus ({}); leave gpus out to take it from here",
                    job.gpus
                ),
            ));
        }
        if min > max {
            return Err(err(
                "elastic.min_gpus",
                format!("{min}: must not be above max_gpus ({max})"),
            ));
        }
        let step = job.model.map_or(1, |m| m.tp.max(1));
        for (f, v) in [("min_gpus", min), ("max_gpus", max)] {
            if v % step != 0 {
                return Err(err(
                    &format!("elastic.{f}"),
                    format!(
                        "{v}: must be a whole number of tensor-parallel groups (model tp = {step})"
                    ),
                ));
            }
        }
        job.elastic = Some(crate::domain::workload::Elastic {
            min_gpus: min,
            step,
        });
    }
    if let Some(spec::CheckpointPolicy::YoungDaly) = y.policy {
        if y.interval.is_some() {
            return Err(err(
                "checkpoint",
                "\"young-daly\" sets the interval: leave checkpoint_interval_s out".into(),
            ));
        }
        if job.kind == JobKind::Inference {
            return Err(err(
                "checkpoint",
                "applies to training and rl jobs; a service keeps no training state".into(),
            ));
        }
        let Some(f) = y.failures else {
            return Err(err(
                "checkpoint",
                "\"young-daly\" needs a [failures] section (the interval follows the job's MTBF)"
                    .into(),
            ));
        };
        let cost = time_from_s(y.cost.map_or(60.0, |c| c.0));
        if cost == 0 {
            return Err(err(
                "checkpoint_s",
                "0: allowed: above 0 with checkpoint = \"young-daly\"".into(),
            ));
        }
        let mtbf = f.job_mtbf(job.total_gpus());
        job.checkpoint = Some(crate::domain::workload::Checkpoint {
            interval: crate::domain::failures::young_daly(mtbf, cost),
            cost,
        });
        return Ok(());
    }
    match (y.interval, y.cost) {
        (None, Some(_)) => {
            return Err(err(
                "checkpoint_s",
                "needs checkpoint_interval_s (how often a checkpoint is written) or checkpoint = \"young-daly\"".into(),
            ))
        }
        (Some(i), c) => {
            if job.kind == JobKind::Inference {
                return Err(err(
                    "checkpoint_interval_s",
                    "applies to training and rl jobs; a service keeps no training state".into(),
                ));
            }
            if i.0 < 1.0 {
                return Err(err(
                    "checkpoint_interval_s",
                    format!("{}: allowed: at least 1 second", i.0),
                ));
            }
            job.checkpoint = Some(crate::domain::workload::Checkpoint {
                interval: time_from_s(i.0),
                cost: time_from_s(c.map_or(60.0, |c| c.0)),
            });
        }
        (None, None) => {}
    }
    Ok(())
}

/// Builds an inference job's serving: the model must fit a replica on some pool (the job is narrowed to
/// those pools) and the traffic over the lifetime must stay within the simulator's limits.
pub(crate) fn serving(
    spec: &crate::input::traffic::ServeSpec,
    job: &mut Job,
    cluster: &Cluster,
    file: &str,
    path: &str,
) -> Result<(), InputError> {
    let serve = spec.build(path, file)?;
    serve.check_pools(job.replicas)?;
    let mut ok = 0u32;
    for p in pools_in(cluster, job.model_mask) {
        let fits =
            crate::engine::serving::traffic::service_model(&serve, p.preset.model(), job.gpus);
        if let Err(e) = &fits {
            if e.location
                == crate::error::Location::Field(crate::domain::traffic::join(path, "cost_model"))
            {
                return Err(e.clone());
            }
        }
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
        match crate::perf::rl::rollout_roofline(rl, &p.preset) {
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
    let llm = crate::domain::llm::builtin(&spec.llm).ok_or_else(|| {
        InputError::field(
            file,
            format!("{path}.llm"),
            format!(
                "unknown llm `{}`; allowed: {}",
                spec.llm,
                crate::domain::llm::builtin_names()
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
    let train = pools_in(cluster, job.model_mask).next().map(|p| &p.preset);
    let roll = job.rollout.and_then(|g| {
        pools_in(cluster, g.model_mask)
            .next()
            .map(|p| (&p.preset, g.count))
    });
    let step = train.and_then(|t| {
        let placement = roll.map(|(p, n)| crate::perf::rl::RolloutPlacement {
            preset: p,
            replicas: n,
            same_domain: false,
        });
        crate::perf::rl::step(
            &rl,
            t,
            &crate::perf::training::ideal_split(t, job.gpus),
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
