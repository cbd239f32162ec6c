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
//! rate_per_s = 5                 # the daily mean, with `diurnal`
//! prompt_tokens = { median = 1000, sigma = 1.0, max = 32000 }
//! output_tokens = { median = 200, sigma = 0.8 }
//! diurnal = { peak_to_trough = 4, peak_hour = 14 }   # optional rate profile
//!
//! [traffic]                      # closed loop: agentic sessions
//! kind = "sessions"
//! sessions_per_s = 0.5           # Poisson session starts (the base, with `rate_schedule`)
//! turns = { median = 6, sigma = 0.5, max = 50 }
//! first_prompt_tokens = { median = 3000, sigma = 0.5 }
//! tokens_per_turn = { median = 400, sigma = 1.0 }   # tool results / user message added each turn
//! output_tokens = { median = 150, sigma = 0.7 }
//! tool_wait_s = { median_s = 2, sigma = 1.0 }
//! max_context_tokens = 131072    # a session ends before a call would exceed it (default 131072)
//! rate_schedule = [[0, 2.0], [21600, 8.0], [43200, 3.0]]   # optional: [time_s, multiplier] points
//! rate_schedule_period_s = 86400 # optional: the schedule repeats
//!
//! [jobs.serving.autoscale]       # optional, in a service's `[jobs.serving]`
//! min_replicas = 2
//! max_replicas = 32
//! target_outstanding = 16        # outstanding requests per replica it aims at, and/or
//! # target_ttft_p90_s = 1.0      # TTFT p90 over the last slo_window_s (default 300): +1 replica above it
//! cold_start_s = 120             # default: 30 s + weights / (tp x 2 GB/s)
//! cooldown_s = 600               # default 600
//! eval_period_s = 30             # default 30, at least 1
//! ```
//!
//! Sizes are rounded lognormals by median and log-space sigma, clamped to `[min, max]` (defaults 1 and
//! 10^7). A session's call k+1 arrives when call k finished plus a tool wait; its prompt is call k's prompt,
//! call k's output and the new tokens. Prompts carry Mooncake-style `hash_ids` ([`BLOCK_TOKENS`] tokens a
//! block): the blocks call k filled completely keep their ids, the rest get fresh ids, so a replica that
//! still caches call k's prompt prefills only the difference. Output tokens are not cached by the simulator
//! (only prompt blocks are), so call k's output is prefilled again in call k+1. Open-loop requests carry no
//! hash ids (nothing to share).
//!
//! A rate profile (either kind, at most one of the two) makes the rate (requests, or session starts: later
//! calls follow their sessions) vary over absolute cluster time ([`RateProfile`]):
//! - `diurnal = { peak_to_trough = r, peak_hour = h0 }`: the rate times
//!   `1 + a cos(2 pi (h - h0) / 24)`, `h` the hour of day, `a = (r - 1) / (r + 1)`; so the rate in the
//!   file is the daily mean and peak over trough is `r` (`1 <= r <= 1000`, `0 <= h0 < 24`).
//! - `rate_schedule = [[time_s, multiplier], ...]`: the rate times a piecewise-linear multiplier of
//!   cluster time; times strictly increasing from 0, multipliers from 0 to 10^6 (one above 0), held after
//!   the last point; `rate_schedule_period_s` (above the last time) repeats it.
//!
//! `autoscale` lets the cluster engine add and remove replicas between `min_replicas` and `max_replicas`
//! ([`ServeAutoscale`]).

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

/// A finite number, read as is (its range is checked where the field's meaning is known).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Finite(pub f64);

impl<'de> Deserialize<'de> for Finite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if v.is_finite() {
            Ok(Finite(v))
        } else {
            Err(de::Error::custom(format!(
                "{v} is not allowed: expected a finite number"
            )))
        }
    }
}

/// `diurnal = { peak_to_trough, peak_hour }`: a daily cosine rate profile.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiurnalSpec {
    /// Peak rate over trough rate, 1 to 1000.
    pub peak_to_trough: Finite,
    /// Hour of day of the peak, in `[0, 24)`.
    pub peak_hour: Finite,
}

