//! Kernel benchmark: seeded random batches, and a timed CPU-vs-GPU run on the same batch.
//!
//! The library never prints: [`run`] returns a [`BenchReport`] that callers print as a table
//! ([`BenchReport::to_table`]) or serialize.

use super::cpu::CpuBackend;
use super::gpu::GpuBackend;
use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::time::{Duration, Instant};

/// NVLink domain sizes that occur in real clusters (8-GPU servers, 36/72-GPU racks, 64-GPU pods).
const DOMAIN_SIZES: [u32; 4] = [8, 36, 64, 72];
/// GPU model ids the random clusters use (a mask bit outside them makes a job infeasible).
const MODELS: u32 = 4;

/// A seeded, realistic batch: `jobs` pending jobs and `candidates` NVLink domains.
///
/// Domains come in pools (one model and domain size per pool) of racks of 1..=4 domains; free counts are a
/// mix of idle, full and partly used domains, and `rack_free`/`pool_free` are the sums over the emitted
/// domains, so they are consistent. Jobs need 1..=576 GPUs, mostly few, accept one or a few models, and mix
/// levels and preferences, so batches hold feasible and infeasible pairs and many equal costs.
pub fn random_batch(
    seed: u64,
    jobs: usize,
    candidates: usize,
) -> (Vec<JobRecord>, Vec<CandidateRecord>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cands = Vec::with_capacity(candidates);
    while cands.len() < candidates {
        let model = rng.random_range(0..MODELS);
        let size = DOMAIN_SIZES[rng.random_range(0..DOMAIN_SIZES.len())];
        let racks = rng.random_range(1..=16usize);
        let per_rack = rng.random_range(1..=4usize);
        let pool_start = cands.len();
        for _ in 0..racks {
            let rack_start = cands.len();
            for _ in 0..per_rack {
                if cands.len() == candidates {
                    break;
                }
                let free = match rng.random_range(0..100u32) {
                    0..25 => size,
                    25..40 => 0,
                    // Partly used: whole servers (multiples of 4) or any count.
                    40..70 => rng.random_range(0..=size / 4) * 4,
                    _ => rng.random_range(0..=size),
                };
                cands.push(CandidateRecord {
                    free,
                    size,
                    model,
                    ..Default::default()
                });
            }
            let rack_free: u32 = cands[rack_start..].iter().map(|c| c.free).sum();
            for c in &mut cands[rack_start..] {
                c.rack_free = rack_free;
            }
        }
        let pool_free: u32 = cands[pool_start..].iter().map(|c| c.free).sum();
        for c in &mut cands[pool_start..] {
            c.pool_free = pool_free;
        }
    }

    let jobs = (0..jobs)
        .map(|_| {
            let gpus = match rng.random_range(0..100u32) {
                0..40 => [1, 2, 4, 8][rng.random_range(0..4usize)],
                40..70 => [16, 32, 36, 64, 72][rng.random_range(0..5usize)],
                70..90 => rng.random_range(1..=144),
                _ => rng.random_range(1..=576),
            };
            let model_mask = match rng.random_range(0..100u32) {
                0..60 => 1 << rng.random_range(0..MODELS),
                60..85 => (1 << rng.random_range(0..MODELS)) | (1 << rng.random_range(0..MODELS)),
                85..95 => (1 << MODELS) - 1,
                // A model no domain has: infeasible everywhere.
                _ => 1 << rng.random_range(MODELS..32),
            };
            let level = match rng.random_range(0..100u32) {
                0..40 => LEVEL_DOMAIN,
                40..75 => LEVEL_RACK,
                _ => LEVEL_POOL,
            };
            let preferred = match rng.random_range(0..100u32) {
                0..50 => LEVEL_NONE,
                50..75 => LEVEL_DOMAIN,
                75..95 => LEVEL_RACK,
                _ => LEVEL_POOL,
            };
            JobRecord {
                gpus,
                model_mask,
                level,
                preferred,
            }
        })
        .collect();
    (jobs, cands)
}

/// What [`run`] measures.
#[derive(Clone, Debug, Serialize)]
pub struct BenchConfig {
    /// Jobs in the batch.
    pub jobs: usize,
    /// Candidates in the batch.
    pub candidates: usize,
    /// One of the `POLICY_*` constants.
    pub policy: u32,
    /// Timed repetitions per backend (after one warm-up call); medians are reported.
    pub reps: usize,
    /// Seed of [`random_batch`].
    pub seed: u64,
}

/// Median timings of one backend (seconds).
#[derive(Clone, Debug, Serialize)]
pub struct BackendTimings {
    /// Backend name ("cpu" or "gpu").
    pub backend: String,
    /// Adapter description.
    pub adapter: String,
    /// Median upload time (0 for the CPU).
    pub upload_s: f64,
    /// Median compute time (for the CPU: the whole call).
    pub dispatch_s: f64,
    /// Median readback time (0 for the CPU).
    pub readback_s: f64,
    /// Median wall time of the whole `best_candidates` call.
    pub total_s: f64,
    /// Pairs scored per second of `total_s`.
    pub pairs_per_s: f64,
}

/// Result of [`run`].
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The configuration measured.
    pub config: BenchConfig,
    /// Pairs per call (`jobs * candidates`).
    pub pairs: u64,
    /// The CPU twin.
    pub cpu: BackendTimings,
    /// The GPU backend, when an adapter exists.
    pub gpu: Option<BackendTimings>,
    /// Why the GPU did not run, when it did not.
    pub gpu_skipped: Option<String>,
    /// GPU speedup over the CPU (total time), when both ran.
    pub speedup: Option<f64>,
    /// True when every backend that ran returned identical winners on every repetition.
    pub agree: bool,
    /// GPU adapter name ("none" without one).
    pub adapter: String,
}

