//! The inference simulation against closed forms and hand computations, routing behaviour, autoscaling, and
//! the trace importers on good and bad rows.

mod common;

use common::repo;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use ultrasched::domain::catalog::{gpu_model_index, GPU_MODELS};
use ultrasched::domain::llm::builtin;
use ultrasched::domain::traffic::{Router, Slo};
use ultrasched::engine::serving::sim::{
    simulate_replicas, summarize, Autoscale, Request, SimConfig, SimResult,
};
use ultrasched::input::requests::{self as trace, TraceFormat};
use ultrasched::perf::inference::{Efficiency, Roofline, ServiceModel};

/// A service model with fixed costs: `prefill_us_per_token` per uncached prompt token, `decode_us` per step.
struct Fixed {
    prefill_us_per_token: u64,
    decode_us: u64,
    capacity: u64,
}

impl ServiceModel for Fixed {
    fn prefill_us(&self, new_tokens: u64, _requests: usize) -> u64 {
        new_tokens * self.prefill_us_per_token
    }
    fn decode_step_us(&self, _kv_tokens: u64, _batch: usize) -> u64 {
        self.decode_us
    }
    fn kv_capacity_tokens(&self) -> u64 {
        self.capacity
    }
}

const ONE_US_PER_TOKEN: Fixed = Fixed {
    prefill_us_per_token: 1,
    decode_us: 1_000,
    capacity: 1 << 40,
};

fn req(arrival_us: u64, prompt: u32, output: u32, hash_ids: &[u64]) -> Request {
    Request {
        arrival_us,
        prompt_tokens: prompt,
        output_tokens: output,
        hash_ids: hash_ids.to_vec(),
    }
}

fn cfg(replicas: u32, router: Router, max_batch: u32) -> SimConfig {
    SimConfig {
        replicas,
        router,
        max_batch,
        ..SimConfig::default()
    }
}

fn replicas_of(res: &SimResult) -> Vec<Option<u32>> {
    res.requests.iter().map(|o| o.replica).collect()
}

/// Poisson arrivals at `lambda` per second, exponential service with mean `1/mu` s, one server, FIFO.
fn mm1_mean_time_in_system(lambda: f64, mu: f64, n: usize, seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gap = Exp::new(lambda / 1e6).unwrap();
    let service = Exp::new(mu / 1e6).unwrap();
    let mut t = 0.0;
    let requests: Vec<Request> = (0..n)
        .map(|_| {
            t += gap.sample(&mut rng);
            // One output token: the request is done when its prefill is; prefill takes 1 us per prompt token,
            // so the prompt length is the service time in microseconds.
            let s: f64 = service.sample(&mut rng);
            req(t.round() as u64, (s.round() as u32).max(1), 1, &[])
        })
        .collect();
    let res =
        simulate_replicas(&requests, &ONE_US_PER_TOKEN, &cfg(1, Router::RoundRobin, 1)).unwrap();
    let e2e: Vec<u64> = res.requests.iter().map(|o| o.e2e_us().unwrap()).collect();
    e2e.iter().sum::<u64>() as f64 / e2e.len() as f64 / 1e6
}

#[test]
fn single_replica_batch_one_is_an_mm1_queue() {
    // W = 1 / (mu - lambda). mu = 100/s (10 ms mean service).
    for (lambda, tolerance) in [(50.0, 0.02), (80.0, 0.04)] {
        let mu = 100.0;
        let w = mm1_mean_time_in_system(lambda, mu, 200_000, 7);
        let want = 1.0 / (mu - lambda);
        let err = (w - want).abs() / want;
        eprintln!(
            "M/M/1 rho {}: W {w:.5} s, closed form {want:.5} s",
            lambda / mu
        );
        assert!(
            err < tolerance,
            "lambda {lambda}: mean time in system {w:.5} s, M/M/1 gives {want:.5} s (error {:.2} %)",
            100.0 * err
        );
    }
}

