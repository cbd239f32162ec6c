//! Every bundled workload under every queue x placement x backfill combination passes the independent
//! checker (issue 17, item 5). Runs the cluster engine only (request-level serving does not change the
//! schedule) on the CPU twin, combinations in parallel.

mod common;

use rayon::prelude::*;
use ultrasched::domain::workload::{Backfill, PlacementPolicy, QueuePolicy};
use ultrasched::input::workload::Overrides;

const QUEUES: [QueuePolicy; 6] = [
    QueuePolicy::Fifo,
    QueuePolicy::Sjf,
    QueuePolicy::SmallestArea,
    QueuePolicy::Priority,
    QueuePolicy::Las,
    QueuePolicy::FairShare,
];
const PLACEMENTS: [PlacementPolicy; 4] = [
    PlacementPolicy::FirstFit,
    PlacementPolicy::BestFit,
    PlacementPolicy::TopologyPack,
    PlacementPolicy::FragAware,
];
const BACKFILLS: [Backfill; 3] = [Backfill::None, Backfill::Easy, Backfill::Greedy];

#[test]
fn every_bundled_workload_passes_the_checker_under_every_policy_combination() {
    let mut runs = Vec::new();
    for file in common::bundled() {
        for q in QUEUES {
            for p in PLACEMENTS {
                for b in BACKFILLS {
                    runs.push((file.clone(), q, p, b));
                }
            }
        }
    }
    let failures: Vec<String> = runs
        .par_iter()
        .filter_map(|(file, q, p, b)| {
            let ov = Overrides {
                queue: Some(*q),
                placement: Some(*p),
                backfill: Some(*b),
                ..Overrides::default()
            };
            let w = common::load_with(file, ov);
            let o = common::run(&w);
            common::check_outcome(&w, &o).err().map(|e| {
                format!(
                    "{file} --queue {} --placement {:?} --backfill {}: {e}",
                    q.as_str(),
                    p,
                    b.as_str()
                )
            })
        })
        .collect();
    assert!(runs.len() >= 5 * 72, "{} runs", runs.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
