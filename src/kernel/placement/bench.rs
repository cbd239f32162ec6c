//! Kernel benchmark: a timed CPU-vs-GPU run on one seeded random batch ([`random_batch`]), and the
//! crossover sweep.
//!
//! The library never prints: [`run`] returns a [`BenchReport`] that callers print as a table
//! ([`BenchReport::to_table`]) or serialize.

use super::cpu::CpuBackend;
use super::gpu::GpuBackend;
use super::*;
use serde::Serialize;
use std::time::{Duration, Instant};

pub use super::batch::random_batch;

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
    /// Also sweep the call size (jobs 1, 2, 4, .. up to `jobs`, against `candidates`) to find where the
    /// GPU starts to win ([`CrossoverReport`]).
    pub crossover: bool,
}

/// One call size of the crossover sweep: median seconds per call on each backend.
#[derive(Clone, Debug, Serialize)]
pub struct CrossoverRow {
    /// Jobs per call.
    pub jobs: usize,
    /// Candidates per call.
    pub candidates: usize,
    /// Pairs per call.
    pub pairs: u64,
    /// CPU twin, median seconds per call.
    pub cpu_s: f64,
    /// GPU, median seconds per call (upload, dispatch and readback).
    pub gpu_s: f64,
}

/// The GPU with resident candidates against a full upload per call.
#[derive(Clone, Debug, Serialize)]
pub struct ResidentTimings {
    /// Candidates changed before each call (1 %, at least 1), spread over the list.
    pub changed_per_call: usize,
    /// Candidate records uploaded per call with resident state (median): the span of the changes.
    pub uploaded_per_call: u64,
    /// Median seconds per call, resident.
    pub resident_s: f64,
    /// Median seconds per call, every candidate uploaded.
    pub full_upload_s: f64,
}

/// Times calls on `gpu` where 1 % of the candidates change between calls: resident (only the changed
/// span uploaded) and with every candidate uploaded; checks each call against the CPU twin.
fn resident(
    gpu: &mut GpuBackend,
    policy: u32,
    jobs: &[JobRecord],
    candidates: &[CandidateRecord],
    reps: usize,
) -> Result<ResidentTimings, KernelError> {
    let mut cands = candidates.to_vec();
    let n = cands.len();
    let changed = (n / 100).max(1);
    let (mut out, mut expected) = (Vec::new(), Vec::new());
    let (mut res, mut full, mut uploaded) = (Vec::new(), Vec::new(), Vec::new());
    gpu.best_candidates(policy, jobs, &cands, &mut out)?;
    for rep in 0..reps.max(1) {
        for drop in [false, true] {
            // A domain gives a GPU back: its free count and its pool's move.
            for k in 0..changed {
                let i = (k * n / changed + rep) % n.max(1);
                let c = &mut cands[i];
                c.free = if c.free < c.size {
                    c.free + 1
                } else {
                    c.free - 1
                };
            }
            if drop {
                gpu.drop_resident();
            }
            let before = gpu.uploaded_candidates();
            let t = Instant::now();
            gpu.best_candidates(policy, jobs, &cands, &mut out)?;
            let took = t.elapsed();
            CpuBackend.best_candidates(policy, jobs, &cands, &mut expected)?;
            if out != expected {
                return Err(KernelError::Device(
                    "resident candidates: the GPU and the CPU twin disagree".to_string(),
                ));
            }
            if drop {
                full.push(took);
            } else {
                res.push(took);
                uploaded.push(gpu.uploaded_candidates() - before);
            }
        }
    }
    uploaded.sort_unstable();
    Ok(ResidentTimings {
        changed_per_call: changed,
        uploaded_per_call: uploaded[uploaded.len() / 2],
        resident_s: median(res),
        full_upload_s: median(full),
    })
}

/// Where the GPU starts to win.
#[derive(Clone, Debug, Serialize)]
pub struct CrossoverReport {
    /// The sweep, smallest call first.
    pub rows: Vec<CrossoverRow>,
    /// The smallest measured call size from which the GPU was faster at every larger size measured;
    /// `None` when it was not faster at the largest.
    pub measured_pairs: Option<u64>,
    /// What `--backend auto` would measure on this machine ([`super::hybrid::calibrate`]): its model's
    /// crossover, round trip and times per pair.
    pub auto: super::hybrid::Crossover,
}