#[test]
fn ttft_tpot_e2e_of_one_request_by_hand() {
    // llama-3-8b on one H100: prefill 512 tokens = 16,629 us (see perf.rs); decode steps read the weights
    // (16,060,522,496 B) plus 131,072 B per cached token at 3.35e12 * 0.6 B/s.
    let gpu = GPU_MODELS[gpu_model_index("h100").unwrap()];
    let roof = Roofline::new(
        builtin("llama-3-8b").unwrap(),
        gpu,
        1,
        Efficiency::default(),
    )
    .unwrap();
    let res = simulate_replicas(
        &[req(5, 512, 3, &[])],
        &roof,
        &cfg(1, Router::RoundRobin, 8),
    )
    .unwrap();
    let o = res.requests[0];
    assert_eq!(o.ttft_us(), Some(16_629));
    // Two decode steps, with 513 and 514 tokens of KV: (16,060,522,496 + 513 * 131,072) / 2.01e12 s = 8,024 us,
    // and (16,060,522,496 + 514 * 131,072) / 2.01e12 s = 8,024 us.
    assert_eq!(o.e2e_us(), Some(16_629 + 8_024 + 8_024));
    assert_eq!(o.tpot_us(), Some(8_024.0));
    let slo = Slo {
        ttft_us: 20_000,
        tpot_us: 8_000,
    };
    assert!(!o.meets(slo), "TPOT 8,024 us misses an 8,000 us target");
    let s = summarize(&res, slo);
    assert_eq!(s.slo_attainment, 0.0);
    assert_eq!(s.output_tokens_per_s, 3.0 / ((5 + 32_677 - 5) as f64 / 1e6));
}

#[test]
fn a_prefill_waits_for_the_running_decode_step_and_then_preempts_decoding() {
    // Request A (output 3) is decoding when B arrives; B's prefill runs at the next iteration boundary, and
    // A's next token waits for it: prefill-first iteration scheduling.
    let reqs = [req(0, 100, 3, &[]), req(150, 50, 1, &[])];
    let res = simulate_replicas(&reqs, &ONE_US_PER_TOKEN, &cfg(1, Router::RoundRobin, 8)).unwrap();
    let (a, b) = (res.requests[0], res.requests[1]);
    assert_eq!(a.first_token_us, Some(100)); // prefill 100 us
    assert_eq!(b.first_token_us, Some(1_100 + 50)); // waits for A's decode step (100..1,100)
    assert_eq!(a.done_us, Some(1_150 + 1_000)); // second decode step after B's prefill
}

#[test]
fn batch_and_kv_limits_hold_requests_back() {
    // KV room for 250 tokens: two requests of 100 + 10 fit, the third waits for one to finish.
    let small = Fixed {
        capacity: 250,
        ..ONE_US_PER_TOKEN
    };
    let reqs = [
        req(0, 100, 10, &[]),
        req(0, 100, 10, &[]),
        req(0, 100, 10, &[]),
    ];
    let res = simulate_replicas(&reqs, &small, &cfg(1, Router::RoundRobin, 8)).unwrap();
    let ttft: Vec<u64> = res.requests.iter().map(|o| o.ttft_us().unwrap()).collect();
    // Both admitted ones prefill together (200 us); the third starts after 9 decode steps.
    assert_eq!(ttft, [200, 200, 200 + 9_000 + 100]);
    // Max batch 1 has the same effect without the KV limit.
    let res = simulate_replicas(&reqs, &ONE_US_PER_TOKEN, &cfg(1, Router::RoundRobin, 1)).unwrap();
    let ttft: Vec<u64> = res.requests.iter().map(|o| o.ttft_us().unwrap()).collect();
    assert_eq!(ttft, [100, 9_200, 18_300]);
    // A request larger than the whole budget is rejected, not stuck.
    let res = simulate_replicas(
        &[req(0, 300, 1, &[])],
        &small,
        &cfg(1, Router::RoundRobin, 8),
    )
    .unwrap();
    assert_eq!(res.requests[0].replica, None);
    assert_eq!(
        summarize(
            &res,
            Slo {
                ttft_us: 1,
                tpot_us: 1
            }
        )
        .rejected,
        1
    );
}

