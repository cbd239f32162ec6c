//! What an inference service serves, validated: the model, routing, latency targets and the traffic it
//! receives (open-loop Poisson requests or closed-loop agentic sessions). Built from a file by
//! `input::traffic`; drawn into requests by `engine::serving::traffic`.

use crate::domain::llm::ModelSpec;
use crate::error::InputError;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// Most requests one service's traffic may hold.
pub const MAX_REQUESTS: u64 = 10_000_000;
/// Most prompt block ids one service's traffic may hold (8 bytes each: 400 MB).
pub const MAX_PROMPT_BLOCKS: u64 = 50_000_000;
/// Default context limit of a session, tokens.
pub const DEFAULT_MAX_CONTEXT: u32 = 131_072;
/// Which traffic a `[traffic]` table describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrafficKind {
    /// Independent requests, Poisson arrivals.
    Poisson,
    /// Agentic sessions: chains of calls, each waiting for the previous one and a tool.
    Sessions,
    /// A request trace (Azure LLM 2023 CSV or Mooncake JSONL), time-scaled and looped over the lifetime.
    Trace,
}

/// One request of an imported trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRequest {
    /// Arrival after the trace's first request, microseconds.
    pub arrival_us: u64,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// Prompt block ids (Mooncake), empty otherwise.
    pub hash_ids: Vec<u64>,
}

/// Validated trace traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceTraffic {
    /// The requests, arrivals from 0, in arrival order (shared by every service that replays the file).
    pub requests: std::sync::Arc<Vec<TraceRequest>>,
    /// Arrival times are multiplied by this (2: half the rate).
    pub time_scale: f64,
    /// Replay the trace again after it ends, until the service's lifetime ends.
    pub looped: bool,
    /// The file, for messages.
    pub source: String,
}

impl TraceTraffic {
    /// Length of one pass, microseconds: the scaled span plus one mean gap, so a loop does not put two
    /// requests at one instant.
    pub fn period_us(&self) -> u64 {
        let n = self.requests.len() as u64;
        let span = self.requests.last().map_or(0, |r| r.arrival_us);
        let gap = if n > 1 { span / (n - 1) } else { 1_000_000 };
        (((span + gap.max(1)) as f64) * self.time_scale)
            .round()
            .max(1.0) as u64
    }

    /// Requests over `duration_us`.
    pub fn requests_over(&self, duration_us: u64) -> u64 {
        let n = self.requests.len() as u64;
        if !self.looped {
            return n;
        }
        n.saturating_mul(duration_us.div_ceil(self.period_us()))
    }
}

/// How arrivals are spread over replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Router {
    /// Replicas in turn.
    RoundRobin,
    /// The replica with the fewest requests waiting or running.
    LeastOutstanding,
    /// The replica caching the longest prefix of the prompt (ties: fewest outstanding), among replicas not
    /// more than `kv_load_slack` requests busier than the least loaded.
    KvAware,
}

/// Latency targets a request must meet (both) to count as good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Slo {
    /// Time to first token, microseconds.
    pub ttft_us: u64,
    /// Time per output token, microseconds.
    pub tpot_us: u64,
}

/// A validated rounded-lognormal size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeDist {
    /// Median.
    pub median: f64,
    /// Sigma of the natural log.
    pub sigma: f64,
    /// Lower clamp (>= 1).
    pub min: u32,
    /// Upper clamp.
    pub max: u32,
}

impl SizeDist {
    pub(crate) fn sample(&self, rng: &mut ChaCha8Rng) -> u32 {
        let z: f64 = rng.sample(StandardNormal);
        let v = (self.median * (self.sigma * z).exp()).round();
        // NaN cannot occur (median >= 1, sigma <= 5, z finite), but clamp keeps the cast in range anyway.
        v.clamp(f64::from(self.min), f64::from(self.max)) as u32
    }

