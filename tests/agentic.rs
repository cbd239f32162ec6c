//! Agentic sessions (closed-loop calls with tool waits and growing, reused context), the traffic specs and
//! their generator, and `serve` on cases small enough to check by hand.

use ultrasched::domain::catalog::{gpu_model_index, GpuModel, GPU_MODELS};
use ultrasched::domain::traffic::{Router, Serve, Slo, Traffic};
use ultrasched::engine::serving::sim::{
    sessions, simulate_closed_loop, simulate_replicas, summarize, After, Request, SimConfig,
    SimResult,
};
use ultrasched::engine::serving::traffic::{generate, serve, Generated, BLOCK_TOKENS};
use ultrasched::input::traffic::parse_serve;
use ultrasched::perf::inference::ServiceModel;

/// Fixed costs: 1 us per uncached prompt token, 1 ms per decode step.
struct Fixed {
    capacity: u64,
}

impl ServiceModel for Fixed {
    fn prefill_us(&self, new_tokens: u64, _requests: usize) -> u64 {
        new_tokens
    }
    fn decode_step_us(&self, _kv_tokens: u64, _batch: usize) -> u64 {
        1_000
    }
    fn kv_capacity_tokens(&self) -> u64 {
        self.capacity
    }
}

const BIG: Fixed = Fixed { capacity: 1 << 40 };

fn req(arrival_us: u64, prompt: u32, output: u32, hash_ids: &[u64]) -> Request {
    Request {
        arrival_us,
        prompt_tokens: prompt,
        output_tokens: output,
        hash_ids: hash_ids.to_vec(),
    }
}

fn after(parent: usize, delay_us: u64) -> Option<After> {
    Some(After { parent, delay_us })
}

fn cfg(replicas: u32, router: Router) -> SimConfig {
    SimConfig {
        replicas,
        router,
        ..SimConfig::default()
    }
}

fn h100() -> GpuModel {
    GPU_MODELS[gpu_model_index("h100").unwrap()]
}

fn spec(text: &str) -> Serve {
    parse_serve(text, "s.toml")
        .and_then(|s| s.build("", "s.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One session of four calls whose prompts grow by 1,024 tokens (two blocks) a turn, one output token each.
fn four_turns() -> (Vec<Request>, Vec<Option<After>>) {
    let reqs = vec![
        req(0, 1024, 1, &[1, 2]),
        req(0, 2048, 1, &[1, 2, 3, 4]),
        req(0, 3072, 1, &[1, 2, 3, 4, 5, 6]),
        req(0, 4096, 1, &[1, 2, 3, 4, 5, 6, 7, 8]),
    ];
    let deps = vec![None, after(0, 500), after(1, 700), after(2, 0)];
    (reqs, deps)
}

#[test]
fn a_call_arrives_when_the_previous_one_finished_plus_the_tool_wait() {
    let (reqs, deps) = four_turns();
    let res =
        simulate_closed_loop(&reqs, &deps, u64::MAX, &BIG, &cfg(1, Router::RoundRobin)).unwrap();
    for (k, pair) in res.requests.windows(2).enumerate() {
        let wait = deps[k + 1].map(|a| a.delay_us);
        assert_eq!(
            Some(pair[1].arrival_us),
            pair[0].done_us.zip(wait).map(|(d, w)| d + w),
            "call {}: arrival = done(call {k}) + tool wait {wait:?} us",
            k + 1
        );
    }
    // One replica keeps every earlier prompt: each call prefills only its 1,024 new tokens.
    let ttft: Vec<u64> = res.requests.iter().map(|o| o.ttft_us().unwrap()).collect();
    assert_eq!(ttft, [1024, 1024, 1024, 1024]);
    // Calls end at 1024, arrive 500 us later, end 1024 us after that, ...
    let done: Vec<u64> = res.requests.iter().map(|o| o.done_us.unwrap()).collect();
    assert_eq!(done, [1024, 2548, 4272, 5296]);

    let s = sessions(&deps, &res);
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].calls, s[0].sent, s[0].completed), (4, 4, 4));
    assert_eq!(s[0].tool_wait_us, 1200);
    assert_eq!(s[0].model_us, 4 * 1024);
    assert_eq!(s[0].duration_us(), Some(5296));
    assert!(s[0].complete());
}

