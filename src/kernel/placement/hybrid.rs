//! `--backend auto`: each call goes to the backend that is faster at its size.
//!
//! A dispatch costs a round trip (upload, submission, readback) whatever its size, so the GPU only wins
//! on calls with enough pairs; calls inside the simulator score at most 32 jobs against the domains with
//! free GPUs and are faster on the CPU twin. So `auto` does not even open a GPU until a call of
//! [`OPEN_GPU_PAIRS`] pairs comes (opening a device costs more than a small run); then [`calibrate`]
//! measures, once per process, the GPU's round trip and both backends' time per pair, and
//! [`Crossover::pairs`] is the call size from which the GPU is predicted faster. Both backends return
//! identical winners, so where a call runs never changes a schedule; [`HybridBackend`] counts the calls
//! and pairs each one took (report.json `run.kernel_usage`).

use super::batch::random_batch;
use super::cpu::CpuBackend;
use super::gpu::GpuBackend;
use super::*;
use serde::Serialize;
use std::time::Instant;

/// What [`calibrate`] measured and the call size it derived.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Crossover {
    /// Median wall time of a one-job call on the GPU, seconds: the fixed cost of a dispatch.
    pub gpu_round_trip_s: f64,
    /// GPU seconds per pair beyond the round trip (from a large call).
    pub gpu_s_per_pair: f64,
    /// CPU twin seconds per pair.
    pub cpu_s_per_pair: f64,
    /// Calls of at least this many pairs go to the GPU; `u64::MAX`: none does (the GPU never wins).
    pub pairs: u64,
}

impl Crossover {
    /// A fixed crossover, without measuring (tests, and `ULTRASCHED_AUTO_CROSSOVER`).
    pub fn fixed(pairs: u64) -> Crossover {
        Crossover {
            gpu_round_trip_s: 0.0,
            gpu_s_per_pair: 0.0,
            cpu_s_per_pair: 0.0,
            pairs,
        }
    }

    /// The crossover of a GPU with round trip `rt` and `gpu` s/pair against a CPU at `cpu` s/pair: the
    /// smallest `n` with `rt + gpu n < cpu n`; never when the CPU is as fast per pair.
    pub fn from_costs(rt: f64, gpu: f64, cpu: f64) -> Crossover {
        let pairs = if cpu > gpu && rt.is_finite() {
            let n = (rt / (cpu - gpu)).floor() + 1.0;
            if n >= u64::MAX as f64 {
                u64::MAX
            } else {
                (n as u64).max(1)
            }
        } else {
            u64::MAX
        };
        Crossover {
            gpu_round_trip_s: rt,
            gpu_s_per_pair: gpu,
            cpu_s_per_pair: cpu,
            pairs,
        }
    }
}

fn median_s(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Times `f` `reps` times after one warm-up call; the median, seconds.
pub(super) fn time_median(
    reps: usize,
    mut f: impl FnMut() -> Result<(), KernelError>,
) -> Result<f64, KernelError> {
    f()?;
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64());
    }
    Ok(median_s(v))
}

/// Measures the GPU round trip (a 1 x 64 call), the CPU twin's time per pair (32 x 2,048 pairs) and the
/// GPU's per pair beyond its round trip (256 x 4,096 pairs), medians of a few calls each, on seeded random
/// batches; a few milliseconds on a real GPU. Also checks the two agree on those batches.
pub fn calibrate(cpu: &mut CpuBackend, gpu: &mut GpuBackend) -> Result<Crossover, KernelError> {
    let policy = POLICY_TOPOLOGY_PACK;
    let mut out = Vec::new();
    let (one, few) = random_batch(7, 1, 64);
    let rt = time_median(5, || gpu.best_candidates(policy, &one, &few, &mut out))?;
    let (jobs, cands) = random_batch(7, 32, 2048);
    let cpu_s = time_median(5, || cpu.best_candidates(policy, &jobs, &cands, &mut out))?;
    let (big_jobs, big_cands) = random_batch(7, 256, 4096);
    let gpu_s = time_median(3, || {
        gpu.best_candidates(policy, &big_jobs, &big_cands, &mut out)
    })?;
    let mut expected = Vec::new();
    cpu.best_candidates(policy, &big_jobs, &big_cands, &mut expected)?;
    if out != expected {
        return Err(KernelError::Device(
            "the GPU kernel and the CPU twin disagree on the calibration batch".to_string(),
        ));
    }
    let big = (big_jobs.len() * big_cands.len()) as f64;
    Ok(Crossover::from_costs(
        rt,
        ((gpu_s - rt) / big).max(0.0),
        cpu_s / (jobs.len() * cands.len()) as f64,
    ))
}

