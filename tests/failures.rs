//! Node failures, checkpoints and spares (`[failures]`): the Llama 3 anchor, failure counts against rate x
//! GPU-hours, Young/Daly against a sweep of the simulator itself, spares keeping a gang in its domain,
//! the independent checker on failure runs, and located errors for bad input.

mod common;

use common::{bin, from_toml, report_value, run};
use predicates::prelude::*;
use ultrasched::domain::failures::{young_daly, Failures, LLAMA3_GPU_HOURS};
use ultrasched::domain::workload::{time_from_s, Workload};
use ultrasched::engine::cluster::{Outcome, Segment};
use ultrasched::output::report::jobs_csv;

const DAY: f64 = 86_400.0;

/// GPU-hours a job held over its segments.
fn held_gpu_hours(o: &Outcome, job: u32) -> f64 {
    o.segments
        .iter()
        .filter(|s| s.job == job)
        .map(|s| {
            let g: u64 = s.domains.iter().map(|&(_, g)| g as u64).sum();
            (s.end - s.start) as f64 / 3.6e9 * g as f64
        })
        .sum()
}

fn failures(w: &Workload, o: &Outcome) -> serde_json::Value {
    report_value(w, o)["failures"].clone()
}

/// Llama 3 405B: 16,384 H100s, 419 unexpected interruptions in 54 days, effective training time above 90 %.
/// A gang of 16,384 on 2,112 P5 nodes (64 nodes of slack for the ones out for repair) with the default
/// rates, restart 300 s and Young/Daly checkpoints of 10 s (asynchronous checkpointing: with the MTBF of
/// ~3.1 h a 16k gang has, the expected waste is about sqrt(2 d / M) + restart / M, so > 90 % needs
/// d under ~30 s), sized to run about 54 days.
#[test]
fn llama3_anchor_419_interruptions_in_54_days_and_ett_above_90_percent() {
    let rate = Failures::default().rate_per_gpu_hour();
    let mut scaled = Vec::new();
    for seed in 1..=5 {
        let w = from_toml(&format!(
            r#"
seed = {seed}
[cluster]
pools = [{{ preset = "p5-h100", count = 2112 }}]
[failures]
restart_s = 300
[[jobs]]
id = "llama3-405b"
gpus = 16384
duration_s = 4350000
checkpoint = "young-daly"
checkpoint_s = 10
"#
        ));
        let o = run(&w);
        let f = failures(&w, &o);
        let n = f["interruptions"].as_u64().unwrap();
        let held = held_gpu_hours(&o, 0);
        let wall_days = (o.jobs[0].end.unwrap() - o.jobs[0].start.unwrap()) as f64 / 1e6 / DAY;
        assert!(
            (50.0..58.0).contains(&wall_days),
            "seed {seed}: {wall_days} days"
        );
        // Inside the 99.9 % Poisson interval of its own exposure.
        let expected = rate * held;
        assert!(
            (n as f64 - expected).abs() < 3.29 * expected.sqrt(),
            "seed {seed}: {n} interruptions, {expected:.1} expected over {held:.0} GPU-h"
        );
        let ett = f["effective_training_time"].as_f64().unwrap();
        assert!(ett > 0.90, "seed {seed}: effective training time {ett}");
        // By cause, GPUs fail most, as in the paper.
        let by = &f["by_cause"];
        assert!(by["gpu"].as_u64() > by["hbm"].as_u64(), "{by}");
        scaled.push(n as f64 * LLAMA3_GPU_HOURS / held);
    }
    // The mean over seeds, scaled to exactly 54 days of 16,384 GPUs, inside the 95 % interval around 419.
    let mean = scaled.iter().sum::<f64>() / scaled.len() as f64;
    let half = 1.96 * (419.0 / scaled.len() as f64).sqrt();
    assert!((mean - 419.0).abs() < half, "{scaled:?}: mean {mean}");
}

