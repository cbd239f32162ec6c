//! Statistical agreement with the published FGD study, using the project's own RNG (not the original's draws):
//! on `openb_pod_list_default`, seeds 42..51, every policy's 10-seed mean allocation ratio at each column
//! 100..130 lies within 0.5 percentage point of the published mean (1.0 for Random), and the policies rank at
//! column 130 as published. Run with `cargo test --release --test fgd_agreement` (ignored in debug builds:
//! 60 experiments).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ultrasched::engine::fgd::trace::Trace;
use ultrasched::engine::fgd::{study, Policy};
use ultrasched::input::openb::{load_nodes, load_pods};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/traces")
}

/// Mean over rows of each allocation column, keyed by `sc_policy`.
fn published_means() -> BTreeMap<String, Vec<f64>> {
    let text =
        std::fs::read_to_string(root().join("fgd-reference/allo_discrete_default.csv")).unwrap();
    let mut sums: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let e = sums
            .entry(f[1].to_string())
            .or_insert((0, vec![0.0; f.len() - 5]));
        e.0 += 1;
        for (acc, v) in e.1.iter_mut().zip(&f[5..]) {
            *acc += v.parse::<f64>().unwrap();
        }
    }
    sums.into_iter()
        .map(|(p, (n, s))| (p, s.into_iter().map(|x| x / n as f64).collect()))
        .collect()
}

#[test]
#[cfg_attr(debug_assertions, ignore = "60 experiments; run with --release")]
fn default_trace_agrees_with_the_published_means() {
    let nodes = load_nodes(&root().join("openb/openb_node_list_gpu_node.csv")).unwrap();
    let pods = load_pods(&root().join("openb/openb_pod_list_default.csv")).unwrap();
    let trace = Trace::new("openb_pod_list_default", &nodes, "nodes", &pods).unwrap();
    let seeds: Vec<u64> = (42..=51).collect();
    let rows = study(&trace, &Policy::ALL, &seeds, 1.3, &BTreeMap::new());
    let published = published_means();

    let mut ours: BTreeMap<Policy, Vec<f64>> = BTreeMap::new();
    for r in &rows {
        let e = ours
            .entry(r.policy)
            .or_insert_with(|| vec![0.0; r.alloc.len()]);
        for (acc, v) in e.iter_mut().zip(&r.alloc) {
            *acc += v.expect("every column has events") / seeds.len() as f64;
        }
    }

    let mut failures = Vec::new();
    println!("policy             ours@130  published@130  max|dev| 100..130");
    for (policy, mean) in &ours {
        let want = &published[policy.label()];
        let tolerance = if *policy == Policy::Random { 1.0 } else { 0.5 };
        let mut worst = (0.0f64, 0usize);
        for c in 100..=130 {
            let dev = (mean[c] - want[c]).abs();
            if dev > worst.0 {
                worst = (dev, c);
            }
            if dev > tolerance {
                failures.push(format!(
                    "{} column {c}: ours {:.3}, published {:.3}, |dev| {dev:.3} > {tolerance}",
                    policy.label(),
                    mean[c],
                    want[c]
                ));
            }
        }
        println!(
            "{:<18} {:>8.2} {:>14.2} {:>10.3} (col {})",
            policy.label(),
            mean[130],
            want[130],
            worst.0,
            worst.1
        );
    }

    let rank = |m: &dyn Fn(Policy) -> f64| {
        let mut p = Policy::ALL.to_vec();
        p.sort_by(|a, b| m(*a).total_cmp(&m(*b)));
        p
    };
    let ours_rank = rank(&|p| ours[&p][130]);
    let published_rank = rank(&|p| published[p.label()][130]);
    if ours_rank != published_rank {
        failures.push(format!(
            "ranking at column 130: ours {ours_rank:?}, published {published_rank:?}"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