#[test]
fn round_robin_alternates() {
    let reqs: Vec<Request> = (0..6).map(|i| req(i * 10_000, 10, 1, &[])).collect();
    let res = simulate_replicas(&reqs, &ONE_US_PER_TOKEN, &cfg(2, Router::RoundRobin, 8)).unwrap();
    assert_eq!(
        replicas_of(&res),
        [0, 1, 0, 1, 0, 1].map(Some),
        "round-robin ignores load"
    );
}

#[test]
fn least_outstanding_picks_the_idle_replica() {
    // A is long (1 s of prefill) on replica 0; B and C arrive after B's replica has gone idle again.
    let reqs = [
        req(0, 1_000_000, 1, &[]),
        req(10, 10, 1, &[]),
        req(100, 10, 1, &[]),
    ];
    let res = simulate_replicas(
        &reqs,
        &ONE_US_PER_TOKEN,
        &cfg(2, Router::LeastOutstanding, 8),
    )
    .unwrap();
    assert_eq!(replicas_of(&res), [Some(0), Some(1), Some(1)]);
    assert_eq!(res.requests[2].ttft_us(), Some(10));
    // Round-robin sends C behind A.
    let rr = simulate_replicas(&reqs, &ONE_US_PER_TOKEN, &cfg(2, Router::RoundRobin, 8)).unwrap();
    assert_eq!(replicas_of(&rr), [Some(0), Some(1), Some(0)]);
    assert!(rr.requests[2].ttft_us().unwrap() > 900_000);
}

#[test]
fn kv_aware_follows_the_cached_prefix_and_skips_its_prefill() {
    // Blocks of 4 tokens. A caches blocks 1,2,3 on replica 0; B (unrelated) lands on replica 0 too (nobody
    // has its prefix, both idle, lowest index). C shares A's three blocks and goes where they are.
    let mut c = cfg(2, Router::KvAware, 8);
    c.block_tokens = 4;
    let reqs = [
        req(0, 12, 1, &[1, 2, 3]),
        req(1_000, 8, 1, &[7, 8]),
        req(2_000, 16, 1, &[1, 2, 3, 4]),
        req(3_000, 16, 1, &[9, 2, 3, 4]),
    ];
    let res = simulate_replicas(&reqs, &ONE_US_PER_TOKEN, &c).unwrap();
    assert_eq!(replicas_of(&res), [0, 0, 0, 0].map(Some));
    let cached: Vec<u32> = res.requests.iter().map(|o| o.cached_tokens).collect();
    // D shares blocks 2,3,4 but not the first: a prefix cache cannot use them.
    assert_eq!(cached, [0, 0, 12, 0]);
    assert_eq!(
        res.requests[2].ttft_us(),
        Some(4),
        "only the 4 uncached tokens are prefilled"
    );
    // With caching off, C prefills all 16 tokens.
    c.prefix_caching = false;
    let res = simulate_replicas(&reqs, &ONE_US_PER_TOKEN, &c).unwrap();
    assert_eq!(res.requests[2].ttft_us(), Some(16));
    // A fully cached prompt still computes its last token.
    let mut c = cfg(1, Router::KvAware, 8);
    c.block_tokens = 4;
    let res = simulate_replicas(
        &[req(0, 8, 1, &[1, 2]), req(100, 8, 1, &[1, 2])],
        &ONE_US_PER_TOKEN,
        &c,
    )
    .unwrap();
    assert_eq!(res.requests[1].cached_tokens, 7);
    assert_eq!(res.requests[1].ttft_us(), Some(1));
}

