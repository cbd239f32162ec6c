//! Seeded job generators: Poisson arrivals, a GPU-count mix, lognormal durations.
//!
//! Each generator draws from its own ChaCha8 stream (workload seed, stream = generator index), so adding a
//! generator never changes the jobs another one draws.

use super::job::{model_mask, topology, training_model};
use super::spec::{GeneratorSpec, KindName};
use crate::domain::workload::{time_from_s, Job, JobKind};
use crate::error::InputError;
use crate::kernel::placement::{LEVEL_DOMAIN, LEVEL_POOL};
use rand::distr::weighted::WeightedIndex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, StandardNormal};

/// Appends `g.count` jobs drawn from generator `gi` to `out`.
pub fn draw(
    g: &GeneratorSpec,
    gi: usize,
    seed: u64,
    file: &str,
    cluster: &crate::domain::cluster::Cluster,
    failures: Option<&crate::domain::failures::Failures>,
    out: &mut Vec<Job>,
) -> Result<(), InputError> {
    let path = format!("generators[{gi}]");
    let field = |f: &str, msg: &str| InputError::field(file, format!("{path}.{f}"), msg);
    let (kind, default_level) = match g.kind {
        KindName::Training => (JobKind::Training, LEVEL_POOL),
        KindName::Inference => (JobKind::Inference, LEVEL_DOMAIN),
        KindName::Rl => {
            return Err(field(
                "kind",
                "rl jobs are listed one by one under [[jobs]], not generated",
            ));
        }
    };
    if g.serving.is_some() && kind != JobKind::Inference {
        return Err(field("serving", "belongs to inference generators"));
    }
    let (required, preferred) = topology(&g.topology, default_level, file, &path)?;
    // What each drawn job's gang looks like.
    let (sizes, weights, replicas): (Vec<u32>, Vec<f64>, u32) = match kind {
        JobKind::Training => {
            if g.replicas.is_some() || g.gpus_per_replica.is_some() {
                return Err(field(
                    "replicas",
                    "belongs to inference generators; use gpu_mix for training",
                ));
            }
            if g.gpu_mix.is_empty() {
                return Err(field(
                    "gpu_mix",
                    "is required for training generators: a list of { gpus = N, weight = W }",
                ));
            }
            (
                g.gpu_mix.iter().map(|m| m.gpus.0).collect(),
                g.gpu_mix.iter().map(|m| m.weight.0).collect(),
                1,
            )
        }
        JobKind::Rl => return Err(field("kind", "rl jobs are listed under [[jobs]]")),
        JobKind::Inference => {
            if g.model.is_some() {
                return Err(field("model", "belongs to training generators"));
            }
            if !g.gpu_mix.is_empty() {
                return Err(field(
                    "gpu_mix",
                    "belongs to training generators; use replicas and gpus_per_replica",
                ));
            }
            let r = g
                .replicas
                .ok_or_else(|| field("replicas", "is required for inference generators"))?
                .0;
            let gpr = g
                .gpus_per_replica
                .ok_or_else(|| field("gpus_per_replica", "is required for inference generators"))?
                .0;
            if r as u64 * gpr as u64 > super::spec::MAX_GPUS {
                return Err(field(
                    "replicas",
                    "replicas x gpus_per_replica is above 16777216",
                ));
            }
            (vec![gpr], vec![1.0], r)
        }
    };
    let mix =
        WeightedIndex::new(&weights).map_err(|_| field("gpu_mix", "weights must not all be 0"))?;
    let d = g.duration;
    if d.median_s.0 <= 0.0 {
        return Err(field("duration.median_s", "must be above 0 seconds"));
    }
    let lo = d.min_s.map_or(1e-6, |x| x.0.max(1e-6));
    let hi = d.max_s.map_or(super::spec::MAX_SECONDS, |x| x.0);
    if lo > hi {
        return Err(field("duration.min_s", "must not be above duration.max_s"));
    }
    let rate_per_s = g.rate_per_hour.0 / 3600.0;
    let gaps = Exp::new(rate_per_s).map_err(|_| field("rate_per_hour", "must be above 0"))?;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(gi as u64 + 1);
    let prefix = g.name.clone().unwrap_or_else(|| format!("gen{gi}"));
    let mut t = g.start_s.map_or(0.0, |s| s.0);
    for k in 0..g.count.0 {
        t += gaps.sample(&mut rng);
        let z: f64 = rng.sample(StandardNormal);
        let dur = (d.median_s.0 * (d.sigma.0 * z).exp()).clamp(lo, hi);
        out.push(Job {
            id: format!("{prefix}-{k}"),
            kind,
            gpus: sizes[mix.sample(&mut rng)],
            replicas,
            duration: time_from_s(dur).max(1),
            submit: time_from_s(t.min(super::spec::MAX_SECONDS)),
            priority: g.priority,
            tenant: g.tenant.clone().unwrap_or_else(|| "default".into()),
            model_mask: model_mask(g.gpu_model),
            required,
            preferred,
            model: training_model(g.model),
            rl: None,
            rollout: None,
            serving: None,
            elastic: None,
            checkpoint: None,
        });
        let job = out
            .last_mut()
            .ok_or_else(|| field("count", "drew no job"))?;
        if let Some(e) = g.elastic {
            // A drawn job starts at the size it drew (at most max_gpus) and may shrink to min_gpus.
            job.gpus = job.gpus.min(e.max_gpus.0);
        }
        super::job::yielding(
            &super::job::Yield {
                elastic: g.elastic.map(|e| super::spec::ElasticSpec {
                    min_gpus: super::value::Gpus(e.min_gpus.0.min(job.gpus)),
                    max_gpus: super::value::Gpus(job.gpus),
                }),
                interval: g.checkpoint_interval_s,
                cost: g.checkpoint_s,
                policy: g.checkpoint,
                failures,
            },
            job,
            file,
            &path,
        )?;
        if let Some(spec) = &g.serving {
            super::job::serving(spec, job, cluster, file, &format!("{path}.serving"))?;
        }
    }
    Ok(())
}
