//! The workload file as written (TOML or JSON), strictly: unknown fields are errors, and every value that can
//! be checked alone is checked while it is read, so the parser's error carries its line and column.

use crate::domain::workload::{Backfill, PlacementPolicy, QueuePolicy};
use serde::Deserialize;

pub use super::value::*;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    /// Display name (defaults to the file stem).
    pub name: Option<String>,
    /// Seed for every random draw (generators, random policies).
    #[serde(default)]
    pub seed: u64,
    /// The fleet.
    pub cluster: ClusterSpec,
    /// Queue and placement policies.
    #[serde(default)]
    pub scheduler: SchedulerSpec,
    /// Explicit jobs.
    #[serde(default)]
    pub jobs: Vec<JobSpecEntry>,
    /// Seeded job generators.
    #[serde(default)]
    pub generators: Vec<GeneratorSpec>,
    /// `[[job_traces]]`: job lists from CSV files (see `input::job_trace`).
    #[serde(default)]
    pub job_traces: Vec<JobTraceSpec>,
    /// `[failures]`: node failures, repairs, restarts and spares (off without the section).
    pub failures: Option<FailuresSpec>,
    /// `[[sites]]`: where pools stand, with their power caps.
    #[serde(default)]
    pub sites: Vec<SiteSpec>,
}

/// `[[sites]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    /// The name pools give as `site`.
    pub name: String,
    /// Facility power cap, MW (IT power x PUE); no cap without it.
    pub power_cap_mw: Option<Megawatts>,
    /// Power usage effectiveness (default 1.2).
    pub pue: Option<Pue>,
}

/// `contract` of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContractName {
    /// Paid for the whole run.
    Committed,
    /// Paid per GPU-hour used.
    OnDemand,
}

/// `[failures]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailuresSpec {
    /// Failures per GPU-hour by cause (`gpu`, `hbm`, `network`, `host`, `software`); causes not named keep
    /// the Llama 3 defaults (`domain::failures`).
    #[serde(default)]
    pub rates_per_gpu_hour: std::collections::BTreeMap<String, FailureRate>,
    /// Seconds a failed node is out, by cause.
    #[serde(default)]
    pub repair_s: std::collections::BTreeMap<String, Seconds>,
    /// Seconds a stopped job takes to restart (default 300).
    pub restart_s: Option<Seconds>,
    /// Nodes of each NVLink domain held back as spares (default 0).
    pub spare_nodes_per_domain: Option<u32>,
    /// Nodes of each rack held back as spares (default 0; not with `spare_nodes_per_domain`).
    pub spare_nodes_per_rack: Option<u32>,
    /// Weibull shape of each node's time to failure (0.1 to 10; default: exponential).
    pub weibull_shape: Option<WeibullShape>,
}

/// `checkpoint = "young-daly"`: the interval from the job's expected MTBF and checkpoint cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointPolicy {
    /// Daly's refinement of Young's `sqrt(2 checkpoint_s MTBF)`.
    YoungDaly,
}

/// `[cluster]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// `[[cluster.pools]]`: one per homogeneous pool.
    pub pools: Vec<PoolSpec>,
}

