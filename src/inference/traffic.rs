//! Request traffic a workload file can describe for an inference service, its seeded generator, and
//! [`serve`], which runs that traffic on a service's replicas. Pure: no I/O.
//!
//! Two kinds, one flat table (an internally tagged enum would lose TOML spans, so `kind` picks which fields
//! are required and [`TrafficSpec::build`] names any field that does not belong):
//!
//! ```toml
//! [traffic]                      # open loop: independent requests
//! kind = "poisson"
//! rate_per_s = 5
//! prompt_tokens = { median = 1000, sigma = 1.0, max = 32000 }
//! output_tokens = { median = 200, sigma = 0.8 }
//!
//! [traffic]                      # closed loop: agentic sessions
//! kind = "sessions"
//! sessions_per_s = 0.5           # Poisson session starts
//! turns = { median = 6, sigma = 0.5, max = 50 }
//! first_prompt_tokens = { median = 3000, sigma = 0.5 }
//! tokens_per_turn = { median = 400, sigma = 1.0 }   # tool results / user message added each turn
//! output_tokens = { median = 150, sigma = 0.7 }
//! tool_wait_s = { median_s = 2, sigma = 1.0 }
//! max_context_tokens = 131072    # a session ends before a call would exceed it (default 131072)
//! ```
//!
//! Sizes are rounded lognormals by median and log-space sigma, clamped to `[min, max]` (defaults 1 and
//! 10^7). A session's call k+1 arrives when call k finished plus a tool wait; its prompt is call k's prompt,
//! call k's output and the new tokens. Prompts carry Mooncake-style `hash_ids` ([`BLOCK_TOKENS`] tokens a
//! block): the blocks call k filled completely keep their ids, the rest get fresh ids, so a replica that
//! still caches call k's prompt prefills only the difference. Output tokens are not cached by the simulator
//! (only prompt blocks are), so call k's output is prefilled again in call k+1. Open-loop requests carry no
//! hash ids (nothing to share).

use super::model::{builtin, builtin_names, ModelSpec};
use super::perf::{Efficiency, Roofline, ServiceModel};
use super::sim::{
    simulate_closed_loop, summarize, summarize_sessions, After, Request, Router, SessionSummary,
    SimConfig, Slo, Summary,
};
use crate::catalog::GpuModel;
use crate::error::{InputError, Location};
use crate::workload::spec::{Count, LogNormalSpec, RatePerSecond, Seconds, Sigma, Size};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// Tokens per prefix block in generated `hash_ids` (Mooncake's; matches `SimConfig::default().block_tokens`).
pub const BLOCK_TOKENS: u32 = 512;
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

/// `{ median, sigma, min, max }`: a rounded lognormal size (tokens, turns).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeSpec {
    /// Median (>= 1).
    pub median: Size,
    /// Sigma of the natural log, 0..=5 (default 0: always the median).
    #[serde(default)]
    pub sigma: Sigma,
    /// Lower clamp (default 1).
    pub min: Option<Size>,
    /// Upper clamp (default 10^7).
    pub max: Option<Size>,
}

