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

/// Validated open-loop traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct PoissonTraffic {
    /// Requests per second.
    pub rate_per_s: f64,
    /// Prompt tokens.
    pub prompt_tokens: SizeDist,
    /// Output tokens.
    pub output_tokens: SizeDist,
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
}

/// Validated traffic.
#[derive(Debug, Clone, PartialEq)]
pub enum Traffic {
    /// Independent requests.
    Poisson(PoissonTraffic),
    /// Agentic sessions.
    Sessions(SessionTraffic),
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
    /// Expected requests over `duration_us` (sessions: starts times mean turns, ignoring the context limit
    /// and the horizon, so an upper estimate).
    pub fn expected_requests(&self, duration_us: u64) -> f64 {
        let secs = duration_us as f64 / 1e6;
        match self {
            Traffic::Poisson(p) => p.rate_per_s * secs,
            Traffic::Sessions(s) => s.sessions_per_s * secs * s.turns.mean(),
        }
    }

    /// The field whose rate sets the volume, for error messages.
    pub fn rate_field(&self) -> &'static str {
        match self {
            Traffic::Poisson(_) => "rate_per_s",
            Traffic::Sessions(_) => "sessions_per_s",
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
    /// Most requests in one replica's batch.
    pub max_batch: u32,
    /// Latency targets.
    pub slo: Slo,
    /// The requests.
    pub traffic: Traffic,
    /// File the spec came from.
    pub file: String,
    /// Field path of the spec in it.
    pub path: String,
}

impl Serve {
    pub(crate) fn error(&self, field: &str, message: String) -> InputError {
        InputError::field(&self.file, join(&self.path, field), message)
    }

    /// Refuses traffic expected to exceed [`MAX_REQUESTS`] over `duration_us` (call it when the service's
    /// lifetime is known, to fail before generating anything).
    pub fn check_volume(&self, duration_us: u64) -> Result<(), InputError> {
        let n = self.traffic.expected_requests(duration_us);
        if n.is_finite() && n <= MAX_REQUESTS as f64 {
            return Ok(());
        }
        Err(self.error(
            &format!("traffic.{}", self.traffic.rate_field()),
            format!(
                "about {n:.3e} requests over the service's {:.0} s; at most {MAX_REQUESTS} are simulated: lower \
                 the rate or the lifetime",
                duration_us as f64 / 1e6
            ),
        ))
    }
}