/// `[[cluster.pools]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Pool name (defaults to `<preset>-<index>`).
    pub name: Option<String>,
    /// System shape from the catalog (`ultrasched presets`); or, without it, a custom shape from `gpu`,
    /// `gpus_per_node` and `nodes_per_domain`.
    pub preset: Option<PresetName>,
    /// Custom pool: the GPU model (a catalog GPU id, `ultrasched presets` lists them).
    pub gpu: Option<GpuModelName>,
    /// Custom pool: GPUs per node (1 ..= 1,000,000).
    pub gpus_per_node: Option<Count>,
    /// Custom pool: nodes per NVLink (scale-up) domain (default 1).
    pub nodes_per_domain: Option<Count>,
    /// Number of units (NVLink domains: one UltraServer, or one 8-GPU node for P5-class presets).
    pub count: Count,
    /// Domains per rack/block (defaults to the preset's).
    pub domains_per_rack: Option<Count>,
    /// Provider label (default "aws").
    pub provider: Option<String>,
    /// The `[[sites]]` name it stands in.
    pub site: Option<String>,
    /// `committed` (default) or `on-demand`.
    pub contract: Option<ContractName>,
    /// On-demand only: seconds from placement to useful work (default 0).
    pub startup_s: Option<Seconds>,
    /// Committed price, USD per GPU-hour (defaults to the catalog's placeholder for the GPU model).
    pub usd_per_gpu_hour: Option<Money>,
    /// Power per GPU while idle, W (defaults to the catalog).
    pub idle_w: Option<Watts>,
    /// Power per GPU while busy, W (defaults to the catalog's board power).
    pub busy_w: Option<Watts>,
}

/// `[[job_traces]]`: a CSV job list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobTraceSpec {
    /// The CSV file, relative to the workload file.
    pub path: String,
    /// Header names for the logical columns (`id`, `submit_s`, `duration_s`, `gpus`, `priority`, `tenant`,
    /// `gpu_model`, `kind`) when they differ.
    pub columns: Option<std::collections::BTreeMap<String, String>>,
    /// Keep the first N data rows.
    pub limit: Option<Count>,
}

/// `model = { params_b = 70, tokens_per_step = 4194304, tp = 8, mfu = 0.4 }`: a training job's model, so its
/// run time depends on where it lands (see `perfmodel`). `duration_s` is then the run time on the ideal
/// placement.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingModelSpec {
    /// Parameters, billions.
    pub params_b: Positive,
    /// Tokens per optimizer step (global batch).
    pub tokens_per_step: Positive,
    /// Tensor/expert-parallel degree inside an NVLink domain (default 1).
    pub tp: Option<Count>,
    /// Model FLOPs utilisation, above 0 and at most 1 (default 0.4).
    pub mfu: Option<Fraction>,
}

/// `[scheduler]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSpec {
    /// Queue order.
    #[serde(default)]
    pub queue: QueuePolicy,
    /// Backfill mode: "none", "easy" or "greedy" (`true`/`false` mean easy/none).
    #[serde(default)]
    pub backfill: BackfillSpec,
    /// Jobs behind the first blocked job that a round looks at (default 256 under easy, all under greedy).
    pub backfill_depth: Option<Count>,
    /// With `queue = "priority"`: a blocked job may preempt lower-priority running jobs.
    #[serde(default)]
    pub preemption: bool,
    /// Work lost by a preempted job on restart, seconds (default 300).
    pub restart_cost_s: Option<Seconds>,
    /// Placement policy.
    #[serde(default)]
    pub placement: PlacementPolicy,
    /// With `queue = "las"`: attained-service thresholds in GPU-seconds, ascending (default [3600]).
    pub las_thresholds_gpu_s: Option<Vec<Seconds>>,
    /// With `queue = "fair-share"`: tenant name -> weight (above 0; tenants not named weigh 1).
    #[serde(default)]
    pub tenants: std::collections::BTreeMap<String, f64>,
    /// How autoscaled services and training share the fleet: `static` (default), `loan` or `elastic`.
    #[serde(default)]
    pub sharing: crate::domain::workload::Sharing,
    /// A job waiting this long may run on on-demand pools (default 0: whenever committed capacity cannot
    /// take it).
    pub spill_after_s: Option<Seconds>,
}

/// `elastic = { min_gpus, max_gpus }` of a training job.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticSpec {
    /// Fewest GPUs it may shrink to.
    pub min_gpus: Gpus,
    /// Most GPUs (its size when it starts; `gpus` may be left out, or must equal this).
    pub max_gpus: Gpus,
}

