//! The placement cost kernel: one call scores every (pending job x candidate) pair of a scheduling round and
//! returns each job's best candidate.
//!
//! Two implementations sit behind [`CostBackend`]: [`cpu::CpuBackend`] (the reference, and the fallback) and
//! [`gpu::GpuBackend`] (the WGSL shader in `shaders/placement_cost.wgsl`). They must return identical
//! [`Winner`]s for identical inputs: every cost is an integer, and the reduction's tie rule is fixed
//! (lowest cost, then lowest candidate index). The simulator only ever sees `dyn CostBackend`.
//!
//! Nothing here does I/O or knows about workloads: records are plain `#[repr(C)]` integers.

pub mod batch;
pub mod bench;
pub mod cpu;
pub mod gpu;
pub mod hybrid;
pub mod resident;
pub mod select;

pub use hybrid::{Crossover, HybridBackend, KernelUsage};
pub use resident::ResidentCandidates;
pub use select::{open_backend, BackendChoice, CostRows, VerifyingBackend};

use bytemuck::{Pod, Zeroable};

/// Threads per workgroup; the CPU twin walks candidates in strides of the same width.
/// Must match `WORKGROUP_SIZE` in shaders/placement_cost.wgsl.
pub const WORKGROUP_SIZE: u32 = 64;

/// Cost of an infeasible pair; a job whose winner has this cost fits nowhere.
pub const INFEASIBLE: u32 = u32::MAX;
/// `Winner::candidate` when no candidate is feasible.
pub const NO_CANDIDATE: u32 = u32::MAX;

/// Topology levels, as the domain defines them (the shader mirrors the same codes).
pub use crate::domain::cluster::{LEVEL_DOMAIN, LEVEL_NONE, LEVEL_POOL, LEVEL_RACK};

/// Lowest-index domain with any free GPU (topology-unaware).
pub const POLICY_FIRST_FIT: u32 = 0;
/// Tightest single domain that holds the gang; else the tightest group.
pub const POLICY_BEST_FIT: u32 = 1;
/// Fewest NVLink domains; among equal, the smallest leftover in the anchor domain.
pub const POLICY_TOPOLOGY_PACK: u32 = 2;
/// Domain-fragmentation gradient: the domain whose fragmentation (GPUs unusable by typical gang sizes) the
/// placement lowers most; spills like topology-pack.
pub const POLICY_FRAG_AWARE: u32 = 3;
/// The kernel's id of a placement policy.
pub fn policy_id(p: crate::domain::workload::PlacementPolicy) -> u32 {
    use crate::domain::workload::PlacementPolicy;
    match p {
        PlacementPolicy::FirstFit => POLICY_FIRST_FIT,
        PlacementPolicy::BestFit => POLICY_BEST_FIT,
        PlacementPolicy::TopologyPack => POLICY_TOPOLOGY_PACK,
        PlacementPolicy::FragAware => POLICY_FRAG_AWARE,
    }
}

/// Number of placement policies the kernel knows.
pub const POLICY_COUNT: u32 = 4;
/// Typical gang sizes of the fragmentation measure (the domain's own size is the fourth).
pub const FRAG_SIZES: [u32; 3] = [8, 16, 32];
/// Largest value of `cpu::domain_frag` (its domain term is clamped to `DOMAIN_SIZE_MAX`), which is also the
/// offset that keeps the frag-aware change non-negative.
pub const FRAG_MAX: u32 = DOMAIN_SIZE_MAX + 7 + 15 + 31;
/// Frag-aware: the fragmentation change, offset to be non-negative, sits above an 11-bit leftover.
pub const FRAG_SHIFT: u32 = 11;
/// Frag-aware: largest leftover the cost distinguishes.
pub const FRAG_LEFTOVER_MAX: u32 = 0x7FF;

/// Preference missed: set in bit 31 so any placement that honours the preference wins over one that doesn't.
pub const PREF_MISS_BIT: u32 = 1 << 31;
/// Best-fit: the gang needs more than one domain (sorts after every single-domain fit).
pub const SPILL_BIT: u32 = 1 << 30;
/// Topology-pack: the span (domains) sits above the 16-bit leftover, clamped so it never reaches bit 31.
pub const SPAN_SHIFT: u32 = 16;
/// Largest span the topology-pack cost distinguishes.
pub const SPAN_MAX: u32 = 0x7FFF;
/// Largest GPU count of one domain (fits the 16-bit leftover field).
pub const DOMAIN_SIZE_MAX: u32 = 0xFFFF;

/// One pending job (a gang, or one inference replica) as the kernel sees it.
/// Must match `struct JobRecord` in shaders/placement_cost.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct JobRecord {
    /// GPUs the gang needs (> 0).
    pub gpus: u32,
    /// Bit `m` set: GPU model id `m` is acceptable.
    pub model_mask: u32,
    /// Widest group the gang may span: `LEVEL_DOMAIN`, `LEVEL_RACK` or `LEVEL_POOL`.
    pub level: u32,
    /// Level the gang would rather stay within, or `LEVEL_NONE`.
    pub preferred: u32,
}

