//! Helpers shared by the integration tests: paths, the binary, loading and running workloads, reports, and
//! GPU backends that skip (or fail under `ULTRASCHED_REQUIRE_GPU=1`) without an adapter. GPU-only tests also
//! carry `#[cfg_attr(no_gpu_adapter, ignore)]`: on a machine without a Vulkan driver (build.rs) they show as
//! `ignored` and cargo's summary counts them.
#![allow(dead_code)]

pub mod reference;

use std::path::Path;
use ultrasched::domain::workload::Workload;
use ultrasched::engine::cluster::{simulate, Outcome};
use ultrasched::input::workload::{self, build, parse_str, Format, Overrides};
use ultrasched::kernel::placement::cpu::CpuBackend;
use ultrasched::kernel::placement::gpu::GpuBackend;
use ultrasched::kernel::placement::{CostBackend, KernelError};
use ultrasched::output::report::{Report, RunInfo};

/// A path inside the repository, as a string (for command lines and messages).
pub fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .display()
        .to_string()
}

/// The `ultrasched` binary that cargo built for this test run.
pub fn bin() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("ultrasched").expect("binary built by cargo")
}

/// A bundled workload (path relative to the repository) with overrides.
pub fn load_with(p: &str, ov: Overrides) -> Workload {
    workload::load(Path::new(&repo(p)), ov).unwrap_or_else(|e| panic!("{p}: {e:#}"))
}

/// A bundled workload as written.
pub fn load(p: &str) -> Workload {
    load_with(p, Overrides::default())
}

/// A workload from TOML text (it must be valid).
pub fn from_toml(text: &str) -> Workload {
    build(
        parse_str(text, "test.toml", Format::Toml).unwrap(),
        "test.toml",
        "test",
        Overrides::default(),
    )
    .unwrap()
}

/// Each job's start in whole seconds (`None` for a job that never started), in workload order.
pub fn starts_s(o: &Outcome) -> Vec<Option<u64>> {
    o.jobs
        .iter()
        .map(|j| j.start.map(|s| s / 1_000_000))
        .collect()
}

/// The workload simulated on the CPU twin.
pub fn run(w: &Workload) -> Outcome {
    simulate(w, &mut CpuBackend).unwrap()
}

/// The report of a run, with a fixed `run` object.
pub fn report(w: &Workload, o: &Outcome) -> Report {
    let run = RunInfo {
        version: "test".into(),
        backend: "cpu".into(),
        adapter: "cpu twin".into(),
        wall_s: 0.5,
        cluster_s: 0.0,
        serving_s: 0.0,
        kernel_usage: None,
        workload_file: String::new(),
    };
    Report::new(w, o, run)
}

/// report.json as a value without its `run` object: what must be identical between runs.
pub fn report_value(w: &Workload, o: &Outcome) -> serde_json::Value {
    let mut v = serde_json::to_value(report(w, o)).unwrap();
    v.as_object_mut().unwrap().remove("run");
    v
}

/// The independent checker on the files `run --out` would write for `o` (report.json, jobs.csv,
/// placements.csv).
pub fn check_outcome(
    w: &Workload,
    o: &Outcome,
) -> Result<ultrasched::check::Checked, ultrasched::check::CheckError> {
    use ultrasched::output::report::{jobs_csv, placements_csv};
    let report = report(w, o).to_json();
    ultrasched::check::check(
        w,
        ultrasched::check::RunFiles {
            report_json: &report,
            jobs_csv: &jobs_csv(w, o),
            placements_csv: &placements_csv(w, o),
        },
    )
}

/// report.json (outside `run`) and jobs.csv of the workload simulated on `backend`.
pub fn outputs(w: &Workload, backend: &mut dyn CostBackend) -> (String, String) {
    let o = simulate(w, backend).expect("simulation runs");
    (
        report_value(w, &o).to_string(),
        ultrasched::output::report::jobs_csv(w, &o),
    )
}

/// Bundled workloads too large to run many times in the suite (tests/pinned.rs runs each once).
pub const LARGE: [&str; 2] = ["ultrascale-week.toml", "dynamic-fleet.toml"];