    /// Mean of the clamped lognormal (rounding ignored), by quadrature over the standard normal.
    pub fn mean(&self) -> f64 {
        let (lo, hi) = (f64::from(self.min), f64::from(self.max));
        if self.sigma == 0.0 {
            return self.median.clamp(lo, hi);
        }
        // Midpoint rule on z in [-8, 8]: the tails beyond hold < 1e-15 of the mass.
        let steps = 4000;
        let dz = 16.0 / f64::from(steps);
        (0..steps)
            .map(|i| {
                let z = -8.0 + (f64::from(i) + 0.5) * dz;
                let phi = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (self.median * (self.sigma * z).exp()).clamp(lo, hi) * phi * dz
            })
            .sum()
    }
}

/// A validated lognormal wait, microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitDist {
    /// Median, seconds.
    pub median_s: f64,
    /// Sigma of the natural log.
    pub sigma: f64,
    /// Lower clamp, seconds.
    pub min_s: f64,
    /// Upper clamp, seconds.
    pub max_s: f64,
}

impl WaitDist {
    pub(crate) fn sample_us(&self, rng: &mut ChaCha8Rng) -> u64 {
        let z: f64 = rng.sample(StandardNormal);
        let s = (self.median_s * (self.sigma * z).exp()).clamp(self.min_s, self.max_s);
        (s * 1e6).round() as u64
    }
}

/// Microseconds in an hour and in a day.
const HOUR_US: u64 = 3_600_000_000;
const DAY_US: u64 = 24 * HOUR_US;
/// Largest `diurnal.peak_to_trough`.
pub const MAX_PEAK_TO_TROUGH: f64 = 1000.0;

/// How a traffic's rate varies over absolute cluster time: the rate in the file times
/// [`RateProfile::multiplier`]. Arrivals are drawn by thinning at the peak rate (see
/// `engine::serving::traffic`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateProfile {
    /// `1 + amplitude * cos(2 pi (h - peak_hour) / 24)`, `h` the hour of day of cluster time (`t / 1 h`
    /// mod 24). The mean over a day is 1, so the rate in the file is the daily mean; peak over trough is
    /// `(1 + amplitude) / (1 - amplitude)`.
    Diurnal {
        /// In `[0, 1)`: `(r - 1) / (r + 1)` for a peak-to-trough ratio `r` ([`RateProfile::diurnal`]).
        amplitude: f64,
        /// Hour of the peak, in `[0, 24)`.
        peak_hour: f64,
    },
    /// Piecewise-linear `(time_us, multiplier)` points of cluster time: the first at 0, times strictly
    /// increasing, multipliers finite and >= 0, at least one above 0. Held at the last point's multiplier
    /// after it (until the period ends, when there is one).
    Schedule {
        /// The points.
        points: Vec<(u64, f64)>,
        /// The schedule repeats with this period (above the last point's time): `t` is read as
        /// `t mod period`.
        period_us: Option<u64>,
    },
}

impl RateProfile {
    /// The diurnal profile with peak over trough `peak_to_trough` (>= 1) and its peak at `peak_hour`.
    pub fn diurnal(peak_to_trough: f64, peak_hour: f64) -> Self {
        RateProfile::Diurnal {
            amplitude: (peak_to_trough - 1.0) / (peak_to_trough + 1.0),
            peak_hour,
        }
    }

    /// The rate multiplier at absolute cluster time `t_abs_us`.
    pub fn multiplier(&self, t_abs_us: u64) -> f64 {
        match self {
            RateProfile::Diurnal {
                amplitude,
                peak_hour,
            } => {
                // Reduce modulo a day in integers first, so the hour keeps its precision at any time.
                let h = (t_abs_us % DAY_US) as f64 / HOUR_US as f64;
                1.0 + amplitude * (2.0 * std::f64::consts::PI * (h - peak_hour) / 24.0).cos()
            }
            RateProfile::Schedule { points, period_us } => {
                let t = match period_us {
                    Some(p) if *p > 0 => t_abs_us % p,
                    _ => t_abs_us,
                };
                // Index of the first point after t (the first point is at 0, so i >= 1 when any is <= t).
                let i = points.partition_point(|&(pt, _)| pt <= t);
                match (i.checked_sub(1).map(|j| points[j]), points.get(i)) {
                    (Some((t0, m0)), Some(&(t1, m1))) => {
                        let f = (t - t0) as f64 / (t1 - t0) as f64;
                        m0 + (m1 - m0) * f
                    }
                    (Some((_, m0)), None) => m0,
                    // Before the first point (never once validated): its multiplier.
                    (None, _) => points.first().map_or(1.0, |p| p.1),
                }
            }
        }
    }