/// `[traffic]` as written: `kind` says which of the optional fields are required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// `poisson` or `sessions`.
    pub kind: TrafficKind,
    /// Poisson: requests per second.
    pub rate_per_s: Option<RatePerSecond>,
    /// Poisson: prompt tokens of a request.
    pub prompt_tokens: Option<SizeSpec>,
    /// Both: output tokens of a request (a call).
    pub output_tokens: Option<SizeSpec>,
    /// Sessions: session starts per second (Poisson).
    pub sessions_per_s: Option<RatePerSecond>,
    /// Sessions: calls per session.
    pub turns: Option<SizeSpec>,
    /// Sessions: prompt tokens of the first call.
    pub first_prompt_tokens: Option<SizeSpec>,
    /// Sessions: new prompt tokens each later call adds (tool results, a user message).
    pub tokens_per_turn: Option<SizeSpec>,
    /// Sessions: time from a call finishing until the next arrives, seconds.
    pub tool_wait_s: Option<LogNormalSpec>,
    /// Sessions: a session ends before a call's prompt would exceed this (default 131072).
    pub max_context_tokens: Option<Size>,
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
    fn sample(&self, rng: &mut ChaCha8Rng) -> u32 {
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
    fn sample_us(&self, rng: &mut ChaCha8Rng) -> u64 {
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
fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

impl SizeSpec {
    fn build(&self, path: &str, file: &str) -> Result<SizeDist, InputError> {
        let min = self.min.map_or(1.0, |m| m.0).round();
        let max = self.max.map_or(1e7, |m| m.0).round();
        if min > max {
            return Err(InputError::field(
                file,
                join(path, "min"),
                format!("must not be above max ({max}), found {min}"),
            ));
        }
        Ok(SizeDist {
            median: self.median.0,
            sigma: self.sigma.0,
            min: min as u32,
            max: max as u32,
        })
    }
}

impl TrafficSpec {
    /// Checks which fields `kind` needs and forbids; `path` is this table's field path (e.g.
    /// `jobs[2].serve.traffic`), used with `file` in errors.
    pub fn build(&self, path: &str, file: &str) -> Result<Traffic, InputError> {
        let kind = match self.kind {
            TrafficKind::Poisson => "poisson",
            TrafficKind::Sessions => "sessions",
        };
        let need = |f: &str| {
            InputError::field(
                file,
                join(path, f),
                format!("is required for kind = \"{kind}\""),
            )
        };
        let forbid = |set: &[(bool, &str)], other: &str| -> Result<(), InputError> {
            match set.iter().find(|(s, _)| *s) {
                Some((_, f)) => Err(InputError::field(
                    file,
                    join(path, f),
                    format!("belongs to kind = \"{other}\"; this traffic is kind = \"{kind}\""),
                )),
                None => Ok(()),
            }
        };
        let size = |s: Option<SizeSpec>, f: &str| -> Result<SizeDist, InputError> {
            s.ok_or_else(|| need(f))?.build(&join(path, f), file)
        };
        match self.kind {
            TrafficKind::Poisson => {
                forbid(
                    &[
                        (self.sessions_per_s.is_some(), "sessions_per_s"),
                        (self.turns.is_some(), "turns"),
                        (self.first_prompt_tokens.is_some(), "first_prompt_tokens"),
                        (self.tokens_per_turn.is_some(), "tokens_per_turn"),
                        (self.tool_wait_s.is_some(), "tool_wait_s"),
                        (self.max_context_tokens.is_some(), "max_context_tokens"),
                    ],
                    "sessions",
                )?;
                Ok(Traffic::Poisson(PoissonTraffic {
                    rate_per_s: self.rate_per_s.ok_or_else(|| need("rate_per_s"))?.0,
                    prompt_tokens: size(self.prompt_tokens, "prompt_tokens")?,
                    output_tokens: size(self.output_tokens, "output_tokens")?,
                }))
            }
            TrafficKind::Sessions => {
                forbid(
                    &[
                        (self.rate_per_s.is_some(), "rate_per_s"),
                        (self.prompt_tokens.is_some(), "prompt_tokens"),
                    ],
                    "poisson",
                )?;
                let w = self.tool_wait_s.ok_or_else(|| need("tool_wait_s"))?;
                let (min_s, max_s) = (
                    w.min_s.map_or(0.0, |s| s.0),
                    w.max_s.map_or(crate::workload::spec::MAX_SECONDS, |s| s.0),
                );
                if min_s > max_s {
                    return Err(InputError::field(
                        file,
                        join(path, "tool_wait_s.min_s"),
                        format!("must not be above tool_wait_s.max_s ({max_s}), found {min_s}"),
                    ));
                }
                Ok(Traffic::Sessions(SessionTraffic {
                    sessions_per_s: self.sessions_per_s.ok_or_else(|| need("sessions_per_s"))?.0,
                    turns: size(self.turns, "turns")?,
                    first_prompt_tokens: size(self.first_prompt_tokens, "first_prompt_tokens")?,
                    tokens_per_turn: size(self.tokens_per_turn, "tokens_per_turn")?,
                    output_tokens: size(self.output_tokens, "output_tokens")?,
                    tool_wait: WaitDist {
                        median_s: w.median_s.0,
                        sigma: w.sigma.0,
                        min_s,
                        max_s,
                    },
                    max_context_tokens: self
                        .max_context_tokens
                        .map_or(DEFAULT_MAX_CONTEXT, |m| m.0.round() as u32),
                }))
            }
        }
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
    fn rate_field(&self) -> &'static str {
        match self {
            Traffic::Poisson(_) => "rate_per_s",
            Traffic::Sessions(_) => "sessions_per_s",
        }
    }
}

/// Generated traffic: requests, their dependencies, and whether a cap cut it short.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Generated {
    /// Requests; a session's calls are consecutive, first call first.
    pub requests: Vec<Request>,
    /// One entry per request for sessions (the first call `None`, later calls wait for the previous);
    /// empty for open-loop traffic.
    pub after: Vec<Option<After>>,
    /// Generation stopped at [`MAX_REQUESTS`] or [`MAX_PROMPT_BLOCKS`].
    pub truncated: bool,
}

/// Exponential gap, microseconds, for `rate_per_s` (> 0): inverse CDF, so no fallible constructor.
fn gap_us(rng: &mut ChaCha8Rng, rate_per_s: f64) -> f64 {
    let u: f64 = rng.random();
    -(1.0 - u).ln() / rate_per_s * 1e6
}

/// Arrivals of a Poisson process in `[start_us, end_us)`, drawn lazily.
struct Arrivals {
    rng: ChaCha8Rng,
    rate_per_s: f64,
    t: f64,
    end_us: u64,
}

impl Iterator for Arrivals {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        self.t += gap_us(&mut self.rng, self.rate_per_s);
        // Floor keeps t < end; a non-finite t (never with a validated rate) ends the stream too.
        (self.t < self.end_us as f64).then_some(self.t as u64)
    }
}