/// One cause at a known rate, repair 0 (the job restarts in place, no node is ever down, so nothing thins
/// the process): interruptions and node failures against rate x GPU-hours.
#[test]
fn failure_counts_follow_rate_times_gpu_hours() {
    let w = from_toml(
        r#"
seed = 3
[cluster]
pools = [{ preset = "p5-h100", count = 64 }]
[failures]
rates_per_gpu_hour = { gpu = 0.001, hbm = 0, network = 0, host = 0 }
repair_s = { gpu = 0 }
restart_s = 60
[[jobs]]
id = "t"
gpus = 256
duration_s = 3600000
checkpoint_interval_s = 1800
checkpoint_s = 30
"#,
    );
    let o = run(&w);
    let f = failures(&w, &o);
    let held = held_gpu_hours(&o, 0);
    let expected = 0.001 * held;
    let n = f["interruptions"].as_u64().unwrap() as f64;
    assert!(
        (n - expected).abs() < 4.0 * expected.sqrt(),
        "{n} vs {expected}"
    );
    assert_eq!(f["by_cause"]["gpu"].as_u64().unwrap() as f64, n);
    assert_eq!(f["by_cause"]["hbm"], 0);
    // Over the whole cluster (512 GPUs) for the whole run, idle nodes included.
    let run_h = o.makespan as f64 / 3.6e9;
    let all = 0.001 * 512.0 * run_h;
    let nodes = f["node_failures"].as_u64().unwrap() as f64;
    assert!((nodes - all).abs() < 4.0 * all.sqrt(), "{nodes} vs {all}");
    // Restarted in place: one segment per interruption, never back in the queue.
    assert_eq!(f["requeued"], 0);
    assert_eq!(o.segments.len() as f64, n + 1.0);
    // Each interruption lost at most one checkpoint cycle plus the restart, on 256 GPUs.
    let lost = f["lost_gpu_hours"].as_f64().unwrap();
    assert!(lost > 0.0 && lost <= n * 256.0 * (1830.0 + 60.0) / 3600.0 + 1e-6);
    assert_eq!(o.jobs[0].interruptions(), n as u32);
}

/// The simulator's own optimum of the checkpoint interval against Daly's formula: sweep the interval
/// around it on common failures (one seed per row: failure draws do not depend on the schedule), fit the
/// overhead to `a / t + b t + c` and compare `sqrt(a / b)` with the formula.
#[test]
fn young_daly_interval_minimises_lost_time_within_20_percent() {
    // 1,024 GPUs, only GPU faults at 1 / 1,024 per GPU-hour: the job's MTBF is 1 h; checkpoints cost 60 s.
    let rate = 1.0 / 1024.0;
    let mtbf_us = 3.6e9;
    let cost = time_from_s(60.0);
    let best = young_daly(mtbf_us, cost) as f64 / 1e6;
    assert!((best - 617.8).abs() < 1.0, "{best}");
    let factors = [0.4, 0.55, 0.7, 0.85, 1.0, 1.2, 1.45, 1.75, 2.2];
    let duration_s = 400.0 * 3600.0;
    let mut overhead = vec![0.0; factors.len()];
    for seed in 1..=3 {
        for (k, f) in factors.iter().enumerate() {
            let w = from_toml(&format!(
                r#"
seed = {seed}
[cluster]
pools = [{{ preset = "p5-h100", count = 144 }}]
[failures]
rates_per_gpu_hour = {{ gpu = {rate}, hbm = 0, network = 0, host = 0, software = 0 }}
repair_s = {{ gpu = 3600 }}
restart_s = 0
[[jobs]]
id = "t"
gpus = 1024
duration_s = {duration_s}
checkpoint_interval_s = {interval}
checkpoint_s = 60
"#,
                interval = best * f
            ));
            let o = run(&w);
            overhead[k] += o.makespan as f64 / 1e6 - duration_s;
        }
    }
    // Least squares on (1/t, t, 1).
    let xs: Vec<[f64; 3]> = factors
        .iter()
        .map(|f| [1.0 / (best * f), best * f, 1.0])
        .collect();
    let mut ata = [[0.0; 3]; 3];
    let mut atb = [0.0; 3];
    for (x, y) in xs.iter().zip(&overhead) {
        for i in 0..3 {
            atb[i] += x[i] * y;
            for j in 0..3 {
                ata[i][j] += x[i] * x[j];
            }
        }
    }
    let [a, b, _] = solve3(ata, atb);
    assert!(a > 0.0 && b > 0.0, "{a} {b} {overhead:?}");
    let fitted = (a / b).sqrt();
    assert!(
        (fitted / best - 1.0).abs() < 0.2,
        "simulated optimum {fitted:.0} s, Young/Daly {best:.0} s; overheads {overhead:?}"
    );
}

