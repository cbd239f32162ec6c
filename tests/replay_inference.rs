//! Drives `ultrasched replay-inference`: both bundled traces end to end, and bad inputs exit 2 with a located
//! message.

mod common;

use common::{bin, repo};
use predicates::prelude::*;

const AZURE: &str = "workloads/traces/azure-llm-2023/AzureLLMInferenceTrace_code.csv";
const MOONCAKE: &str = "workloads/traces/mooncake/synthetic_trace.jsonl";

fn replay_json(args: &[&str]) -> serde_json::Value {
    let out = bin()
        .arg("replay-inference")
        .args(args)
        .args(["--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("stdout is one JSON object")
}

/// `trace` replayed by llama-2-70b on H100s: the flags most tests start from.
fn h100_70b(trace: &str) -> [&str; 6] {
    ["--trace", trace, "--model", "llama-2-70b", "--gpu", "h100"]
}

fn sane(v: &serde_json::Value, requests: u64) {
    assert_eq!(v["requests"], requests);
    assert_eq!(v["completed"], requests);
    for key in ["ttft_s", "tpot_s", "e2e_s"] {
        let s = &v[key];
        let get = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{key}.{k} missing"));
        let (mean, p50, p90, p99) = (get("mean"), get("p50"), get("p90"), get("p99"));
        assert!(p50 > 0.0 && p50 <= p90 && p90 <= p99, "{key}: {s}");
        assert!(mean > 0.0 && mean < 600.0, "{key}: {s}");
    }
    assert!(v["e2e_s"]["mean"].as_f64() >= v["ttft_s"]["mean"].as_f64());
    let att = v["slo_attainment"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&att));
    let goodput = v["goodput_rps"].as_f64().unwrap();
    let tokens = v["output_tokens_per_s"].as_f64().unwrap();
    let duration = v["duration_s"].as_f64().unwrap();
    assert!(goodput > 0.0 && goodput <= requests as f64 / duration + 1e-9);
    assert!(tokens > goodput);
}

#[test]
fn azure_trace_on_two_8x_h100_replicas() {
    let trace = format!("azure:{}", repo(AZURE));
    let mut args = h100_70b(&trace).to_vec();
    args.extend(["--tp", "8", "--replicas", "2"]);
    let v = replay_json(&args);
    sane(&v, 8819);
    // The 8,819 requests span about 57 minutes.
    let d = v["duration_s"].as_f64().unwrap();
    assert!((3400.0..3500.0).contains(&d), "{d}");
    // 8 x 80 GB x 0.9 (vLLM's memory margin) - 138 GB of weights = 438 GB of KV at 327,680 B/token.
    assert_eq!(v["kv_budget_tokens"], 1_336_812);
    assert!(v["cost_model"].as_str().unwrap().starts_with("operators"));
    assert_eq!(
        v["prefix_hit_rate"], 0.0,
        "the Azure trace has no prefix ids"
    );
}

#[test]
fn mooncake_trace_with_kv_aware_routing() {
    let v = replay_json(&[
        "--trace",
        &format!("mooncake:{}", repo(MOONCAKE)),
        "--model",
        "llama-3-70b",
        "--gpu",
        "h100",
        "--tp",
        "8",
        "--replicas",
        "4",
        "--router",
        "kv-aware",
    ]);
    sane(&v, 3993);
    assert_eq!(v["router"], "kv-aware");
    assert!(v["prefix_hit_rate"].as_f64().unwrap() > 0.3);
}

#[test]
fn table_output_names_the_trace_and_its_source() {
    bin()
        .args(["replay-inference", "--trace"])
        .arg(format!("azure:{}", repo(AZURE)))
        .args([
            "--model",
            "llama-3-8b",
            "--gpu",
            "h200",
            "--tp",
            "1",
            "--replicas",
            "3",
        ])
        .args(["--router", "least-outstanding", "--max-replicas", "6"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Patel et al., Splitwise, ISCA 2024",
        ))
        .stdout(predicate::str::contains("router least-outstanding"))
        .stdout(predicate::str::contains("ttft"))
        .stdout(predicate::str::contains("8819 completed"));
}

#[test]
fn bad_inputs_exit_2_with_a_located_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad_csv = dir.path().join("bad.csv");
    std::fs::write(
        &bad_csv,
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,4808,10\n2023-11-16 18:17:04.03,-3,8",
    )
    .unwrap();
    let binary = dir.path().join("bin.jsonl");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    let spec = dir.path().join("model.toml");
    std::fs::write(
        &spec,
        "name = \"m\"\nparams = 1e9\nlayers = 0\nhidden = 2048\nattention_heads = 16\nkv_heads = 4\n\
         head_dim = 128\nbytes_per_element = 2\n",
    )
    .unwrap();
    let azure = format!("azure:{}", repo(AZURE));
    // The bundled Azure trace plus the flags under test.
    let az = |flags: &[&str]| -> Vec<String> {
        let mut v = vec!["--trace".to_owned(), azure.clone()];
        v.extend(flags.iter().map(|f| f.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--trace".into(), "csv:x".into()],
            "--trace: expected azure:PATH or mooncake:PATH",
        ),
        (
            vec!["--trace".into(), "azure:/nonexistent/trace.csv".into()],
            "/nonexistent/trace.csv: cannot read",
        ),
        (
            vec!["--trace".into(), format!("azure:{}", bad_csv.display())],
            "bad.csv: row 2, column `ContextTokens`: must not be negative",
        ),
        (
            vec!["--trace".into(), format!("mooncake:{}", binary.display())],
            "bin.jsonl: not UTF-8 text",
        ),
        (
            vec!["--trace".into(), format!("mooncake:{}", repo(AZURE))],
            "AzureLLMInferenceTrace_code.csv: row 1: invalid JSON",
        ),
        (az(&["--model", "gpt-9"]), "--model: unknown model `gpt-9`"),
        (
            vec![
                "--trace".into(),
                azure.clone(),
                "--model".into(),
                spec.display().to_string(),
            ],
            "model.toml: field `layers`: must be at least 1",
        ),
        (
            az(&["--gpu", "a100"]),
            "--gpu: unknown GPU `a100`; known: h100",
        ),
        (
            az(&["--model", "llama-3-70b", "--tp", "1"]),
            "--tp: llama-3-70b weights (141.1 GB) do not fit 1 x h100",
        ),
        (az(&["--replicas", "0"]), "--replicas: must be at least 1"),
        (az(&["--max-batch", "0"]), "--max-batch: must be at least 1"),
        (
            az(&["--ttft-slo-s=-1"]),
            "--ttft-slo-s: expected a number of seconds",
        ),
        (
            az(&["--tpot-slo-s", "NaN"]),
            "--tpot-slo-s: expected a number of seconds",
        ),
        (
            az(&["--prefill-mfu", "2"]),
            "--prefill-mfu: expected a fraction in (0, 1], found 2",
        ),
        (
            az(&["--max-replicas", "0"]),
            "--max-replicas: must be at least --replicas",
        ),
    ];
    for (args, want) in cases {
        let mut cmd = bin();
        cmd.arg("replay-inference");
        if !args.iter().any(|a| a == "--model") {
            cmd.args(["--model", "llama-2-70b"]);
        }
        if !args.iter().any(|a| a == "--gpu") {
            cmd.args(["--gpu", "h100"]);
        }
        cmd.args(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(want));
    }
}

#[test]
fn disaggregated_pools_report_their_kv_copies_and_write_one_row_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("requests.csv");
    let trace = format!("azure:{}", repo(AZURE));
    let mut base = h100_70b(&trace).to_vec();
    base.extend(["--tp", "4"]);
    let mut args = base.clone();
    args.extend(["--prefill-replicas", "3", "--decode-replicas", "5"]);
    args.extend(["--requests-csv", csv.to_str().unwrap()]);
    let together = replay_json(&args);
    sane(&together, 8819);
    let pools = &together["disaggregation"];
    assert_eq!(pools["prefill_replicas"], 3);
    assert_eq!(pools["decode_replicas"], 5);
    assert_eq!(pools["placement"], "together");
    // 8 replicas of 4 GPUs packed p d p d ... onto 8-GPU H100 domains: every prefill replica has a decode
    // replica beside it.
    assert_eq!(pools["prefill_replicas_beside_decode"], 3);
    let copy_p50 = together["kv_transfer_s"]["p50"].as_f64().unwrap();
    assert!(copy_p50 > 0.0 && copy_p50 < 1.0, "{copy_p50}");
    // One row per request: the decode replica is one of 3..8, the prefill replica one of 0..3.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (rep, pre) = (col("replica"), col("prefill_replica"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 8819);
    for row in &rows {
        let p: u32 = row[pre].parse().unwrap();
        assert!(p < 3, "{row:?}");
        let r: u32 = row[rep].parse().unwrap();
        assert!(r < 8, "{row:?}");
    }
    // Apart, the pools sit in different domains: every copy crosses EFA and takes longer.
    let mut args = base.clone();
    args.extend(["--prefill-replicas", "3", "--decode-replicas", "5"]);
    args.extend(["--pd-placement", "apart"]);
    let apart = replay_json(&args);
    assert_eq!(apart["disaggregation"]["prefill_replicas_beside_decode"], 0);
    assert!(apart["kv_transfer_s"]["p50"].as_f64().unwrap() > copy_p50);
}

#[test]
fn disaggregation_flags_that_contradict_each_other_exit_2() {
    let trace = format!("azure:{}", repo(AZURE));
    for extra in [
        vec![
            "--prefill-replicas",
            "2",
            "--decode-replicas",
            "2",
            "--replicas",
            "4",
        ],
        vec!["--prefill-replicas", "2"],
        vec!["--prefill-replicas", "0", "--decode-replicas", "2"],
        vec![
            "--prefill-replicas",
            "1",
            "--decode-replicas",
            "1",
            "--admission",
            "reserve",
        ],
    ] {
        bin()
            .arg("replay-inference")
            .args(h100_70b(&trace))
            .args(&extra)
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains("prefill")
                    .or(predicate::str::contains("decode"))
                    .or(predicate::str::contains("disaggregat")),
            );
    }
}
