//! The `[traffic]` and `[jobs.serving]` tables as written, and their conversion into the domain's
//! [`Traffic`] and [`Serve`].
//!
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

use crate::domain::llm::{builtin, builtin_names, ModelSpec};
use crate::domain::traffic::*;
use crate::error::InputError;
use crate::input::value::{Count, LogNormalSpec, RatePerSecond, Seconds, Sigma, Size};
use serde::de::{self, Deserializer};
use serde::Deserialize;

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
                    w.max_s.map_or(crate::input::value::MAX_SECONDS, |s| s.0),
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
    use crate::input::parse::toml_error;
    let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, &e, ""))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        toml_error(text, file, e.inner(), &path)
    })
}