/// Gaussian elimination with partial pivoting for a 3 x 3 system.
#[allow(clippy::needless_range_loop)]
fn solve3(mut m: [[f64; 3]; 3], mut v: [f64; 3]) -> [f64; 3] {
    for c in 0..3 {
        let p = (c..3)
            .max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))
            .unwrap();
        m.swap(c, p);
        v.swap(c, p);
        for r in c + 1..3 {
            let k = m[r][c] / m[c][c];
            for j in c..3 {
                m[r][j] -= k * m[c][j];
            }
            v[r] -= k * v[c];
        }
    }
    let mut x = [0.0; 3];
    for r in (0..3).rev() {
        let s: f64 = (r + 1..3).map(|j| m[r][j] * x[j]).sum();
        x[r] = (v[r] - s) / m[r][r];
    }
    x
}

fn domains_of(o: &Outcome, job: u32) -> Vec<u32> {
    let mut d: Vec<u32> = o
        .segments
        .iter()
        .filter(|s: &&Segment| s.job == job)
        .flat_map(|s| s.domains.iter().map(|&(d, _)| d))
        .collect();
    d.sort_unstable();
    d.dedup();
    d
}

const SPARES: &str = r#"
seed = 5
[cluster]
pools = [{ preset = "p6e-gb200", count = 4 }]
[failures]
rates_per_gpu_hour = { gpu = 0.0003, hbm = 0, network = 0, host = 0, software = 0 }
repair_s = { gpu = 14400 }
SPARE_LINE
[[jobs]]
id = "nvl64"
gpus = 64
duration_s = 2592000
topology = { required = "domain" }
checkpoint_interval_s = 3600
checkpoint_s = 30
"#;

#[test]
fn a_job_with_a_spare_stays_in_its_domain() {
    let w = from_toml(&SPARES.replace("SPARE_LINE", "spare_nodes_per_domain = 2"));
    let o = run(&w);
    let f = failures(&w, &o);
    let swaps = f["spare_swaps"].as_u64().unwrap();
    assert!(swaps >= 3, "{f}");
    assert_eq!(f["requeued"], 0, "{f}");
    assert_eq!(f["interruptions"].as_u64().unwrap(), swaps);
    assert_eq!(domains_of(&o, 0).len(), 1, "{:?}", domains_of(&o, 0));
    // Every segment is one domain of 64 GPUs: the failed node's 4 GPUs moved to a spare of the domain.
    for s in o.segments.iter() {
        assert_eq!(s.domains.len(), 1);
        assert_eq!(s.domains[0].1, 64);
    }
    // Without spares the gang goes back to the queue each time.
    let w = from_toml(&SPARES.replace("SPARE_LINE", ""));
    let o = run(&w);
    let f = failures(&w, &o);
    assert_eq!(f["spare_swaps"], 0);
    assert!(f["requeued"].as_u64().unwrap() >= 3, "{f}");
}

#[test]
fn spares_are_never_placed_on() {
    // 72-GPU domains with 2 spare nodes each hold 64 placeable GPUs: a 72-GPU domain gang can never start.
    let w = from_toml(
        &SPARES
            .replace("SPARE_LINE", "spare_nodes_per_domain = 2")
            .replace("gpus = 64", "gpus = 72"),
    );
    let o = run(&w);
    assert_eq!(
        o.jobs[0].state,
        ultrasched::engine::cluster::JobState::Unschedulable
    );
}

#[test]
fn failure_runs_pass_the_independent_checker_and_are_reproducible() {
    let text = SPARES.replace("SPARE_LINE", "spare_nodes_per_domain = 1")
        + r#"
[[jobs]]
id = "small"
gpus = 16
duration_s = 600000
checkpoint = "young-daly"
checkpoint_s = 20
[[jobs]]
id = "later"
gpus = 128
duration_s = 200000
submit_s = 1000
"#;
    let w = from_toml(&text);
    let o = run(&w);
    assert!(failures(&w, &o)["interruptions"].as_u64().unwrap() > 0);
    let checked = common::check_outcome(&w, &o);
    assert!(checked.is_ok(), "{checked:?}");
    // jobs.csv carries the interruptions and the effective training time of each job.
    let csv = jobs_csv(&w, &o);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert!(header.contains(&"interruptions") && header.contains(&"effective_training_time"));
    // Same seed, same run; another seed, other failures.
    let again = run(&w);
    assert_eq!(report_value(&w, &o), report_value(&w, &again));
    let other = from_toml(&text.replace("seed = 5", "seed = 6"));
    let o2 = run(&other);
    assert_ne!(
        failures(&w, &o)["timeline"],
        failures(&other, &o2)["timeline"]
    );
}

