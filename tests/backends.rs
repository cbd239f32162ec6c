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
