//! `sweep`: a local grid with confidence intervals, resuming, `sweep merge`, the Slurm array script and
//! the Kubernetes Indexed Job manifest, and, with `ULTRASCHED_SLURM=1` (CI starts a one-node Slurm), a
//! real `--slurm --submit` whose merged summaries equal the local run's byte for byte.

mod common;

use common::{bin, repo};
use predicates::prelude::*;
use std::path::Path;

const GRID: [&str; 4] = ["--grid", "queue=fifo,sjf", "--grid", "load=0.5,1.5"];

fn sweep(dir: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    bin()
        .arg("sweep")
        .arg(repo("workloads/quickstart.toml"))
        .args(GRID)
        .args(["--seeds", "1..3", "-q", "--out"])
        .arg(dir)
        .args(extra)
        .timeout(std::time::Duration::from_secs(600))
        .assert()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_local_sweep_summarises_every_combination_over_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    sweep(&dir, &[])
        .success()
        .stdout(predicate::str::starts_with(
            "| queue | load | runs | mean wait |",
        ))
        .stderr(predicate::str::contains("all 12 runs merged"));
    let runs = std::fs::read_dir(dir.join("runs")).unwrap().count();
    assert_eq!(runs, 12);
    let summary: serde_json::Value =
        serde_json::from_str(&read(&dir.join("summary.json"))).unwrap();
    let combos = summary["combinations"].as_array().unwrap();
    assert_eq!(combos.len(), 4);
    assert_eq!(combos[3]["params"]["queue"], "sjf");
    assert_eq!(combos[3]["params"]["load"], "1.5");
    // The mean and the interval are those of the three runs' own results.
    let waits: Vec<f64> = (9..12)
        .map(|i| {
            let r: serde_json::Value =
                serde_json::from_str(&read(&dir.join(format!("runs/run-{i:06}.json")))).unwrap();
            assert_eq!(r["params"]["queue"], "sjf");
            r["metrics"]["wait_mean_s"].as_f64().unwrap()
        })
        .collect();
    let mean = waits.iter().sum::<f64>() / 3.0;
    let sd = (waits.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let e = &combos[3]["metrics"]["wait_mean_s"];
    assert!((e["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!((e["ci95"].as_f64().unwrap() - 4.303 * sd / 3f64.sqrt()).abs() < 1e-9);
    assert_eq!(e["n"], 3);
    // A higher load waits longer (sjf: mean over seeds).
    let wait = |c: usize| {
        combos[c]["metrics"]["wait_mean_s"]["mean"]
            .as_f64()
            .unwrap()
    };
    assert!(wait(3) > wait(2), "{} vs {}", wait(3), wait(2));
    let csv = read(&dir.join("summary.csv"));
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.starts_with("queue,load,runs,wait_mean_s_mean,wait_mean_s_ci95,"));
    let html = read(&dir.join("sweep.html"));
    assert!(
        html.contains("<svg") && html.contains("fill-opacity"),
        "CI bands drawn"
    );
}

#[test]
fn an_interrupted_sweep_resumes_and_merge_lists_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    sweep(&dir, &[]).success();
    let before = read(&dir.join("summary.md"));
    // Lose two results: merge names them, a rerun runs only them, and the summary comes back the same.
    let kept = dir.join("runs/run-000000.json");
    let kept_time = std::fs::metadata(&kept).unwrap().modified().unwrap();
    std::fs::remove_file(dir.join("runs/run-000005.json")).unwrap();
    std::fs::remove_file(dir.join("runs/run-000007.json")).unwrap();
    bin()
        .args(["sweep", "merge"])
        .arg(&dir)
        .assert()
        .success()
        .stderr(predicate::str::contains("2 of 12 runs missing: 5, 7"));
    let partial: serde_json::Value =
        serde_json::from_str(&read(&dir.join("summary.json"))).unwrap();
    assert_eq!(partial["missing"], serde_json::json!([5, 7]));
    // Runs 5 and 7 are seeds of combinations 1 and 2 (three seeds each).
    assert_eq!(partial["combinations"][1]["runs"], 2);
    assert_eq!(partial["combinations"][2]["runs"], 2);
    assert_eq!(partial["combinations"][0]["runs"], 3);
    sweep(&dir, &[]).success();
    assert_eq!(read(&dir.join("summary.md")), before);
    assert_eq!(
        std::fs::metadata(&kept).unwrap().modified().unwrap(),
        kept_time,
        "a finished run is not run again"
    );
    // Another grid in the same directory is refused, and nothing is written.
    bin()
        .arg("sweep")
        .arg(repo("workloads/quickstart.toml"))
        .args(["--grid", "queue=fifo", "--seeds", "1", "--out"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("holds a different sweep"));
}

#[test]
fn bad_sweeps_exit_2_before_running() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, want) in [
        (vec!["--grid", "queue=lifo"], "queue=lifo: allowed:"),
        (vec!["--grid", "colour=red"], "unknown axis `colour`"),
        (vec!["--grid", "pool.nope=4"], "no pool is named `nope`"),
        (vec!["--seeds", "9..1"], "--seeds"),
        (vec!["--grid", "load=0"], "load=0"),
    ] {
        let dir = tmp.path().join("bad");
        bin()
            .arg("sweep")
            .arg(repo("workloads/quickstart.toml"))
            .args(&args)
            .arg("--out")
            .arg(&dir)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(want));
        assert!(!dir.exists(), "{args:?} wrote {}", dir.display());
    }
    // More array tasks than Slurm's MaxArraySize, and a Slurm option of two words: refused, nothing written.
    for (extra, want) in [
        (
            vec!["--slurm", "--max-array-size", "5"],
            "above MaxArraySize 5; allowed: a chunk of at least 3",
        ),
        (vec!["--slurm", "--partition", "a b"], "--partition"),
    ] {
        let dir = tmp.path().join("bad");
        bin()
            .arg("sweep")
            .arg(repo("workloads/quickstart.toml"))
            .args(GRID)
            .args(["--seeds", "1..3", "--out"])
            .arg(&dir)
            .args(&extra)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(want));
        assert!(!dir.exists(), "{extra:?} wrote {}", dir.display());
    }
    bin()
        .args(["sweep-task"])
        .arg(tmp.path())
        .arg("0")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sweep.json"));
}

