//! Limits are refused at validation, before any simulation (issue 11, item 4): a sessions service whose
//! traffic would exceed the prompt-block cap is an error of `validate` and of `run` (exit 2, nothing
//! written), found by counting the draws, not after the cluster run.

mod common;

use common::bin;

const OVER: &str = r#"
[cluster]
[[cluster.pools]]
name = "h100"
preset = "p5-h100"
count = 4

[[jobs]]
id = "agents"
kind = "inference"
replicas = 2
gpus_per_replica = 8
lifetime_s = 604800
[jobs.serving]
model = "llama-3-70b"
traffic = { kind = "sessions", sessions_per_s = 2, turns = { median = 6 }, first_prompt_tokens = { median = 16000 }, tokens_per_turn = { median = 100 }, output_tokens = { median = 50 }, tool_wait_s = { median_s = 1 } }

[[generators]]
count = 200000
rate_per_hour = 2000
gpu_mix = [ { gpus = 8, weight = 1 } ]
duration = { median_s = 3600 }
"#;

#[test]
fn a_service_over_the_prompt_block_cap_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("over.toml");
    std::fs::write(&f, OVER).unwrap();
    for cmd in ["validate", "run"] {
        let out_dir = dir.path().join(format!("out-{cmd}"));
        let mut c = bin();
        c.arg(cmd).arg(&f);
        if cmd == "run" {
            c.arg("--out").arg(&out_dir).arg("--backend").arg("cpu");
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("jobs[0].serving.traffic.sessions_per_s") && err.contains("prompt blocks"),
            "{cmd}: {err}"
        );
        assert!(!out_dir.exists(), "{cmd} wrote output");
        // Refused before the cluster engine started: no simulation progress, no report.
        assert!(out.stdout.is_empty(), "{cmd} printed a report");
    }
    // Under the cap (a fifth of the sessions) the same workload validates.
    std::fs::write(
        &f,
        OVER.replace("sessions_per_s = 2,", "sessions_per_s = 0.4,"),
    )
    .unwrap();
    bin().arg("validate").arg(&f).assert().code(0);
}
