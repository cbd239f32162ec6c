//! Pins the decisions of every bundled workload (issue 11, item 5): jobs.csv, placements.csv and report.json
//! (without `run` and the engine's work counters, which speed work changes on purpose) hash to the values in
//! tests/snapshots/pinned.txt. Speed work must do less, not decide differently: a change here is a change of
//! semantics and needs a reason in its commit. `ULTRASCHED_BLESS=1 cargo test --release --test pinned`
//! rewrites the file.

mod common;

use ultrasched::output::report::{jobs_csv, placements_csv};

/// FNV-1a, 64 bits: stable across platforms and versions.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn pins(file: &str) -> String {
    let w = common::load(file);
    let o = common::run(&w);
    let mut report = common::report_value(&w, &o);
    let obj = report.as_object_mut().expect("report.json is an object");
    obj.remove("run");
    obj.remove("engine");
    format!(
        "{file} jobs {:016x} placements {:016x} report {:016x}",
        fnv(&jobs_csv(&w, &o)),
        fnv(&placements_csv(&w, &o)),
        fnv(&report.to_string())
    )
}

#[test]
fn bundled_workloads_decide_as_pinned() {
    let mut files = common::bundled();
    files.extend(common::LARGE.iter().map(|l| format!("workloads/{l}")));
    files.sort();
    let got: Vec<String> = files.iter().map(|f| pins(f)).collect();
    let path = common::repo("tests/snapshots/pinned.txt");
    if std::env::var("ULTRASCHED_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, got.join("\n") + "\n").unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    let want: Vec<&str> = want.lines().collect();
    assert_eq!(got.len(), want.len(), "workloads: {files:?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "decisions changed");
    }
}
