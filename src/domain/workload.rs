//! The typed, validated workload: a cluster, scheduler settings and a stream of jobs, as the engines see
//! them. Built from a file by `input::workload::build`; nothing here knows a file format.

use crate::domain::cluster::Cluster;
use crate::domain::llm::ModelSpec;

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
    pub serving: Option<Box<crate::domain::traffic::Serve>>,
    /// Training: may run on fewer GPUs (down to `min_gpus`, in whole tensor-parallel groups) when
    /// inference reclaims capacity under `sharing = "elastic"`.
    pub elastic: Option<Elastic>,
    /// Training and RL: periodic checkpoints; a preempted or resized job restarts from the last one.
    pub checkpoint: Option<Checkpoint>,
}

/// `elastic = { min_gpus, max_gpus }`, validated: `max_gpus` is the job's `gpus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elastic {
    /// Fewest GPUs it runs on.
    pub min_gpus: u32,
    /// Resize step: the tensor-parallel degree of its model (1 without one).
    pub step: u32,
}

/// Checkpointing of a training job, validated.
///
/// A checkpoint is written after every `interval` of compute and stalls the job for `cost`; so a run of
/// compute time `c` takes `c + (ceil(c / interval) - 1) * cost` (no checkpoint after the last stretch). A job
/// stopped at wall time `e` into its segment keeps `floor(e / (interval + cost))` checkpoints' worth of
/// compute and loses the rest: `lost = e - k * (interval + cost)` of wall time on all its GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Compute between two checkpoints.
    pub interval: Time,
    /// Time one checkpoint stalls the job.
    pub cost: Time,
}

impl Checkpoint {
    /// Wall time of `compute` microseconds of compute, checkpoints included.
    pub fn wall(&self, compute: Time) -> Time {
        let k = compute.div_ceil(self.interval.max(1)).saturating_sub(1);
        compute.saturating_add(k.saturating_mul(self.cost))
    }

    /// Of a segment stopped `elapsed` after its start: (compute kept by the last checkpoint, wall time lost).
    pub fn kept(&self, elapsed: Time) -> (Time, Time) {
        let cycle = self.interval.saturating_add(self.cost).max(1);
        let k = elapsed / cycle;
        (k * self.interval, elapsed - k * cycle)
    }
}

/// How training and inference share the fleet.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    clap::ValueEnum,
    serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// Each autoscaled service holds the GPUs of its `max_replicas` for its lifetime, used or not: separate
    /// inference and training capacity.
    #[default]
    Static,
    /// A service holds only the replicas it runs; training runs on the rest, and a scale-up reclaims
    /// capacity by preempting the training jobs that cost least to stop.
    Loan,
    /// Like `loan`, but elastic training jobs shrink before anything is preempted.
    Elastic,
}

impl Sharing {
    /// The name as written in workload files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Sharing::Static => "static",
            Sharing::Loan => "loan",
            Sharing::Elastic => "elastic",
        }
    }
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
    /// What happens behind a job that does not fit now.
    pub backfill: Backfill,
    /// Jobs behind the first blocked job that a round considers (easy: 256 unless set; greedy: all).
    pub backfill_depth: u32,
    /// Priority preemption.
    pub preemption: bool,
    /// Work a preempted job redoes on restart.
    pub restart_cost: Time,
    /// Placement policy.
    pub placement: PlacementPolicy,
    /// The queues of `queue = "las"`.
    pub las: Las,
    /// How autoscaled services and training share the fleet.
    pub sharing: Sharing,
    /// A job may use on-demand pools once it has waited this long since its submission (0: at once, when
    /// committed capacity cannot take it).
    pub spill_after: Time,
}

/// Tiresias' discretized least-attained-service queues: a job's attained service (GPUs x time run) sets
/// its queue; queue `k` holds jobs with `thresholds[k-1] <= attained < thresholds[k]`. Lower queues go
/// first, FIFO inside a queue; a running job that crosses a threshold is demoted and may be preempted by
/// a waiting job of a lower queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Las {
    /// Thresholds in GPU-microseconds, ascending; only the first `len` are used.
    pub thresholds: [u128; Las::MAX_THRESHOLDS],
    /// Thresholds in use (queues = len + 1).
    pub len: usize,
}

impl Las {
    /// At most this many thresholds (eight queues).
    pub const MAX_THRESHOLDS: usize = 7;
    /// Default: one threshold at one GPU-hour, two queues.
    pub const DEFAULT_GPU_S: [f64; 1] = [3600.0];

    /// The queue of a job with `attained` GPU-microseconds of service.
    pub fn level(&self, attained: u128) -> u8 {
        self.thresholds[..self.len]
            .iter()
            .take_while(|&&t| attained >= t)
            .count() as u8
    }
}

