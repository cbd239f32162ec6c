//! The traffic generator ([`generate`]: seeded requests and session chains from a [`Traffic`]) and
//! [`serve`], which runs a service's traffic on the replicas the cluster engine gave it. Pure: no I/O.

pub use super::sim::Latencies;
use super::sim::{
    simulate_closed_loop, simulate_disaggregated, summarize_sessions, summarize_sorted, After,
    Disaggregation, Request, SessionSummary, SimConfig, Summary,
};
use crate::domain::catalog::GpuModel;
use crate::domain::traffic::*;
use crate::error::{InputError, Location};
use crate::perf::inference::{Efficiency, ServiceModel};
use crate::perf::kv_transfer::KvTransfer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Seed of service `index`'s traffic: distinct per service, fixed by the workload seed.
pub fn service_seed(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

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

/// Thinning of candidate arrivals: a rate profile, the absolute time of relative time 0, and the stream
/// that decides acceptance.
struct Thinning<'a> {
    profile: &'a RateProfile,
    max: f64,
    origin_us: u64,
    rng: ChaCha8Rng,
}

/// Arrivals of a Poisson process in `[start_us, end_us)`, drawn lazily. With `thin`, a non-homogeneous
/// one by thinning (Lewis and Shedler, 1979): `rate_per_s` is then the peak rate, and a candidate at `t`
/// is kept with probability `multiplier(origin + t) / max_multiplier`.
struct Arrivals<'a> {
    rng: ChaCha8Rng,
    rate_per_s: f64,
    t: f64,
    end_us: u64,
    thin: Option<Thinning<'a>>,
}

impl Iterator for Arrivals<'_> {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        loop {
            self.t += gap_us(&mut self.rng, self.rate_per_s);
            // Floor keeps t < end; a non-finite t (never with a validated rate) ends the stream too.
            let t = (self.t < self.end_us as f64).then_some(self.t as u64)?;
            let Some(th) = &mut self.thin else {
                return Some(t);
            };
            let u: f64 = th.rng.random();
            if u * th.max < th.profile.multiplier(th.origin_us.saturating_add(t)) {
                return Some(t);
            }
        }
    }
}

/// What a draw keeps: the requests, their count, or the count of the candidates at the peak rate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Store,
    Count,
    Bound,
}

/// Draws `traffic` in `[start_us, end_us)`: deterministic in `seed`. Arrival times come from one ChaCha8
/// stream and sizes from another, so changing a size distribution keeps the arrival times. Stops (and sets
/// `truncated`) at [`MAX_REQUESTS`] requests or [`MAX_PROMPT_BLOCKS`] block ids. A rate profile is read
/// with relative time 0 at cluster time 0 ([`generate_from`] with `origin_us = 0`).
pub fn generate(traffic: &Traffic, seed: u64, start_us: u64, end_us: u64) -> Generated {
    generate_from(traffic, seed, 0, start_us, end_us)
}

/// [`generate`] for traffic whose relative time 0 is absolute cluster time `origin_us`; times in the
/// result stay relative. Only a rate profile reads the origin: its multiplier is taken at
/// `origin_us + t`. With a profile, candidates are drawn at the peak rate from the arrival stream and
/// each is kept or not by a third stream, so the sizes stream is untouched; without one nothing changes
/// (the draws are those of a flat Poisson process, bit for bit, whatever the origin). Sessions: the
/// profile thins session starts; later calls follow their sessions. A request trace ignores the origin: it
/// replays from relative time 0, pass after pass (`TraceTraffic::period_us`) while passes are looped.
pub fn generate_from(
    traffic: &Traffic,
    seed: u64,
    origin_us: u64,
    start_us: u64,
    end_us: u64,
) -> Generated {
    draw(traffic, seed, origin_us, start_us, end_us, Mode::Store)
}

/// Whether [`generate`] would stop at a cap, and how many requests it would draw: the same draws, nothing
/// stored (so a workload's limits are checked before any simulation, in memory that does not grow).
pub fn volume(traffic: &Traffic, seed: u64, start_us: u64, end_us: u64) -> (u64, bool) {
    let g = draw(traffic, seed, 0, start_us, end_us, Mode::Count);
    (g.counted, g.truncated)
}

