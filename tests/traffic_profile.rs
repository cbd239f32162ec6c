//! Time-varying traffic (diurnal and scheduled rate profiles, drawn by thinning) and the autoscale spec of
//! a service: hand-computed multipliers, rates by hour over simulated days, profile-less draws pinned to
//! what they were before profiles existed, and the errors of bad specs.

use ultrasched::domain::catalog::{gpu_model_index, GPU_MODELS};
use ultrasched::domain::traffic::{RateProfile, Serve, ServeAutoscale, Traffic};
use ultrasched::engine::serving::traffic::{
    check_traffic, generate, generate_from, serve, volume, volume_bound, Generated,
};
use ultrasched::input::traffic::parse_serve;

const HOUR: u64 = 3_600_000_000;
const DAY: u64 = 24 * HOUR;

const POISSON: &str = r#"
model = "llama-3-8b"
[traffic]
kind = "poisson"
rate_per_s = 5
prompt_tokens = { median = 1000, sigma = 1.0, max = 32000 }
output_tokens = { median = 200, sigma = 0.8 }
"#;

const SESSIONS: &str = r#"
model = "llama-3-8b"
[traffic]
kind = "sessions"
sessions_per_s = 0.5
turns = { median = 6, sigma = 0.5, max = 50 }
first_prompt_tokens = { median = 3000, sigma = 0.5 }
tokens_per_turn = { median = 400, sigma = 1.0 }
output_tokens = { median = 150, sigma = 0.7 }
tool_wait_s = { median_s = 2, sigma = 1.0 }
"#;