fn median(mut v: Vec<Duration>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

fn per_second(pairs: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        pairs as f64 / seconds
    } else {
        0.0
    }
}

/// Times the CPU twin and (when an adapter exists) the GPU backend on the same batch and checks they agree.
pub fn run(cfg: &BenchConfig) -> Result<BenchReport, KernelError> {
    let (jobs, candidates) = random_batch(cfg.seed, cfg.jobs, cfg.candidates);
    let pairs = (cfg.jobs as u64) * (cfg.candidates as u64);
    let reps = cfg.reps.max(1);

    let mut cpu = CpuBackend;
    let mut expected = Vec::new();
    cpu.best_candidates(cfg.policy, &jobs, &candidates, &mut expected)?;
    let mut totals = Vec::with_capacity(reps);
    let mut out = Vec::new();
    let mut agree = true;
    for _ in 0..reps {
        let t = Instant::now();
        cpu.best_candidates(cfg.policy, &jobs, &candidates, &mut out)?;
        totals.push(t.elapsed());
        agree &= out == expected;
    }
    let cpu_total = median(totals.clone());
    let cpu_timings = BackendTimings {
        backend: cpu.name().to_string(),
        adapter: cpu.adapter(),
        upload_s: 0.0,
        dispatch_s: cpu_total,
        readback_s: 0.0,
        total_s: cpu_total,
        pairs_per_s: per_second(pairs, cpu_total),
    };

    let (gpu_timings, gpu_skipped) = match GpuBackend::new() {
        Err(KernelError::NoAdapter(why)) => (None, Some(format!("no GPU adapter found{why}"))),
        Err(e) => return Err(e),
        Ok(mut gpu) => {
            // Drain the queue between phases, so upload/dispatch/readback are each what they say.
            gpu.set_phase_sync(true);
            gpu.best_candidates(cfg.policy, &jobs, &candidates, &mut out)?;
            agree &= out == expected;
            let (mut up, mut disp, mut back, mut total) = (vec![], vec![], vec![], vec![]);
            for _ in 0..reps {
                let t = Instant::now();
                gpu.best_candidates(cfg.policy, &jobs, &candidates, &mut out)?;
                total.push(t.elapsed());
                agree &= out == expected;
                let phases = gpu.last_timings();
                up.push(phases.upload);
                disp.push(phases.dispatch);
                back.push(phases.readback);
            }
            let total_s = median(total);
            let timings = BackendTimings {
                backend: gpu.name().to_string(),
                adapter: gpu.adapter(),
                upload_s: median(up),
                dispatch_s: median(disp),
                readback_s: median(back),
                total_s,
                pairs_per_s: per_second(pairs, total_s),
            };
            (Some(timings), None)
        }
    };
    let speedup = gpu_timings
        .as_ref()
        .filter(|g| g.total_s > 0.0)
        .map(|g| cpu_timings.total_s / g.total_s);
    let adapter = gpu_timings
        .as_ref()
        .map_or_else(|| "none".to_string(), |g| g.adapter.clone());
    Ok(BenchReport {
        config: cfg.clone(),
        pairs,
        cpu: cpu_timings,
        gpu: gpu_timings,
        gpu_skipped,
        speedup,
        agree,
        adapter,
    })
}

fn policy_name(policy: u32) -> &'static str {
    match policy {
        POLICY_FIRST_FIT => "first-fit",
        POLICY_BEST_FIT => "best-fit",
        POLICY_TOPOLOGY_PACK => "topology-pack",
        _ => "unknown",
    }
}

impl BenchReport {
    /// A readable table of the timings; its last line says whether the backends agreed.
    pub fn to_table(&self) -> String {
        let c = &self.config;
        let mut s = format!(
            "placement cost kernel: {} jobs x {} candidates = {} pairs, policy {}, seed {}, {} reps (medians)\n",
            c.jobs,
            c.candidates,
            self.pairs,
            policy_name(c.policy),
            c.seed,
            c.reps.max(1)
        );
        s += &format!(
            "{:<8} {:>12} {:>12} {:>12} {:>12} {:>14}  adapter\n",
            "backend", "upload ms", "dispatch ms", "readback ms", "total ms", "pairs/s"
        );
        for b in std::iter::once(&self.cpu).chain(self.gpu.as_ref()) {
            s += &format!(
                "{:<8} {:>12.3} {:>12.3} {:>12.3} {:>12.3} {:>14.3e}  {}\n",
                b.backend,
                b.upload_s * 1e3,
                b.dispatch_s * 1e3,
                b.readback_s * 1e3,
                b.total_s * 1e3,
                b.pairs_per_s,
                b.adapter
            );
        }
        if let Some(why) = &self.gpu_skipped {
            s += &format!("gpu      skipped: {why}\n");
        }
        if let Some(x) = self.speedup {
            s += &format!("speedup gpu vs cpu: {x:.3}x\n");
        }
        s += if self.gpu.is_none() {
            "agreement: only the cpu twin ran\n"
        } else if self.agree {
            "agreement: cpu and gpu winners identical\n"
        } else {
            "agreement: MISMATCH between cpu and gpu winners\n"
        };
        s
    }
}