/// Calls below this many pairs never open a GPU: the CPU twin scores 2^16 pairs in ~50 us on one core of
/// the dev machine (0.7 ns a pair), under a wgpu round trip (~200 us on lavapipe; submission and map of a
/// discrete GPU are tens of microseconds before any work). Every call the simulator makes is below it
/// (32 jobs x 1,820 domains is 58,240 pairs), so a run under `auto` costs what it costs on the CPU twin.
pub const OPEN_GPU_PAIRS: u64 = 1 << 16;

/// How many calls and pairs went to each backend (report.json `run.kernel_usage`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KernelUsage {
    /// The GPU `auto` opened, or why it has none ("not opened: no call of 65536 pairs" when no call was
    /// large enough to try).
    pub gpu: String,
    /// Calls of at least this many pairs went to the GPU (`u64::MAX`: none could).
    pub crossover_pairs: u64,
    /// Calls the CPU twin scored.
    pub cpu_calls: u64,
    /// Pairs the CPU twin scored.
    pub cpu_pairs: u64,
    /// Calls the GPU scored.
    pub gpu_calls: u64,
    /// Pairs the GPU scored.
    pub gpu_pairs: u64,
}

/// Whether `auto` has a GPU yet.
enum Gpu {
    /// No call has been large enough to open one.
    NotOpened,
    /// Open, with the crossover measured on it.
    Open(Box<GpuBackend>, Crossover),
    /// None to be had (why).
    None(String),
}

/// The CPU twin below the crossover, the GPU from it on; the GPU opened by the first call that could
/// use it.
pub struct HybridBackend {
    cpu: CpuBackend,
    gpu: Gpu,
    /// Calls of at least this many pairs open the GPU.
    open_at: u64,
    /// A crossover to use instead of measuring one.
    fixed: Option<u64>,
    usage: KernelUsage,
}

impl HybridBackend {
    /// `auto` as the CLI opens it: no GPU until a call of `OPEN_GPU_PAIRS` pairs (or of `fixed` pairs,
    /// when a crossover is fixed), then the crossover `fixed` or the measured one.
    pub fn lazy(fixed: Option<u64>) -> HybridBackend {
        HybridBackend {
            cpu: CpuBackend,
            gpu: Gpu::NotOpened,
            open_at: fixed.map_or(OPEN_GPU_PAIRS, |f| f.min(OPEN_GPU_PAIRS)),
            fixed,
            usage: KernelUsage {
                gpu: format!("not opened: no call of {OPEN_GPU_PAIRS} pairs"),
                crossover_pairs: u64::MAX,
                ..KernelUsage::default()
            },
        }
    }

    /// Sends calls of at least `crossover.pairs` pairs to `gpu`, open from the start.
    pub fn new(gpu: GpuBackend, crossover: Crossover) -> HybridBackend {
        let mut h = HybridBackend::lazy(Some(crossover.pairs));
        h.usage.gpu = gpu.adapter();
        h.usage.crossover_pairs = crossover.pairs;
        h.gpu = Gpu::Open(Box::new(gpu), crossover);
        h
    }

    /// Calls of at least this many pairs open the GPU.
    pub fn open_at(&self) -> u64 {
        self.open_at
    }

