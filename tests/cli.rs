//! Drives the binary: the happy paths, and a table of bad inputs that must exit 2 with a located message and
//! write nothing.

mod common;

use common::{bin, repo};
use predicates::prelude::*;

#[test]
fn run_quickstart_prints_the_summary_table() {
    bin()
        .args([
            "run",
            &repo("workloads/quickstart.toml"),
            "--backend",
            "cpu",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("workload   quickstart"))
        .stdout(predicate::str::contains(
            "44 submitted, 43 completed, 1 unschedulable",
        ))
        .stderr(predicate::str::contains("backend: cpu"));
}

#[test]
fn run_with_out_writes_report_and_jobs_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    bin()
        .args([
            "run",
            &repo("workloads/quickstart.toml"),
            "--backend",
            "cpu",
            "--format",
            "json",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    for key in ["makespan_s", "jobs", "jct_s", "wait_s", "gpu_utilization"] {
        assert!(
            report["summary"].get(key).is_some(),
            "summary.{key} missing"
        );
    }
    assert_eq!(report["summary"]["jobs"]["submitted"], 44);
    assert_eq!(report["run"]["backend"], "cpu");
    let csv = std::fs::read_to_string(out.join("jobs.csv")).unwrap();
    assert!(csv.starts_with(
        "id,kind,tenant,priority,gpus,replicas,submit_s,start_s,end_s,wait_s,jct_s,domains,nodes,"
    ));
    assert_eq!(csv.lines().count(), 45);
    assert!(
        csv.contains("too-big,training,default,0,512,1,180,,,,,0,0,0,false,1.0000,unschedulable")
    );
}

#[test]
fn format_json_prints_the_report_on_stdout() {
    let out = bin()
        .args([
            "run",
            &repo("workloads/quickstart.toml"),
            "--backend",
            "cpu",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["workload"], "quickstart");
}

#[test]
fn overrides_change_the_policies() {
    let out = bin()
        .args([
            "run",
            &repo("workloads/quickstart.toml"),
            "--backend",
            "cpu",
            "--format",
            "json",
            "--queue",
            "sjf",
            "--placement",
            "first-fit",
            "--seed",
            "3",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scheduler"]["queue"], "sjf");
    assert_eq!(v["scheduler"]["placement"], "first-fit");
    assert_eq!(v["seed"], 3);
}

#[test]
fn validate_and_presets_and_help() {
    bin()
        .args(["validate", &repo("workloads/mixed-fleet.toml")])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "ok: 1600 GPUs in 2 pools (136 NVLink domains)",
        ));
    bin().arg("presets").assert().success().stdout(
        predicate::str::contains("p6e-gb200")
            .and(predicate::str::contains("trn2-ultraserver"))
            .and(predicate::str::contains("72")),
    );
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "ultrasched run workloads/quickstart.toml",
        ));
    bin()
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--backend"));
}

const POOL: &str = "[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 2\n";

/// (file name, contents, expected message fragment).
fn bad_inputs() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let with = |s: &str| format!("{POOL}{s}").into_bytes();
    vec![
        ("syntax.toml", b"[cluster\n".to_vec(), "syntax.toml:1:9: unclosed table"),
        ("empty.toml", Vec::new(), "empty.toml: the file is empty"),
        ("blank.toml", b"  \n\n".to_vec(), "the file is empty"),
        ("binary.toml", vec![0, 0xff, 0xfe, 1], "is not UTF-8 text"),
        ("unknown.toml", with("[[jobs]]\ngpus = 8\nduration_s = 10\ncolour = 1\n"), "unknown.toml:8:1: unknown field `colour`"),
        ("type.toml", with("[[jobs]]\ngpus = \"eight\"\nduration_s = 10\n"), "type.toml:6:8: invalid type: string \"eight\""),
        ("zero.toml", with("[[jobs]]\ngpus = 0\nduration_s = 10\n"), "zero.toml:6:8: 0 is out of range: expected a whole number from 1 to 16777216 (at `jobs[0].gpus`)"),
        ("neg.toml", with("[[jobs]]\ngpus = -8\nduration_s = 10\n"), "neg.toml:6:8: -8 is out of range"),
        ("float.toml", with("[[jobs]]\ngpus = 8.5\nduration_s = 10\n"), "float.toml:6:8: invalid type: floating point"),
        ("nan.toml", with("[[jobs]]\ngpus = 8\nduration_s = nan\n"), "nan.toml:7:14: NaN is not allowed"),
        ("inf.toml", with("[[jobs]]\ngpus = 8\nduration_s = inf\n"), "inf.toml:7:14: inf is not allowed"),
        ("negdur.toml", with("[[jobs]]\ngpus = 8\nduration_s = -1\n"), "negdur.toml:7:14: -1 is out of range"),
        ("zerodur.toml", with("[[jobs]]\ngpus = 8\nduration_s = 0\n"), "field `jobs[0].duration_s`: must be above 0 seconds"),
        ("preset.toml", b"[cluster]\n[[cluster.pools]]\npreset = \"p9\"\ncount = 1\n".to_vec(), "preset.toml:3:10: unknown preset `p9`; allowed: p5-h100"),
        ("queue.toml", with("[scheduler]\nqueue = \"lifo\"\n"), "queue.toml:6:9: unknown variant `lifo`, expected one of `fifo`, `sjf`, `smallest-area`, `priority`"),
        ("placement.toml", with("[scheduler]\nplacement = \"worst-fit\"\n"), "unknown variant `worst-fit`, expected one of `first-fit`, `best-fit`, `topology-pack`"),
        ("model.toml", with("[[jobs]]\ngpus = 8\nduration_s = 1\ngpu_model = \"a100\"\n"), "unknown gpu_model `a100`"),
        ("huge.toml", b"[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 1000000000000\n".to_vec(), "huge.toml:4:9: 1000000000000 is out of range"),
        ("big-cluster.toml", b"[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 9000000\n".to_vec(), "the cluster would hold 648000000 GPUs; at most 16777216"),
        ("huge-job.toml", with("[[jobs]]\ngpus = 1000000000000\nduration_s = 1\n"), "out of range: expected a whole number from 1 to 16777216"),
        ("missing.toml", with("[[jobs]]\ngpus = 8\n"), "field `jobs[0].duration_s`: is required for a training job"),
        ("no-cluster.toml", b"seed = 1\n".to_vec(), "missing field `cluster`"),
        ("no-pools.toml", b"[cluster]\npools = []\n".to_vec(), "field `cluster.pools`: needs at least one pool"),
        ("mixed-kind.toml", with("[[jobs]]\ngpus = 8\nduration_s = 1\nreplicas = 2\n"), "field `jobs[0].replicas`: belongs to inference jobs"),
        ("dup.toml", with("[[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 1\n[[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 1\n"), "job id `a` is used twice"),
        ("topo.toml", with("[[jobs]]\ngpus = 8\nduration_s = 1\ntopology = { required = \"domain\", preferred = \"rack\" }\n"), "must be narrower than `required`"),
        ("rate.toml", with("[[generators]]\ncount = 5\nrate_per_hour = nan\ngpu_mix = [{gpus = 8, weight = 1}]\nduration = {median_s = 5}\n"), "NaN is not allowed: expected a rate per hour"),
        ("weights.toml", with("[[generators]]\ncount = 5\nrate_per_hour = 1\ngpu_mix = [{gpus = 8, weight = 0}]\nduration = {median_s = 5}\n"), "weights must not all be 0"),
        ("many.toml", with("[[generators]]\ncount = 100000000\nrate_per_hour = 1\ngpu_mix = [{gpus = 8, weight = 1}]\nduration = {median_s = 5}\n"), "out of range: expected a whole number from 1 to 10000000"),
        ("preempt.toml", with("[scheduler]\npreemption = true\n"), "needs queue = \"priority\""),
        ("unk.json", br#"{"cluster": {"pools": [{"preset": "p6e-gb200", "count": 2}]}, "jobs": [{"gpus": 8, "duration_s": 1, "x": 1}]}"#.to_vec(), "unk.json:1:103: unknown field `x`"),
        ("trunc.json", br#"{"cluster": "#.to_vec(), "trunc.json:1:12: EOF while parsing"),
        ("inf.json", br#"{"cluster": {"pools": [{"preset": "p6e-gb200", "count": 2}]}, "jobs": [{"gpus": 8, "duration_s": 1e999}]}"#.to_vec(), "inf.json:1:102"),
        ("zero.json", br#"{"cluster": {"pools": [{"preset": "p6e-gb200", "count": 0}]}}"#.to_vec(), "0 is out of range"),
    ]
}

#[test]
fn bad_inputs_exit_2_with_a_located_message_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body, expected) in bad_inputs() {
        let file = dir.path().join(name);
        std::fs::write(&file, &body).unwrap();
        let out_dir = dir.path().join(format!("out-{name}"));
        for sub in ["run", "validate"] {
            let mut cmd = bin();
            cmd.arg(sub).arg(&file);
            if sub == "run" {
                cmd.arg("--backend").arg("cpu").arg("--out").arg(&out_dir);
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{sub} {name}: expected exit 2, stderr: {stderr}"
            );
            assert!(
                stderr.contains(expected),
                "{sub} {name}: stderr {stderr:?} lacks {expected:?}"
            );
            assert!(
                stderr.contains(name),
                "{sub} {name}: the message must name the file: {stderr}"
            );
            assert!(
                !stderr.contains("panicked"),
                "{sub} {name}: panicked: {stderr}"
            );
            assert!(out.stdout.is_empty(), "{sub} {name}: wrote to stdout");
        }
        assert!(!out_dir.exists(), "{name}: wrote an output directory");
    }
}

#[test]
fn missing_file_and_bad_flags() {
    bin()
        .args(["run", "/nonexistent/w.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/w.toml: cannot read"));
    bin()
        .args(["run", &repo("workloads/quickstart.toml"), "--queue", "lifo"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "possible values: fifo, sjf, smallest-area, priority",
        ));
}

#[test]
fn a_job_larger_than_every_pool_is_valid_and_unschedulable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.toml");
    std::fs::write(&file, format!("{POOL}[[jobs]]\nid = \"huge\"\ngpus = 145\nduration_s = 10\n[[jobs]]\nid = \"ok\"\ngpus = 144\nduration_s = 10\n")).unwrap();
    let out = bin()
        .arg("run")
        .arg(&file)
        .args(["--backend", "cpu", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["jobs"]["unschedulable"], 1);
    assert_eq!(v["summary"]["jobs"]["completed"], 1);
}

#[test]
fn bench_kernel_rejects_absurd_sizes_and_reports_the_cpu_twin() {
    bin()
        .args([
            "bench-kernel",
            "--jobs",
            "1048576",
            "--candidates",
            "4194304",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("must be at most 2^36"));
    bin().args(["bench-kernel", "--jobs", "0"]).assert().code(2);
    let out = bin()
        .args([
            "bench-kernel",
            "--jobs",
            "64",
            "--candidates",
            "100",
            "--reps",
            "1",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pairs"], 6400);
    assert!(v["cpu"]["pairs_per_s"].as_f64().unwrap() > 0.0);
}

/// The annotated workload file in README.md is one a user copies first: it must parse and validate as shown.
#[test]
fn the_readme_workload_example_validates() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let start = readme
        .find("```toml\nseed = 7")
        .expect("README has the annotated workload example")
        + "```toml\n".len();
    let len = readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("readme.toml");
    std::fs::write(&file, &readme[start..start + len]).unwrap();
    bin()
        .arg("validate")
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "1152 GPUs in 1 pools (16 NVLink domains); 1003 jobs (1001 training, 2 inference)",
        ));
}