#[test]
fn kv_aware_routing_keeps_a_session_on_its_cache_and_round_robin_does_not() {
    let (reqs, deps) = four_turns();
    let run = |router| simulate_closed_loop(&reqs, &deps, u64::MAX, &BIG, &cfg(4, router)).unwrap();
    let ttft =
        |r: &SimResult| -> Vec<u64> { r.requests.iter().map(|o| o.ttft_us().unwrap()).collect() };
    let replicas =
        |r: &SimResult| -> Vec<Option<u32>> { r.requests.iter().map(|o| o.replica).collect() };

    let kv = run(Router::KvAware);
    assert_eq!(replicas(&kv), [Some(0); 4]);
    assert_eq!(ttft(&kv), [1024, 1024, 1024, 1024]);
    assert_eq!(
        summarize(
            &kv,
            Slo {
                ttft_us: 1,
                tpot_us: 1
            }
        )
        .prefix_hit_rate,
        6144.0 / 10240.0
    );

    // Round-robin puts each call on a fresh replica: the whole context is prefilled every turn.
    let rr = run(Router::RoundRobin);
    assert_eq!(replicas(&rr), [Some(0), Some(1), Some(2), Some(3)]);
    assert_eq!(ttft(&rr), [1024, 2048, 3072, 4096]);
}

#[test]
fn calls_after_a_rejected_call_or_past_the_horizon_are_never_sent() {
    // Capacity 3,000 tokens: the third call (3,072 + 1) can never fit, so the fourth is never sent.
    let (reqs, deps) = four_turns();
    let small = Fixed { capacity: 3000 };
    let res =
        simulate_closed_loop(&reqs, &deps, u64::MAX, &small, &cfg(1, Router::RoundRobin)).unwrap();
    let o = &res.requests;
    assert!(o[1].done_us.is_some() && !o[1].cancelled);
    assert!(o[2].replica.is_none() && !o[2].cancelled, "rejected");
    assert!(o[3].cancelled && o[3].first_token_us.is_none());
    let s = summarize(
        &res,
        Slo {
            ttft_us: 10_000,
            tpot_us: 1,
        },
    );
    assert_eq!((s.requests, s.completed, s.rejected), (3, 2, 1));
    let sess = sessions(&deps, &res)[0];
    assert_eq!((sess.calls, sess.sent, sess.completed), (4, 3, 2));
    assert!(!sess.complete());

    // Call 1 finishes at 2,548 and call 2 would arrive at 3,248: at a horizon of 3,248 it is not sent.
    let res = simulate_closed_loop(&reqs, &deps, 3_248, &BIG, &cfg(1, Router::RoundRobin)).unwrap();
    let cancelled: Vec<bool> = res.requests.iter().map(|o| o.cancelled).collect();
    assert_eq!(cancelled, [false, false, true, true]);
    // One microsecond later it is, and it finishes (at 4,272, past the horizon: requests in flight drain),
    // but call 3 would arrive at 4,272.
    let res = simulate_closed_loop(&reqs, &deps, 3_249, &BIG, &cfg(1, Router::RoundRobin)).unwrap();
    let cancelled: Vec<bool> = res.requests.iter().map(|o| o.cancelled).collect();
    assert_eq!(cancelled, [false, false, false, true]);
    assert_eq!(res.requests[2].done_us, Some(4_272));
}

#[test]
fn without_dependencies_the_closed_loop_is_the_open_loop() {
    let reqs = [
        req(0, 100, 3, &[1]),
        req(50, 700, 2, &[1, 2]),
        req(60, 10, 1, &[]),
    ];
    for router in [Router::RoundRobin, Router::KvAware] {
        let open = simulate_replicas(&reqs, &BIG, &cfg(2, router)).unwrap();
        let none = vec![None; 3];
        let closed = simulate_closed_loop(&reqs, &none, 0, &BIG, &cfg(2, router)).unwrap();
        assert_eq!(open, closed);
    }
}

#[test]
fn dependencies_must_point_backwards_and_cover_every_request() {
    let reqs = [req(0, 10, 1, &[]), req(0, 10, 1, &[])];
    let c = cfg(1, Router::RoundRobin);
    let e = simulate_closed_loop(&reqs, &[after(1, 0), None], 0, &BIG, &c).unwrap_err();
    assert_eq!(
        e.to_string(),
        "after: field `after[0].parent`: must name an earlier request (below 0), found 1"
    );
    let e = simulate_closed_loop(&reqs, &[None], 0, &BIG, &c).unwrap_err();
    assert!(
        e.to_string()
            .contains("one entry per request (2) or none, found 1"),
        "{e}"
    );
}

const SESSIONS: &str = r#"
model = "llama-3-8b"
router = "kv-aware"
[traffic]
kind = "sessions"
sessions_per_s = 2
turns = { median = 5, sigma = 0.6, max = 40 }
first_prompt_tokens = { median = 2000, sigma = 0.5 }
tokens_per_turn = { median = 300, sigma = 1.0 }
output_tokens = { median = 150, sigma = 0.7, max = 2000 }
tool_wait_s = { median_s = 2, sigma = 1 }
max_context_tokens = 32768
"#;