    /// Opens a GPU (a software adapter only when named, as for `auto` everywhere) and finds the
    /// crossover. Never an error: without a usable GPU every call stays on the CPU twin.
    fn open(&mut self) {
        let gpu = match GpuBackend::new() {
            Ok(g) if g.is_software() && std::env::var_os("WGPU_ADAPTER_NAME").is_none() => {
                Err(format!("only a software adapter: {}", g.adapter()))
            }
            Ok(g) => Ok(g),
            Err(e) => Err(e.to_string()),
        };
        self.gpu = match gpu {
            Err(why) => Gpu::None(why),
            Ok(mut g) => {
                let crossover = match self.fixed {
                    Some(pairs) => Ok(Crossover::fixed(pairs)),
                    None => calibrate(&mut self.cpu, &mut g),
                };
                match crossover {
                    Ok(c) => Gpu::Open(Box::new(g), c),
                    Err(e) => Gpu::None(format!("{}: {e}", g.adapter())),
                }
            }
        };
        match &self.gpu {
            Gpu::Open(g, c) => {
                self.usage.gpu = g.adapter();
                self.usage.crossover_pairs = c.pairs;
            }
            Gpu::None(why) => self.usage.gpu = format!("none: {why}"),
            Gpu::NotOpened => {}
        }
    }

    /// Where a call of `pairs` pairs goes (the GPU, opened by the first call large enough to use it, or
    /// `None` for the CPU twin), counted in the usage.
    fn route(&mut self, pairs: u64) -> Option<&mut GpuBackend> {
        if pairs >= self.open_at && matches!(self.gpu, Gpu::NotOpened) {
            self.open();
        }
        match &mut self.gpu {
            Gpu::Open(gpu, c) if pairs >= c.pairs => {
                self.usage.gpu_calls += 1;
                self.usage.gpu_pairs += pairs;
                Some(gpu)
            }
            _ => {
                self.usage.cpu_calls += 1;
                self.usage.cpu_pairs += pairs;
                None
            }
        }
    }
}

impl CostBackend for HybridBackend {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn adapter(&self) -> String {
        match &self.gpu {
            Gpu::Open(g, _) => format!("cpu twin + {}", g.adapter()),
            _ => "cpu twin".to_string(),
        }
    }

    fn best_candidates(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &[CandidateRecord],
        out: &mut Vec<Winner>,
    ) -> Result<(), KernelError> {
        let pairs = jobs.len() as u64 * candidates.len() as u64;
        if let Some(gpu) = self.route(pairs) {
            return gpu.best_candidates(policy, jobs, candidates, out);
        }
        self.cpu.best_candidates(policy, jobs, candidates, out)
    }

    /// The CPU twin scores the resident lanes (as `--backend cpu` does); a call that goes to the GPU
    /// takes the records rebuilt from them.
    fn best_candidates_resident(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &mut ResidentCandidates,
        out: &mut Vec<Winner>,
    ) -> Result<(), KernelError> {
        let pairs = jobs.len() as u64 * candidates.len() as u64;
        if let Some(gpu) = self.route(pairs) {
            return gpu.best_candidates_resident(policy, jobs, candidates, out);
        }
        self.cpu
            .best_candidates_resident(policy, jobs, candidates, out)
    }

    fn usage(&self) -> Option<KernelUsage> {
        Some(self.usage.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crossover_is_where_the_round_trip_is_paid_back() {
        // Round trip 2^-10 s (~1 ms), GPU 2^-30 s/pair, CPU 2^-29 + 2^-30 s/pair (all exact in binary):
        // the GPU saves 2^-29 s a pair, so the round trip is paid back at 2^-10 / 2^-29 = 2^19 pairs,
        // where both take the same time (2^-10 + 2^-11 s); from 2^19 + 1 on the GPU is faster.
        let (rt, g, p) = (
            2f64.powi(-10),
            2f64.powi(-30),
            2f64.powi(-29) + 2f64.powi(-30),
        );
        let c = Crossover::from_costs(rt, g, p);
        assert_eq!(c.pairs, (1 << 19) + 1);
        let n = (1u64 << 19) as f64;
        assert_eq!(rt + g * n, p * n);
        assert!(rt + g * (n + 1.0) < p * (n + 1.0));
        // A GPU no faster per pair never wins.
        assert_eq!(Crossover::from_costs(1e-6, 2e-9, 2e-9).pairs, u64::MAX);
        assert_eq!(Crossover::from_costs(1e-6, 3e-9, 2e-9).pairs, u64::MAX);
        // No round trip: the GPU wins from the first pair.
        assert_eq!(Crossover::from_costs(0.0, 1e-9, 2e-9).pairs, 1);
    }
}