/// Draws `traffic` in `[start_us, end_us)`: deterministic in `seed`. Arrival times come from one ChaCha8
/// stream and sizes from another, so changing a size distribution keeps the arrival times. Stops (and sets
/// `truncated`) at [`MAX_REQUESTS`] requests or [`MAX_PROMPT_BLOCKS`] block ids.
pub fn generate(traffic: &Traffic, seed: u64, start_us: u64, end_us: u64) -> Generated {
    let stream = |s: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(s);
        r
    };
    let rate = match traffic {
        Traffic::Poisson(p) => p.rate_per_s,
        Traffic::Sessions(s) => s.sessions_per_s,
    };
    let arrivals = Arrivals {
        rng: stream(1),
        rate_per_s: rate,
        t: start_us as f64,
        end_us,
    };
    let mut sizes = stream(2);
    let mut g = Generated::default();
    match traffic {
        Traffic::Poisson(p) => {
            for t in arrivals {
                if g.requests.len() as u64 >= MAX_REQUESTS {
                    g.truncated = true;
                    break;
                }
                g.requests.push(Request {
                    arrival_us: t,
                    prompt_tokens: p.prompt_tokens.sample(&mut sizes),
                    output_tokens: p.output_tokens.sample(&mut sizes),
                    hash_ids: Vec::new(),
                });
            }
        }
        Traffic::Sessions(s) => {
            let mut next_id: u64 = 1;
            let mut blocks: u64 = 0;
            'sessions: for t in arrivals {
                let turns = s.turns.sample(&mut sizes);
                let mut prompt = s
                    .first_prompt_tokens
                    .sample(&mut sizes)
                    .min(s.max_context_tokens);
                let mut ids: Vec<u64> = Vec::new();
                let mut after = None;
                for k in 0..turns {
                    let want = prompt.div_ceil(BLOCK_TOKENS) as usize;
                    // `ids` holds the previous prompt's full blocks, all below `want` (the prompt only grows).
                    let fresh = want.saturating_sub(ids.len());
                    if g.requests.len() as u64 >= MAX_REQUESTS
                        || blocks + want as u64 > MAX_PROMPT_BLOCKS
                    {
                        g.truncated = true;
                        break 'sessions;
                    }
                    ids.extend(next_id..next_id + fresh as u64);
                    next_id += fresh as u64;
                    blocks += want as u64;
                    let output = s.output_tokens.sample(&mut sizes);
                    g.requests.push(Request {
                        // Later calls arrive when released; their nominal time is the session start.
                        arrival_us: t,
                        prompt_tokens: prompt,
                        output_tokens: output,
                        hash_ids: ids.clone(),
                    });
                    g.after.push(after);
                    if k + 1 == turns {
                        break;
                    }
                    let new = s.tokens_per_turn.sample(&mut sizes);
                    let wait = s.tool_wait.sample_us(&mut sizes);
                    let next = u64::from(prompt) + u64::from(output) + u64::from(new);
                    if next > u64::from(s.max_context_tokens) {
                        break; // the context is full: the agent stops here
                    }
                    // Blocks the previous prompt filled completely keep their ids; its partial last block
                    // now continues with the output, so it is new text with a new id.
                    ids.truncate((prompt / BLOCK_TOKENS) as usize);
                    prompt = next as u32;
                    after = Some(After {
                        parent: g.requests.len() - 1,
                        delay_us: wait,
                    });
                }
            }
        }
    }
    g
}

