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
        self.check_against(policy, jobs, candidates, out)
    }

    /// The reference on the resident candidates (the CPU twin scores its lanes), the checked backend on
    /// the records rebuilt from them: so `--verify` covers the resident path too.
    fn best_candidates_resident(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &mut ResidentCandidates,
        out: &mut Vec<Winner>,
    ) -> Result<(), KernelError> {
        self.reference
            .best_candidates_resident(policy, jobs, candidates, out)?;
        self.check_against(policy, jobs, candidates.records(), out)
    }
}

impl<R: CostRows, C: CostRows> VerifyingBackend<R, C> {
    /// Runs the checked backend and compares its winners with the reference's `out`.
    fn check_against(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &[CandidateRecord],
        out: &[Winner],
    ) -> Result<(), KernelError> {
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
        BackendChoice::Auto => {
            let fixed = match std::env::var("ULTRASCHED_AUTO_CROSSOVER") {
                Ok(v) => Some(v.parse::<u64>().map_err(|_| {
                    KernelError::Device(format!(
                        "ULTRASCHED_AUTO_CROSSOVER={v}: expected a whole number of pairs"
                    ))
                })?),
                Err(_) => None,
            };
            let auto = HybridBackend::lazy(fixed);
            let note = format!(
                "backend: auto (cpu twin; a call of {} pairs or more opens a GPU, if there is one, and \
                 calls from the measured crossover on go to it)",
                auto.open_at()
            );
            Ok((Box::new(auto), note))
        }
    }
}

/// Adapters wgpu can see, for messages (re-exported for the CLI's diagnostics).
pub fn available_adapters() -> Vec<String> {
    gpu::enumerate_adapters()
}
