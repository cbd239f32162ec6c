//! `[[job_traces]]`, custom pools and the exact replay semantics a peer simulator's job list is compared by:
//! hand-computed schedules for greedy FIFO and greedy SJF on one pooled node, the shapes the issue names
//! (one 6,500-GPU node, 4,096 1-GPU nodes), bad rows and bad pools that exit 2 naming file, row and column.

mod common;

use common::{bin, load, repo};
use std::path::Path;
use ultrasched::domain::workload::Workload;
use ultrasched::input::workload::{load as load_path, Overrides};

/// Writes `workload` and `trace.csv` into a temporary directory and loads the workload.
fn with_trace(workload: &str, trace: &str) -> (tempfile::TempDir, anyhow::Result<Workload>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.toml"), workload).unwrap();
    std::fs::write(dir.path().join("trace.csv"), trace).unwrap();
    let w = load_path(&dir.path().join("w.toml"), Overrides::default());
    (dir, w)
}

fn pooled(gpus: u32, queue: &str) -> String {
    format!(
        "[scheduler]\nqueue = \"{queue}\"\nbackfill = \"greedy\"\n\
         [[cluster.pools]]\nname = \"pai\"\ngpu = \"h100\"\ngpus_per_node = {gpus}\ncount = 1\n\
         [[job_traces]]\npath = \"trace.csv\"\n\
         columns = {{ id = \"job_id\", submit_s = \"submit_time\", duration_s = \"duration\", gpus = \"num_gpu\" }}\n"
    )
}

/// Wait of every job, seconds, in trace order.
fn waits(w: &Workload) -> Vec<(String, f64)> {
    let o = common::run(w);
    w.jobs
        .iter()
        .zip(&o.jobs)
        .map(|(j, r)| (j.id.clone(), (r.start.unwrap() - j.submit) as f64 / 1e6))
        .collect()
}

/// One 10-GPU node. Hand-computed:
/// t=0: a(6) and b(4) start; c(8) waits. t=1: d(2) arrives, waits (0 free). t=5: b ends -> 4 free: FIFO walks
/// c(8, no), d(2, yes: greedy starts it), e(2, arrived at 5: yes). t=10: a ends -> 6 free... c needs 8, free
/// is 6 (d, e hold 4) -> waits; t=15: d and e end (started 5, 10 s) -> c starts at 15.
const TRACE: &str = "job_id,submit_time,duration,num_gpu,extra\n\
a,0,10,6,x\n\
b,0,5,4,x\n\
c,0,20,8,x\n\
d,1,10,2,x\n\
e,5,10,2,x\n";

#[test]
fn greedy_fifo_on_one_pooled_node_matches_the_hand_computed_schedule() {
    let (_d, w) = with_trace(&pooled(10, "fifo"), TRACE);
    let w = w.unwrap();
    let got = waits(&w);
    let want = [("a", 0.0), ("b", 0.0), ("c", 15.0), ("d", 4.0), ("e", 0.0)];
    assert_eq!(
        got,
        want.map(|(i, s)| (i.to_string(), s)).to_vec(),
        "greedy FIFO"
    );
}

/// Same trace, SJF on true durations. t=0: queue by duration b(5) a(10) c(20): b and a start (10 GPUs).
/// t=5: b ends -> 4 free; queue d(10), e(10; ties by submit: d first), c(20): d, e start. t=10: a ends -> 6
/// free, c(8) waits; t=15: d, e end -> c starts at 15. Waits equal FIFO's here except by construction of
/// the order; a second case separates them below.
#[test]
fn greedy_sjf_orders_by_duration_with_submit_then_trace_order_ties() {
    let (_d, w) = with_trace(&pooled(10, "sjf"), TRACE);
    let got = waits(&w.unwrap());
    let want = [("a", 0.0), ("b", 0.0), ("c", 15.0), ("d", 4.0), ("e", 0.0)];
    assert_eq!(got, want.map(|(i, s)| (i.to_string(), s)).to_vec());
    // 4 GPUs; x holds all of them until 10. At 10 the queue holds long(4, 30 s), s2(4, 5 s), s1(4, 5 s; same
    // duration and submit as s2 but later in the trace): SJF runs s2, s1, long; FIFO runs long first.
    let t = "job_id,submit_time,duration,num_gpu\nx,0,10,4\nlong,1,30,4\ns2,2,5,4\ns1,2,5,4\n";
    let (_d, sjf) = with_trace(&pooled(4, "sjf"), t);
    let sjf = waits(&sjf.unwrap());
    assert_eq!(
        sjf,
        [("x", 0.0), ("long", 19.0), ("s2", 8.0), ("s1", 13.0)]
            .map(|(i, s)| (i.to_string(), s))
            .to_vec()
    );
    let (_d, fifo) = with_trace(&pooled(4, "fifo"), t);
    let fifo = waits(&fifo.unwrap());
    assert_eq!(
        fifo,
        [("x", 0.0), ("long", 9.0), ("s2", 38.0), ("s1", 43.0)]
            .map(|(i, s)| (i.to_string(), s))
            .to_vec()
    );
}