#[test]
fn without_a_failures_section_nothing_fails() {
    let w = from_toml(&SPARES.replace("[failures]", "").replace(
        "rates_per_gpu_hour = { gpu = 0.0003, hbm = 0, network = 0, host = 0, software = 0 }\nrepair_s = { gpu = 14400 }\n",
        "",
    ).replace("SPARE_LINE", ""));
    assert!(w.failures.is_none());
    let o = run(&w);
    assert!(o.failures.is_none());
    assert_eq!(o.segments.len(), 1);
    assert!(report_value(&w, &o).get("failures").is_none());
}

#[test]
fn bad_failure_settings_exit_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[cluster]\npools = [{ preset = \"p5-h100\", count = 4 }]\n";
    let job = "[[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 100\n";
    let cases = [
        (
            format!("{base}[failures]\nrates_per_gpu_hour = {{ gpux = 1e-6 }}\n{job}"),
            "field `failures.rates_per_gpu_hour.gpux`: unknown cause `gpux`; allowed: gpu, hbm, network, host, software",
        ),
        (
            format!("{base}[failures]\nrates_per_gpu_hour = {{ gpu = 2 }}\n{job}"),
            "failures per GPU-hour from 0 to 1",
        ),
        (
            format!("{base}[failures]\nspare_nodes_per_domain = 1\n{job}"),
            "failures.spare_nodes_per_domain",
        ),
        (
            format!("{base}[failures]\nspare_nodes_per_rack = 1\nspare_nodes_per_domain = 1\n{job}"),
            "not both",
        ),
        (
            format!("{base}{job}checkpoint = \"young-daly\"\n"),
            "jobs[0].checkpoint",
        ),
        (
            format!("{base}[failures]\n{job}checkpoint = \"young-daly\"\ncheckpoint_interval_s = 60\n"),
            "leave checkpoint_interval_s out",
        ),
        (
            format!("{base}[failures]\nrepair_s = {{ gpu = -1 }}\n{job}"),
            "seconds from 0",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("w{i}.toml"));
        std::fs::write(&p, text).unwrap();
        bin()
            .args(["run", p.to_str().unwrap(), "--out"])
            .arg(dir.path().join(format!("out{i}")))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*want));
        assert!(
            !dir.path().join(format!("out{i}")).exists(),
            "case {i}: partial output"
        );
    }
}

/// 256 P5 nodes (2,048 GPUs), GPU faults only at 1/192 per GPU-hour (one per node per day on average),
/// restart in place, and a checkpointed 8-GPU job of `hours` holding the clock; `shape` as given.
fn weibull_run(shape: &str, hours: f64) -> (Workload, Outcome) {
    let w = from_toml(&format!(
        r#"
seed = 5
[cluster]
pools = [{{ preset = "p5-h100", count = 256 }}]
[failures]
rates_per_gpu_hour = {{ gpu = 0.005208333333333333, hbm = 0, network = 0, host = 0 }}
repair_s = {{ gpu = 0 }}
restart_s = 0
{shape}
[[jobs]]
id = "clock"
gpus = 8
duration_s = {duration}
checkpoint_interval_s = 60
checkpoint_s = 0
"#,
        duration = hours * 3600.0
    ));
    let o = run(&w);
    (w, o)
}

#[test]
fn weibull_failures_keep_the_long_run_rate_and_move_failures_early_or_late() {
    // gamma(1 + 1/k), the Weibull mean over its scale: gamma(1.5) = sqrt(pi) / 2, gamma(3) = 2, gamma(2) = 1.
    let g = ultrasched::domain::failures::gamma;
    assert!((g(1.5) - std::f64::consts::PI.sqrt() / 2.0).abs() < 1e-12);
    assert!((g(3.0) - 2.0).abs() < 1e-12 && (g(2.0) - 1.0).abs() < 1e-12);
    assert!((g(0.5) - std::f64::consts::PI.sqrt()).abs() < 1e-12);
    // Over 60 days every node renews ~60 times: the count is the rate x GPU-hours, whatever the shape
    // (renewal theorem; the start adds O(1) per node: within 5 % here).
    for shape in ["weibull_shape = 0.7", "weibull_shape = 2.5", ""] {
        let (w, o) = weibull_run(shape, 60.0 * 24.0);
        let n = failures(&w, &o)["node_failures"].as_u64().unwrap() as f64;
        let expected = 2048.0 / 192.0 * o.makespan as f64 / 3.6e9;
        assert!(
            (n / expected - 1.0).abs() < 0.05,
            "{shape}: {n} node failures against {expected:.0}"
        );
    }
    // In the first 6 hours (all nodes new): P(TTF < 0.25 d) with mean 1 d is 1 - exp(-(0.25 / s)^k):
    // k = 0.5 (s = 0.5 d): 0.507; exponential: 0.221; k = 3 (s = 1.120 d): 0.011. Of 256 nodes: ~130 (more
    // with early renewals), ~57 and ~3.
    let early = |shape: &str| {
        let (w, o) = weibull_run(shape, 6.0);
        failures(&w, &o)["node_failures"].as_u64().unwrap()
    };
    let (infant, memoryless, wearout) = (
        early("weibull_shape = 0.5"),
        early(""),
        early("weibull_shape = 3"),
    );
    assert!(infant >= 110, "k = 0.5: {infant}");
    assert!((35..=80).contains(&memoryless), "exponential: {memoryless}");
    assert!(wearout <= 12, "k = 3: {wearout}");
}