impl Default for Las {
    fn default() -> Las {
        let mut thresholds = [0u128; Las::MAX_THRESHOLDS];
        for (t, s) in thresholds.iter_mut().zip(Las::DEFAULT_GPU_S) {
            *t = (s * 1e6) as u128;
        }
        Las {
            thresholds,
            len: Las::DEFAULT_GPU_S.len(),
        }
    }
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
    /// `queue = "fair-share"`: weight of each named tenant (a tenant not named weighs 1).
    pub tenant_weights: std::collections::BTreeMap<String, f64>,
    /// `[failures]`: nodes fail and jobs restart from their last checkpoint (none without the section).
    pub failures: Option<crate::domain::failures::Failures>,
}

/// Queue policies.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    clap::ValueEnum,
    serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum QueuePolicy {
    /// First come, first served.
    #[default]
    Fifo,
    /// Shortest job first: by expected duration (ties: submit time, then workload order).
    Sjf,
    /// Smallest area first: by requested GPU-seconds (GPUs x duration).
    SmallestArea,
    /// Highest priority first, then submit order.
    Priority,
    /// Tiresias' discretized 2D least-attained-service (`[scheduler] las_thresholds_gpu_s`): preemptive.
    Las,
    /// Weighted dominant share across tenants (`[scheduler.tenants]`): the tenant furthest below its
    /// share goes first, FIFO inside a tenant.
    FairShare,
}

impl QueuePolicy {
    /// The name as written in workload files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            QueuePolicy::Fifo => "fifo",
            QueuePolicy::Sjf => "sjf",
            QueuePolicy::SmallestArea => "smallest-area",
            QueuePolicy::Priority => "priority",
            QueuePolicy::Las => "las",
            QueuePolicy::FairShare => "fair-share",
        }
    }
}

/// Backfill: what a round does with the jobs behind the first one that does not fit.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    clap::ValueEnum,
    serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Backfill {
    /// Strict queue order: the first job that does not fit ends the round.
    #[default]
    None,
    /// EASY: the blocked head gets a reservation at its shadow time; a later job starts now if it fits and
    /// either ends by the shadow time or leaves the head's reservation intact.
    Easy,
    /// List scheduling: every job that fits now starts, in queue order, with no reservation.
    Greedy,
}

impl Backfill {
    /// The name as written in workload files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Backfill::None => "none",
            Backfill::Easy => "easy",
            Backfill::Greedy => "greedy",
        }
    }

    /// How reports describe it after the queue policy ("" for none).
    pub fn label(self) -> &'static str {
        match self {
            Backfill::None => "",
            Backfill::Easy => " + EASY backfill",
            Backfill::Greedy => " + greedy backfill",
        }
    }
}

/// Placement policies (each is a cost function of the placement kernel).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    clap::ValueEnum,
    serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementPolicy {
    /// Lowest-index domain with a free GPU; topology-unaware.
    FirstFit,
    /// Tightest domain that holds the gang.
    BestFit,
    /// Fewest NVLink domains, then the smallest leftover.
    #[default]
    TopologyPack,
    /// The domain whose fragmentation (GPUs typical gangs of 8, 16, 32 or a whole domain could not use) the
    /// placement lowers most; spills like topology-pack.
    FragAware,
}

/// A training job's model and parallelism, from the workload file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingModel {
    /// Parameters.
    pub params: f64,
    /// Tokens per optimizer step (global batch).
    pub tokens_per_step: f64,
    /// Tensor/expert-parallel degree (inside an NVLink domain).
    pub tp: u32,
    /// Model FLOPs utilisation of the compute phase, 0..1.
    pub mfu: f64,
}

/// How rollout and training share GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RlMode {
    /// Rollout and training time-slice the training gang's GPUs.
    Colocated,
    /// Rollout runs on separate replicas; rollouts may be `staleness` steps ahead of training.
    Async,
}

/// An RL job's loop, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RlJob {
    /// Colocated or async.
    pub mode: RlMode,
    /// Async: how many steps rollouts may run ahead of the weights (0 = synchronous).
    pub staleness: u32,
    /// Optimizer steps.
    pub steps: u64,
    /// The policy model (rollouts serve it; training updates it).
    pub llm: ModelSpec,
    /// Training parallelism: tensor-parallel degree and MFU.
    pub train_tp: u32,
    /// Training MFU.
    pub mfu: f64,
    /// Tensor-parallel degree of a rollout replica (colocated: the gang is cut into replicas of this size).
    pub rollout_tp: u32,
    /// Episodes per step.
    pub episodes_per_step: u32,
    /// LLM calls per episode.
    pub turns: u32,
    /// First prompt, tokens.
    pub prompt_tokens: u32,
    /// New context per later turn (tool results), tokens.
    pub turn_tokens: u32,
    /// Output per turn, tokens.
    pub output_tokens: u32,
    /// Tool wait after each call, seconds.
    pub tool_wait_s: f64,
    /// Reward computation per step (CPU), seconds.
    pub reward_s: f64,
    /// Colocated: cost of switching the GPUs between rollout and training, seconds (paid twice a step).
    pub switch_s: f64,
    /// Most episodes one replica decodes at once.
    pub max_batch: u32,
}