    /// The largest multiplier at any time (the peak: `1 + amplitude`, or the largest point's).
    pub fn max_multiplier(&self) -> f64 {
        match self {
            RateProfile::Diurnal { amplitude, .. } => 1.0 + amplitude,
            RateProfile::Schedule { points, .. } => points.iter().map(|p| p.1).fold(0.0, f64::max),
        }
    }
}

/// Validated open-loop traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct PoissonTraffic {
    /// Requests per second.
    pub rate_per_s: f64,
    /// Prompt tokens.
    pub prompt_tokens: SizeDist,
    /// Output tokens.
    pub output_tokens: SizeDist,
    /// How the rate varies over cluster time (`None`: flat); `rate_per_s` is then its mean (diurnal) or
    /// its base (schedule).
    pub profile: Option<RateProfile>,
}

/// Validated agentic sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionTraffic {
    /// Session starts per second.
    pub sessions_per_s: f64,
    /// Calls per session.
    pub turns: SizeDist,
    /// Prompt tokens of the first call.
    pub first_prompt_tokens: SizeDist,
    /// New tokens each later call adds.
    pub tokens_per_turn: SizeDist,
    /// Output tokens of a call.
    pub output_tokens: SizeDist,
    /// Wait between a call finishing and the next arriving.
    pub tool_wait: WaitDist,
    /// A session ends before a prompt would exceed this many tokens.
    pub max_context_tokens: u32,
    /// How the session start rate varies over cluster time (`None`: flat); later calls follow their
    /// sessions.
    pub profile: Option<RateProfile>,
}

/// Validated traffic.
#[derive(Debug, Clone, PartialEq)]
pub enum Traffic {
    /// Independent requests.
    Poisson(PoissonTraffic),
    /// Agentic sessions.
    Sessions(SessionTraffic),
    /// An imported trace.
    Trace(TraceTraffic),
}

/// `path.field`, or `field` at the top level.
pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

impl Traffic {
    /// Expected requests over `duration_us`, an upper estimate: at the peak rate
    /// ([`Traffic::peak_rate_per_s`], the flat rate without a profile) since the service's start in
    /// cluster time may not be known yet; sessions: starts times mean turns, ignoring the context limit
    /// and the horizon.
    pub fn expected_requests(&self, duration_us: u64) -> f64 {
        let starts = self.peak_rate_per_s() * (duration_us as f64 / 1e6);
        match self {
            Traffic::Poisson(_) => starts,
            Traffic::Sessions(s) => starts * s.turns.mean(),
            Traffic::Trace(t) => t.requests_over(duration_us) as f64,
        }
    }

    /// About how many tokens (prompt and output) the traffic sends over `duration_us`: a measure of how
    /// long it takes to simulate, for ordering work (never a result). Sessions' prompts grow by each
    /// turn's new tokens and the previous output, about half the turns on average.
    pub fn expected_tokens(&self, duration_us: u64) -> f64 {
        let per_request = match self {
            Traffic::Poisson(p) => p.prompt_tokens.mean() + p.output_tokens.mean(),
            Traffic::Sessions(s) => {
                let growth = s.tokens_per_turn.mean() + s.output_tokens.mean();
                s.first_prompt_tokens.mean()
                    + s.output_tokens.mean()
                    + (s.turns.mean() - 1.0).max(0.0) / 2.0 * growth
            }
            Traffic::Trace(_) => 1.0,
        };
        self.expected_requests(duration_us) * per_request
    }

    /// The rate in the file: requests (poisson) or session starts (sessions) per second.
    pub fn rate_per_s(&self) -> f64 {
        match self {
            Traffic::Poisson(p) => p.rate_per_s,
            Traffic::Sessions(s) => s.sessions_per_s,
            Traffic::Trace(t) => t.requests.len() as f64 / (t.period_us() as f64 / 1e6),
        }
    }

