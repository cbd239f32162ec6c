//! The traffic generator ([`generate`]: seeded requests and session chains from a [`Traffic`]) and
//! [`serve`], which runs a service's traffic on the replicas the cluster engine gave it. Pure: no I/O.

use super::sim::{
    simulate_closed_loop, summarize, summarize_sessions, After, Request, SessionSummary, SimConfig,
    Summary,
};
use crate::domain::catalog::GpuModel;
use crate::domain::traffic::*;
use crate::error::{InputError, Location};
use crate::perf::inference::{Efficiency, Roofline, ServiceModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Tokens per prefix block in generated `hash_ids` (Mooncake's; matches `SimConfig::default().block_tokens`).
pub const BLOCK_TOKENS: u32 = 512;
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
    /// Requests drawn (`requests.len()` when they are stored).
    pub counted: u64,
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
    draw(traffic, seed, start_us, end_us, true)
}

/// Whether [`generate`] would stop at a cap, and how many requests it would draw: the same draws, nothing
/// stored (so a workload's limits are checked before any simulation, in memory that does not grow).
pub fn volume(traffic: &Traffic, seed: u64, start_us: u64, end_us: u64) -> (u64, bool) {
    let g = draw(traffic, seed, start_us, end_us, false);
    (g.counted, g.truncated)
}

fn draw(traffic: &Traffic, seed: u64, start_us: u64, end_us: u64, store: bool) -> Generated {
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
                if g.counted >= MAX_REQUESTS {
                    g.truncated = true;
                    break;
                }
                let prompt_tokens = p.prompt_tokens.sample(&mut sizes);
                let output_tokens = p.output_tokens.sample(&mut sizes);
                g.counted += 1;
                if store {
                    g.requests.push(Request {
                        arrival_us: t,
                        prompt_tokens,
                        output_tokens,
                        hash_ids: Vec::new(),
                    });
                }
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
                // `ids.len()`, also kept when nothing is stored.
                let mut held = 0usize;
                let mut after = None;
                for k in 0..turns {
                    let want = prompt.div_ceil(BLOCK_TOKENS) as usize;
                    // `ids` holds the previous prompt's full blocks, all below `want` (the prompt only grows).
                    let fresh = want.saturating_sub(held);
                    if g.counted >= MAX_REQUESTS || blocks + want as u64 > MAX_PROMPT_BLOCKS {
                        g.truncated = true;
                        break 'sessions;
                    }
                    if store {
                        ids.extend(next_id..next_id + fresh as u64);
                    }
                    held += fresh;
                    next_id += fresh as u64;
                    blocks += want as u64;
                    let output = s.output_tokens.sample(&mut sizes);
                    g.counted += 1;
                    if store {
                        g.requests.push(Request {
                            // Later calls arrive when released; their nominal time is the session start.
                            arrival_us: t,
                            prompt_tokens: prompt,
                            output_tokens: output,
                            hash_ids: ids.clone(),
                        });
                        g.after.push(after);
                    }
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
                    let keep = (prompt / BLOCK_TOKENS) as usize;
                    ids.truncate(keep);
                    held = held.min(keep);
                    prompt = next as u32;
                    after = Some(After {
                        parent: (g.counted - 1) as usize,
                        delay_us: wait,
                    });
                }
            }
        }
    }
    g
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

fn latencies(
    res: &crate::engine::serving::sim::SimResult,
    slo: crate::domain::traffic::Slo,
) -> Latencies {
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
fn too_much_traffic(serve: &Serve, duration: u64) -> InputError {
    serve.error(
        &format!("traffic.{}", serve.traffic.rate_field()),
        format!(
            "the traffic over the service's {:.0} s holds more than {MAX_REQUESTS} requests or \
             {MAX_PROMPT_BLOCKS} prompt blocks; lower the rate, the turns or the prompt sizes",
            duration as f64 / 1e6
        ),
    )
}

/// The traffic limits of a service that may run for at most `duration_us`, checked before any simulation:
/// the same draws [`serve`] makes (a shorter run draws a prefix of them), counted, not stored.
pub fn check_traffic(serve: &Serve, duration_us: u64, seed: u64) -> Result<(), InputError> {
    serve.check_volume(duration_us)?;
    if volume(&serve.traffic, seed, 0, duration_us).1 {
        return Err(too_much_traffic(serve, duration_us));
    }
    Ok(())
}

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
        return Err(too_much_traffic(serve, duration));
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
