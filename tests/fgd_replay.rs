//! Exact replay: with the original simulator's pod order and node tie-break names
//! (workloads/traces/fgd-reference/draws), the study reproduces the published curves of the default trace for
//! DotProd, GpuClustering, GpuPacking, BestFit and FGD. Random cannot be replayed (the original's draws for it
//! are not recorded).
//!
//! Exact: every allocation cell of all 50 (policy, seed) runs, and every fragmentation cell except FGD seeds
//! 43, 49, 50 and 51, where 206 of 524 cells differ by at most 0.01 percentage point (ours slightly higher). The
//! allocation curves of those runs are exact, so every pod lands or fails as in the original; the small excess
//! excess is small and grows slowly (seed 51: about 7 milli-GPU of cluster fragmentation from ~12 % arrived,
//! about 15 by 90 %). Lead: it comes from CPU-only pods. For them every feasible node usually scores exactly
//! 50 (F does not change) and our rank tie-break picks a node the original did not: in seed 51, placing the
//! CPU-only pod of attempt 212 (openb-pod-3830) on any other 50-scoring node instead of openb-node-0252 (rank
//! 14, both GPUs fully used) makes columns 0..25 exact and cuts that seed's deviating cells from 92 to 27.
//! Ruled out: floating-point ties (no FGD score within 1e-9 of an integer, no near-zero F delta), the GPU tie
//! rule, the score cache, and the single-feasible-node GPU choice.
//! `KNOWN_FRAG_DEVIATIONS` pins this so any change in either direction shows up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ultrasched::engine::fgd::engine::Draws;
use ultrasched::engine::fgd::trace::Trace;
use ultrasched::engine::fgd::{study, Policy};
use ultrasched::input::fgd_replay::load_draws;
use ultrasched::input::openb::{load_nodes, load_pods};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/traces")
}

/// Published rows keyed by (sc_policy, seed): the values of columns 0..=130.
fn published(file: &str, skip: usize) -> BTreeMap<(String, u64), Vec<f64>> {
    let text = std::fs::read_to_string(root().join("fgd-reference").join(file)).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let vals = f[skip..]
                .iter()
                .map(|v| v.parse::<f64>().unwrap())
                .collect();
            ((f[1].to_string(), f[3].parse().unwrap()), vals)
        })
        .collect()
}

fn trace() -> Trace {
    let nodes = load_nodes(&root().join("openb/openb_node_list_gpu_node.csv")).unwrap();
    let pods = load_pods(&root().join("openb/openb_pod_list_default.csv")).unwrap();
    Trace::new("openb_pod_list_default", &nodes, "nodes", &pods).unwrap()
}

fn draws(trace: &Trace, seeds: &[u64]) -> BTreeMap<u64, Draws> {
    let d = root().join("fgd-reference/draws");
    seeds
        .iter()
        .map(|&s| {
            let po = d.join(format!("pod_order_default_seed{s}.txt"));
            let nn = d.join(format!("node_names_seed{s}.txt"));
            (s, load_draws(&po, &nn, trace).unwrap())
        })
        .collect()
}

const REPLAYABLE: [Policy; 5] = [
    Policy::DotProd,
    Policy::GpuClustering,
    Policy::GpuPacking,
    Policy::BestFit,
    Policy::Fgd,
];

/// FGD seeds whose fragmentation curve deviates slightly (see the module doc), with the count of deviating cells.
const KNOWN_FRAG_DEVIATIONS: [(u64, usize); 4] = [(43, 3), (49, 62), (50, 49), (51, 92)];
/// Largest deviation allowed in those cells (percentage points).
const KNOWN_FRAG_TOLERANCE: f64 = 0.010_000_1;

/// Runs the replay and returns one line per differing cell (empty = exact, apart from the known deviations).
fn replay_mismatches(seeds: &[u64]) -> Vec<String> {
    let t = trace();
    let d = draws(&t, seeds);
    let rows = study(&t, &REPLAYABLE, seeds, 1.3, &d);
    let alloc = published("allo_discrete_default.csv", 5);
    let frag = published("frag_ratio_discrete_default.csv", 4);
    let mut bad = Vec::new();
    let mut frag_dev: BTreeMap<u64, usize> = BTreeMap::new();
    for r in &rows {
        let key = (r.policy.label().to_string(), r.seed);
        let (want_a, want_f) = (&alloc[&key], &frag[&key]);
        assert_eq!(r.alloc.len(), want_a.len());
        for c in 0..want_a.len() {
            let got = r.alloc[c].unwrap_or(f64::NAN);
            if got != want_a[c] {
                bad.push(format!(
                    "{} seed {} alloc col {c}: ours {got}, published {}",
                    key.0, r.seed, want_a[c]
                ));
            }
            let got = r.frag[c].unwrap_or(f64::NAN);
            if got != want_f[c] {
                let known = r.policy == Policy::Fgd
                    && KNOWN_FRAG_DEVIATIONS.iter().any(|&(s, _)| s == r.seed);
                if known && (got - want_f[c]).abs() <= KNOWN_FRAG_TOLERANCE {
                    *frag_dev.entry(r.seed).or_default() += 1;
                } else {
                    bad.push(format!(
                        "{} seed {} frag col {c}: ours {got}, published {}",
                        key.0, r.seed, want_f[c]
                    ));
                }
            }
        }
    }
    for (seed, count) in KNOWN_FRAG_DEVIATIONS {
        if seeds.contains(&seed) && frag_dev.get(&seed).copied().unwrap_or(0) != count {
            bad.push(format!(
                "06-FGD seed {seed}: {:?} deviating frag cells, expected {count}",
                frag_dev.get(&seed)
            ));
        }
    }
    bad
}

#[test]
fn replay_seed_42_is_exact() {
    let bad = replay_mismatches(&[42]);
    assert!(
        bad.is_empty(),
        "{} cells differ:\n{}",
        bad.len(),
        bad.iter().take(400).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
#[cfg_attr(debug_assertions, ignore = "50 experiments; run with --release")]
fn replay_all_seeds_is_exact() {
    let seeds: Vec<u64> = (42..=51).collect();
    let bad = replay_mismatches(&seeds);
    assert!(
        bad.is_empty(),
        "{} cells differ:\n{}",
        bad.len(),
        bad.iter().take(400).cloned().collect::<Vec<_>>().join("\n")
    );
}
