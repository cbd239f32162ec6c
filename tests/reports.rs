//! The reports people look at: report.html, the Chrome trace, `compare`, and the engine's progress callback,
//! through the library and through the binary.

mod common;

use common::{bin, from_toml, load, repo, report, run};
use predicates::prelude::*;
use std::collections::HashMap;
use ultrasched::engine::cluster::{simulate_with, Progress, PROGRESS_EVERY};
use ultrasched::kernel::placement::cpu::CpuBackend;
use ultrasched::output::html::{occupancy_rows, report_html, HEAT_COLUMNS, HEAT_MAX_ROWS};
use ultrasched::output::timeline::{lanes, trace_json};

// ---- progress callback -------------------------------------------------------------------------------

#[test]
fn progress_is_reported_monotonically_and_ends_at_completion() {
    let w = load("workloads/gb200-training.toml");
    let mut calls: Vec<Progress> = Vec::new();
    let o = simulate_with(&w, &mut CpuBackend, &mut |p| calls.push(p)).unwrap();
    assert!(calls.len() >= 3, "only {} calls", calls.len());
    for pair in calls.windows(2) {
        assert!(pair[1].time >= pair[0].time, "{pair:?}");
        assert!(pair[1].jobs_done >= pair[0].jobs_done, "{pair:?}");
    }
    let last = calls[calls.len() - 1];
    assert_eq!(last.jobs_done, w.jobs.len() as u64);
    assert_eq!(last.jobs_total, w.jobs.len() as u64);
    assert!(last.time >= o.makespan);
    assert!(calls[0].jobs_done < last.jobs_done);
    // Every PROGRESS_EVERY instants and once at the end, not at every instant. Without preemption,
    // failures or autoscaling, the instants are the distinct submit and end times.
    let instants: std::collections::BTreeSet<u64> = w
        .jobs
        .iter()
        .map(|j| j.submit)
        .chain(o.jobs.iter().filter_map(|j| j.end))
        .collect();
    assert_eq!(
        calls.len() as u64,
        instants.len() as u64 / PROGRESS_EVERY + 1,
        "{} instants",
        instants.len()
    );
    // Observing changes nothing.
    assert_eq!(o.jobs, run(&w).jobs);
}

#[test]
fn progress_counts_unschedulable_jobs_as_done() {
    let w = load("workloads/quickstart.toml");
    let mut last = None;
    simulate_with(&w, &mut CpuBackend, &mut |p| last = Some(p)).unwrap();
    // quickstart has one job too large for the cluster.
    assert_eq!(last.map(|p| p.jobs_done), Some(44));
}

// ---- report.html ----------------------------------------------------------------------------------------

#[test]
fn report_html_is_self_contained_deterministic_and_has_every_plot() {
    let w = load("workloads/mixed-fleet.toml");
    let o = run(&w);
    let html = report_html(&w, &o, &report(&w, &o));
    assert_eq!(
        html,
        report_html(&w, &o, &report(&w, &run(&w))),
        "same input, same bytes"
    );
    for label in [
        "GPU utilisation over time",
        "Queue length over time",
        "Job completion time CDF per job kind",
        "Wait CDF per job kind",
        "Occupancy per NVLink domain over time",
    ] {
        assert!(html.contains(&format!("aria-label=\"{label}\"")), "{label}");
    }
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(html.contains("training (1000 jobs)") && html.contains("inference (62 jobs)"));
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("@import"));
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count(),
        "no URL other than the SVG namespace"
    );
    assert!(!html.contains("NaN") && !html.contains("inf\"") && !html.contains("inf "));
    // No request-level inference data yet: no latency section.
    assert!(!html.contains("TTFT"));
}