/// Largest multiplier of a `rate_schedule` point.
pub const MAX_MULTIPLIER: f64 = 1e6;

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
    /// Both: a daily cosine rate profile (not with `rate_schedule`).
    pub diurnal: Option<DiurnalSpec>,
    /// Both: `[time_s, multiplier]` points of a piecewise-linear rate profile (not with `diurnal`).
    pub rate_schedule: Option<Vec<(Seconds, Finite)>>,
    /// Both: the period `rate_schedule` repeats with, seconds.
    pub rate_schedule_period_s: Option<Seconds>,
    /// Trace: the request trace, relative to the workload file.
    pub file: Option<String>,
    /// Trace: `azure` (LLM inference 2023 CSV) or `mooncake` (JSONL).
    pub format: Option<TraceFormatName>,
    /// Trace: arrival times are multiplied by this (default 1; 2 halves the rate).
    pub time_scale: Option<Finite>,
    /// Trace: replay it again when it ends, until the lifetime ends (default true).
    #[serde(rename = "loop")]
    pub looped: Option<bool>,
    /// Trace: the requests, read by `input::workload::load` (not a field of the file).
    #[serde(skip)]
    pub loaded: Option<std::sync::Arc<Vec<TraceRequest>>>,
}

/// Trace formats as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceFormatName {
    /// Azure LLM inference trace 2023 CSV.
    Azure,
    /// Mooncake JSONL.
    Mooncake,
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
    /// The rate profile (`diurnal` or `rate_schedule`), checked.
    fn profile(&self, path: &str, file: &str) -> Result<Option<RateProfile>, InputError> {
        let err = |f: &str, m: String| InputError::field(file, join(path, f), m);
        if self.rate_schedule.is_none() && self.rate_schedule_period_s.is_some() {
            return Err(err(
                "rate_schedule_period_s",
                "needs rate_schedule (the schedule it repeats)".to_string(),
            ));
        }
        match (&self.diurnal, &self.rate_schedule) {
            (Some(_), Some(_)) => Err(err(
                "rate_schedule",
                "cannot be combined with diurnal: give at most one rate profile".to_string(),
            )),
            (None, None) => Ok(None),
            (Some(d), None) => {
                let (r, h) = (d.peak_to_trough.0, d.peak_hour.0);
                if !(1.0..=MAX_PEAK_TO_TROUGH).contains(&r) {
                    return Err(err(
                        "diurnal.peak_to_trough",
                        format!(
                            "must be from 1 to {MAX_PEAK_TO_TROUGH} (peak rate over trough rate), found {r}"
                        ),
                    ));
                }
                if !(0.0..24.0).contains(&h) {
                    return Err(err(
                        "diurnal.peak_hour",
                        format!(
                            "must be an hour of day from 0 up to (not including) 24, found {h}"
                        ),
                    ));
                }
                Ok(Some(RateProfile::diurnal(r, h)))
            }
            (None, Some(pts)) => {
                let us = |s: Seconds| (s.0 * 1e6).round() as u64;
                let mut points: Vec<(u64, f64)> = Vec::with_capacity(pts.len());
                for (i, &(t, m)) in pts.iter().enumerate() {
                    let at = format!("rate_schedule[{i}]");
                    if !(0.0..=MAX_MULTIPLIER).contains(&m.0) {
                        return Err(err(
                            &at,
                            format!(
                                "the multiplier must be from 0 to {MAX_MULTIPLIER:e}, found {}",
                                m.0
                            ),
                        ));
                    }
                    match points.last() {
                        None if us(t) != 0 => {
                            return Err(err(
                                &at,
                                format!("the first point must be at time 0 s, found {} s", t.0),
                            ))
                        }
                        Some(&(prev, _)) if us(t) <= prev => {
                            return Err(err(
                                &at,
                                format!(
                                    "times must increase strictly: {} s is not after the previous point's {} s",
                                    t.0,
                                    prev as f64 / 1e6
                                ),
                            ))
                        }
                        _ => {}
                    }
                    points.push((us(t), m.0));
                }
                let Some(&(last, _)) = points.last() else {
                    return Err(err(
                        "rate_schedule",
                        "needs at least one [time_s, multiplier] point".to_string(),
                    ));
                };
                if points.iter().all(|p| p.1 == 0.0) {
                    return Err(err(
                        "rate_schedule",
                        "needs at least one multiplier above 0 (else there is no traffic)"
                            .to_string(),
                    ));
                }
                let period_us = match self.rate_schedule_period_s {
                    Some(p) if us(p) <= last => {
                        return Err(err(
                            "rate_schedule_period_s",
                            format!(
                                "must be above the last point's time ({} s), found {} s",
                                last as f64 / 1e6,
                                p.0
                            ),
                        ))
                    }
                    p => p.map(us),
                };
                Ok(Some(RateProfile::Schedule { points, period_us }))
            }
        }
    }

    /// Checks which fields `kind` needs and forbids; `path` is this table's field path (e.g.
    /// `jobs[2].serve.traffic`), used with `file` in errors.
    pub fn build(&self, path: &str, file: &str) -> Result<Traffic, InputError> {
        let kind = match self.kind {
            TrafficKind::Poisson => "poisson",
            TrafficKind::Sessions => "sessions",
            TrafficKind::Trace => "trace",
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
        if self.kind != TrafficKind::Trace {
            forbid(
                &[
                    (self.file.is_some(), "file"),
                    (self.format.is_some(), "format"),
                    (self.time_scale.is_some(), "time_scale"),
                    (self.looped.is_some(), "loop"),
                ],
                "trace",
            )?;
        }
        match self.kind {
            TrafficKind::Trace => {
                for (set, f) in [
                    (self.rate_per_s.is_some(), "rate_per_s"),
                    (self.prompt_tokens.is_some(), "prompt_tokens"),
                    (self.output_tokens.is_some(), "output_tokens"),
                    (self.sessions_per_s.is_some(), "sessions_per_s"),
                    (self.turns.is_some(), "turns"),
                    (self.first_prompt_tokens.is_some(), "first_prompt_tokens"),
                    (self.tokens_per_turn.is_some(), "tokens_per_turn"),
                    (self.tool_wait_s.is_some(), "tool_wait_s"),
                    (self.max_context_tokens.is_some(), "max_context_tokens"),
                    (self.diurnal.is_some(), "diurnal"),
                    (self.rate_schedule.is_some(), "rate_schedule"),
                    (
                        self.rate_schedule_period_s.is_some(),
                        "rate_schedule_period_s",
                    ),
                ] {
                    if set {
                        return Err(InputError::field(
                            file,
                            join(path, f),
                            "does not apply to kind = \"trace\": arrivals and sizes come from the trace \
                             (time_scale and loop shape it)",
                        ));
                    }
                }
                let name = self.file.clone().ok_or_else(|| need("file"))?;
                self.format.ok_or_else(|| need("format"))?;
                let scale = self.time_scale.map_or(1.0, |f| f.0);
                if !(scale > 0.0 && scale <= 1e6) {
                    return Err(InputError::field(
                        file,
                        join(path, "time_scale"),
                        format!("{scale}: allowed above 0 and at most 1e6"),
                    ));
                }
                let requests = self.loaded.clone().ok_or_else(|| {
                    InputError::field(
                        file,
                        join(path, "file"),
                        "trace traffic is read with its workload file (`ultrasched run|validate FILE`)",
                    )
                })?;
                if requests.is_empty() {
                    return Err(InputError::field(
                        file,
                        join(path, "file"),
                        format!("`{name}` holds no requests"),
                    ));
                }
                Ok(Traffic::Trace(TraceTraffic {
                    requests,
                    time_scale: scale,
                    looped: self.looped.unwrap_or(true),
                    source: name,
                }))
            }
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
                    profile: self.profile(path, file)?,
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
                    profile: self.profile(path, file)?,
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

/// Most replicas an autoscaled service may have.
pub const MAX_AUTOSCALE_REPLICAS: u32 = 100_000;

/// `autoscale = { ... }` of a service, as written.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleSpec {
    /// Fewest replicas (>= 1).
    pub min_replicas: Count,
    /// Most replicas (`min_replicas` to 100000).
    pub max_replicas: Count,
    /// Outstanding requests per replica it aims at (>= 1).
    pub target_outstanding: Option<Count>,
    /// Or (and) an SLO target: TTFT p90 over the last `slo_window_s`, seconds.
    pub target_ttft_p90_s: Option<Seconds>,
    /// Window of `target_ttft_p90_s`, seconds (default 300).
    pub slo_window_s: Option<Seconds>,
    /// Time from a replica's placement until it serves, seconds (default: 30 s plus the weights over
    /// 2 GB/s per GPU, see [`ServeAutoscale::cold_start_or`]).
    pub cold_start_s: Option<Seconds>,
    /// Time after a scaling change before a scale-down, seconds (default 600).
    pub cooldown_s: Option<Seconds>,
    /// Time between scaling decisions, seconds (default 30, at least 1).
    pub eval_period_s: Option<Seconds>,
}

impl AutoscaleSpec {
    /// Checks what spans fields; `path` is this table's field path.
    pub fn build(&self, path: &str, file: &str) -> Result<ServeAutoscale, InputError> {
        let err = |f: &str, m: String| InputError::field(file, join(path, f), m);
        let (min, max) = (self.min_replicas.0, self.max_replicas.0);
        if max < min {
            return Err(err(
                "max_replicas",
                format!("must not be below min_replicas ({min}), found {max}"),
            ));
        }
        if max > MAX_AUTOSCALE_REPLICAS {
            return Err(err(
                "max_replicas",
                format!("must be at most {MAX_AUTOSCALE_REPLICAS}, found {max}"),
            ));
        }
        let us = |s: Seconds| (s.0 * 1e6).round() as u64;
        let eval = self.eval_period_s.map_or(30_000_000, us);
        if eval < 1_000_000 {
            return Err(err(
                "eval_period_s",
                format!("must be at least 1 s, found {} s", eval as f64 / 1e6),
            ));
        }
        if self.target_outstanding.is_none() && self.target_ttft_p90_s.is_none() {
            return Err(err(
                "target_outstanding",
                "is required unless target_ttft_p90_s is set: the service needs a target to scale by".into(),
            ));
        }
        if self.slo_window_s.is_some() && self.target_ttft_p90_s.is_none() {
            return Err(err(
                "slo_window_s",
                "needs target_ttft_p90_s (the target it is the window of)".into(),
            ));
        }
        let window = self.slo_window_s.map_or(300_000_000, us);
        if window < 1_000_000 {
            return Err(err(
                "slo_window_s",
                format!("must be at least 1 s, found {} s", window as f64 / 1e6),
            ));
        }
        Ok(ServeAutoscale {
            min_replicas: min,
            max_replicas: max,
            target_outstanding: self.target_outstanding.map(|c| c.0),
            target_ttft_p90_us: self.target_ttft_p90_s.map(us),
            slo_window_us: window,
            cold_start_us: self.cold_start_s.map(us),
            cooldown_us: self.cooldown_s.map_or(600_000_000, us),
            eval_period_us: eval,
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
    /// Most requests in one replica's batch (default 128, vLLM's scheduler as Vidur runs it).
    pub max_batch: Option<Count>,
    /// `operators` (default: per-operator model), `profile` (measured operator times, bundled for
    /// llama-2-70b on h100) or `roofline` (the first-order model).
    pub cost_model: Option<CostModel>,
    /// `paged` (default: vLLM's paged KV with preemption) or `reserve` (whole KV reserved at admission).
    pub admission: Option<Admission>,
    /// Most prompt tokens per prefill iteration (default 4096).
    pub max_tokens_in_batch: Option<Count>,
    /// Tokens per KV page (default 16).
    pub block_size: Option<Count>,
    /// Chunked prefill: tokens per iteration, decodes included (default: off).
    pub chunk_size: Option<Count>,
    /// Time-to-first-token target, seconds (default 2).
    pub ttft_slo_s: Option<Seconds>,
    /// Time-per-output-token target, seconds (default 0.1).
    pub tpot_slo_s: Option<Seconds>,
    /// The requests.
    pub traffic: TrafficSpec,
    /// Autoscaling in the cluster (default: the job's fixed replicas).
    pub autoscale: Option<AutoscaleSpec>,
    /// Prefill/decode disaggregation: of the job's replicas, this many only run prompts (with
    /// `decode_replicas`; the two must add up to `replicas`; paged admission, no autoscaling).
    pub prefill_replicas: Option<Count>,
    /// Prefill/decode disaggregation: replicas that only decode (with `prefill_replicas`).
    pub decode_replicas: Option<Count>,
}

impl ServeSpec {
    /// Checks what spans several fields; `path` is this table's field path, `file` labels errors.
    pub fn build(&self, path: &str, file: &str) -> Result<Serve, InputError> {
        let us =
            |s: Option<Seconds>, default: f64| (s.map_or(default, |s| s.0) * 1e6).round() as u64;
        Ok(Serve {
            model: self.model.0.clone(),
            router: self.router.unwrap_or(Router::RoundRobin),
            setup: {
                let d = ReplicaSetup::default();
                let setup = ReplicaSetup {
                    cost_model: self.cost_model.unwrap_or(d.cost_model),
                    admission: self.admission.unwrap_or(d.admission),
                    max_batch: self.max_batch.map_or(d.max_batch, |c| c.0),
                    max_tokens_in_batch: self
                        .max_tokens_in_batch
                        .map_or(d.max_tokens_in_batch, |c| c.0),
                    block_size: self.block_size.map_or(d.block_size, |c| c.0),
                    chunk_size: self.chunk_size.map(|c| c.0),
                };
                if setup.chunk_size.is_some() && setup.admission == Admission::Reserve {
                    return Err(InputError::field(
                        file,
                        join(path, "chunk_size"),
                        "chunked prefill needs admission = \"paged\"",
                    ));
                }
                setup
            },
            slo: Slo {
                ttft_us: us(self.ttft_slo_s, 2.0),
                tpot_us: us(self.tpot_slo_s, 0.1),
            },
            traffic: self.traffic.build(&join(path, "traffic"), file)?,
            autoscale: self
                .autoscale
                .map(|a| a.build(&join(path, "autoscale"), file))
                .transpose()?,
            pools: self.pools(path, file)?,
            file: file.to_string(),
            path: path.to_string(),
        })
    }
}

impl ServeSpec {
    /// The prefill and decode pools, when both are given and can be honoured.
    fn pools(&self, path: &str, file: &str) -> Result<Option<PdPools>, InputError> {
        let (p, d) = match (self.prefill_replicas, self.decode_replicas) {
            (None, None) => return Ok(None),
            (Some(p), Some(d)) => (p.0, d.0),
            (Some(_), None) => return Err(InputError::field(
                file,
                join(path, "decode_replicas"),
                "prefill_replicas needs decode_replicas too (the two add up to the job's replicas)",
            )),
            (None, Some(_)) => return Err(InputError::field(
                file,
                join(path, "prefill_replicas"),
                "decode_replicas needs prefill_replicas too (the two add up to the job's replicas)",
            )),
        };
        if self.autoscale.is_some() {
            return Err(InputError::field(
                file,
                join(path, "prefill_replicas"),
                "a disaggregated service runs fixed pools; remove autoscale or the prefill/decode split",
            ));
        }
        if self.admission == Some(Admission::Reserve) {
            return Err(InputError::field(
                file,
                join(path, "admission"),
                "a disaggregated service needs admission = \"paged\"",
            ));
        }
        Ok(Some(PdPools {
            prefill: p,
            decode: d,
        }))
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

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "model = \"llama-3-8b\"\n[traffic]\nkind = \"poisson\"\nrate_per_s = 2\n\
                        prompt_tokens = { median = 10 }\noutput_tokens = { median = 10 }\n";

    fn build(extra: &str) -> Result<Serve, InputError> {
        parse_serve(&format!("{BASE}{extra}"), "s.toml")
            .and_then(|s| s.build("jobs[2].serving", "s.toml"))
    }

    fn err(extra: &str) -> String {
        build(extra).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn profiles_build() {
        let s = build("diurnal = { peak_to_trough = 4, peak_hour = 14 }\n").unwrap();
        assert_eq!(s.traffic.profile(), Some(&RateProfile::diurnal(4.0, 14.0)));
        let s = build("rate_schedule = [[0, 2.0], [21600, 8], [43200.5, 0]]\nrate_schedule_period_s = 86400\n")
            .unwrap();
        assert_eq!(
            s.traffic.profile(),
            Some(&RateProfile::Schedule {
                points: vec![(0, 2.0), (21_600_000_000, 8.0), (43_200_500_000, 0.0)],
                period_us: Some(86_400_000_000),
            })
        );
        assert_eq!(build("").unwrap().traffic.profile(), None);
    }

    #[test]
    fn bad_profiles_name_the_field() {
        let at = |f: &str| format!("s.toml: field `jobs[2].serving.traffic.{f}`: ");
        let cases = [
            (
                "diurnal = { peak_to_trough = 0.5, peak_hour = 14 }",
                "diurnal.peak_to_trough",
            ),
            (
                "diurnal = { peak_to_trough = 1001, peak_hour = 14 }",
                "diurnal.peak_to_trough",
            ),
            (
                "diurnal = { peak_to_trough = 2, peak_hour = 24 }",
                "diurnal.peak_hour",
            ),
            (
                "diurnal = { peak_to_trough = 2, peak_hour = -1 }",
                "diurnal.peak_hour",
            ),
            (
                "diurnal = { peak_to_trough = 2, peak_hour = 1 }\nrate_schedule = [[0, 1]]",
                "rate_schedule",
            ),
            ("rate_schedule = []", "rate_schedule"),
            ("rate_schedule = [[1, 1]]", "rate_schedule[0]"),
            (
                "rate_schedule = [[0, 1], [10, 2], [10, 3]]",
                "rate_schedule[2]",
            ),
            ("rate_schedule = [[0, 1], [10, -2]]", "rate_schedule[1]"),
            ("rate_schedule = [[0, 0], [10, 0]]", "rate_schedule"),
            (
                "rate_schedule = [[0, 1], [10, 2]]\nrate_schedule_period_s = 10",
                "rate_schedule_period_s",
            ),
            ("rate_schedule_period_s = 10", "rate_schedule_period_s"),
        ];
        for (extra, field) in cases {
            let e = err(extra);
            assert!(e.starts_with(&at(field)), "{extra}: {e}");
        }
        assert!(err("diurnal = { peak_to_trough = 0.5, peak_hour = 14 }")
            .contains("must be from 1 to 1000"));
        assert!(err("diurnal = { peak_to_trough = nan, peak_hour = 14 }")
            .contains("NaN is not allowed: expected a finite number"));
        assert!(err("diurnal = { peak_to_trough = 2 }").contains("missing field `peak_hour`"));
        assert!(
            err("diurnal = { peak_to_trough = 2, peak_hour = 1, x = 1 }")
                .contains("unknown field `x`")
        );
    }

    #[test]
    fn autoscale_defaults_and_errors() {
        let s =
            build("[autoscale]\nmin_replicas = 2\nmax_replicas = 32\ntarget_outstanding = 16\n")
                .unwrap();
        assert_eq!(
            s.autoscale,
            Some(ServeAutoscale {
                min_replicas: 2,
                max_replicas: 32,
                target_outstanding: Some(16),
                target_ttft_p90_us: None,
                slo_window_us: 300_000_000,
                cold_start_us: None,
                cooldown_us: 600_000_000,
                eval_period_us: 30_000_000,
            })
        );
        assert_eq!(build("").unwrap().autoscale, None);
        let a = |rest: &str| {
            err(&format!(
                "[autoscale]\nmin_replicas = 4\ntarget_outstanding = 16\n{rest}\n"
            ))
        };
        assert!(a("max_replicas = 3").starts_with(
            "s.toml: field `jobs[2].serving.autoscale.max_replicas`: must not be below min_replicas (4), found 3"
        ));
        assert!(
            a("max_replicas = 100001").contains("autoscale.max_replicas`: must be at most 100000")
        );
        assert!(a("max_replicas = 8\neval_period_s = 0.5")
            .contains("autoscale.eval_period_s`: must be at least 1 s"));
        assert!(a("max_replicas = 8\ncolour = 1").contains("unknown field `colour`"));
        assert!(a("max_replicas = 0").contains("0 is out of range"));
    }
}