fn traffic(text: &str) -> Traffic {
    spec(text).traffic
}

#[test]
fn generation_is_deterministic_in_the_seed() {
    let t = traffic(SESSIONS);
    let a = generate(&t, 7, 0, 60_000_000);
    assert_eq!(a, generate(&t, 7, 0, 60_000_000));
    assert_ne!(a.requests, generate(&t, 8, 0, 60_000_000).requests);
    assert!(!a.truncated && a.requests.len() > 100);
    // Arrivals fall in the window; a later start shifts them.
    let b = generate(&t, 7, 1_000_000, 61_000_000);
    assert!(b
        .requests
        .iter()
        .all(|r| (1_000_000..61_000_000).contains(&r.arrival_us)));
}

/// Session boundaries of generated traffic: (first call, calls).
fn session_spans(g: &Generated) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (q, a) in g.after.iter().enumerate() {
        match a {
            None => spans.push((q, 1)),
            Some(a) => {
                let last = spans.last_mut().expect("a first call comes first");
                assert_eq!(a.parent, q - 1, "later calls wait for the previous call");
                last.1 += 1;
            }
        }
    }
    spans
}

#[test]
fn session_context_grows_and_keeps_the_previous_prompts_full_blocks() {
    let g = generate(&traffic(SESSIONS), 3, 0, 300_000_000);
    let spans = session_spans(&g);
    let mut seen = std::collections::HashSet::new();
    let mut later = 0;
    for &(first, n) in &spans {
        for q in first..first + n {
            let r = &g.requests[q];
            assert_eq!(
                r.hash_ids.len(),
                r.prompt_tokens.div_ceil(BLOCK_TOKENS) as usize
            );
            assert!(r.prompt_tokens <= 32768);
            let kept = if q == first {
                0
            } else {
                later += 1;
                let p = &g.requests[q - 1];
                // Previous prompt + previous output + at least one new token.
                assert!(r.prompt_tokens > p.prompt_tokens + p.output_tokens);
                let full = (p.prompt_tokens / BLOCK_TOKENS) as usize;
                assert_eq!(r.hash_ids[..full], p.hash_ids[..full], "request {q}");
                full
            };
            // Everything past the kept prefix is new text: ids never seen before.
            for h in &r.hash_ids[kept..] {
                assert!(seen.insert(*h), "request {q} reuses id {h}");
            }
        }
    }
    assert!(later > 1000, "{later} later calls");
}

#[test]
fn session_starts_and_turns_match_the_rates() {
    let t = traffic(SESSIONS);
    let secs = 10_000.0;
    let g = generate(&t, 11, 0, (secs * 1e6) as u64);
    let spans = session_spans(&g);
    let want = 2.0 * secs;
    let n = spans.len() as f64;
    eprintln!(
        "sessions {n} (expected {want}), requests {}",
        g.requests.len()
    );
    // Poisson count: sd = sqrt(20,000) = 141, so 2 % is 2.8 sd.
    assert!(
        (n - want).abs() / want < 0.02,
        "{n} sessions, expected {want}"
    );
    // Turns: round(5 e^(0.6 z)) clamped to 1..40. By hand, with Phi the normal CDF and
    // z(v) = ln(v / 5) / 0.6: E[N] = sum over n of n (Phi(z(n + 0.5)) - Phi(z(n - 0.5))), the ends taking
    // the clamped tails, = 5.98417 (unclamped lognormal mean 5 e^0.18 = 5.98609). Sessions cut by the
    // 32k context limit are rare. 20,000 sessions, sd of N ~ 3.9, standard error 0.028: 2 % is ~ 4 of them.
    let mean_turns = spans.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    eprintln!("mean turns {mean_turns:.3} (by hand 5.984)");
    assert!((mean_turns - 5.984_17).abs() / 5.984_17 < 0.02);
    // The traffic's own estimate (the clamped lognormal, rounding ignored) against its closed form:
    // 1 Phi(a) + 5 e^(0.18) (Phi(b - 0.6) - Phi(a - 0.6)) + 40 (1 - Phi(b)), a = z(1), b = z(40) = 5.98478.
    let Traffic::Sessions(sessions) = &t else {
        unreachable!()
    };
    assert!((sessions.turns.mean() - 5.984_784_306_923_972).abs() < 1e-6);
    assert!((t.expected_requests((secs * 1e6) as u64) - want * 5.984_784_306_923_972).abs() < 1e-2);
}