/// A built-in model, by name (checked while the file is read, so the error has a line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltinModel(pub ModelSpec);

impl<'de> Deserialize<'de> for BuiltinModel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        builtin(&s).map(BuiltinModel).ok_or_else(|| {
            de::Error::custom(format!(
                "unknown model `{s}`; built in: {}",
                builtin_names()
            ))
        })
    }
}

/// How an inference service serves, as written (e.g. `[jobs.serve]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSpec {
    /// Built-in model name (`llama-3-8b`, `llama-3-70b`, `llama-2-70b`).
    pub model: BuiltinModel,
    /// `round-robin` (default), `least-outstanding` or `kv-aware` (keeps sessions on their cached prefix).
    pub router: Option<Router>,
    /// Most requests in one replica's batch (default 256).
    pub max_batch: Option<Count>,
    /// Time-to-first-token target, seconds (default 2).
    pub ttft_slo_s: Option<Seconds>,
    /// Time-per-output-token target, seconds (default 0.1).
    pub tpot_slo_s: Option<Seconds>,
    /// The requests.
    pub traffic: TrafficSpec,
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

impl ServeSpec {
    /// Checks what spans several fields; `path` is this table's field path, `file` labels errors.
    pub fn build(&self, path: &str, file: &str) -> Result<Serve, InputError> {
        let us =
            |s: Option<Seconds>, default: f64| (s.map_or(default, |s| s.0) * 1e6).round() as u64;
        Ok(Serve {
            model: self.model.0.clone(),
            router: self.router.unwrap_or(Router::RoundRobin),
            max_batch: self.max_batch.map_or(256, |c| c.0),
            slo: Slo {
                ttft_us: us(self.ttft_slo_s, 2.0),
                tpot_us: us(self.tpot_slo_s, 0.1),
            },
            traffic: self.traffic.build(&join(path, "traffic"), file)?,
            file: file.to_string(),
            path: path.to_string(),
        })
    }
}

/// Parses a TOML [`ServeSpec`] (as a whole document); errors carry line:column and the field path.
pub fn parse_serve(text: &str, file: &str) -> Result<ServeSpec, InputError> {
    use crate::workload::parse::toml_error;
    let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, &e, ""))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        toml_error(text, file, e.inner(), &path)
    })
}

impl Serve {
    fn error(&self, field: &str, message: String) -> InputError {
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

/// What one service's traffic did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServeOutcome {
    /// Latency, SLO attainment, throughput (times relative to the service start).
    pub summary: Summary,
    /// Requests sent.
    pub requests: u64,
    /// Requests finished.
    pub completed: u64,
    /// Output tokens produced.
    pub output_tokens: u64,
    /// Energy of the replicas, joules: the simulation's, plus idle power from its last event to the end of
    /// the lifetime.
    pub energy_j: f64,
    /// Last event, microseconds after the service start (past the lifetime when requests in flight at
    /// the end were drained).
    pub end_us: u64,
    /// Session numbers (session traffic only).
    pub sessions: Option<SessionSummary>,
    /// Per completed request, seconds: so percentiles can be taken over several services together.
    #[serde(skip)]
    pub latencies: Latencies,
}

/// Raw latencies of completed requests, seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latencies {
    /// Time to first token.
    pub ttft_s: Vec<f64>,
    /// Time per output token (requests with more than one output token).
    pub tpot_s: Vec<f64>,
    /// End to end.
    pub e2e_s: Vec<f64>,
    /// Completed requests that met both SLOs.
    pub slo_met: u64,
}

