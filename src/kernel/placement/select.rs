//! Choosing a backend (`--backend auto|cpu|gpu`, `--verify`) and the verifying backend.
//!
//! Nothing here prints: [`open_backend`] returns a one-line note that the caller writes to stderr.

use super::cpu::{self, CpuBackend};
use super::gpu::{self, GpuBackend};
use super::*;

/// Which placement cost backend to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The GPU when an adapter exists, else the CPU twin.
    #[default]
    Auto,
    /// The CPU twin.
    Cpu,
    /// The GPU; an error when no adapter exists.
    Gpu,
}

/// A backend that can also return the full cost row of one job (the `--verify` debug path).
pub trait CostRows: CostBackend {
    /// Cost of every candidate for `job`, in candidate order.
    fn pair_costs(
        &mut self,
        policy: u32,
        job: &JobRecord,
        candidates: &[CandidateRecord],
    ) -> Result<Vec<u32>, KernelError>;
}

impl CostRows for CpuBackend {
    fn pair_costs(
        &mut self,
        policy: u32,
        job: &JobRecord,
        candidates: &[CandidateRecord],
    ) -> Result<Vec<u32>, KernelError> {
        Ok(candidates
            .iter()
            .enumerate()
            .map(|(i, c)| cpu::pair_cost(policy, job, c, i as u32))
            .collect())
    }
}

impl CostRows for GpuBackend {
    fn pair_costs(
        &mut self,
        policy: u32,
        job: &JobRecord,
        candidates: &[CandidateRecord],
    ) -> Result<Vec<u32>, KernelError> {
        GpuBackend::pair_costs(self, policy, job, candidates)
    }
}

/// Runs a reference backend (the CPU twin) and a checked one (the GPU) on every call and fails with
/// `KernelError::Mismatch` at the first (job, candidate) pair where they disagree.
pub struct VerifyingBackend<R: CostRows = CpuBackend, C: CostRows = GpuBackend> {
    reference: R,
    checked: C,
    scratch: Vec<Winner>,
}

impl<R: CostRows, C: CostRows> VerifyingBackend<R, C> {
    /// Compares `checked` against `reference` (its results are the ones returned).
    pub fn new(reference: R, checked: C) -> Self {
        VerifyingBackend {
            reference,
            checked,
            scratch: Vec::new(),
        }
    }

    /// Locates the first differing pair of job `j` whose winners differ.
    fn mismatch(
        &mut self,
        policy: u32,
        j: usize,
        jobs: &[JobRecord],
        candidates: &[CandidateRecord],
        cpu_winner: Winner,
        gpu_winner: Winner,
    ) -> Result<KernelError, KernelError> {
        let want = self.reference.pair_costs(policy, &jobs[j], candidates)?;
        let got = self.checked.pair_costs(policy, &jobs[j], candidates)?;
        let first = want.iter().zip(&got).position(|(a, b)| a != b);
        let (candidate, cpu, gpu) = match first {
            Some(i) => (i as u32, want[i], got[i]),
            // Every cost agrees but the reduction does not: name the candidate the checked backend chose.
            None => {
                let i = if gpu_winner.candidate != NO_CANDIDATE {
                    gpu_winner.candidate
                } else {
                    cpu_winner.candidate
                };
                let at = |row: &[u32]| row.get(i as usize).copied().unwrap_or(INFEASIBLE);
                (i, at(&want), at(&got))
            }
        };
        Ok(KernelError::Mismatch {
            job: j,
            candidate,
            cpu,
            gpu,
            cpu_winner,
            gpu_winner,
        })
    }
}

impl<R: CostRows, C: CostRows> CostBackend for VerifyingBackend<R, C> {
    fn name(&self) -> &'static str {
        "verify"
    }

    fn adapter(&self) -> String {
        format!("{} vs {}", self.reference.adapter(), self.checked.adapter())
    }

    fn best_candidates(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &[CandidateRecord],
        out: &mut Vec<Winner>,
    ) -> Result<(), KernelError> {
        self.reference
            .best_candidates(policy, jobs, candidates, out)?;
        let mut got = std::mem::take(&mut self.scratch);
        let result = self
            .checked
            .best_candidates(policy, jobs, candidates, &mut got);
        let verdict = match result {
            Err(e) => Err(e),
            Ok(()) if got.len() != out.len() => Err(KernelError::Device(format!(
                "{} returned {} winners for {} jobs",
                self.checked.name(),
                got.len(),
                out.len()
            ))),
            Ok(()) => match out.iter().zip(&got).position(|(a, b)| a != b) {
                None => Ok(()),
                Some(j) => {
                    let (cpu_winner, gpu_winner) = (out[j], got[j]);
                    Err(self.mismatch(policy, j, jobs, candidates, cpu_winner, gpu_winner)?)
                }
            },
        };
        self.scratch = got;
        verdict
    }
}

