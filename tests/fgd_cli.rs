//! `frag-study` end to end through `fgd::run`: outputs in the published layout, and no output on bad input.

use std::path::Path;

use clap::Parser;
use ultrasched::cli::frag_study::{run, FragStudyArgs};
use ultrasched::error::exit_code;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: FragStudyArgs,
}

fn args(extra: &[&str]) -> FragStudyArgs {
    let mut v = vec!["frag-study"];
    v.extend_from_slice(extra);
    Cli::try_parse_from(v).unwrap().args
}

fn trace(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("workloads/traces/openb")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn writes_both_published_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let (alloc, frag) = (dir.path().join("a.csv"), dir.path().join("f.csv"));
    let nodes = trace("openb_node_list_gpu_node.csv");
    let pods = trace("openb_pod_list_default.csv");
    let a = args(&[
        "--nodes",
        &nodes,
        "--pods",
        &pods,
        "--policy",
        "bestfit",
        "--policy",
        "fgd",
        "--seed",
        "42",
        "--tune",
        "0.3",
        "--csv",
        alloc.to_str().unwrap(),
        "--frag-csv",
        frag.to_str().unwrap(),
    ]);
    run(&a).unwrap();
    let text = std::fs::read_to_string(&alloc).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("workload,sc_policy,tune,seed,total_gpus,0,1,"),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(",30"));
    assert!(
        lines[1].starts_with("openb_pod_list_default,05-BestFit,0.3,42,6212,"),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("openb_pod_list_default,06-FGD,0.3,42,6212,"));
    let f = std::fs::read_to_string(&frag).unwrap();
    assert!(f.starts_with("workload,sc_policy,tune,seed,0,1,"));
    assert_eq!(f.lines().count(), 3);
}

#[test]
fn bad_input_writes_nothing_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods.csv");
    std::fs::write(
        &pods,
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,2,1,500\nb,1,oops,1,500\n",
    )
    .unwrap();
    let out = dir.path().join("out.csv");
    let nodes = trace("openb_node_list_gpu_node.csv");
    let a = args(&[
        "--nodes",
        &nodes,
        "--pods",
        pods.to_str().unwrap(),
        "--csv",
        out.to_str().unwrap(),
    ]);
    let err = run(&a).unwrap_err();
    assert_eq!(exit_code(&err), 2);
    let msg = format!("{err:#}");
    assert!(
        msg.contains("row 2, column `memory_mib`") && msg.contains("`oops` is not a number"),
        "{msg}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary files left behind"
    );
}

#[test]
fn gpu_backend_without_adapter_and_multi_seed_replay_without_template_are_refused() {
    let nodes = trace("openb_node_list_gpu_node.csv");
    let pods = trace("openb_pod_list_default.csv");
    // Without an adapter, --backend gpu is an error that points at the CPU (with one, it runs: see
    // tests/node_score_conformance.rs).
    if ultrasched::kernel::node_score::gpu::GpuNodeScorer::new().is_err() {
        let err = run(&args(&[
            "--nodes",
            &nodes,
            "--pods",
            &pods,
            "--csv",
            "/nonexistent/x.csv",
            "--backend",
            "gpu",
        ]))
        .unwrap_err();
        assert!(format!("{err:#}").contains("--backend cpu"));
    }
    let err = run(&args(&[
        "--nodes",
        &nodes,
        "--pods",
        &pods,
        "--csv",
        "/nonexistent/x.csv",
        "--seed",
        "42..43",
        "--pod-order",
        "a",
        "--node-names",
        "b",
    ]))
    .unwrap_err();
    assert!(format!("{err:#}").contains("{seed}"));
}

#[test]
fn the_binary_runs_frag_study_and_plots_it_against_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, html) = (
        dir.path().join("out/a.csv"),
        dir.path().join("out/study.html"),
    );
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("workloads/traces/fgd-reference/allo_discrete_default.csv");
    let out = assert_cmd::Command::cargo_bin("ultrasched")
        .unwrap()
        .args([
            "frag-study",
            "--nodes",
            &trace("openb_node_list_gpu_node.csv"),
            "--pods",
            &trace("openb_pod_list_multigpu50.csv"),
        ])
        .args(["--policy", "bestfit", "--policy", "fgd", "--seed", "42"])
        .arg("--csv")
        .arg(&csv)
        .arg("--html")
        .arg(&html)
        .arg("--reference")
        .arg(&reference)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("05-BestFit") && stdout.contains("06-FGD"),
        "{stdout}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<svg") && page.contains("06-FGD (reference)") && page.contains("05-BestFit")
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 3);
    // A reference that is not in the published layout: exit 2, naming the file and row, nothing written.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "workload,sc_policy,tune,seed,total_gpus,0,1\nw,p,1.3,42,6212,0.5,x\n",
    )
    .unwrap();
    let html2 = dir.path().join("none/study.html");
    let out = assert_cmd::Command::cargo_bin("ultrasched")
        .unwrap()
        .args([
            "frag-study",
            "--nodes",
            &trace("openb_node_list_gpu_node.csv"),
            "--pods",
            &trace("openb_pod_list_multigpu50.csv"),
        ])
        .args(["--policy", "fgd", "--csv"])
        .arg(dir.path().join("none/a.csv"))
        .arg("--html")
        .arg(&html2)
        .arg("--reference")
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.csv: row 1, column `1`: `x` is not a number"),
        "{stderr}"
    );
    assert!(!dir.path().join("none").exists());
}