#[test]
fn cached_blocks_are_evicted_lru_when_kv_runs_out() {
    // Room for 3 blocks of 4 tokens (+ 1 output token each: 15 tokens). A then B fill the cache; C needs
    // space, evicting A's blocks (least recently used); D = A's prompt again finds nothing cached.
    let small = Fixed {
        capacity: 15,
        ..ONE_US_PER_TOKEN
    };
    let mut c = cfg(1, Router::KvAware, 8);
    c.block_tokens = 4;
    let reqs = [
        req(0, 8, 1, &[1, 2]),
        req(100, 4, 1, &[3]),
        req(200, 8, 1, &[5, 6]),
        req(300, 8, 1, &[1, 2]),
        req(400, 4, 1, &[5]),
    ];
    let res = simulate_replicas(&reqs, &small, &c).unwrap();
    let cached: Vec<u32> = res.requests.iter().map(|o| o.cached_tokens).collect();
    assert_eq!(cached, [0, 0, 0, 0, 3]);
}

#[test]
fn kv_aware_cuts_ttft_on_mooncake() {
    let text =
        std::fs::read_to_string(repo("workloads/traces/mooncake/synthetic_trace.jsonl")).unwrap();
    let reqs = trace::parse(&text, "mooncake", TraceFormat::Mooncake).unwrap();
    let gpu = GPU_MODELS[gpu_model_index("h100").unwrap()];
    let roof = Roofline::new(
        builtin("llama-3-70b").unwrap(),
        gpu,
        8,
        Efficiency::default(),
    )
    .unwrap();
    let slo = Slo {
        ttft_us: 2_000_000,
        tpot_us: 100_000,
    };
    let run = |router| {
        summarize(
            &simulate_replicas(&reqs, &roof, &cfg(4, router, 256)).unwrap(),
            slo,
        )
    };
    let (rr, kv) = (run(Router::RoundRobin), run(Router::KvAware));
    assert_eq!(kv.completed, 3993);
    assert!(
        kv.prefix_hit_rate > 2.0 * rr.prefix_hit_rate,
        "hit rate: kv-aware {} vs round-robin {}",
        kv.prefix_hit_rate,
        rr.prefix_hit_rate
    );
    assert!(
        kv.ttft_s.mean < 0.75 * rr.ttft_s.mean && kv.ttft_s.p90 < rr.ttft_s.p90,
        "TTFT: kv-aware {:?} vs round-robin {:?}",
        kv.ttft_s,
        rr.ttft_s
    );
    assert!(kv.slo_attainment > rr.slo_attainment);
}

#[test]
fn runs_are_deterministic() {
    let text =
        std::fs::read_to_string(repo("workloads/traces/mooncake/synthetic_trace.jsonl")).unwrap();
    let reqs = trace::parse(&text, "mooncake", TraceFormat::Mooncake).unwrap();
    let gpu = GPU_MODELS[gpu_model_index("h200").unwrap()];
    let roof = Roofline::new(
        builtin("llama-3-8b").unwrap(),
        gpu,
        1,
        Efficiency::default(),
    )
    .unwrap();
    let c = cfg(3, Router::KvAware, 64);
    let a = simulate_replicas(&reqs[..1000], &roof, &c).unwrap();
    let b = simulate_replicas(&reqs[..1000], &roof, &c).unwrap();
    assert_eq!(a, b);
}

