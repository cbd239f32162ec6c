//! The workload file as written (TOML or JSON), strictly: unknown fields are errors, and every value that can
//! be checked alone is checked while it is read, so the parser's error carries its line and column.

use crate::catalog::{self, Preset};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// Largest GPU count anywhere (a job, a pool, the whole cluster): 2^24.
pub const MAX_GPUS: u64 = 1 << 24;
/// Largest time value, seconds (10 years).
pub const MAX_SECONDS: f64 = 10.0 * 365.0 * 86400.0;
/// Largest number of jobs a workload may hold (explicit plus generated).
pub const MAX_JOBS: u64 = 10_000_000;

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
    /// System shape from the catalog (`ultrasched presets`).
    pub preset: PresetName,
    /// Number of units (NVLink domains: one UltraServer, or one 8-GPU node for P5-class presets).
    pub count: Count,
    /// Domains per rack/block (defaults to the preset's).
    pub domains_per_rack: Option<Count>,
    /// Provider label.
    pub provider: Option<String>,
    /// Committed price, USD per GPU-hour (defaults to the catalog's placeholder for the GPU model).
    pub usd_per_gpu_hour: Option<Money>,
    /// Power per GPU while idle, W (defaults to the catalog).
    pub idle_w: Option<Watts>,
    /// Power per GPU while busy, W (defaults to the catalog's board power).
    pub busy_w: Option<Watts>,
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
    /// EASY backfill on top of the queue order.
    #[serde(default)]
    pub backfill: bool,
    /// Jobs behind the head that backfill looks at (default 256).
    pub backfill_depth: Option<Count>,
    /// With `queue = "priority"`: a blocked job may preempt lower-priority running jobs.
    #[serde(default)]
    pub preemption: bool,
    /// Work lost by a preempted job on restart, seconds (default 300).
    pub restart_cost_s: Option<Seconds>,
    /// Placement policy.
    #[serde(default)]
    pub placement: PlacementPolicy,
}

/// Queue policies.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum QueuePolicy {
    /// First come, first served.
    #[default]
    Fifo,
    /// Shortest job first, by requested GPU-seconds.
    Sjf,
    /// Highest priority first, then submit order.
    Priority,
}

/// Placement policies (each is a cost function of the placement kernel).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum, serde::Serialize,
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

impl PlacementPolicy {
    /// The kernel's policy id.
    pub fn kernel_id(self) -> u32 {
        match self {
            PlacementPolicy::FirstFit => crate::kernel::POLICY_FIRST_FIT,
            PlacementPolicy::BestFit => crate::kernel::POLICY_BEST_FIT,
            PlacementPolicy::TopologyPack => crate::kernel::POLICY_TOPOLOGY_PACK,
            PlacementPolicy::FragAware => crate::kernel::POLICY_FRAG_AWARE,
        }
    }
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
    pub serving: Option<crate::inference::traffic::ServeSpec>,
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
    pub serving: Option<crate::inference::traffic::ServeSpec>,
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

/// Lognormal distribution by its median and log-space sigma, optionally clamped.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogNormalSpec {
    /// Median, seconds (> 0).
    pub median_s: Seconds,
    /// Sigma of ln(duration), 0..=5.
    #[serde(default)]
    pub sigma: Sigma,
    /// Lower clamp, seconds.
    pub min_s: Option<Seconds>,
    /// Upper clamp, seconds.
    pub max_s: Option<Seconds>,
}

// ---- Values checked as they are read -------------------------------------------------------------------

/// Reads any number (integer or float) as f64, rejecting NaN and infinities.
fn number<'de, D: Deserializer<'de>>(d: D, what: &'static str) -> Result<f64, D::Error> {
    struct V(&'static str);
    impl<'de> Visitor<'de> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(E::custom(format!(
                    "{v} is not allowed: expected {}",
                    self.0
                )))
            }
        }
    }
    d.deserialize_any(V(what))
}