/// [`volume`] at the peak rate: every candidate arrival kept, so an upper bound on what
/// [`generate_from`] draws at any origin (the same as [`volume`] without a rate profile). Requests are
/// sized in arrival order from their own stream whatever their times, so thinned traffic is a prefix of
/// the candidates' requests: its count and its prompt blocks are at most these, and it stops at a cap
/// only if this does.
pub fn volume_bound(traffic: &Traffic, seed: u64, start_us: u64, end_us: u64) -> (u64, bool) {
    let g = draw(traffic, seed, 0, start_us, end_us, Mode::Bound);
    (g.counted, g.truncated)
}

fn draw(
    traffic: &Traffic,
    seed: u64,
    origin_us: u64,
    start_us: u64,
    end_us: u64,
    mode: Mode,
) -> Generated {
    let stream = |s: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(s);
        r
    };
    let store = mode == Mode::Store;
    let (rate, thin) = match traffic.profile() {
        None => (traffic.rate_per_s(), None),
        Some(p) => {
            let max = p.max_multiplier();
            let thin = (mode != Mode::Bound).then(|| Thinning {
                profile: p,
                max,
                origin_us,
                rng: stream(3),
            });
            (traffic.rate_per_s() * max, thin)
        }
    };
    let arrivals = Arrivals {
        rng: stream(1),
        rate_per_s: rate,
        t: start_us as f64,
        end_us,
        thin,
    };
    let mut sizes = stream(2);
    let mut g = Generated::default();
    match traffic {
        Traffic::Trace(tr) => {
            // Pass k replays the trace from start + k x period (times scaled); its prompt blocks get ids
            // of their own, so a loop is new text, not a cache hit on the previous pass.
            let period = tr.period_us();
            let id_span = tr
                .requests
                .iter()
                .flat_map(|r| r.hash_ids.iter())
                .max()
                .map_or(0, |m| m + 1);
            let mut blocks = 0u64;
            'passes: for k in 0u64.. {
                let base = start_us.saturating_add(k.saturating_mul(period));
                if base >= end_us || (k > 0 && !tr.looped) {
                    break;
                }
                for r in tr.requests.iter() {
                    let t =
                        base.saturating_add((r.arrival_us as f64 * tr.time_scale).round() as u64);
                    if t >= end_us {
                        break 'passes;
                    }
                    if g.counted >= MAX_REQUESTS
                        || blocks + r.hash_ids.len() as u64 > MAX_PROMPT_BLOCKS
                    {
                        g.truncated = true;
                        break 'passes;
                    }
                    g.counted += 1;
                    blocks += r.hash_ids.len() as u64;
                    if store {
                        g.requests.push(Request {
                            arrival_us: t,
                            prompt_tokens: r.prompt_tokens,
                            output_tokens: r.output_tokens,
                            hash_ids: r.hash_ids.iter().map(|h| h + k * id_span).collect(),
                        });
                    }
                }
            }
        }
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
/// the same draws [`serve`] makes (a shorter run draws a prefix of them), counted, not stored. With a
/// rate profile the service's start (the profile's origin) is not known yet, so the candidates at the
/// peak rate are counted ([`volume_bound`]): an upper bound on what [`serve`] draws from any start.
pub fn check_traffic(serve: &Serve, duration_us: u64, seed: u64) -> Result<(), InputError> {
    serve.check_volume(duration_us)?;
    if volume_bound(&serve.traffic, seed, 0, duration_us).1 {
        return Err(too_much_traffic(serve, duration_us));
    }
    Ok(())
}