#[test]
fn autoscaling_adds_replicas_under_load_and_removes_them_when_idle() {
    // A burst of 100 requests (10 ms prefill each) at t=0, then silence, then one request at 10 s.
    let mut reqs: Vec<Request> = (0..100).map(|_| req(0, 10_000, 1, &[])).collect();
    reqs.push(req(10_000_000, 10_000, 1, &[]));
    let mut c = cfg(1, Router::LeastOutstanding, 1);
    c.autoscale = Some(Autoscale {
        min_replicas: 1,
        max_replicas: 4,
        target_outstanding: 10,
        scale_up_delay_us: 100_000,
    });
    let res = simulate_replicas(&reqs, &ONE_US_PER_TOKEN, &c).unwrap();
    let s = summarize(
        &res,
        Slo {
            ttft_us: 1,
            tpot_us: 1,
        },
    );
    assert_eq!(s.peak_replicas, 4);
    // Replicas 1-3 became ready at 100 ms and took only requests arriving after that: none, at t = 0 all
    // hundred were routed to replica 0. So the burst takes 100 x 10 ms on replica 0.
    assert_eq!(res.requests[99].done_us, Some(1_000_000));
    // Scale-up came at once (3 replicas starting), ready after the delay; at 10 s only one is left.
    assert_eq!(res.active_timeline.first(), Some(&(0, 1)));
    assert!(res.active_timeline.contains(&(100_000, 4)));
    assert_eq!(res.active_timeline.last().map(|&(_, n)| n), Some(1));
    assert_eq!(res.requests[100].replica, Some(0));
    // Starting and idle replicas are paid for: more than the 1 replica x 10.01 s alone.
    assert!(s.gpu_seconds > 10.01);
}

#[test]
fn autoscaled_replicas_take_new_traffic() {
    // Steady overload: 200 requests 5 ms apart, each 20 ms of prefill. With replicas added after 50 ms the
    // later requests spread out and the backlog drains.
    let reqs: Vec<Request> = (0..200).map(|i| req(i * 5_000, 20_000, 1, &[])).collect();
    let mut c = cfg(1, Router::LeastOutstanding, 1);
    let fixed = simulate_replicas(&reqs, &ONE_US_PER_TOKEN, &c).unwrap();
    c.autoscale = Some(Autoscale {
        min_replicas: 1,
        max_replicas: 8,
        target_outstanding: 2,
        scale_up_delay_us: 50_000,
    });
    let scaled = simulate_replicas(&reqs, &ONE_US_PER_TOKEN, &c).unwrap();
    let slo = Slo {
        ttft_us: 1,
        tpot_us: 1,
    };
    let (f, s) = (summarize(&fixed, slo), summarize(&scaled, slo));
    assert!(s.peak_replicas >= 4, "peak {}", s.peak_replicas);
    assert!(
        s.ttft_s.mean < 0.1 * f.ttft_s.mean,
        "{} vs {}",
        s.ttft_s.mean,
        f.ttft_s.mean
    );
    let used: Vec<u32> = scaled.requests.iter().filter_map(|o| o.replica).collect();
    assert!(used.iter().any(|&r| r >= 3));
}

/// One importer case: the text, and either the number of requests or the start of the error message.
fn check(format: TraceFormat, text: &str, want: Result<usize, &str>) {
    let file = match format {
        TraceFormat::Azure => "t.csv",
        TraceFormat::Mooncake => "t.jsonl",
    };
    match (trace::parse(text, file, format), want) {
        (Ok(reqs), Ok(n)) => assert_eq!(reqs.len(), n, "{text:?}"),
        (Err(e), Err(prefix)) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(prefix),
                "{text:?}\n got: {msg}\nwant: {prefix}"
            );
        }
        (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
    }
}

const H: &str = "TIMESTAMP,ContextTokens,GeneratedTokens\n";