fn spec(text: &str) -> Serve {
    parse_serve(text, "s.toml")
        .and_then(|s| s.build("", "s.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    match parse_serve(text, "s.toml").and_then(|s| s.build("jobs[2].serving", "s.toml")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// `base` with `extra` lines added to its `[traffic]` table.
fn with(base: &str, extra: &str) -> String {
    format!("{base}{extra}\n")
}

fn traffic(text: &str) -> Traffic {
    spec(text).traffic
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[test]
fn diurnal_multiplier_by_hand() {
    // r = 4: a = 3/5; peak 1 + a = 2r/(r+1) = 1.6 at the peak hour, trough 1 - a = 2/(r+1) = 0.4 twelve
    // hours later, so peak / trough = r.
    let t = traffic(&with(
        POISSON,
        "diurnal = { peak_to_trough = 4, peak_hour = 14 }",
    ));
    let p = t.profile().expect("a profile").clone();
    assert_eq!(
        p,
        RateProfile::Diurnal {
            amplitude: 0.6,
            peak_hour: 14.0
        }
    );
    assert!(close(p.multiplier(14 * HOUR), 1.6));
    assert!(close(p.multiplier(2 * HOUR), 0.4));
    assert!(close(p.multiplier(14 * HOUR) / p.multiplier(2 * HOUR), 4.0));
    // Six hours off the peak: cos = 0. Hour of day of absolute time: day 3 looks like day 0.
    assert!(close(p.multiplier(8 * HOUR), 1.0));
    assert!(close(p.multiplier(20 * HOUR), 1.0));
    assert!(close(p.multiplier(3 * DAY + 14 * HOUR), 1.6));
    // 17:00: 1 + 0.6 cos(pi / 4).
    assert!(close(p.multiplier(17 * HOUR), 1.0 + 0.6 * 0.5f64.sqrt()));
    assert!(close(p.max_multiplier(), 1.6));
    // The daily mean is the rate in the file.
    let mean = (0..86_400)
        .map(|s| p.multiplier(s * 1_000_000))
        .sum::<f64>()
        / 86_400.0;
    assert!(close(mean, 1.0), "{mean}");
    // rate_at and the peak rate.
    assert!(close(t.rate_at(14 * HOUR), 8.0));
    assert!(close(t.rate_at(2 * HOUR), 2.0));
    assert!(close(t.peak_rate_per_s(), 8.0));
    assert_eq!(t.rate_per_s(), 5.0);
    // Without a profile, the rate is flat.
    let flat = traffic(POISSON);
    assert_eq!((flat.rate_at(2 * HOUR), flat.peak_rate_per_s()), (5.0, 5.0));
}

#[test]
fn schedule_multiplier_by_hand() {
    let text = "rate_schedule = [[0, 2.0], [21600, 8.0], [43200, 3.0]]";
    let t = traffic(&with(SESSIONS, text));
    let p = t.profile().unwrap();
    assert_eq!(p.multiplier(0), 2.0);
    assert_eq!(p.multiplier(3 * HOUR), 5.0); // midpoint of 2 and 8
    assert_eq!(p.multiplier(6 * HOUR), 8.0);
    assert_eq!(p.multiplier(9 * HOUR), 5.5); // midpoint of 8 and 3
    assert_eq!(p.multiplier(12 * HOUR), 3.0);
    assert_eq!(p.multiplier(30 * DAY), 3.0); // held after the last point
    assert_eq!(p.max_multiplier(), 8.0);
    assert_eq!(t.rate_at(3 * HOUR), 2.5);
    let daily = traffic(&with(
        SESSIONS,
        &format!("{text}\nrate_schedule_period_s = 86400"),
    ));
    let p = daily.profile().unwrap();
    assert_eq!(p.multiplier(DAY + 3 * HOUR), 5.0);
    assert_eq!(p.multiplier(DAY - 1), 3.0);
    assert_eq!(p.multiplier(7 * DAY), 2.0);
}

/// Arrivals (relative) of `g` counted by hour of day of absolute time `origin + t`, over [h0, h0 + 1).
fn in_hour(g: &Generated, origin: u64, h0: f64, starts_only: bool) -> usize {
    g.requests
        .iter()
        .enumerate()
        .filter(|(q, _)| !starts_only || g.after[*q].is_none())
        .filter(|(_, r)| {
            let h = ((origin + r.arrival_us) % DAY) as f64 / HOUR as f64;
            (h - h0).rem_euclid(24.0) < 1.0
        })
        .count()
}

#[test]
fn diurnal_thinning_over_twenty_days_matches_the_ratio_and_the_mean() {
    // Hour bins centred on the peak (14:00) and the trough (02:00): their mean multipliers are
    // 1 +- 0.6 sinc(pi / 24) = 1.5983, 0.4017, a ratio of 3.98.
    let days = 20;
    let t = traffic(&with(
        &POISSON.replace("rate_per_s = 5", "rate_per_s = 0.5"),
        "diurnal = { peak_to_trough = 4, peak_hour = 14 }",
    ));
    for origin in [0, 5 * HOUR + 123] {
        let g = generate_from(&t, 17, origin, 0, days * DAY);
        let (peak, trough) = (
            in_hour(&g, origin, 13.5, false),
            in_hour(&g, origin, 1.5, false),
        );
        let ratio = peak as f64 / trough as f64;
        let want = 0.5 * (days * DAY) as f64 / 1e6;
        let n = g.requests.len() as f64;
        eprintln!(
            "origin {origin}: peak {peak} trough {trough} ratio {ratio:.3}, total {n} of {want}"
        );
        assert!((ratio - 4.0).abs() / 4.0 < 0.15, "ratio {ratio}");
        assert!(
            (n - want).abs() / want < 0.03,
            "{n} requests, mean rate gives {want}"
        );
        // Times are relative to the origin, inside the window and sorted.
        assert!(g
            .requests
            .windows(2)
            .all(|w| w[0].arrival_us <= w[1].arrival_us));
        assert!(g.requests.last().unwrap().arrival_us < days * DAY);
    }
    // Sessions: the profile shapes session starts.
    let t = traffic(&with(
        &SESSIONS.replace("sessions_per_s = 0.5", "sessions_per_s = 0.05"),
        "diurnal = { peak_to_trough = 4, peak_hour = 14 }",
    ));
    let g = generate_from(&t, 3, 0, 0, days * DAY);
    let starts = g.after.iter().filter(|a| a.is_none()).count() as f64;
    let (peak, trough) = (in_hour(&g, 0, 13.5, true), in_hour(&g, 0, 1.5, true));
    let ratio = peak as f64 / trough as f64;
    let want = 0.05 * (days * DAY) as f64 / 1e6;
    eprintln!("sessions: peak {peak} trough {trough} ratio {ratio:.3}, starts {starts} of {want}");
    assert!((ratio - 4.0).abs() / 4.0 < 0.15, "ratio {ratio}");
    assert!((starts - want).abs() / want < 0.03);
}

#[test]
fn a_ramp_schedule_and_zero_rate_stretches() {
    // Multiplier 0 over [1 h, 2 h], ramping 0 -> 2 over [2 h, 4 h], then 2: a period of 6 h.
    let t = traffic(&with(
        &POISSON.replace("rate_per_s = 5", "rate_per_s = 1"),
        "rate_schedule = [[0, 1], [3599, 1], [3600, 0], [7200, 0], [14400, 2]]\nrate_schedule_period_s = 21600",
    ));
    let p = t.profile().unwrap().clone();
    let g = generate_from(&t, 1, 0, 0, 60 * 21_600_000_000);
    let phase = |r: &ultrasched::engine::serving::sim::Request| {
        (r.arrival_us % 21_600_000_000) as f64 / 3.6e9
    };
    assert!(g.requests.iter().all(|r| p.multiplier(r.arrival_us) > 0.0));
    assert!(g.requests.iter().all(|r| !(1.0..2.0).contains(&phase(r))));
    // Ramp: mean multiplier 0.5 over [2 h, 3 h) and 1.5 over [3 h, 4 h).
    let count = |lo: f64, hi: f64| {
        g.requests
            .iter()
            .filter(|r| (lo..hi).contains(&phase(r)))
            .count() as f64
    };
    let ratio = count(3.0, 4.0) / count(2.0, 3.0);
    eprintln!("ramp ratio {ratio:.3}");
    assert!((ratio - 3.0).abs() / 3.0 < 0.1, "{ratio}");
    let held = count(4.0, 6.0) / (2.0 * 60.0 * 3600.0);
    assert!((held - 2.0).abs() / 2.0 < 0.03, "{held}");
}

#[test]
fn profile_less_traffic_is_drawn_as_before() {
    // Pinned: drawn by the generator before rate profiles existed.
    let p = traffic(POISSON);
    let g = generate(&p, 42, 0, 10_000_000);
    let first: Vec<(u64, u32, u32)> = g
        .requests
        .iter()
        .take(6)
        .map(|r| (r.arrival_us, r.prompt_tokens, r.output_tokens))
        .collect();
    assert_eq!(
        first,
        [
            (252314, 1040, 54),
            (288837, 787, 188),
            (420553, 1122, 134),
            (795060, 301, 141),
            (808834, 197, 327),
            (1106048, 1211, 302)
        ]
    );
    assert_eq!(g.requests.len(), 49);
    let s = traffic(SESSIONS);
    let g = generate(&s, 42, 0, 60_000_000);
    let first: Vec<(u64, u32, u32, usize)> = g
        .requests
        .iter()
        .take(8)
        .map(|r| {
            (
                r.arrival_us,
                r.prompt_tokens,
                r.output_tokens,
                r.hash_ids.len(),
            )
        })
        .collect();
    assert_eq!(
        first,
        [
            (2523144, 1330, 127, 3),
            (2523144, 1828, 106, 4),
            (2523144, 2054, 48, 5),
            (2523144, 2841, 215, 6),
            (2523144, 3412, 22, 7),
            (2523144, 3633, 197, 8),
            (2888372, 2784, 273, 6),
            (2888372, 5651, 345, 12)
        ]
    );
    let delays: Vec<u64> = g.after[..6].iter().flatten().map(|a| a.delay_us).collect();
    assert_eq!(delays, [2244585, 1295006, 2422365, 1912037, 2066918]);
    assert_eq!(g.requests.len(), 215);
    // Sums over an hour from 1 s, pinned the same way.
    let sums = |g: &Generated| {
        (
            g.requests.len(),
            g.requests.iter().map(|r| r.arrival_us).sum::<u64>(),
            g.requests
                .iter()
                .map(|r| u64::from(r.prompt_tokens))
                .sum::<u64>(),
            g.requests
                .iter()
                .map(|r| u64::from(r.output_tokens))
                .sum::<u64>(),
            g.after.iter().flatten().map(|a| a.delay_us).sum::<u64>(),
            g.requests
                .iter()
                .map(|r| r.hash_ids.iter().sum::<u64>())
                .sum::<u64>(),
        )
    };
    let gp = generate(&p, 9, 1_000_000, HOUR);
    assert_eq!(sums(&gp), (17909, 32375577397304, 29584631, 4971277, 0, 0));
    let gs = generate(&s, 9, 1_000_000, HOUR);
    assert_eq!(
        sums(&gs),
        (
            12445,
            22477426057097,
            82872773,
            2398480,
            35150385240,
            3467648319
        )
    );
    // The origin means nothing without a profile.
    for origin in [0, 1, 13 * HOUR + 7, 400 * DAY] {
        assert_eq!(generate_from(&p, 9, origin, 1_000_000, HOUR), gp);
        assert_eq!(generate_from(&s, 9, origin, 1_000_000, HOUR), gs);
    }
    assert_eq!(volume(&p, 9, 1_000_000, HOUR), (17909, false));
    assert_eq!(volume_bound(&p, 9, 1_000_000, HOUR), (17909, false));
    assert_eq!(volume_bound(&s, 9, 1_000_000, HOUR), (12445, false));
}

#[test]
fn limits_with_a_profile_hold_at_any_start() {
    let t = traffic(&with(
        SESSIONS,
        "diurnal = { peak_to_trough = 9, peak_hour = 0 }",
    ));
    // Expected requests are at the peak rate (1.8 x 0.5 / s) times the mean turns.
    let Traffic::Sessions(s) = &t else {
        unreachable!()
    };
    let want = 0.9 * 3600.0 * s.turns.mean();
    assert!(close(t.expected_requests(HOUR), want));
    let (bound, _) = volume_bound(&t, 4, 0, 6 * HOUR);
    for origin in (0..24).map(|h| h * HOUR) {
        let g = generate_from(&t, 4, origin, 0, 6 * HOUR);
        assert!(g.counted <= bound, "origin {origin}");
    }
    // A peak too high to simulate is refused before drawing, naming the rate.
    let big = spec(&with(
        &SESSIONS.replace("sessions_per_s = 0.5", "sessions_per_s = 10"),
        "rate_schedule = [[0, 0.01], [3600, 1000]]",
    ));
    let e = check_traffic(&big, 30 * DAY, 1).unwrap_err().to_string();
    assert!(
        e.starts_with("s.toml: field `traffic.sessions_per_s`: about ")
            && e.contains("at the rate profile's peak"),
        "{e}"
    );
    assert!(check_traffic(
        &spec(&with(
            POISSON,
            "diurnal = { peak_to_trough = 2, peak_hour = 3 }"
        )),
        DAY,
        1
    )
    .is_ok());
}

#[test]
fn serve_reads_the_profile_at_the_service_start() {
    // r = 1000: an hour at the peak draws ~500 times an hour at the trough.
    let s = spec(&with(
        &POISSON.replace("rate_per_s = 5", "rate_per_s = 1"),
        "diurnal = { peak_to_trough = 1000, peak_hour = 12 }",
    ));
    let h100 = GPU_MODELS[gpu_model_index("h100").unwrap()];
    let at = |start: u64| {
        serve(&s, &h100, 1, 2, start, start + HOUR, 5)
            .unwrap()
            .requests
    };
    let (peak, trough) = (at(11 * HOUR + HOUR / 2), at(DAY + 23 * HOUR + HOUR / 2));
    eprintln!("peak hour {peak} requests, trough hour {trough}");
    assert!(peak > 6000 && trough < 60, "{peak} {trough}");
}

#[test]
fn bad_profiles_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "diurnal = { peak_to_trough = 0.5, peak_hour = 14 }",
            "traffic.diurnal.peak_to_trough",
            "must be from 1 to 1000 (peak rate over trough rate), found 0.5",
        ),
        (
            "diurnal = { peak_to_trough = 4, peak_hour = 24 }",
            "traffic.diurnal.peak_hour",
            "must be an hour of day from 0 up to (not including) 24, found 24",
        ),
        (
            "diurnal = { peak_to_trough = 4, peak_hour = 1 }\nrate_schedule = [[0, 1]]",
            "traffic.rate_schedule",
            "cannot be combined with diurnal",
        ),
        (
            "rate_schedule = [[60, 1]]",
            "traffic.rate_schedule[0]",
            "the first point must be at time 0 s, found 60 s",
        ),
        (
            "rate_schedule = [[0, 1], [600, 2], [300, 1]]",
            "traffic.rate_schedule[2]",
            "times must increase strictly: 300 s is not after the previous point's 600 s",
        ),
        (
            "rate_schedule = [[0, 1], [600, -1]]",
            "traffic.rate_schedule[1]",
            "the multiplier must be from 0 to 1e6, found -1",
        ),
        (
            "rate_schedule = [[0, 0]]",
            "traffic.rate_schedule",
            "needs at least one multiplier above 0",
        ),
        (
            "rate_schedule = [[0, 1], [600, 2]]\nrate_schedule_period_s = 600",
            "traffic.rate_schedule_period_s",
            "must be above the last point's time (600 s), found 600 s",
        ),
        (
            "rate_schedule_period_s = 600",
            "traffic.rate_schedule_period_s",
            "needs rate_schedule",
        ),
    ];
    for (extra, field, want) in cases {
        for base in [POISSON, SESSIONS] {
            let e = err(&with(base, extra));
            let head = format!("s.toml: field `jobs[2].serving.{field}`: ");
            assert!(
                e.starts_with(&head) && e.contains(want),
                "{extra}: got {e:?}"
            );
        }
    }
    // Checked as read: line, column and path.
    let e = err(&with(
        POISSON,
        "diurnal = { peak_to_trough = inf, peak_hour = 1 }",
    ));
    assert!(
        e.contains("s.toml:8:")
            && e.contains("expected a finite number")
            && e.contains("traffic.diurnal.peak_to_trough"),
        "{e}"
    );
    let e = err(&with(POISSON, "rate_schedule = [[-5, 1]]"));
    assert!(
        e.contains("out of range") && e.contains("traffic.rate_schedule"),
        "{e}"
    );
    let e = err(&with(POISSON, "diurnal = { peak_to_trough = 4, hour = 1 }"));
    assert!(e.contains("unknown field `hour`"), "{e}");
}

const AUTOSCALED: &str = r#"
model = "llama-3-8b"
autoscale = { min_replicas = 2, max_replicas = 32, target_outstanding = 16 }
[traffic]
kind = "poisson"
rate_per_s = 5
prompt_tokens = { median = 1000 }
output_tokens = { median = 200 }
"#;

#[test]
fn autoscale_parses_with_defaults() {
    let a = spec(AUTOSCALED).autoscale.expect("autoscale");
    assert_eq!(
        a,
        ServeAutoscale {
            min_replicas: 2,
            max_replicas: 32,
            target_outstanding: Some(16),
            target_ttft_p90_us: None,
            slo_window_us: 300_000_000,
            cold_start_us: None,
            cooldown_us: 600_000_000,
            eval_period_us: 30_000_000,
        }
    );
    // Default cold start: 30 s + 16 GB / (2 x 2 GB/s) = 34 s.
    assert_eq!(a.cold_start_or(16e9, 2), 34_000_000);
    let full = spec(&AUTOSCALED.replace(
        "target_outstanding = 16 }",
        "target_outstanding = 16, cold_start_s = 120, cooldown_s = 0, eval_period_s = 1.5 }",
    ))
    .autoscale
    .unwrap();
    assert_eq!(
        (full.cold_start_us, full.cooldown_us, full.eval_period_us),
        (Some(120_000_000), 0, 1_500_000)
    );
    assert_eq!(full.cold_start_or(16e9, 2), 120_000_000);
    assert_eq!(spec(POISSON).autoscale, None);
}

#[test]
fn bad_autoscale_names_the_field() {
    let e = err(&AUTOSCALED.replace("max_replicas = 32", "max_replicas = 1"));
    assert_eq!(
        e,
        "s.toml: field `jobs[2].serving.autoscale.max_replicas`: must not be below min_replicas (2), found 1"
    );
    let e = err(&AUTOSCALED.replace("max_replicas = 32", "max_replicas = 200000"));
    assert!(
        e.contains("autoscale.max_replicas`: must be at most 100000"),
        "{e}"
    );
    let e = err(&AUTOSCALED.replace("16 }", "16, eval_period_s = 0 }"));
    assert!(
        e.contains("autoscale.eval_period_s`: must be at least 1 s"),
        "{e}"
    );
    let e = err(&AUTOSCALED.replace("min_replicas = 2", "min_replicas = 0"));
    assert!(
        e.contains("s.toml:3:")
            && e.contains("out of range")
            && e.contains("autoscale.min_replicas"),
        "{e}"
    );
    let e = err(&AUTOSCALED.replace("16 }", "16, warm_pool = 1 }"));
    assert!(e.contains("unknown field `warm_pool`"), "{e}");
    let e = err(&AUTOSCALED.replace(", target_outstanding = 16", ""));
    assert!(
        e.contains("target_outstanding") && e.contains("is required unless target_ttft_p90_s"),
        "{e}"
    );
}