/// Reads a whole number in `lo..=hi`.
fn whole<'de, D: Deserializer<'de>>(d: D, lo: u64, hi: u64) -> Result<u64, D::Error> {
    struct V(u64, u64);
    impl<'de> Visitor<'de> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a whole number from {} to {}", self.0, self.1)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            if v < 0 {
                return Err(E::custom(format!(
                    "{v} is out of range: expected a whole number from {} to {}",
                    self.0, self.1
                )));
            }
            self.visit_u64(v as u64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            if v < self.0 || v > self.1 {
                return Err(E::custom(format!(
                    "{v} is out of range: expected a whole number from {} to {}",
                    self.0, self.1
                )));
            }
            Ok(v)
        }
    }
    d.deserialize_any(V(lo, hi))
}

macro_rules! checked_number {
    ($(#[$doc:meta])* $name:ident, $what:expr, |$v:ident| $ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
        pub struct $name(pub f64);
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let $v = number(d, $what)?;
                if $ok {
                    Ok($name($v))
                } else {
                    Err(de::Error::custom(format!("{} is out of range: expected {}", $v, $what)))
                }
            }
        }
    };
}

checked_number!(
    /// Seconds: finite, 0 to 10 years.
    Seconds, "seconds from 0 to 315360000 (10 years)", |v| (0.0..=MAX_SECONDS).contains(&v));
checked_number!(
    /// A Poisson rate per hour: finite, > 0, at most 1e9.
    Rate, "a rate per hour above 0 and at most 1e9", |v| v > 0.0 && v <= 1e9);
checked_number!(
    /// A mix weight: finite, >= 0.
    Weight, "a weight from 0 to 1e12", |v| (0.0..=1e12).contains(&v));
checked_number!(
    /// Lognormal sigma: 0..=5.
    Sigma, "a sigma from 0 to 5", |v| (0.0..=5.0).contains(&v));

checked_number!(
    /// A positive number up to 1e15.
    Positive, "a number above 0 and at most 1e15", |v| v > 0.0 && v <= 1e15);
checked_number!(
    /// A fraction above 0 and at most 1.
    Fraction, "a fraction above 0 and at most 1", |v| v > 0.0 && v <= 1.0);
checked_number!(
    /// Money per GPU-hour: 0 to 1e6.
    Money, "USD per GPU-hour from 0 to 1000000", |v| (0.0..=1e6).contains(&v));
checked_number!(
    /// Power per GPU: 0 to 100 kW.
    Watts, "watts from 0 to 100000", |v| (0.0..=1e5).contains(&v));
checked_number!(
    /// A rate per second (inference traffic): finite, > 0, at most 1e6.
    RatePerSecond, "a rate per second above 0 and at most 1000000", |v| v > 0.0 && v <= 1e6);
checked_number!(
    /// A size such as a token or turn count: finite, 1 to 10^7.
    Size, "a number from 1 to 10000000", |v| (1.0..=1e7).contains(&v));

impl Default for Sigma {
    fn default() -> Self {
        Sigma(0.0)
    }
}

/// GPUs: a whole number from 1 to 2^24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpus(pub u32);
impl<'de> Deserialize<'de> for Gpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole(d, 1, MAX_GPUS).map(|v| Gpus(v as u32))
    }
}

/// Tokens: a whole number from 1 to 2^24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tokens(pub u32);
impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole(d, 1, MAX_GPUS).map(|v| Tokens(v as u32))
    }
}

/// A count: a whole number from 1 to 10^7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u32);
impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole(d, 1, MAX_JOBS).map(|v| Count(v as u32))
    }
}

/// A catalog preset, by name.
#[derive(Debug, Clone, Copy)]
pub struct PresetName(pub &'static Preset);
impl<'de> Deserialize<'de> for PresetName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        catalog::preset(&s).map(PresetName).ok_or_else(|| {
            de::Error::custom(format!(
                "unknown preset `{s}`; allowed: {}",
                catalog::preset_names()
            ))
        })
    }
}

/// A catalog GPU model, by id.
#[derive(Debug, Clone, Copy)]
pub struct GpuModelName(pub usize);
impl<'de> Deserialize<'de> for GpuModelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        catalog::gpu_model_index(&s)
            .map(GpuModelName)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown gpu_model `{s}`; allowed: {}",
                    catalog::gpu_model_names()
                ))
            })
    }
}