#[test]
fn azure_rows() {
    use TraceFormat::Azure;
    let ok = |t: &str| {
        check(
            Azure,
            t,
            Ok(t.lines().filter(|l| !l.trim().is_empty()).count() - 1),
        )
    };
    ok(&format!(
        "{H}2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:04.0319600,3180,8"
    ));
    ok(&format!("{H}2023-11-16 18:17:03.9799600,4808,10\n"));
    ok(&H
        .replace('\n', "\r\n")
        .to_string()
        .replace("Tokens\r\n", "Tokens\r\n2023-11-16 18:17:03,1,0\r\n"));
    let row = |r: &str| format!("{H}2023-11-16 18:17:03.00,10,10\n{r}");
    let cases: &[(String, &str)] = &[
        (String::new(), "t.csv: the file is empty"),
        ("\n\n".into(), "t.csv: the file is empty"),
        (H.into(), "t.csv: no requests"),
        (
            "a,b,c\n1,2,3".into(),
            "t.csv:1:1: expected the header TIMESTAMP,ContextTokens,GeneratedTokens",
        ),
        (
            "TIMESTAMP,ContextTokens\n".into(),
            "t.csv:1:1: expected the header",
        ),
        ("\0\0\0binary".into(), "t.csv: contains NUL bytes"),
        (
            row("2023-11-16 18:17:04,4808"),
            "t.csv: row 2, column `GeneratedTokens`: truncated row: expected 3 fields",
        ),
        (
            row("2023-11-16 18:17:04"),
            "t.csv: row 2, column `ContextTokens`: truncated row",
        ),
        (
            row("2023-11-16 18:17:04,1,2,3"),
            "t.csv: row 2: too many fields",
        ),
        (
            row("2023-11-16 18:17:04,,2"),
            "t.csv: row 2, column `ContextTokens`: missing value",
        ),
        (
            row("2023-11-16 18:17:04,abc,2"),
            "t.csv: row 2, column `ContextTokens`: expected a non-negative integer, found `abc`",
        ),
        (
            row("2023-11-16 18:17:04,5,-3"),
            "t.csv: row 2, column `GeneratedTokens`: must not be negative",
        ),
        (
            row("2023-11-16 18:17:04,NaN,3"),
            "t.csv: row 2, column `ContextTokens`: expected a non-negative integer, found NaN",
        ),
        (
            row("2023-11-16 18:17:04,1.5,3"),
            "t.csv: row 2, column `ContextTokens`: expected a non-negative integer, found `1.5`",
        ),
        (
            row("2023-11-16 18:17:04,0,3"),
            "t.csv: row 2, column `ContextTokens`: expected at least 1 prompt token",
        ),
        (
            row("2023-11-16 18:17:04,99999999999,3"),
            "t.csv: row 2, column `ContextTokens`: too large",
        ),
        (
            row("16/11/2023 18:17:04,1,3"),
            "t.csv: row 2, column `TIMESTAMP`: expected a datetime",
        ),
        (
            row("2023-11-16 18:17:02.99,1,3"),
            "t.csv: row 2, column `TIMESTAMP`: `2023-11-16 18:17:02.99` is before the first row",
        ),
        (
            row("\n2023-11-16 18:17:04,x,1"),
            "t.csv: row 3, column `ContextTokens`",
        ),
    ];
    for (text, want) in cases {
        check(Azure, text, Err(want));
    }
}

#[test]
fn azure_times_are_relative_to_the_first_row() {
    let reqs = trace::parse(
        &format!("{H}2023-11-16 23:59:59.5,100,7\n2023-11-17 00:00:01.25,200,9"),
        "t.csv",
        TraceFormat::Azure,
    )
    .unwrap();
    assert_eq!(reqs[1].arrival_us, 1_750_000);
    assert_eq!((reqs[1].prompt_tokens, reqs[1].output_tokens), (200, 9));
}