/// Opens the backend `choice` asks for; with `verify`, a [`VerifyingBackend`] (CPU twin vs GPU, which needs an
/// adapter whatever `choice` says). Returns the backend and a one-line note for stderr.
pub fn open_backend(
    choice: BackendChoice,
    verify: bool,
) -> Result<(Box<dyn CostBackend>, String), KernelError> {
    if verify {
        let gpu = GpuBackend::new().map_err(|e| match e {
            KernelError::NoAdapter(why) => KernelError::NoAdapter(format!(
                "{why} (--verify compares the cpu twin with the gpu kernel and needs an adapter)"
            )),
            other => other,
        })?;
        let backend = VerifyingBackend::new(CpuBackend, gpu);
        let note = format!(
            "backend: verify (cpu twin vs gpu {})",
            backend.checked.adapter()
        );
        return Ok((Box::new(backend), note));
    }
    match choice {
        BackendChoice::Cpu => Ok((Box::new(CpuBackend), "backend: cpu (cpu twin)".to_string())),
        BackendChoice::Gpu => {
            let gpu = GpuBackend::new()?;
            let note = format!("backend: gpu ({})", gpu.adapter());
            Ok((Box::new(gpu), note))
        }
        BackendChoice::Auto => match GpuBackend::new() {
            // A software device (lavapipe) runs the shader correctly but ~100x slower than the CPU twin:
            // auto means "a GPU if there is one", so it takes the twin unless an adapter was named.
            Ok(gpu) if gpu.is_software() && std::env::var_os("WGPU_ADAPTER_NAME").is_none() => Ok((
                Box::new(CpuBackend),
                format!(
                    "backend: cpu (only a software adapter: {}; --backend gpu runs the shader there)",
                    gpu.adapter()
                ),
            )),
            Ok(gpu) => {
                let (backend, note) = hybrid(gpu)?;
                Ok((Box::new(backend), note))
            }
            Err(KernelError::NoAdapter(_)) => Ok((
                Box::new(CpuBackend),
                "backend: cpu (no GPU adapter found)".to_string(),
            )),
            // An adapter exists but its device failed: auto still runs, on the CPU, and says why.
            Err(e) => Ok((
                Box::new(CpuBackend),
                format!("backend: cpu (gpu unusable: {e})"),
            )),
        },
    }
}

/// `auto` with a GPU: the CPU twin below the measured crossover, the GPU from it on. The environment
/// variable `ULTRASCHED_AUTO_CROSSOVER` (pairs per call) sets the crossover instead of measuring it, so
/// tests can send some calls to each side.
fn hybrid(mut gpu: GpuBackend) -> Result<(HybridBackend, String), KernelError> {
    let fixed = std::env::var("ULTRASCHED_AUTO_CROSSOVER").ok();
    let crossover = match fixed.as_deref().map(str::parse::<u64>) {
        Some(Ok(pairs)) => Crossover::fixed(pairs),
        Some(Err(_)) => {
            return Err(KernelError::Device(format!(
                "ULTRASCHED_AUTO_CROSSOVER={}: expected a whole number of pairs",
                fixed.unwrap_or_default()
            )))
        }
        None => super::hybrid::calibrate(&mut CpuBackend, &mut gpu)?,
    };
    let note = if crossover.pairs == u64::MAX {
        format!(
            "backend: auto (cpu twin for every call: gpu {} never wins; round trip {:.0} us, {:.3} ns/pair \
             against {:.3} ns/pair on the cpu)",
            gpu.adapter(),
            crossover.gpu_round_trip_s * 1e6,
            crossover.gpu_s_per_pair * 1e9,
            crossover.cpu_s_per_pair * 1e9
        )
    } else {
        format!(
            "backend: auto (gpu {} for calls of >= {} pairs, cpu twin below)",
            gpu.adapter(),
            crossover.pairs
        )
    };
    Ok((HybridBackend::new(gpu, crossover), note))
}

/// Adapters wgpu can see, for messages (re-exported for the CLI's diagnostics).
pub fn available_adapters() -> Vec<String> {
    gpu::enumerate_adapters()
}
