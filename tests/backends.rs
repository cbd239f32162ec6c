//! The simulator never knows which kernel ran: every bundled workload under every placement policy gives
//! the same report (outside `run`) and the same jobs.csv on the GPU kernel as on the CPU twin.

mod common;

use common::outputs;

use std::path::Path;
use ultrasched::domain::workload::PlacementPolicy;
use ultrasched::input::workload::{self, Overrides};
use ultrasched::kernel::placement::cpu::CpuBackend;

#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn gpu_and_cpu_give_the_same_schedule_for_every_bundled_workload() {
    let Some(mut gpu) = common::gpu_backend() else {
        return;
    };
    // Every bundled workload but the large ones (ultrascale-week: minutes on lavapipe per run).
    let files: Vec<std::path::PathBuf> = common::bundled()
        .iter()
        .map(|f| Path::new(env!("CARGO_MANIFEST_DIR")).join(f))
        .collect();
    assert!(files.len() >= 3);
    for file in files {
        for placement in [
            PlacementPolicy::FirstFit,
            PlacementPolicy::BestFit,
            PlacementPolicy::TopologyPack,
        ] {
            let ov = Overrides {
                placement: Some(placement),
                ..Default::default()
            };
            let w = workload::load(&file, ov).unwrap();
            let cpu = outputs(&w, &mut CpuBackend);
            let on_gpu = outputs(&w, &mut gpu);
            assert_eq!(
                cpu.0,
                on_gpu.0,
                "{}: report differs under {placement:?}",
                file.display()
            );
            assert_eq!(
                cpu.1,
                on_gpu.1,
                "{}: jobs.csv differs under {placement:?}",
                file.display()
            );
        }
    }
}

#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn verify_runs_both_kernels_through_the_cli() {
    if common::gpu_backend().is_none() {
        return;
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/quickstart.toml");
    let out = assert_cmd::Command::cargo_bin("ultrasched")
        .unwrap()
        .arg("run")
        .arg(&file)
        .args(["--verify", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["run"]["backend"], "verify");
    let bench = assert_cmd::Command::cargo_bin("ultrasched")
        .unwrap()
        .args([
            "bench-kernel",
            "--jobs",
            "65",
            "--candidates",
            "4097",
            "--reps",
            "1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&bench.stdout);
    assert!(
        bench.status.success() && text.contains("agreement: cpu and gpu winners identical"),
        "{text}"
    );
}

/// `--backend auto` on a GPU splits calls at a crossover: with one set low enough that both backends get
/// calls, every bundled workload decides as on the CPU twin alone, and the split adds up to every call.
#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn auto_splits_calls_at_the_crossover_and_decides_as_the_cpu_twin() {
    use ultrasched::kernel::placement::{CostBackend, Crossover, HybridBackend};
    let Some(gpu) = common::gpu_backend() else {
        return;
    };
    // 64 pairs: single-job calls on a few free domains stay on the CPU, batches behind a blocked head go
    // to the GPU.
    let mut auto = HybridBackend::new(gpu, Crossover::fixed(64));
    let (mut cpu_side, mut gpu_side) = (0, 0);
    // Four workloads that between them have pools, racks, inference replicas and gated pools (the whole
    // set on both backends is the test above; this one is about the split).
    for file in [
        "workloads/quickstart.toml",
        "workloads/gb200-training.toml",
        "workloads/mixed-fleet.toml",
        "workloads/multi-cloud.toml",
    ] {
        let w = common::load(file);
        let before = auto.usage().unwrap();
        let cpu = outputs(&w, &mut CpuBackend);
        let mixed = outputs(&w, &mut auto);
        assert_eq!(cpu, mixed, "{file}: auto at 64 pairs decided differently");
        let after = auto.usage().unwrap();
        cpu_side += after.cpu_calls - before.cpu_calls;
        gpu_side += after.gpu_calls - before.gpu_calls;
        assert_eq!(after.crossover_pairs, 64);
    }
    assert!(
        cpu_side > 0 && gpu_side > 0,
        "both sides should get calls: cpu {cpu_side}, gpu {gpu_side}"
    );
}

/// The CLI's auto with a named software adapter and `ULTRASCHED_AUTO_CROSSOVER`: report.json's `run`
/// says where the calls went, and the files equal a `--backend cpu` run's.
#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn auto_reports_its_split_in_run() {
    if common::gpu_backend().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (auto, cpu) = (dir.path().join("auto"), dir.path().join("cpu"));
    let file = common::repo("workloads/gb200-training.toml");
    common::bin()
        .args(["run", &file, "--backend", "auto", "-q", "--out"])
        .arg(&auto)
        .env("WGPU_ADAPTER_NAME", "")
        .env("ULTRASCHED_AUTO_CROSSOVER", "64")
        .assert()
        .success();
    common::bin()
        .args(["run", &file, "--backend", "cpu", "-q", "--out"])
        .arg(&cpu)
        .assert()
        .success();
    for f in ["jobs.csv", "placements.csv"] {
        assert_eq!(
            std::fs::read(auto.join(f)).unwrap(),
            std::fs::read(cpu.join(f)).unwrap(),
            "{f}"
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(auto.join("report.json")).unwrap()).unwrap();
    let usage = &report["run"]["kernel_usage"];
    assert_eq!(report["run"]["backend"], "auto");
    assert_eq!(usage["crossover_pairs"], 64);
    let calls = usage["cpu_calls"].as_u64().unwrap() + usage["gpu_calls"].as_u64().unwrap();
    assert!(usage["gpu_calls"].as_u64().unwrap() > 0, "{usage}");
    assert!(
        calls >= report["engine"]["kernel_calls"].as_u64().unwrap_or(0),
        "{usage} vs {}",
        report["engine"]
    );
    // The CPU twin runs every call itself: no split to report.
    let cpu_report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cpu.join("report.json")).unwrap()).unwrap();
    assert_eq!(cpu_report["run"]["backend"], "cpu");
    assert!(
        cpu_report["run"].get("kernel_usage").is_none(),
        "{}",
        cpu_report["run"]
    );
}