/// A gang that needs the whole cluster, stopped by a failure, waits for the repair with nothing running
/// and nothing left to arrive, then restarts and completes: the run does not end while a node is out.
/// One 72-GPU GB200 domain (18 nodes of 4 GPUs) and a domain gang of all 72, GPU faults at 3e-4 per
/// GPU-hour (~0.5 a day on the domain) over 10 days of work, repair 4 h: after each interruption the gang
/// cannot start again before the node is back, so a segment starts at least 4 h after the one before ends.
#[test]
fn a_whole_cluster_gang_waits_for_the_repair_and_completes() {
    let w = from_toml(
        r#"
seed = 5
[cluster]
pools = [{ preset = "p6e-gb200", count = 1 }]
[failures]
rates_per_gpu_hour = { gpu = 0.0003, hbm = 0, network = 0, host = 0, software = 0 }
repair_s = { gpu = 14400 }
restart_s = 0
[[jobs]]
id = "whole"
gpus = 72
duration_s = 864000
topology = { required = "domain" }
checkpoint_interval_s = 3600
checkpoint_s = 0
"#,
    );
    let o = run(&w);
    assert_eq!(
        o.jobs[0].state,
        ultrasched::engine::cluster::JobState::Completed
    );
    let f = failures(&w, &o);
    let interrupted = f["interruptions"].as_u64().unwrap();
    assert!(interrupted >= 2, "{f}");
    assert_eq!(f["requeued"].as_u64().unwrap(), interrupted, "{f}");
    let segs: Vec<&Segment> = o.segments.iter().filter(|s| s.job == 0).collect();
    assert_eq!(segs.len() as u64, interrupted + 1);
    for p in segs.windows(2) {
        assert!(
            p[1].start >= p[0].end + time_from_s(14400.0),
            "restarted at {} before the repair of the node that stopped it at {}",
            p[1].start,
            p[0].end
        );
    }
    let checked = common::check_outcome(&w, &o);
    assert!(checked.is_ok(), "{checked:?}");
}

/// Failures stop counting when the last job ends, even with a node still out for repair. Eight P5 nodes,
/// GPU faults at 6e-4 per GPU-hour (0.92 a day over the 64 GPUs) and a 10-day repair; one 8-GPU job of a
/// day moves to another node when its node fails. Over a run of about a day the count is Poisson with
/// mean ~0.9 (more than 9 has P < 1e-6). With a 10-day repair any failure leaves a node out when the job
/// ends; counting on until every node is back at once would add the failures of the following months.
#[test]
fn failures_stop_counting_when_the_last_job_ends() {
    let w = from_toml(
        r#"
seed = 11
[cluster]
pools = [{ preset = "p5-h100", count = 8 }]
[failures]
rates_per_gpu_hour = { gpu = 0.0006, hbm = 0, network = 0, host = 0, software = 0 }
repair_s = { gpu = 864000 }
restart_s = 0
[[jobs]]
id = "day"
gpus = 8
duration_s = 86400
checkpoint_interval_s = 600
checkpoint_s = 0
"#,
    );
    let o = run(&w);
    let f = failures(&w, &o);
    let run_days = o.makespan as f64 / 8.64e10;
    assert!(run_days < 1.5, "{run_days} days");
    let mean = 0.0006 * 64.0 * 24.0 * run_days;
    let counted = f["node_failures"].as_u64().unwrap();
    assert!(
        counted >= 1,
        "no failure in the run: nothing is out at its end"
    );
    assert!(
        (counted as f64) <= mean + 6.0 * mean.sqrt() + 3.0,
        "{counted} node failures in a run of {run_days:.2} days (mean {mean:.2}): counted after the end"
    );
}