fn latencies(res: &crate::inference::sim::SimResult, slo: crate::inference::sim::Slo) -> Latencies {
    let mut l = Latencies::default();
    for o in res
        .requests
        .iter()
        .filter(|o| !o.cancelled && o.done_us.is_some())
    {
        l.ttft_s.extend(o.ttft_us().map(|us| us as f64 / 1e6));
        l.tpot_s.extend(o.tpot_us().map(|us| us / 1e6));
        l.e2e_s.extend(o.e2e_us().map(|us| us as f64 / 1e6));
        l.slo_met += u64::from(o.meets(slo));
    }
    l
}

/// Runs `serve`'s traffic on `replicas` replicas of `tp` x `gpu`, for a service that ran from `start_us`
/// to `end_us` (cluster time). Traffic is drawn in `[0, end - start)` relative to the service start
/// (derive `seed` per service, or all services draw the same traffic); session calls that would arrive
/// after the end are not sent, and requests in flight at the end run to completion. Errors (naming
/// `serve.file` and `serve.path`) when the weights do not fit, or the traffic is too large to simulate.
pub fn serve(
    serve: &Serve,
    gpu: &GpuModel,
    tp: u32,
    replicas: u32,
    start_us: u64,
    end_us: u64,
    seed: u64,
) -> Result<ServeOutcome, InputError> {
    if tp == 0 || replicas == 0 {
        return Err(InputError::new(
            &serve.file,
            Location::Field(serve.path.clone()),
            format!("needs at least 1 replica of at least 1 GPU, found {replicas} x {tp}"),
        ));
    }
    let roof = Roofline::new(serve.model.clone(), *gpu, tp, Efficiency::default()).map_err(|_| {
        serve.error(
            "model",
            format!(
                "{} weights ({:.1} GB) do not fit {tp} x {} ({:.0} GB HBM) with room for KV cache: give the \
                 service more GPUs per replica or a GPU with more memory",
                serve.model.name,
                serve.model.weight_bytes() / 1e9,
                gpu.id,
                f64::from(tp) * gpu.hbm_gb
            ),
        )
    })?;
    let duration = end_us.saturating_sub(start_us);
    serve.check_volume(duration)?;
    let generated = generate(&serve.traffic, seed, 0, duration);
    if generated.truncated {
        return Err(serve.error(
            &format!("traffic.{}", serve.traffic.rate_field()),
            format!(
                "the traffic over the service's {:.0} s holds more than {MAX_REQUESTS} requests or \
                 {MAX_PROMPT_BLOCKS} prompt blocks; lower the rate, the turns or the prompt sizes",
                duration as f64 / 1e6
            ),
        ));
    }
    let cfg = SimConfig {
        replicas,
        router: serve.router,
        max_batch: serve.max_batch,
        ..SimConfig::default()
    };
    let res = simulate_closed_loop(&generated.requests, &generated.after, duration, &roof, &cfg)?;
    let summary = summarize(&res, serve.slo);
    let tail_s = duration.saturating_sub(res.end_us) as f64 / 1e6;
    let idle_w = cfg.power.idle * roof.board_power_w() * f64::from(tp) * f64::from(replicas);
    let sent = res.requests.iter().filter(|o| !o.cancelled);
    Ok(ServeOutcome {
        requests: summary.requests,
        completed: summary.completed,
        output_tokens: sent
            .filter(|o| o.done_us.is_some())
            .map(|o| u64::from(o.output_tokens))
            .sum(),
        energy_j: res.energy_j + idle_w * tail_s,
        end_us: res.end_us,
        sessions: matches!(serve.traffic, Traffic::Sessions(_))
            .then(|| summarize_sessions(&generated.after, &res)),
        latencies: latencies(&res, serve.slo),
        summary,
    })
}