#[test]
fn mooncake_rows() {
    use TraceFormat::Mooncake;
    let good = r#"{"timestamp": 0, "input_length": 600, "output_length": 6, "hash_ids": [0, 1]}"#;
    check(Mooncake, good, Ok(1));
    check(Mooncake, &format!("{good}\n{good}\n\n"), Ok(2));
    check(
        Mooncake,
        r#"{"timestamp": 1.5, "input_length": 6, "output_length": 0}"#,
        Ok(1),
    );
    let row2 = |r: &str| format!("{good}\n{r}\n");
    let cases: &[(String, &str)] = &[
        (String::new(), "t.jsonl: the file is empty"),
        ("\0".into(), "t.jsonl: contains NUL bytes"),
        (
            row2(r#"{"timestamp": 5, "input_length": 60"#),
            "t.jsonl: row 2: truncated row",
        ),
        (
            row2("timestamp,input_length"),
            "t.jsonl: row 2: invalid JSON",
        ),
        (
            row2(r#"{"timestamp": NaN, "input_length": 1, "output_length": 1}"#),
            "t.jsonl: row 2: invalid JSON",
        ),
        (row2("[1, 2, 3]"), "t.jsonl: row 2: expected a JSON object"),
        (
            row2(r#"{"timestamp": 5, "output_length": 1}"#),
            "t.jsonl: row 2, column `input_length`: missing field",
        ),
        (
            row2(r#"{"input_length": 5, "output_length": 1}"#),
            "t.jsonl: row 2, column `timestamp`: missing field",
        ),
        (
            row2(r#"{"timestamp": 5, "input_length": 5}"#),
            "t.jsonl: row 2, column `output_length`: missing field",
        ),
        (
            row2(r#"{"timestamp": -5, "input_length": 5, "output_length": 1}"#),
            "t.jsonl: row 2, column `timestamp`: must not be negative",
        ),
        (
            row2(r#"{"timestamp": 5, "input_length": "abc", "output_length": 1}"#),
            "t.jsonl: row 2, column `input_length`: expected a non-negative integer, found \"abc\"",
        ),
        (
            row2(r#"{"timestamp": 5, "input_length": "NaN", "output_length": 1}"#),
            "t.jsonl: row 2, column `input_length`: expected a non-negative integer",
        ),
        (
            row2(r#"{"timestamp": 5, "input_length": 5.5, "output_length": 1}"#),
            "t.jsonl: row 2, column `input_length`: expected a non-negative integer, found 5.5",
        ),
        (
            row2(r#"{"timestamp": 5, "input_length": 0, "output_length": 1}"#),
            "t.jsonl: row 2, column `input_length`: expected at least 1",
        ),
        (
            row2(r#"{"timestamp": 5, "input_length": 5, "output_length": -1}"#),
            "t.jsonl: row 2, column `output_length`: must not be negative",
        ),
        (
            row2(r#"{"timestamp": 1e300, "input_length": 5, "output_length": 1}"#),
            "t.jsonl: row 2, column `timestamp`: too large",
        ),
        (
            row2(r#"{"timestamp": 5, "input_length": 5, "output_length": 1, "hash_ids": 3}"#),
            "t.jsonl: row 2, column `hash_ids`: expected an array",
        ),
        (
            row2(r#"{"timestamp": 5, "input_length": 5, "output_length": 1, "hash_ids": [1, -2]}"#),
            "t.jsonl: row 2, column `hash_ids[1]`: expected a non-negative integer, found -2",
        ),
    ];
    for (text, want) in cases {
        check(Mooncake, text, Err(want));
    }
}

#[test]
fn bundled_traces_import_completely() {
    let azure = std::fs::read_to_string(repo(
        "workloads/traces/azure-llm-2023/AzureLLMInferenceTrace_code.csv",
    ))
    .unwrap();
    assert!(
        !azure.ends_with('\n'),
        "the published file has no trailing newline"
    );
    let a = trace::parse(&azure, "azure", TraceFormat::Azure).unwrap();
    assert_eq!(a.len(), 8819);
    assert_eq!(
        (a[0].arrival_us, a[0].prompt_tokens, a[0].output_tokens),
        (0, 4808, 10)
    );
    assert_eq!(a[1].arrival_us, 52_000);
    assert_eq!((a[8818].prompt_tokens, a[8818].output_tokens), (549, 173));
    let m = trace::parse(
        &std::fs::read_to_string(repo("workloads/traces/mooncake/synthetic_trace.jsonl")).unwrap(),
        "mooncake",
        TraceFormat::Mooncake,
    )
    .unwrap();
    assert_eq!(m.len(), 3993);
    assert_eq!(
        (m[0].prompt_tokens, m[0].output_tokens, m[0].hash_ids.len()),
        (40160, 6, 79)
    );
    // Every prompt is covered by its 512-token blocks.
    assert!(m
        .iter()
        .all(|r| r.hash_ids.len() == (r.prompt_tokens as usize).div_ceil(512)));
}