#[test]
fn report_html_shows_only_the_job_kinds_present() {
    let w = load("workloads/quickstart.toml");
    let o = run(&w);
    let html = report_html(&w, &o, &report(&w, &o));
    // 42 training jobs complete (one more is too big to ever run); one inference service.
    assert!(html.contains("training (42 jobs)"));
    assert!(html.contains("inference (1 job)"));
    let w = from_toml(
        r#"
        [cluster]
        pools = [{ preset = "p6e-gb200", count = 1 }]
        [[jobs]]
        id = "a"
        gpus = 8
        duration_s = 60
        "#,
    );
    let o = run(&w);
    let html = report_html(&w, &o, &report(&w, &o));
    assert!(html.contains("training (1 job)"));
    assert!(!html.contains("inference ("));
}

#[test]
fn report_html_of_a_run_where_nothing_runs_still_renders() {
    let w = from_toml(
        r#"
        [cluster]
        pools = [{ preset = "p6e-gb200", count = 1 }]
        [[jobs]]
        id = "too-big"
        gpus = 512
        duration_s = 60
        "#,
    );
    let o = run(&w);
    let html = report_html(&w, &o, &report(&w, &o));
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(html.contains("no data"));
    assert!(!html.contains("NaN"));
}

#[test]
fn occupancy_is_the_busy_fraction_of_each_domain() {
    // Two 72-GPU domains; one 72-GPU job fills one of them for the whole run, a 36-GPU job half of the
    // other for the first half.
    let w = from_toml(
        r#"
        [cluster]
        pools = [{ name = "g", preset = "p6e-gb200", count = 2 }]
        [scheduler]
        placement = "first-fit"
        [[jobs]]
        id = "full"
        gpus = 72
        duration_s = 1000
        topology = { required = "domain" }
        [[jobs]]
        id = "half"
        gpus = 36
        duration_s = 500
        topology = { required = "domain" }
        "#,
    );
    let o = run(&w);
    let rows = occupancy_rows(&w, &o, 10);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].label, "g d0");
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9);
    assert!(close(&rows[0].values, &[1.0; 10]), "{:?}", rows[0].values);
    let half = [0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0];
    assert!(close(&rows[1].values, &half), "{:?}", rows[1].values);
}

#[test]
fn occupancy_groups_many_domains_into_at_most_64_rows_per_pool_boundary() {
    let w = load("workloads/mixed-fleet.toml"); // 128 + 8 domains
    let o = run(&w);
    let rows = occupancy_rows(&w, &o, HEAT_COLUMNS);
    // Groups of 3 consecutive domains, never across pools: 43 for h100, 3 for gb200.
    assert_eq!(rows.len(), 46);
    assert!(rows.len() <= HEAT_MAX_ROWS);
    assert_eq!(rows[0].label, "h100 d0-2");
    assert_eq!(rows[42].label, "h100 d126-127");
    assert!(rows[43].rule_above && rows[43].label == "gb200 d0-2");
    for r in &rows {
        assert_eq!(r.values.len(), HEAT_COLUMNS);
        assert!(
            r.values.iter().all(|v| (0.0..=1.0 + 1e-9).contains(v)),
            "{}",
            r.label
        );
    }
    assert!(rows.iter().any(|r| r.values.iter().any(|v| *v > 0.9)));
}

// ---- Chrome trace ---------------------------------------------------------------------------------------