#[test]
fn slurm_script_and_k8s_manifest_run_every_task() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    sweep(
        &dir,
        &[
            "--slurm",
            "--chunk",
            "5",
            "--max-parallel",
            "3",
            "--partition",
            "gpu",
            "--time",
            "00:30:00",
        ],
    )
    .success()
    .stderr(predicate::str::contains("3 array tasks for 12 runs"));
    let sb = read(&dir.join("sweep.sbatch"));
    for want in [
        "#SBATCH --array=0-2%3\n",
        "#SBATCH --partition=gpu\n",
        "#SBATCH --time=00:30:00\n",
        "sweep-task '",
        "\"$SLURM_ARRAY_TASK_ID\"",
    ] {
        assert!(sb.contains(want), "{want} in\n{sb}");
    }
    assert_eq!(
        std::fs::read_dir(dir.join("runs")).unwrap().count(),
        0,
        "nothing ran"
    );
    // Each task index runs its chunk: the last one runs 10 and 11.
    bin()
        .arg("sweep-task")
        .arg(&dir)
        .arg("2")
        .assert()
        .success();
    let mut have: Vec<String> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    have.sort();
    assert_eq!(have, ["run-000010.json", "run-000011.json"]);
    bin()
        .arg("sweep-task")
        .arg(&dir)
        .arg("3")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("allowed: 0 to 2"));

    let kdir = tmp.path().join("k");
    sweep(
        &kdir,
        &[
            "--k8s",
            "--chunk",
            "4",
            "--max-parallel",
            "2",
            "--image",
            "reg/ultrasched:1",
        ],
    )
    .success();
    let m: serde_json::Value = serde_json::from_str(&read(&kdir.join("sweep-job.json"))).unwrap();
    assert_eq!(m["apiVersion"], "batch/v1");
    assert_eq!(m["kind"], "Job");
    assert_eq!(m["spec"]["completionMode"], "Indexed");
    assert_eq!(m["spec"]["completions"], 3);
    assert_eq!(m["spec"]["parallelism"], 2);
    let c = &m["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "reg/ultrasched:1");
    let cmd = c["command"][2].as_str().unwrap();
    assert!(
        cmd.contains("sweep-task \"$SWEEP_DIR\" \"$JOB_COMPLETION_INDEX\""),
        "{cmd}"
    );
    let kdir_abs = std::fs::canonicalize(&kdir).unwrap();
    assert_eq!(c["env"][0]["value"], kdir_abs.display().to_string());
    assert_eq!(
        c["volumeMounts"][0]["mountPath"],
        kdir_abs.display().to_string()
    );
    assert_eq!(m["spec"]["template"]["spec"]["restartPolicy"], "Never");
}

/// With ULTRASCHED_SLURM=1 (CI, after .ci/slurm-up.sh) a real job array; without it the test says why it
/// did nothing (it cannot pass by accident: CI sets the variable).
#[test]
fn a_slurm_array_gives_the_local_summaries_byte_for_byte() {
    if std::env::var("ULTRASCHED_SLURM").as_deref() != Ok("1") {
        eprintln!("ULTRASCHED_SLURM is not 1: no Slurm to submit to (CI starts one)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (local, slurm) = (tmp.path().join("local"), tmp.path().join("slurm"));
    sweep(&local, &[]).success();
    sweep(
        &slurm,
        &["--slurm", "--submit", "--chunk", "3", "--max-parallel", "2"],
    )
    .success()
    .stderr(predicate::str::contains("submitted Slurm job array"))
    .stderr(predicate::str::contains("all 12 runs merged"));
    for f in ["summary.md", "summary.csv", "summary.json", "sweep.html"] {
        assert_eq!(read(&local.join(f)), read(&slurm.join(f)), "{f}");
    }
    assert!(slurm.join("logs/task-0.out").exists());
}