/// Job kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KindName {
    /// A training gang.
    #[default]
    Training,
    /// An inference service (replicas).
    Inference,
    /// An agentic RL job: rollout -> reward -> train -> weight sync, `steps` times.
    Rl,
}

/// Topology levels in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LevelName {
    /// One NVLink domain.
    Domain,
    /// One rack/block.
    Rack,
    /// Anywhere in the pool.
    Any,
}

/// `topology = { required = "rack", preferred = "domain" }`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    /// The widest group the gang may span (default `any`; inference replicas default to `domain`).
    pub required: Option<LevelName>,
    /// The group it would rather stay within.
    pub preferred: Option<LevelName>,
}

/// `[[jobs]]`: fields for both kinds; which are needed depends on `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpecEntry {
    /// Job id (defaults to `job-<index>`); must be unique.
    pub id: Option<String>,
    /// `training` (default) or `inference`.
    #[serde(default)]
    pub kind: KindName,
    /// Training: GPUs of the gang.
    pub gpus: Option<Gpus>,
    /// Training: ideal run time, seconds.
    pub duration_s: Option<Seconds>,
    /// Inference: replicas.
    pub replicas: Option<Count>,
    /// Inference: GPUs per replica (tensor parallel inside one domain).
    pub gpus_per_replica: Option<Gpus>,
    /// Inference: how long the service runs, seconds.
    pub lifetime_s: Option<Seconds>,
    /// Submit time, seconds (default 0).
    pub submit_s: Option<Seconds>,
    /// Inference: alias of `submit_s`.
    pub start_s: Option<Seconds>,
    /// Higher runs first under `queue = "priority"` (default 0).
    #[serde(default)]
    pub priority: i32,
    /// Tenant label (default "default").
    pub tenant: Option<String>,
    /// GPU model constraint (default: any).
    pub gpu_model: Option<GpuModelName>,
    /// Topology constraint.
    #[serde(default)]
    pub topology: TopologySpec,
    /// Training: the model, so placement changes the run time.
    pub model: Option<TrainingModelSpec>,
    /// RL: the loop (with `kind = "rl"`; `gpus` is the training gang).
    pub rl: Option<RlSpec>,
    /// Inference: the model served and its request traffic, simulated request by request on the replicas
    /// the service got, while it ran.
    pub serving: Option<crate::input::traffic::ServeSpec>,
    /// Training: elastic range.
    pub elastic: Option<ElasticSpec>,
    /// Training and RL: compute between checkpoints, seconds.
    pub checkpoint_interval_s: Option<Seconds>,
    /// Time one checkpoint stalls the job, seconds (default 60; needs `checkpoint_interval_s` or
    /// `checkpoint`).
    pub checkpoint_s: Option<Seconds>,
    /// `"young-daly"`: the checkpoint interval from the job's MTBF under `[failures]` (instead of
    /// `checkpoint_interval_s`).
    pub checkpoint: Option<CheckpointPolicy>,
}

/// `rl = { ... }` of a `kind = "rl"` job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlSpec {
    /// `colocated` (rollout time-slices the training GPUs) or `async` (separate rollout replicas).
    pub mode: RlModeName,
    /// Async: steps rollouts may run ahead of the weights (default 1; 0 = synchronous).
    pub staleness: Option<u32>,
    /// Optimizer steps.
    pub steps: Count,
    /// Policy model: a built-in LLM (llama-3-8b, llama-3-70b, llama-2-70b).
    pub llm: String,
    /// Episodes per step.
    pub episodes_per_step: Count,
    /// LLM calls per episode.
    pub turns: Count,
    /// First prompt, tokens.
    pub prompt_tokens: Tokens,
    /// New context per later turn, tokens (default 512).
    pub turn_tokens: Option<Tokens>,
    /// Output per call, tokens.
    pub output_tokens: Tokens,
    /// Tool wait after each call, seconds (default 0).
    pub tool_wait_s: Option<Seconds>,
    /// Reward per step on CPUs, seconds (default 0).
    pub reward_s: Option<Seconds>,
    /// Colocated: switch cost between rollout and training, seconds (default 10).
    pub switch_s: Option<Seconds>,
    /// Training tensor-parallel degree (default 1).
    pub train_tp: Option<Count>,
    /// Training MFU (default 0.4).
    pub mfu: Option<Fraction>,
    /// GPUs per rollout replica (tensor parallel; default 1).
    pub rollout_tp: Option<Gpus>,
    /// Async: rollout replicas.
    pub rollout_replicas: Option<Count>,
    /// Async: GPU model of the rollout replicas (default: any).
    pub rollout_gpu_model: Option<GpuModelName>,
    /// Most episodes one replica decodes at once (default 256).
    pub max_batch: Option<Count>,
}