/// `bench-kernel --crossover` sweeps calls of 1, 2, 4, .. jobs, checks agreement at every size, and its
/// crossover is consistent with its own rows: the GPU is faster at that size and every larger one, and
/// not faster just below it.
#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn bench_kernel_reports_a_crossover_consistent_with_its_sweep() {
    if common::gpu_backend().is_none() {
        return;
    }
    let out = common::bin()
        .args([
            "bench-kernel",
            "--jobs",
            "48",
            "--candidates",
            "512",
            "--reps",
            "2",
            "--crossover",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let c = &v["crossover"];
    let rows = c["rows"].as_array().unwrap();
    let jobs: Vec<u64> = rows.iter().map(|r| r["jobs"].as_u64().unwrap()).collect();
    assert_eq!(jobs, [1, 2, 4, 8, 16, 32, 48]);
    for r in rows {
        assert_eq!(
            r["pairs"].as_u64().unwrap(),
            r["jobs"].as_u64().unwrap() * 512
        );
        assert!(r["cpu_s"].as_f64().unwrap() > 0.0 && r["gpu_s"].as_f64().unwrap() > 0.0);
    }
    let faster = |r: &serde_json::Value| r["gpu_s"].as_f64() < r["cpu_s"].as_f64();
    match c["measured_pairs"].as_u64() {
        None => assert!(!faster(rows.last().unwrap())),
        Some(p) => {
            let i = rows.iter().position(|r| r["pairs"] == p).unwrap();
            assert!(rows[i..].iter().all(faster), "{c}");
            assert!(i == 0 || !faster(&rows[i - 1]), "{c}");
        }
    }
    assert!(c["auto"]["pairs"].as_u64().unwrap() >= 1);
    assert!(c["auto"]["gpu_round_trip_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["agree"], true);
}

/// `auto` opens no GPU for the simulator's small calls (a run costs what it costs on the CPU twin), and a
/// call large enough makes it try: it either finds no usable GPU (no adapter, or only a software one it
/// was not told to use) and stays on the CPU, or measures its crossover. Either way the winners are the
/// CPU twin's. Needs no GPU.
#[test]
fn auto_opens_a_gpu_only_for_a_large_call() {
    use ultrasched::kernel::placement::bench::random_batch;
    use ultrasched::kernel::placement::hybrid::OPEN_GPU_PAIRS;
    use ultrasched::kernel::placement::{CostBackend, HybridBackend, POLICY_TOPOLOGY_PACK};
    let mut auto = HybridBackend::lazy(None);
    let w = common::load("workloads/gb200-training.toml");
    assert_eq!(outputs(&w, &mut auto), outputs(&w, &mut CpuBackend));
    let u = auto.usage().unwrap();
    assert!(u.gpu.starts_with("not opened"), "{u:?}");
    assert!(u.cpu_calls > 0 && u.gpu_calls == 0, "{u:?}");
    assert!(u.cpu_pairs / u.cpu_calls < OPEN_GPU_PAIRS);

    let (jobs, candidates) = random_batch(3, 64, 1024);
    assert!(jobs.len() as u64 * candidates.len() as u64 >= OPEN_GPU_PAIRS);
    let (mut got, mut want) = (Vec::new(), Vec::new());
    auto.best_candidates(POLICY_TOPOLOGY_PACK, &jobs, &candidates, &mut got)
        .unwrap();
    CpuBackend
        .best_candidates(POLICY_TOPOLOGY_PACK, &jobs, &candidates, &mut want)
        .unwrap();
    assert_eq!(got, want);
    let u = auto.usage().unwrap();
    assert!(!u.gpu.starts_with("not opened"), "{u:?}");
    if u.gpu.starts_with("none") {
        assert_eq!(u.crossover_pairs, u64::MAX, "{u:?}");
        assert_eq!(u.gpu_calls, 0);
    } else {
        assert!(u.crossover_pairs >= 1, "{u:?}");
    }
}