#[test]
fn trace_is_valid_json_with_one_event_per_segment_domain_and_counters() {
    let w = load("workloads/quickstart.toml");
    let o = run(&w);
    let text = trace_json(&w, &o);
    assert_eq!(text, trace_json(&w, &run(&w)), "deterministic");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let events = v["traceEvents"].as_array().expect("traceEvents array");
    let count = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
    let (_, lane_counts) = lanes(&o, w.cluster.num_domains());
    let threads: u32 = lane_counts.iter().sum();
    assert!(
        threads > 4,
        "quickstart shares domains, so some get extra lanes"
    );
    // Names and sort indices: the cluster process, each pool, each lane of each domain.
    assert_eq!(
        count("M"),
        2 + 2 * w.cluster.pools.len() + 2 * threads as usize
    );
    let slices: usize = o.segments.iter().map(|s| s.domains.len()).sum();
    assert_eq!(count("X"), slices);
    assert_eq!(count("C"), 3 * o.samples.len());
    assert_eq!(events.len(), count("M") + count("X") + count("C"));
    // Thread names: one per domain lane, "domain N" first.
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    assert_eq!(names[0], "domain 0");
    // Slices carry the job and never overlap on one track (viewers need nesting).
    let mut by_track: HashMap<(u64, u64), Vec<(u64, u64)>> = HashMap::new();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        assert!(e["args"]["gpus"].as_u64().is_some_and(|g| g > 0));
        assert!(["training", "inference"].contains(&e["args"]["kind"].as_str().unwrap_or("")));
        assert!(e["args"]["tenant"].is_string());
        let ts = e["ts"].as_u64().unwrap();
        let dur = e["dur"].as_u64().unwrap();
        by_track
            .entry((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
            .or_default()
            .push((ts, ts + dur));
    }
    for (track, mut spans) in by_track {
        spans.sort_unstable();
        for p in spans.windows(2) {
            assert!(p[0].1 <= p[1].0, "overlap on {track:?}: {p:?}");
        }
    }
    let chat = events
        .iter()
        .find(|e| e["name"] == "chat-svc")
        .expect("the inference service has a slice");
    assert_eq!(chat["args"]["kind"], "inference");
    assert_eq!(chat["args"]["job_gpus"], 32);
}

// ---- CLI: run --out / --trace-out -----------------------------------------------------------------------

#[test]
fn run_out_writes_report_html_and_trace_out_writes_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let trace = dir.path().join("t/run.json");
    bin()
        .args([
            "run",
            &repo("workloads/quickstart.toml"),
            "--backend",
            "cpu",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .arg("--trace-out")
        .arg(&trace)
        .assert()
        .success()
        .stderr(predicate::str::contains("jobs").not());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    assert!(out.join("report.json").is_file() && out.join("jobs.csv").is_file());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    assert!(v["traceEvents"].as_array().is_some_and(|e| e.len() > 100));
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn bad_input_writes_neither_report_nor_trace() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[cluster]\npools = []\n").unwrap();
    let out = dir.path().join("r");
    let trace = dir.path().join("trace.json");
    bin()
        .args(["run", "--backend", "cpu", "--out"])
        .arg(&out)
        .arg("--trace-out")
        .arg(&trace)
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cluster.pools"));
    assert!(!out.exists() && !trace.exists());
}

#[test]
fn an_unwritable_trace_leaves_no_report_behind() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = dir.path().join("r");
    bin()
        .args([
            "run",
            &repo("workloads/quickstart.toml"),
            "--backend",
            "cpu",
            "--out",
        ])
        .arg(&out)
        .arg("--trace-out")
        .arg(file.join("trace.json")) // its directory is a file
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot create output directory"));
    for f in ["report.json", "jobs.csv", "report.html"] {
        assert!(
            !out.join(f).exists(),
            "{f} written although the run's outputs failed"
        );
    }
}

// ---- CLI: compare ---------------------------------------------------------------------------------------

fn compare(extra: &[&str]) -> std::process::Output {
    bin()
        .args([
            "compare",
            &repo("workloads/quickstart.toml"),
            "--placement",
            "topology-pack,first-fit",
        ])
        .args(["--queue", "fifo,sjf", "--seed", "7", "--quiet"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn compare_prints_every_combination_in_flag_order_with_deltas() {
    let out = compare(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("quickstart: 4 runs; deltas against the first row"));
    let rows: Vec<(&str, &str, &str)> = lines[3..]
        .iter()
        .map(|l| {
            let mut f = l.split_whitespace();
            (
                f.next().unwrap_or(""),
                f.next().unwrap_or(""),
                f.next().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("fifo", "easy", "topology-pack"),
            ("fifo", "easy", "first-fit"),
            ("sjf", "easy", "topology-pack"),
            ("sjf", "easy", "first-fit")
        ]
    );
    // The baseline has plain values; later rows carry (absolute, %) or (=).
    assert!(!lines[3].contains('('));
    assert!(lines[4..]
        .iter()
        .all(|l| l.contains("(=)") || l.contains("%)")));
    assert!(
        lines[5].contains("%)"),
        "sjf changes the schedule: {}",
        lines[5]
    );
    assert_eq!(
        text,
        String::from_utf8(compare(&[]).stdout).unwrap(),
        "deterministic"
    );
}

#[test]
fn compare_exports_markdown_csv_and_json() {
    let md = String::from_utf8(compare(&["--format", "markdown"]).stdout).unwrap();
    assert_eq!(md.lines().count(), 6);
    assert!(md.lines().all(|l| l.starts_with("| ") && l.ends_with(" |")));
    let csv = String::from_utf8(compare(&["--format", "csv"]).stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].contains("makespan_s,makespan_s_delta,makespan_s_delta_pct"));
    assert!(lines[1].starts_with("fifo,easy,topology-pack,7,"), "{csv}");
    let v: serde_json::Value =
        serde_json::from_slice(&compare(&["--format", "json"]).stdout).expect("JSON");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0]["metrics"]["jct_mean_s"]["delta"], 0.0);
    assert_eq!(runs[2]["queue"], "sjf");
    assert!(runs[2]["metrics"]["jct_mean_s"]["delta"]
        .as_f64()
        .is_some_and(|d| d != 0.0));
}

#[test]
fn compare_rejects_bad_values_with_exit_2() {
    for bad in [
        &["--queue", "lifo"][..],
        &["--placement", "random"],
        &["--seed", "x"],
        &["--format", "xml"],
        &["--backend", "tpu"],
    ] {
        bin()
            .args(["compare", &repo("workloads/quickstart.toml")])
            .args(bad)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains("invalid value"));
    }
    bin()
        .args(["compare", "no/such/file.toml", "--queue", "fifo"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read"));
}

#[test]
fn progress_counts_a_job_left_waiting_at_the_end_as_done() {
    // Two 72-GPU GB200 domains. The async RL job's trainer (48 GPUs in one domain) and its two rollout
    // replicas (48 GPUs each, one domain each) each fit, and their 144 GPUs are the cluster's, but a domain
    // takes one 48-GPU gang: the three never fit together. The arrival check counts GPUs, not this
    // packing, so the job waits until nothing is left to happen and then ends unschedulable. The last
    // progress call counts it done, after t (1 GPU, 10 s) ran beside it (greedy backfill).
    let w = from_toml(
        "[cluster]\n[[cluster.pools]]\nname = \"g\"\npreset = \"p6e-gb200\"\ncount = 2\n\
         [scheduler]\nbackfill = \"greedy\"\n\
         [[jobs]]\nid = \"rl\"\nkind = \"rl\"\ngpus = 48\ntopology = { required = \"domain\" }\n\
         rl = { mode = \"async\", steps = 5, llm = \"llama-3-8b\", episodes_per_step = 8, turns = 1, prompt_tokens = 512, output_tokens = 64, rollout_replicas = 2, rollout_tp = 48 }\n\
         [[jobs]]\nid = \"t\"\ngpus = 1\nduration_s = 10\nsubmit_s = 1\n",
    );
    let mut last = None;
    let o = simulate_with(&w, &mut CpuBackend, &mut |p| last = Some(p)).unwrap();
    assert_eq!(
        o.jobs[0].state,
        ultrasched::engine::cluster::JobState::Unschedulable
    );
    assert_eq!(o.jobs[1].end, Some(11_000_000));
    assert_eq!(last.map(|p| (p.jobs_done, p.jobs_total)), Some((2, 2)));
}