#[test]
fn a_job_ending_at_t_frees_its_gpus_for_the_round_at_t() {
    // a ends at exactly 7; b arrives at 7 and needs all 4 GPUs: it starts at 7 (completions, then arrivals,
    // then the round), and ends at 7 + 3.
    let t = "job_id,submit_time,duration,num_gpu\na,0,7,4\nb,7,3,4\n";
    let (_d, w) = with_trace(&pooled(4, "fifo"), t);
    let w = w.unwrap();
    let o = common::run(&w);
    assert_eq!(o.jobs[1].start, Some(7_000_000));
    assert_eq!(o.jobs[1].end, Some(10_000_000));
}

#[test]
fn custom_pools_of_one_huge_node_and_of_many_one_gpu_nodes_run() {
    for (per_node, count, job_gpus) in [(6500u32, 1u32, 6500u32), (1, 4096, 4096)] {
        let text = format!(
            "[[cluster.pools]]\ngpu = \"h100\"\ngpus_per_node = {per_node}\ncount = {count}\n\
             [[jobs]]\ngpus = {job_gpus}\nduration_s = 60\n\
             [[jobs]]\ngpus = 1\nduration_s = 60\n"
        );
        let w = common::from_toml(&text);
        assert_eq!(w.cluster.pools[0].gpus(), per_node as u64 * count as u64);
        let o = common::run(&w);
        // The whole-cluster job starts at 0, the 1-GPU job after it.
        assert_eq!(o.jobs[0].start, Some(0), "{per_node}x{count}");
        assert_eq!(o.jobs[1].start, Some(60_000_000), "{per_node}x{count}");
    }
}

#[test]
fn the_bundled_job_trace_workload_runs_and_passes_the_checker() {
    let w = load("workloads/job-trace.toml");
    assert_eq!(w.jobs.len(), 3630);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    bin()
        .args([
            "run",
            &repo("workloads/job-trace.toml"),
            "--backend",
            "cpu",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    bin().arg("check").arg(&out).assert().code(0);
}

#[test]
fn limit_keeps_the_first_rows_and_traces_mix_with_jobs_and_generators() {
    let wl = format!(
        "{}limit = 3\n[[jobs]]\nid = \"explicit\"\ngpus = 1\nduration_s = 1\n\
         [[generators]]\nname = \"g\"\ncount = 2\nrate_per_hour = 60\ngpu_mix = [{{ gpus = 1, weight = 1 }}]\n\
         duration = {{ median_s = 60, sigma = 0.5 }}\n",
        pooled(10, "fifo")
    );
    let (_d, w) = with_trace(&wl, TRACE);
    let w = w.unwrap_or_else(|e| panic!("{e:#}"));
    let mut ids: Vec<&str> = w.jobs.iter().map(|j| j.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids.len(), 6, "{ids:?}");
    for id in ["a", "b", "c", "explicit"] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    assert!(!ids.contains(&"d"));
}

/// Bad traces and pools: exit 2, the message names the file, the row and the column, nothing is written.
#[test]
fn bad_rows_and_pools_exit_2_naming_file_row_and_column() {
    let cases: [(&str, String, &str, &str); 8] = [
        (
            "zero gpus",
            pooled(10, "fifo"),
            "job_id,submit_time,duration,num_gpu\na,0,1,0\n",
            "trace.csv: row 1, column `num_gpu`",
        ),
        (
            "fractional gpus",
            pooled(10, "fifo"),
            "job_id,submit_time,duration,num_gpu\na,0,1,1\nb,0,1,0.5\n",
            "trace.csv: row 2, column `num_gpu`",
        ),
        (
            "negative submit",
            pooled(10, "fifo"),
            "job_id,submit_time,duration,num_gpu\na,-3,1,1\n",
            "trace.csv: row 1, column `submit_time`",
        ),
        (
            "duplicate id",
            pooled(10, "fifo"),
            "job_id,submit_time,duration,num_gpu\na,0,1,1\nb,0,1,1\na,3,1,1\n",
            "trace.csv: row 3, column `job_id`: job id `a` is used twice in this trace (first in row 1)",
        ),
        (
            "missing column",
            pooled(10, "fifo"),
            "job_id,submit_time,num_gpu\na,0,1\n",
            "no column `duration`",
        ),
        (
            "trace file missing",
            pooled(10, "fifo").replace("trace.csv", "nope.csv"),
            "",
            "job_traces[0].path",
        ),
        (
            "custom pool without gpus_per_node",
            "[[cluster.pools]]\ngpu = \"h100\"\ncount = 1\n".into(),
            "",
            "cluster.pools[0].gpus_per_node",
        ),
        (
            "preset and custom shape",
            "[[cluster.pools]]\npreset = \"p5-h100\"\ngpus_per_node = 4\ncount = 1\n".into(),
            "",
            "cluster.pools[0].gpus_per_node",
        ),
    ];
    for (what, wl, trace, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.toml"), &wl).unwrap();
        std::fs::write(dir.path().join("trace.csv"), trace).unwrap();
        let out = dir.path().join("out");
        let o = bin()
            .args(["run", "--backend", "cpu", "--out"])
            .arg(&out)
            .arg(dir.path().join("w.toml"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(want), "{what}: `{err}` lacks `{want}`");
        assert!(!Path::new(&out).exists(), "{what}: wrote output");
    }
}