/// Sweeps calls of 1, 2, 4, .. `max_jobs` jobs against `candidates` candidates on both backends.
pub fn crossover(
    gpu: &mut GpuBackend,
    policy: u32,
    seed: u64,
    max_jobs: usize,
    candidates: usize,
    reps: usize,
) -> Result<CrossoverReport, KernelError> {
    let mut cpu = CpuBackend;
    let mut rows = Vec::new();
    let mut out = Vec::new();
    let mut expected = Vec::new();
    let mut jobs = 1;
    loop {
        let (js, cs) = random_batch(seed, jobs, candidates);
        cpu.best_candidates(policy, &js, &cs, &mut expected)?;
        let time = |b: &mut dyn CostBackend, out: &mut Vec<Winner>| {
            super::hybrid::time_median(reps.max(1), || b.best_candidates(policy, &js, &cs, out))
        };
        let cpu_s = time(&mut cpu, &mut out)?;
        let gpu_s = time(gpu, &mut out)?;
        if out != expected {
            return Err(KernelError::Device(format!(
                "the GPU kernel and the CPU twin disagree at {jobs} x {candidates}"
            )));
        }
        rows.push(CrossoverRow {
            jobs,
            candidates,
            pairs: (jobs * candidates) as u64,
            cpu_s,
            gpu_s,
        });
        if jobs >= max_jobs {
            break;
        }
        jobs = (jobs * 2).min(max_jobs);
    }
    let measured_pairs = rows
        .iter()
        .rposition(|r| r.gpu_s >= r.cpu_s)
        .map_or(Some(0), |i| rows.get(i + 1).map(|r| r.pairs))
        .map(|p| p.max(rows.first().map_or(0, |r| r.pairs)));
    let auto = super::hybrid::calibrate(&mut cpu, gpu)?;
    Ok(CrossoverReport {
        rows,
        measured_pairs,
        auto,
    })
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
    /// Resident candidates: the GPU's call time when 1 % of the candidates change between calls (only
    /// they are uploaded) against uploading all of them every call, when the GPU ran.
    pub resident: Option<ResidentTimings>,
    /// GPU speedup over the CPU (total time), when both ran.
    pub speedup: Option<f64>,
    /// True when every backend that ran returned identical winners on every repetition.
    pub agree: bool,
    /// GPU adapter name ("none" without one).
    pub adapter: String,
    /// The crossover sweep, when asked for and a GPU ran.
    pub crossover: Option<CrossoverReport>,
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
            let resident = resident(&mut gpu, cfg.policy, &jobs, &candidates, reps)?;
            let sweep = if cfg.crossover {
                gpu.set_phase_sync(false);
                Some(crossover(
                    &mut gpu,
                    cfg.policy,
                    cfg.seed,
                    cfg.jobs,
                    cfg.candidates,
                    reps,
                )?)
            } else {
                None
            };
            (Some((timings, sweep, resident)), None)
        }
    };
    let (gpu_timings, crossover, resident) = match gpu_timings {
        Some((t, c, r)) => (Some(t), c, Some(r)),
        None => (None, None, None),
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
        crossover,
        resident,
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
        if let Some(r) = &self.resident {
            s += &format!(
                "gpu resident: {} candidates changed per call, {} uploaded: {:.3} ms per call; every \
                 candidate uploaded: {:.3} ms\n",
                r.changed_per_call,
                r.uploaded_per_call,
                r.resident_s * 1e3,
                r.full_upload_s * 1e3
            );
        }
        if let Some(c) = &self.crossover {
            s += "crossover sweep (medians per call, one submission per dispatch):\n";
            s += &format!(
                "{:>8} {:>10} {:>14} {:>12} {:>12}  faster\n",
                "jobs", "candidates", "pairs", "cpu ms", "gpu ms"
            );
            for r in &c.rows {
                s += &format!(
                    "{:>8} {:>10} {:>14} {:>12.4} {:>12.4}  {}\n",
                    r.jobs,
                    r.candidates,
                    r.pairs,
                    r.cpu_s * 1e3,
                    r.gpu_s * 1e3,
                    if r.gpu_s < r.cpu_s { "gpu" } else { "cpu" }
                );
            }
            s += &match c.measured_pairs {
                Some(p) => format!("crossover: the gpu is faster from {p} pairs per call\n"),
                None => "crossover: the gpu was not faster at any size measured\n".to_string(),
            };
            s += &format!(
                "auto's model: round trip {:.1} us, gpu {:.4} ns/pair, cpu {:.4} ns/pair: {}\n",
                c.auto.gpu_round_trip_s * 1e6,
                c.auto.gpu_s_per_pair * 1e9,
                c.auto.cpu_s_per_pair * 1e9,
                if c.auto.pairs == u64::MAX {
                    "every call on the cpu".to_string()
                } else {
                    format!("calls of >= {} pairs on the gpu", c.auto.pairs)
                }
            );
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