/// One candidate: an NVLink domain, with the free capacity of the groups above it.
/// Must match `struct CandidateRecord` in shaders/placement_cost.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CandidateRecord {
    /// Free GPUs in this domain.
    pub free: u32,
    /// GPUs in this domain (1..=`DOMAIN_SIZE_MAX`).
    pub size: u32,
    /// Free GPUs in this domain's rack/block (this domain included).
    pub rack_free: u32,
    /// Free GPUs in this domain's pool (this domain included).
    pub pool_free: u32,
    /// GPU model id of this domain (0..32 in every catalog; a model of 32 or more takes no job, since a
    /// 32-bit mask cannot name it).
    pub model: u32,
    /// Padding to 8 words; always 0.
    pub _pad: [u32; 3],
}

/// Uniforms of one dispatch. Must match `struct Params` in shaders/placement_cost.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Params {
    /// One of the `POLICY_*` constants.
    pub policy: u32,
    /// Number of job records.
    pub num_jobs: u32,
    /// Number of candidate records.
    pub num_candidates: u32,
    /// Padding; always 0.
    pub _pad: u32,
}

/// A job's best candidate. Must match `struct Winner` in shaders/placement_cost.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Winner {
    /// Lowest cost over all candidates (`INFEASIBLE` when none fits).
    pub cost: u32,
    /// Index of the candidate with that cost; lowest index on ties; `NO_CANDIDATE` when none fits.
    pub candidate: u32,
}

impl Winner {
    /// The winner of a job that fits nowhere.
    pub const NONE: Winner = Winner {
        cost: INFEASIBLE,
        candidate: NO_CANDIDATE,
    };

    /// True when some candidate is feasible.
    pub fn is_feasible(&self) -> bool {
        self.cost != INFEASIBLE
    }

    /// The better of two (cost, index) pairs under the kernel's tie rule.
    #[inline]
    pub fn better(self, other: Winner) -> Winner {
        if other.cost < self.cost || (other.cost == self.cost && other.candidate < self.candidate) {
            other
        } else {
            self
        }
    }
}

const _: () = assert!(std::mem::size_of::<JobRecord>() == 16);
const _: () = assert!(std::mem::size_of::<CandidateRecord>() == 32);
const _: () = assert!(std::mem::size_of::<Params>() == 16);
const _: () = assert!(std::mem::size_of::<Winner>() == 8);

/// Errors of a kernel call. A backend error is fatal for the run (the simulator does not silently switch).
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// No GPU adapter was found (lists what was enumerated).
    #[error("no GPU adapter found{0}")]
    NoAdapter(String),
    /// The device failed while creating resources, dispatching or reading back.
    #[error("GPU kernel failed: {0}")]
    Device(String),
    /// `--verify` found a pair where the backends disagree.
    #[error(
        "backends disagree: job {job}, candidate {candidate}: cpu cost {cpu}, gpu cost {gpu} \
         (winners: cpu {cpu_winner:?}, gpu {gpu_winner:?})"
    )]
    Mismatch {
        /// Index of the job in the batch.
        job: usize,
        /// Candidate index where the costs first differ.
        candidate: u32,
        /// CPU twin's cost for that pair.
        cpu: u32,
        /// GPU kernel's cost for that pair.
        gpu: u32,
        /// CPU twin's winner for the job.
        cpu_winner: Winner,
        /// GPU kernel's winner for the job.
        gpu_winner: Winner,
    },
    /// The batch is larger than the kernel accepts.
    #[error("batch too large: {0}")]
    TooLarge(String),
}

impl From<crate::kernel::device::DeviceError> for KernelError {
    fn from(e: crate::kernel::device::DeviceError) -> KernelError {
        match e {
            crate::kernel::device::DeviceError::NoAdapter(s) => KernelError::NoAdapter(s),
            crate::kernel::device::DeviceError::Device(s) => KernelError::Device(s),
        }
    }
}

/// The seam: a placement cost kernel. The simulator holds a `Box<dyn CostBackend>` and never asks which.
pub trait CostBackend: Send {
    /// Short name for reports: "cpu" or "gpu".
    fn name(&self) -> &'static str;
    /// Adapter description for the report's `run` object ("cpu twin" for the CPU backend).
    fn adapter(&self) -> String;
    /// Scores every (job, candidate) pair under `policy` and writes each job's winner to `out`
    /// (`out.len() == jobs.len()` afterwards).
    fn best_candidates(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &[CandidateRecord],
        out: &mut Vec<Winner>,
    ) -> Result<(), KernelError>;
    /// [`CostBackend::best_candidates`] over a resident candidate set (the engine's, updated in place
    /// between calls). Same winners; a backend that has nothing better to do with it scores the records.
    fn best_candidates_resident(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &mut ResidentCandidates,
        out: &mut Vec<Winner>,
    ) -> Result<(), KernelError> {
        let records = candidates.records();
        self.best_candidates(policy, jobs, records, out)
    }
    /// Where the calls went, for a backend that splits them ([`HybridBackend`]); `None` for one that
    /// runs every call itself.
    fn usage(&self) -> Option<KernelUsage> {
        None
    }
}