fn err(text: &str) -> String {
    match parse_serve(text, "s.toml").and_then(|s| s.build("jobs[0].serve", "s.toml")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_specs_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "sessions_per_s = 2",
            "sessions_per_s = nan",
            "s.toml:6:18: NaN is not allowed",
        ),
        (
            "sessions_per_s = 2",
            "sessions_per_s = -1",
            "at `traffic.sessions_per_s`",
        ),
        (
            "sessions_per_s = 2",
            "sessions_per_s = 2\ncolour = 1",
            "unknown field `colour`",
        ),
        (
            "median = 5,",
            "median = 0,",
            "0 is out of range: expected a number from 1 to 10000000 (at `traffic.turns.median`)",
        ),
        (
            "median_s = 2,",
            "median_s = 2, min_s = 5, max_s = 1,",
            "s.toml: field `jobs[0].serve.traffic.tool_wait_s.min_s`: must not be above",
        ),
        (
            "max = 40",
            "min = 50, max = 40",
            "s.toml: field `jobs[0].serve.traffic.turns.min`: must not be above max (40), found 50",
        ),
        (
            "sessions_per_s = 2",
            "rate_per_s = 2",
            "s.toml: field `jobs[0].serve.traffic.rate_per_s`: belongs to kind = \"poisson\"",
        ),
        ("turns = {", "xturns = {", "unknown field `xturns`"),
        (
            "model = \"llama-3-8b\"",
            "model = \"gpt-9\"",
            "s.toml:2:9: unknown model `gpt-9`; built in: llama-2-70b",
        ),
        (
            "router = \"kv-aware\"",
            "router = \"sticky\"",
            "unknown variant `sticky`",
        ),
        (
            "kind = \"sessions\"",
            "kind = \"bursty\"",
            "unknown variant `bursty`",
        ),
    ];
    for (from, to, want) in cases {
        assert!(SESSIONS.contains(from), "{from}");
        let e = err(&SESSIONS.replacen(from, to, 1));
        assert!(e.contains(want), "{from} -> {to}: got {e:?}, want {want:?}");
    }
    let e = err(&SESSIONS.replace("tool_wait_s = { median_s = 2, sigma = 1 }\n", ""));
    assert_eq!(
        e,
        "s.toml: field `jobs[0].serve.traffic.tool_wait_s`: is required for kind = \"sessions\""
    );
    let poisson = "model = \"llama-3-8b\"\n[traffic]\nkind = \"poisson\"\nrate_per_s = 1\n\
                   prompt_tokens = { median = 10 }\noutput_tokens = { median = 10 }\n";
    assert!(parse_serve(poisson, "p.toml")
        .and_then(|s| s.build("", "p.toml"))
        .is_ok());
    let e = err(&poisson.replace(
        "rate_per_s = 1\n",
        "rate_per_s = 1\nturns = { median = 2 }\n",
    ));
    assert_eq!(e, "s.toml: field `jobs[0].serve.traffic.turns`: belongs to kind = \"sessions\"; this traffic is kind = \"poisson\"");
}

#[test]
fn traffic_too_large_to_simulate_is_refused_before_it_is_drawn() {
    let s = spec(&SESSIONS.replace("sessions_per_s = 2", "sessions_per_s = 1000000"));
    let year_us = 365 * 86_400 * 1_000_000;
    let e = serve(&s, &h100(), 1, 1, 0, year_us, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("s.toml: field `traffic.sessions_per_s`: about "),
        "{e}"
    );
    assert!(e.contains("at most 10000000 are simulated"), "{e}");
    // The generator's own cap holds whatever it is given.
    let g = generate(&s.traffic, 1, 0, 3_600_000_000);
    assert!(g.truncated && g.requests.len() <= 10_000_000);
}

#[test]
fn llama_3_70b_does_not_fit_one_h100() {
    let s = spec(&SESSIONS.replace("llama-3-8b", "llama-3-70b"));
    let e = serve(&s, &h100(), 1, 2, 0, 1_000_000, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("s.toml: field `model`: llama-3-70b weights (141.1 GB) do not fit 1 x h100"),
        "{e}"
    );
}