/// RL modes in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RlModeName {
    /// Time-sliced on the training gang.
    Colocated,
    /// Separate rollout replicas.
    Async,
}

/// `[[generators]]`: draws `count` jobs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSpec {
    /// Id prefix (defaults to `gen<index>`).
    pub name: Option<String>,
    /// Kind of the jobs drawn.
    #[serde(default)]
    pub kind: KindName,
    /// Jobs to draw.
    pub count: Count,
    /// Poisson arrival rate, jobs per hour.
    pub rate_per_hour: Rate,
    /// First arrival no earlier than this, seconds.
    pub start_s: Option<Seconds>,
    /// Training: GPU-count mix.
    #[serde(default)]
    pub gpu_mix: Vec<MixEntry>,
    /// Inference: replicas per service.
    pub replicas: Option<Count>,
    /// Inference: GPUs per replica.
    pub gpus_per_replica: Option<Gpus>,
    /// Lognormal duration (training run time, inference lifetime).
    pub duration: LogNormalSpec,
    /// Priority of every drawn job.
    #[serde(default)]
    pub priority: i32,
    /// Tenant of every drawn job.
    pub tenant: Option<String>,
    /// GPU model constraint of every drawn job.
    pub gpu_model: Option<GpuModelName>,
    /// Topology of every drawn job.
    #[serde(default)]
    pub topology: TopologySpec,
    /// Training: the model of every drawn job.
    pub model: Option<TrainingModelSpec>,
    /// Inference: the serving spec of every drawn service (each draws its own traffic).
    pub serving: Option<crate::input::traffic::ServeSpec>,
    /// Training: elastic range of every drawn job.
    pub elastic: Option<ElasticSpec>,
    /// Training: compute between checkpoints, seconds.
    pub checkpoint_interval_s: Option<Seconds>,
    /// Time one checkpoint stalls the job, seconds (default 60; needs `checkpoint_interval_s` or
    /// `checkpoint`).
    pub checkpoint_s: Option<Seconds>,
    /// `"young-daly"`: the checkpoint interval from the job's MTBF under `[failures]` (instead of
    /// `checkpoint_interval_s`).
    pub checkpoint: Option<CheckpointPolicy>,
}

/// One entry of a GPU-count mix.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// GPUs.
    pub gpus: Gpus,
    /// Relative weight (>= 0).
    pub weight: Weight,
}

/// `backfill = "none" | "easy" | "greedy"`, or the older `true` (easy) / `false` (none).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BackfillSpec(pub Backfill);

impl<'de> Deserialize<'de> for BackfillSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = BackfillSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"none\", \"easy\" or \"greedy\" (or true/false for easy/none)")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<BackfillSpec, E> {
                Ok(BackfillSpec(if v {
                    Backfill::Easy
                } else {
                    Backfill::None
                }))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BackfillSpec, E> {
                match v {
                    "none" => Ok(BackfillSpec(Backfill::None)),
                    "easy" => Ok(BackfillSpec(Backfill::Easy)),
                    "greedy" => Ok(BackfillSpec(Backfill::Greedy)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}