/// Runs `serve`'s traffic on `replicas` replicas of `tp` x `gpu`, for a service that ran from `start_us`
/// to `end_us` (cluster time). Traffic is drawn in `[0, end - start)` relative to the service start, a
/// rate profile read at cluster time `start_us + t` ([`generate_from`] with origin `start_us`). Derive
/// `seed` per service, or all services draw the same traffic. Session calls that would arrive after the
/// end are not sent, and requests in flight at the end run to completion. Errors (naming `serve.file` and
/// `serve.path`) when the weights do not fit, or the traffic is too large to simulate. A disaggregated
/// service ([`Serve::pools`]) is taken to have all its replicas in one NVLink domain; [`serve_placed`]
/// takes the domains the engine chose.
pub fn serve(
    serve: &Serve,
    gpu: &GpuModel,
    tp: u32,
    replicas: u32,
    start_us: u64,
    end_us: u64,
    seed: u64,
) -> Result<ServeOutcome, InputError> {
    let domains = vec![0; replicas as usize];
    serve_placed(serve, gpu, tp, &domains, start_us, end_us, seed)
}

/// [`serve`] with the NVLink domain of every replica (one entry per replica, in the job's replica order),
/// which decides whether a disaggregated service's KV copies go over NVLink or EFA.
pub fn serve_placed(
    serve: &Serve,
    gpu: &GpuModel,
    tp: u32,
    domains: &[u32],
    start_us: u64,
    end_us: u64,
    seed: u64,
) -> Result<ServeOutcome, InputError> {
    let replicas = domains.len() as u32;
    if tp == 0 || replicas == 0 {
        return Err(InputError::new(
            &serve.file,
            Location::Field(serve.path.clone()),
            format!("needs at least 1 replica of at least 1 GPU, found {replicas} x {tp}"),
        ));
    }
    let roof = service_model(serve, gpu, tp)?;
    let duration = end_us.saturating_sub(start_us);
    serve.check_volume(duration)?;
    let generated = generate_from(&serve.traffic, seed, start_us, 0, duration);
    if generated.truncated {
        return Err(too_much_traffic(serve, duration));
    }
    serve.check_pools(replicas)?;
    let disaggregation = serve.pools.map(|p| Disaggregation {
        prefill_replicas: p.prefill,
        decode_replicas: p.decode,
        domains: domains.to_vec(),
        transfer: KvTransfer::new(&serve.model, gpu, tp, tp),
    });
    let cfg = SimConfig {
        replicas,
        router: serve.router,
        disaggregation,
        ..SimConfig::default()
    }
    .with_setup(&serve.setup);
    let res = if cfg.disaggregation.is_some() {
        simulate_disaggregated(
            &generated.requests,
            &generated.after,
            duration,
            roof.as_ref(),
            roof.as_ref(),
            &cfg,
        )?
    } else {
        simulate_closed_loop(
            &generated.requests,
            &generated.after,
            duration,
            roof.as_ref(),
            &cfg,
        )?
    };
    let tail_s = duration.saturating_sub(res.end_us) as f64 / 1e6;
    let idle_w = cfg.power.idle * roof.board_power_w() * f64::from(tp) * f64::from(replicas);
    Ok(outcome(serve, &res, &generated.after, idle_w * tail_s))
}

/// The replica model of `serve` on `tp` GPUs of `gpu` inside one NVLink domain (the engine places a
/// replica in one domain), by its cost model; an error naming the service when the weights do not fit.
pub fn service_model(
    serve: &Serve,
    gpu: &GpuModel,
    tp: u32,
) -> Result<Box<dyn ServiceModel + Send>, InputError> {
    crate::perf::cost_model::build(
        serve.setup.cost_model,
        &serve.model,
        gpu,
        tp,
        1,
        Efficiency::default(),
    )
    .map_err(|e| {
        if e.file != "cost_model" {
            serve.error(
                "model",
                format!(
                    "{} weights ({:.1} GB) do not fit {tp} x {} ({:.0} GB HBM) with room for KV cache: give \
                     the service more GPUs per replica or a GPU with more memory",
                    serve.model.name,
                    serve.model.weight_bytes() / 1e9,
                    gpu.id,
                    f64::from(tp) * gpu.hbm_gb
                ),
            )
        } else {
            serve.error("cost_model", e.message)
        }
    })
}