    /// The rate profile, if any.
    pub fn profile(&self) -> Option<&RateProfile> {
        match self {
            Traffic::Poisson(p) => p.profile.as_ref(),
            Traffic::Sessions(s) => s.profile.as_ref(),
            Traffic::Trace(_) => None,
        }
    }

    /// The instantaneous rate (requests or session starts per second) at absolute cluster time `t_abs_us`.
    pub fn rate_at(&self, t_abs_us: u64) -> f64 {
        match self.profile() {
            Some(p) => self.rate_per_s() * p.multiplier(t_abs_us),
            None => self.rate_per_s(),
        }
    }

    /// The largest instantaneous rate: the rate times the profile's [`RateProfile::max_multiplier`].
    pub fn peak_rate_per_s(&self) -> f64 {
        match self.profile() {
            Some(p) => self.rate_per_s() * p.max_multiplier(),
            None => self.rate_per_s(),
        }
    }

    /// The field whose rate sets the volume, for error messages.
    pub fn rate_field(&self) -> &'static str {
        match self {
            Traffic::Poisson(_) => "rate_per_s",
            Traffic::Sessions(_) => "sessions_per_s",
            Traffic::Trace(_) => "time_scale",
        }
    }
}

/// Seconds of container and engine start in the default cold start ([`ServeAutoscale::cold_start_or`]).
pub const COLD_START_BASE_S: f64 = 30.0;
/// Bytes per second each GPU loads weights at in the default cold start: 2 GB/s.
pub const WEIGHT_LOAD_BYTES_PER_S: f64 = 2.0e9;

/// Autoscaling of a service in the cluster (`[jobs.serving] autoscale`), validated: the engine adds or
/// removes replicas every `eval_period_us` to keep about `target_outstanding` requests per replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServeAutoscale {
    /// Fewest replicas (>= 1).
    pub min_replicas: u32,
    /// Most replicas (`min_replicas..=100000`).
    pub max_replicas: u32,
    /// Outstanding (waiting or running) requests per replica it aims at (>= 1), if set.
    pub target_outstanding: Option<u32>,
    /// TTFT p90 target over the sliding window, microseconds, if set: above it the service adds a replica
    /// per evaluation; at or below half of it (with the outstanding target, if any, agreeing) it may remove one.
    pub target_ttft_p90_us: Option<u64>,
    /// The window of the TTFT target: requests whose first token came in the last `slo_window_us`.
    pub slo_window_us: u64,
    /// Stated time from a replica's placement until it serves, microseconds (`None`: see
    /// [`ServeAutoscale::cold_start_or`]).
    pub cold_start_us: Option<u64>,
    /// Time after a scaling change before a scale-down, microseconds (default 600 s).
    pub cooldown_us: u64,
    /// Time between evaluations, microseconds (>= 1 s, default 30 s).
    pub eval_period_us: u64,
}

impl ServeAutoscale {
    /// The cold start, microseconds: `cold_start_us` if stated, else an assumed default of
    /// [`COLD_START_BASE_S`] (30 s: container and inference engine start) plus the weights loaded at
    /// [`WEIGHT_LOAD_BYTES_PER_S`] (2 GB/s) per GPU, the `tp` GPUs of the replica loading their shards in
    /// parallel from the node's local NVMe: `30 s + weight_bytes / (tp * 2e9 B/s)`. Both numbers are
    /// assumptions of this simulator, not measurements; state `cold_start_s` to override them. A `tp` of
    /// 0 counts as 1.
    pub fn cold_start_or(&self, weight_bytes: f64, tp: u32) -> u64 {
        self.cold_start_us.unwrap_or_else(|| {
            let load_s = weight_bytes.max(0.0) / (f64::from(tp.max(1)) * WEIGHT_LOAD_BYTES_PER_S);
            ((COLD_START_BASE_S + load_s) * 1e6).round() as u64
        })
    }
}

/// How a replica admits requests and holds their KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Admission {
    /// vLLM's scheduler: KV allocated in pages of `block_size` tokens as tokens are produced; a request is
    /// admitted when its prompt's pages fit above the watermark; when a running request needs a page and
    /// none is free, the newest request is preempted and recomputed later.
    #[default]
    Paged,
    /// Reserve a request's whole final KV footprint (prompt + output) at admission: no preemption.
    Reserve,
}