#[test]
fn serve_poisson_requests_apart_cost_one_prefill_each() {
    // llama-3-8b on one H100: prefill 512 tokens = 2 * 8,030,261,248 * 512 / (989e12 * 0.5) s = 16,629 us.
    // At 0.01 requests/s the requests never overlap, so each TTFT is exactly that prefill.
    let s = spec(
        "model = \"llama-3-8b\"\ncost_model = \"roofline\"\n[traffic]\nkind = \"poisson\"\nrate_per_s = 0.01\n\
         prompt_tokens = { median = 512 }\noutput_tokens = { median = 1 }\n",
    );
    let out = serve(&s, &h100(), 1, 1, 5_000_000, 2_005_000_000, 9).unwrap();
    assert!(out.requests >= 5, "{} requests", out.requests);
    assert_eq!(out.completed, out.requests);
    assert_eq!(out.output_tokens, out.requests);
    assert_eq!(out.summary.ttft_s.p50, 0.016_629);
    assert_eq!(out.summary.ttft_s.max, 0.016_629);
    assert!(out.sessions.is_none());
    // Energy over the whole 2,000 s: idle 75 W except during prefills, which draw the full 700 W.
    let busy_s = out.requests as f64 * 0.016_629;
    let want = 75.0 * (2000.0 - busy_s) + 700.0 * busy_s;
    assert!(
        (out.energy_j - want).abs() < 1e-6 * want,
        "{} J, want {want} J",
        out.energy_j
    );
}

#[test]
fn serve_sessions_reuse_the_previous_turn_by_hand() {
    // Two turns: 512 prompt tokens, one output token, then 511 new tokens: the second prompt has
    // 512 + 1 + 511 = 1,024 tokens, its first block cached, so it also prefills 512 tokens (16,629 us).
    let s = spec(
        "model = \"llama-3-8b\"\ncost_model = \"roofline\"\n[traffic]\nkind = \"sessions\"\nsessions_per_s = 0.01\n\
         turns = { median = 2 }\nfirst_prompt_tokens = { median = 512 }\ntokens_per_turn = { median = 511 }\n\
         output_tokens = { median = 1 }\ntool_wait_s = { median_s = 1.5 }\n",
    );
    let out = serve(&s, &h100(), 1, 1, 0, 1_000_000_000, 4).unwrap();
    let ss = out.sessions.unwrap();
    assert!(ss.sessions >= 3, "{} sessions", ss.sessions);
    assert_eq!(ss.complete, ss.sessions);
    assert_eq!(out.requests, 2 * ss.sessions);
    assert_eq!(ss.ttft_first_turn_s.max, 0.016_629);
    assert_eq!(ss.ttft_later_turns_s.max, 0.016_629);
    assert_eq!(ss.turns.mean, 2.0);
    // A session: prefill, 1.5 s of tool, prefill.
    assert!(
        (ss.duration_s.max - (2.0 * 0.016_629 + 1.5)).abs() < 1e-9,
        "{:?}",
        ss.duration_s
    );
    assert!((ss.tool_wait_fraction - 1.5 / (1.5 + 2.0 * 0.016_629)).abs() < 1e-9);
    assert!((out.summary.prefix_hit_rate - 512.0 / 1536.0).abs() < 1e-12);
}

#[test]
fn kv_aware_cuts_later_turn_ttft_of_a_busy_sessions_service() {
    let text = SESSIONS.replace("sessions_per_s = 2", "sessions_per_s = 1.5");
    let mut rows = Vec::new();
    for router in ["kv-aware", "round-robin", "least-outstanding"] {
        let s = spec(&text.replace("\"kv-aware\"", &format!("\"{router}\"")));
        let out = serve(&s, &h100(), 1, 4, 0, 600_000_000, 1).unwrap();
        let ss = out.sessions.unwrap();
        eprintln!(
            "{router:<17} requests {} sessions {}  TTFT turn 1 mean {:.4} p90 {:.4}  later turns mean {:.4} p90 {:.4}  \
             hit {:.3}  tool fraction {:.3}  session p50 {:.1} s",
            out.requests,
            ss.sessions,
            ss.ttft_first_turn_s.mean,
            ss.ttft_first_turn_s.p90,
            ss.ttft_later_turns_s.mean,
            ss.ttft_later_turns_s.p90,
            out.summary.prefix_hit_rate,
            ss.tool_wait_fraction,
            ss.duration_s.p50
        );
        rows.push((out.summary.prefix_hit_rate, ss.ttft_later_turns_s.mean));
    }
    // Least-outstanding scatters sessions like round-robin.
    let (kv, rr, lo) = (rows[0], rows[1], rows[2]);
    assert!(
        kv.1 < 0.5 * lo.1,
        "later-turn TTFT: kv-aware {} s, least-outstanding {} s",
        kv.1,
        lo.1
    );
    assert!(
        kv.0 > 0.7 && rr.0 < kv.0 - 0.2,
        "hit rates: kv-aware {}, round-robin {}",
        kv.0,
        rr.0
    );
    assert!(
        kv.1 < 0.5 * rr.1,
        "later-turn TTFT: kv-aware {} s, round-robin {} s",
        kv.1,
        rr.1
    );
}