/// Every bundled workload file (`workloads/*.toml|json`) but the [`LARGE`] ones, relative to the
/// repository, sorted.
pub fn bundled() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo("workloads"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml" || e == "json"))
        .filter(|p| !LARGE.iter().any(|l| p.file_name().is_some_and(|n| n == *l)))
        .map(|p| format!("workloads/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    v.sort();
    assert!(v.len() >= 3, "bundled workloads: {v:?}");
    v
}

/// A GPU backend, or `None` (with a message) when this machine has no adapter.
pub fn gpu_backend() -> Option<GpuBackend> {
    match GpuBackend::new() {
        Ok(b) => Some(b),
        Err(KernelError::NoAdapter(why)) => {
            if std::env::var("ULTRASCHED_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("ULTRASCHED_REQUIRE_GPU=1 but no GPU adapter found{why}");
            }
            eprintln!(
                "skipping: no GPU adapter (set ULTRASCHED_REQUIRE_GPU=1 to fail instead){why}"
            );
            None
        }
        Err(e) => panic!("a GPU adapter exists but the backend failed: {e}"),
    }
}

/// The GPU node scorer, or `None` (with a message) when this machine has no adapter; like `gpu_backend`.
pub fn gpu_node_scorer() -> Option<ultrasched::kernel::node_score::gpu::GpuNodeScorer> {
    use ultrasched::kernel::node_score::gpu::GpuNodeScorer;
    match GpuNodeScorer::new() {
        Ok(b) => Some(b),
        Err(KernelError::NoAdapter(why)) => {
            if std::env::var("ULTRASCHED_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("ULTRASCHED_REQUIRE_GPU=1 but no GPU adapter found{why}");
            }
            eprintln!(
                "skipping: no GPU adapter (set ULTRASCHED_REQUIRE_GPU=1 to fail instead){why}"
            );
            None
        }
        Err(e) => panic!("a GPU adapter exists but the node scorer failed: {e}"),
    }
}

/// A fleet shared under `sharing = "elastic"` with priority preemption, on two 8-GPU H100 domains in one
/// rack (tests/check.rs checks its files, tests/engine.rs its timeline). Known schedule (worked out from
/// the rules, and what the engine does):
/// - `svc` (one 2-GPU replica) starts at 0 on domain 0 and scales to its `max_replicas` = 2 at 10 s; the
///   fleet is full then, so the elastic `el` (12 GPUs: 6 + 6, started at 1 s) gives back one TP group of 4
///   on domain 0 and runs on 8, its `min_gpus` (segment 1, from the instant segment 0 ends), then grows
///   back to 12 when `low` and `hi` are done (segment 2);
/// - `low` (2 GPUs, priority 1) starts at 2 s on domain 1 and is preempted at 30 s by `hi` (4 GPUs,
///   `required = "rack"`, priority 10), which takes 2 GPUs on each domain: one gang across two domains of
///   one rack; `low` restarts at 80 s.
pub const SHARED_FLEET: &str = r#"
seed = 1
[scheduler]
queue = "priority"
backfill = "none"
preemption = true
restart_cost_s = 20
sharing = "elastic"
[cluster]
[[cluster.pools]]
name = "h"
preset = "p5-h100"
count = 2
domains_per_rack = 2
[[jobs]]
id = "svc"
kind = "inference"
replicas = 1
gpus_per_replica = 2
lifetime_s = 600
priority = 5
[jobs.serving]
model = "llama-3-8b"
autoscale = { min_replicas = 1, max_replicas = 2, target_outstanding = 2, cold_start_s = 10, cooldown_s = 30, eval_period_s = 10 }
traffic = { kind = "poisson", rate_per_s = 20, prompt_tokens = { median = 1200, sigma = 0.8, max = 32000 }, output_tokens = { median = 250, sigma = 0.7, max = 4096 } }
[[jobs]]
id = "el"
gpus = 12
duration_s = 400
priority = 6
submit_s = 1
elastic = { min_gpus = 8, max_gpus = 12 }
model = { params_b = 8, tokens_per_step = 1048576, tp = 4, mfu = 0.4 }
[[jobs]]
id = "low"
gpus = 2
duration_s = 100
priority = 1
submit_s = 2
topology = { required = "rack" }
[[jobs]]
id = "hi"
gpus = 4
duration_s = 50
submit_s = 30
priority = 10
topology = { required = "rack" }
"#;