impl Admission {
    /// The name used in files and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Admission::Paged => "paged",
            Admission::Reserve => "reserve",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Admission> {
        match s {
            "paged" => Some(Admission::Paged),
            "reserve" => Some(Admission::Reserve),
            _ => None,
        }
    }
}

/// Where a disaggregated service's prefill and decode replicas sit on NVLink domains when nothing else
/// places them (`replay-inference`): replicas fill domains in order, a replica never split while it fits one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PdPlacement {
    /// Prefill and decode replicas alternate (p0 d0 p1 d1 ..., the rest after), so pairs share a domain
    /// and KV moves over NVLink where they fit one.
    #[default]
    Together,
    /// All prefill replicas, then the decode replicas from a fresh domain: every KV copy crosses EFA.
    Apart,
}

impl PdPlacement {
    /// The name used in flags and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PdPlacement::Together => "together",
            PdPlacement::Apart => "apart",
        }
    }
}

/// What a serving iteration costs ([`crate::perf::cost_model`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CostModel {
    /// Per-operator model: linear layers, attention, small kernels, TP all-reduces
    /// ([`crate::perf::operators`]).
    #[default]
    Operators,
    /// The operator model with measured operator times from a bundled Vidur profile where one exists for
    /// the model and GPU (else an input error).
    Profile,
    /// The first-order roofline of weights and KV bytes with two efficiency factors
    /// ([`crate::perf::inference::Roofline`]).
    Roofline,
}

impl CostModel {
    /// The name used in files and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            CostModel::Operators => "operators",
            CostModel::Profile => "profile",
            CostModel::Roofline => "roofline",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<CostModel> {
        match s {
            "operators" => Some(CostModel::Operators),
            "profile" => Some(CostModel::Profile),
            "roofline" => Some(CostModel::Roofline),
            _ => None,
        }
    }
}

/// How every replica of a service schedules its iterations and what they cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReplicaSetup {
    /// The cost model.
    pub cost_model: CostModel,
    /// KV allocation and admission rule.
    pub admission: Admission,
    /// Most requests in one batch.
    pub max_batch: u32,
    /// Most prompt tokens per prefill iteration.
    pub max_tokens_in_batch: u32,
    /// Tokens per KV page.
    pub block_size: u32,
    /// Chunked prefill budget, tokens per iteration.
    pub chunk_size: Option<u32>,
}

impl Default for ReplicaSetup {
    /// The operator model and vLLM's scheduler as Vidur configures it.
    fn default() -> Self {
        ReplicaSetup {
            cost_model: CostModel::Operators,
            admission: Admission::Paged,
            max_batch: 128,
            max_tokens_in_batch: 4096,
            block_size: 16,
            chunk_size: None,
        }
    }
}

/// A validated [`ServeSpec`]; `file` and `path` label later errors (the GPU it lands on is known only then).
#[derive(Debug, Clone, PartialEq)]
pub struct Serve {
    /// The model.
    pub model: ModelSpec,
    /// Routing policy.
    pub router: Router,
    /// Scheduler and cost model of every replica (its `max_batch` is the batch cap).
    pub setup: ReplicaSetup,
    /// Latency targets.
    pub slo: Slo,
    /// The requests.
    pub traffic: Traffic,
    /// Autoscaling in the cluster.
    pub autoscale: Option<ServeAutoscale>,
    /// Prefill/decode disaggregation: how the job's replicas split (`None`: every replica does both).
    pub pools: Option<PdPools>,
    /// File the spec came from.
    pub file: String,
    /// Field path of the spec in it.
    pub path: String,
}

/// A disaggregated service's split of its replicas: the first `prefill` only run prompts, the next
/// `decode` only decode (each holds its job's GPUs per replica, in the NVLink domain the engine placed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PdPools {
    /// Prefill replicas.
    pub prefill: u32,
    /// Decode replicas.
    pub decode: u32,
}

impl Serve {
    pub(crate) fn error(&self, field: &str, message: String) -> InputError {
        InputError::field(&self.file, join(&self.path, field), message)
    }