/// A service's results from its run (`after`: its session dependencies), with `extra_energy_j` of idle
/// power outside the run's powered replicas: the post-run path and the engine's live services share it.
pub fn outcome(
    serve: &Serve,
    res: &crate::engine::serving::sim::SimResult,
    after: &[Option<After>],
    extra_energy_j: f64,
) -> ServeOutcome {
    let (summary, latencies) = summarize_sorted(res, serve.slo);
    let sent = res.requests.iter().filter(|o| !o.cancelled);
    ServeOutcome {
        requests: summary.requests,
        completed: summary.completed,
        output_tokens: sent
            .filter(|o| o.done_us.is_some())
            .map(|o| u64::from(o.output_tokens))
            .sum(),
        energy_j: res.energy_j + extra_energy_j,
        end_us: res.end_us,
        sessions: matches!(serve.traffic, Traffic::Sessions(_))
            .then(|| summarize_sessions(after, res)),
        latencies,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(median: f64) -> SizeDist {
        SizeDist {
            median,
            sigma: 0.5,
            min: 1,
            max: 100_000,
        }
    }

    fn poisson(rate_per_s: f64, profile: Option<RateProfile>) -> Traffic {
        Traffic::Poisson(PoissonTraffic {
            rate_per_s,
            prompt_tokens: size(500.0),
            output_tokens: size(100.0),
            profile,
        })
    }

    fn sessions(sessions_per_s: f64, profile: Option<RateProfile>) -> Traffic {
        Traffic::Sessions(SessionTraffic {
            sessions_per_s,
            turns: size(4.0),
            first_prompt_tokens: size(2000.0),
            tokens_per_turn: size(300.0),
            output_tokens: size(100.0),
            tool_wait: WaitDist {
                median_s: 2.0,
                sigma: 1.0,
                min_s: 0.0,
                max_s: 60.0,
            },
            max_context_tokens: 32_768,
            profile,
        })
    }

    const HOUR: u64 = 3_600_000_000;

    /// A profile that is 1 everywhere keeps every candidate, so the draws are the flat ones: thinning
    /// takes nothing from the arrival or size streams beyond the flat draws.
    #[test]
    fn a_flat_profile_draws_exactly_the_flat_traffic() {
        let one = || {
            Some(RateProfile::Schedule {
                points: vec![(0, 1.0)],
                period_us: None,
            })
        };
        for (flat, profiled) in [
            (poisson(3.0, None), poisson(3.0, one())),
            (sessions(0.5, None), sessions(0.5, one())),
        ] {
            let a = generate(&flat, 5, 0, HOUR);
            assert!(a.requests.len() > 1000);
            assert_eq!(a, generate_from(&profiled, 5, 7 * HOUR, 0, HOUR));
            assert_eq!(a, generate_from(&flat, 5, 7 * HOUR, 0, HOUR));
        }
    }

    #[test]
    fn thinned_traffic_is_a_prefix_of_the_candidates() {
        let diurnal = || Some(RateProfile::diurnal(10.0, 3.0));
        for (t, flat) in [
            (poisson(2.0, diurnal()), poisson(2.0, None)),
            (sessions(0.2, diurnal()), sessions(0.2, None)),
        ] {
            let sizes = |g: &Generated| -> Vec<(u32, u32, Option<After>)> {
                let after = |q: usize| g.after.get(q).copied().flatten();
                g.requests
                    .iter()
                    .enumerate()
                    .map(|(q, r)| (r.prompt_tokens, r.output_tokens, after(q)))
                    .collect()
            };
            let candidates = sizes(&generate(&flat, 9, 0, 12 * HOUR));
            let (bound, cut) = volume_bound(&t, 9, 0, 6 * HOUR);
            assert!(!cut);
            for origin in [0, HOUR, 5 * HOUR, 15 * HOUR] {
                let g = generate_from(&t, 9, origin, 0, 6 * HOUR);
                assert!(
                    g.counted < bound,
                    "origin {origin}: {} >= {bound}",
                    g.counted
                );
                // Sizes are drawn in arrival order whatever the arrival times.
                let s = sizes(&g);
                assert!(s.len() > 100 && s[..] == candidates[..s.len()]);
            }
            assert_eq!(
                volume(&t, 9, 0, 6 * HOUR).0,
                generate(&t, 9, 0, 6 * HOUR).counted
            );
        }
    }
}