    /// Refuses a prefill/decode split that does not add up to the job's `replicas`.
    pub fn check_pools(&self, replicas: u32) -> Result<(), InputError> {
        match self.pools {
            Some(p) if u64::from(p.prefill) + u64::from(p.decode) != u64::from(replicas) => Err(self.error(
                "prefill_replicas",
                format!(
                    "prefill_replicas ({}) + decode_replicas ({}) must equal the job's replicas ({replicas})",
                    p.prefill, p.decode
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Refuses traffic expected to exceed [`MAX_REQUESTS`] over `duration_us` (call it when the service's
    /// lifetime is known, to fail before generating anything). With a rate profile the estimate is at the
    /// peak rate ([`Traffic::expected_requests`]), so it holds wherever in cluster time the service runs.
    pub fn check_volume(&self, duration_us: u64) -> Result<(), InputError> {
        let n = self.traffic.expected_requests(duration_us);
        if n.is_finite() && n <= MAX_REQUESTS as f64 {
            return Ok(());
        }
        Err(self.error(
            &format!("traffic.{}", self.traffic.rate_field()),
            format!(
                "about {n:.3e} requests over the service's {:.0} s{}; at most {MAX_REQUESTS} are simulated: \
                 lower the rate or the lifetime",
                duration_us as f64 / 1e6,
                if self.traffic.profile().is_some() {
                    " at the rate profile's peak"
                } else {
                    ""
                }
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = HOUR_US;

    #[test]
    fn diurnal_peak_trough_and_mean() {
        let p = RateProfile::diurnal(4.0, 14.0);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(p.multiplier(14 * H), 1.6)); // 2r / (r + 1)
        assert!(close(p.multiplier(2 * H), 0.4)); // 2 / (r + 1)
        assert!(close(p.multiplier(8 * H), 1.0)); // a quarter day off the peak
        assert!(close(p.multiplier(5 * DAY_US + 14 * H), 1.6));
        assert!(close(p.max_multiplier(), 1.6));
        let mean = (0..1440).map(|m| p.multiplier(m * 60_000_000)).sum::<f64>() / 1440.0;
        assert!(close(mean, 1.0), "{mean}");
        assert_eq!(RateProfile::diurnal(1.0, 3.0).multiplier(7 * H), 1.0);
    }

    #[test]
    fn schedule_interpolates_holds_and_repeats() {
        let points = vec![(0, 2.0), (6 * H, 8.0), (12 * H, 3.0)];
        let once = RateProfile::Schedule {
            points: points.clone(),
            period_us: None,
        };
        assert_eq!(once.multiplier(0), 2.0);
        assert_eq!(once.multiplier(3 * H), 5.0);
        assert_eq!(once.multiplier(6 * H), 8.0);
        assert_eq!(once.multiplier(9 * H), 5.5);
        assert_eq!(once.multiplier(12 * H), 3.0);
        assert_eq!(once.multiplier(30 * H), 3.0);
        assert_eq!(once.max_multiplier(), 8.0);
        let daily = RateProfile::Schedule {
            points,
            period_us: Some(DAY_US),
        };
        assert_eq!(daily.multiplier(DAY_US + 3 * H), 5.0);
        assert_eq!(daily.multiplier(DAY_US - 1), 3.0);
        assert_eq!(daily.multiplier(2 * DAY_US), 2.0);
    }

    #[test]
    fn cold_start_default_is_30_s_plus_weights_at_2_gb_per_s_per_gpu() {
        let mut a = ServeAutoscale {
            min_replicas: 1,
            max_replicas: 4,
            target_outstanding: Some(8),
            target_ttft_p90_us: None,
            slo_window_us: 300_000_000,
            cold_start_us: None,
            cooldown_us: 600_000_000,
            eval_period_us: 30_000_000,
        };
        assert_eq!(a.cold_start_or(16e9, 1), 38_000_000);
        assert_eq!(a.cold_start_or(140e9, 4), 47_500_000);
        assert_eq!(a.cold_start_or(16e9, 0), 38_000_000);
        a.cold_start_us = Some(5);
        assert_eq!(a.cold_start_or(16e9, 1), 5);
    }
}
