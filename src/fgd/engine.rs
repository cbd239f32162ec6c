//! One experiment = (trace, policy, tune, seed): order the pods, tune up, place them one by one, and record
//! arrived / allocated / fragmentation after every attempt. No I/O; cannot fail on validated input.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::kernel::node_score::{
    after_placing, feasible, node_frag, FgdInputs, NodeScoreBackend, ScoreWinner,
};

use super::policy::Policy;
use super::trace::Trace;

/// RNG stream of the pod shuffle (streams keep the draws independent, so every policy sees the same pods).
const STREAM_ORDER: u64 = 1;
/// RNG stream of the tune-up draws.
const STREAM_TUNE: u64 = 2;
/// RNG stream of the node tie-break permutation.
const STREAM_NODES: u64 = 3;
/// RNG stream of the Random policy.
const STREAM_POLICY: u64 = 4;

/// What the original's RNG decided, to replay instead of the project's own (see `replay`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draws {
    /// Pod ids (indices into `Trace::pods`) in attempt order, tune-up copies included.
    pub pod_order: Vec<usize>,
    /// Tie-break rank of each node (indexed like `Trace::nodes`).
    pub node_rank: Vec<u32>,
}

/// The state after one pod attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    /// GPU milli of all pods attempted so far (failed included).
    pub arrived: u64,
    /// GPU milli of placed pods.
    pub allocated: u64,
    /// Cluster fragmentation: 100 * sum F(N) / idle milli.
    pub frag_ratio: f64,
}

/// Result of one experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Pods attempted (originals + tune-up copies).
    pub attempted: usize,
    /// Pods placed.
    pub placed: usize,
    /// One event per attempt.
    pub events: Vec<Event>,
}

/// The project's RNG for one purpose of one seed.
fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// The attempt order of the project's own RNG: pods sorted by name, shuffled, then tune-up copies drawn uniformly
/// from the sorted list until one would push the total past `tune` x capacity (compared with m, not k*m, as the
/// original does).
pub fn pod_order(trace: &Trace, seed: u64, tune: f64) -> Vec<usize> {
    let n = trace.pods.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng(seed, STREAM_ORDER));
    let target = tune * trace.capacity_milli() as f64;
    let mut total: u64 = trace.pods.iter().map(|p| p.gpu_demand() as u64).sum();
    // Without GPU pods the total never grows and the loop would not end.
    if n > 0 && trace.pods.iter().any(|p| p.milli > 0) {
        let mut rng = rng(seed, STREAM_TUNE);
        loop {
            let i = rng.random_range(0..n);
            let p = &trace.pods[i];
            if (total + p.milli as u64) as f64 > target {
                break;
            }
            order.push(i);
            total += p.gpu_demand() as u64;
        }
    }
    order
}

/// The node tie-break ranks of the project's own RNG: a seeded permutation.
pub fn node_ranks(trace: &Trace, seed: u64) -> Vec<u32> {
    let mut perm: Vec<u32> = (0..trace.nodes.len() as u32).collect();
    perm.shuffle(&mut rng(seed, STREAM_NODES));
    let mut rank = vec![0; perm.len()];
    for (r, &node) in perm.iter().enumerate() {
        rank[node as usize] = r as u32;
    }
    rank
}

/// Runs one experiment. With `draws`, the pod order and node ranks come from them (exact replay); otherwise
/// from the seed. `seed` also drives the Random policy.
pub fn run(
    trace: &Trace,
    policy: Policy,
    seed: u64,
    tune: f64,
    draws: Option<&Draws>,
    backend: &mut dyn NodeScoreBackend,
) -> Outcome {
    let (order, ranks) = match draws {
        Some(d) => (d.pod_order.clone(), d.node_rank.clone()),
        None => (pod_order(trace, seed, tune), node_ranks(trace, seed)),
    };
    let mut nodes = trace.nodes.clone();
    for (n, r) in nodes.iter_mut().zip(&ranks) {
        n.rank = *r;
    }
    let mut frag: Vec<f64> = nodes.iter().map(|n| node_frag(n, &trace.typical)).collect();
    let mut idle: u64 = nodes.iter().map(|n| n.idle() as u64).sum();
    let mut rng = rng(seed, STREAM_POLICY);
    backend.reset();
    let kernel_policy = policy.kernel_id();

    let mut events = Vec::with_capacity(order.len());
    let (mut arrived, mut allocated, mut placed) = (0u64, 0u64, 0usize);
    let mut feasible_nodes: Vec<usize> = Vec::new();
    for &pi in &order {
        let pod = &trace.pods[pi];
        arrived += pod.gpu_demand() as u64;
        let chosen = match kernel_policy {
            Some(kp) => {
                let fgd = FgdInputs {
                    typical: &trace.typical,
                    node_frag: &frag,
                };
                let w: ScoreWinner = backend.best_node(kp, pod, &nodes, &fgd);
                w.is_feasible().then_some(w.node as usize)
            }
            None => {
                feasible_nodes.clear();
                feasible_nodes.extend((0..nodes.len()).filter(|&i| feasible(&nodes[i], pod)));
                (!feasible_nodes.is_empty())
                    .then(|| feasible_nodes[rng.random_range(0..feasible_nodes.len())])
            }
        };
        if let Some(ni) = chosen {
            let node = &nodes[ni];
            let gpus = policy.choose_gpus(node, pod, &trace.typical, frag[ni], &mut rng);
            let mut after = after_placing(node, pod, gpus);
            after.tags |= pod.tag;
            after.version += 1;
            frag[ni] = node_frag(&after, &trace.typical);
            nodes[ni] = after;
            idle -= pod.gpu_demand() as u64;
            allocated += pod.gpu_demand() as u64;
            placed += 1;
        }
        // Summing all nodes each time (1 µs) keeps the total free of drift from repeated += deltas.
        let frag_milli: f64 = frag.iter().sum();
        let frag_ratio = if idle == 0 {
            0.0
        } else {
            100.0 * frag_milli / idle as f64
        };
        events.push(Event {
            arrived,
            allocated,
            frag_ratio,
        });
    }
    Outcome {
        attempted: order.len(),
        placed,
        events,
    }
}

/// Python's `round(x, 2)`: the decimal nearest to the exact binary value, ties to even, read back as f64.
pub fn round2(x: f64) -> f64 {
    // Rust's fixed-precision formatting rounds the exact binary value half to even, as Python does.
    format!("{x:.2}").parse().unwrap_or(x)
}

/// Mean as pandas' grouped mean computes it (Kahan-compensated sum / n). The published allocation curve was
/// averaged this way: a plain sum rounds one `x.xx5` tie differently (DotProd seed 51, column 109).
fn mean_kahan(v: &[f64]) -> f64 {
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    for &x in v {
        let y = x - comp;
        let t = sum + y;
        comp = (t - sum) - y;
        sum = t;
    }
    sum / v.len() as f64
}

/// Mean as numpy computes it (pairwise sum / n). The published fragmentation curve matches this to the bit.
fn mean_pairwise(v: &[f64]) -> f64 {
    pairwise_sum(v) / v.len() as f64
}

/// numpy's `pairwise_sum`: plain loop below 8 values, 8 interleaved accumulators up to 128, halves above.
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(-0.0, |s, &x| s + x)
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (k, acc) in r.iter_mut().enumerate() {
                *acc += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut half = n / 2;
        half -= half % 8;
        pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
    }
}

/// The published curves of one experiment: for each column x in 0..=`columns`, the mean allocation ratio (%)
/// (of per-event values rounded to 2 decimals, then rounded to 2 decimals) and the mean fragmentation ratio
/// (%, per-event values rounded to 2 decimals, the mean not rounded) over events whose arrived ratio rounds (half to even) to x; when none does, over those rounding to
/// x-1..=x+1. `None` where even that is empty.
pub fn curves(
    events: &[Event],
    total_gpus: u32,
    columns: usize,
) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
    let pct = |milli: u64| milli as f64 / total_gpus as f64 / 10.0;
    let bucket: Vec<i64> = events
        .iter()
        .map(|e| pct(e.arrived).round_ties_even() as i64)
        .collect();
    let alloc: Vec<f64> = events.iter().map(|e| round2(pct(e.allocated))).collect();
    let frag: Vec<f64> = events.iter().map(|e| round2(e.frag_ratio)).collect();
    let mut alloc_curve = Vec::with_capacity(columns + 1);
    let mut frag_curve = Vec::with_capacity(columns + 1);
    for x in 0..=columns as i64 {
        let pick = |lo: i64, hi: i64| {
            let (mut va, mut vf) = (Vec::new(), Vec::new());
            for (i, &b) in bucket.iter().enumerate() {
                if b >= lo && b <= hi {
                    va.push(alloc[i]);
                    vf.push(frag[i]);
                }
            }
            (!va.is_empty()).then(|| (round2(mean_kahan(&va)), mean_pairwise(&vf)))
        };
        let v = pick(x, x).or_else(|| pick(x - 1, x + 1));
        alloc_curve.push(v.map(|v| v.0));
        frag_curve.push(v.map(|v| v.1));
    }
    (alloc_curve, frag_curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round2_is_pythons_round() {
        // Python: round(2.675, 2) == 2.67 (binary value below the half), round(0.125, 2) == 0.12 (exact tie, even).
        assert_eq!(round2(2.675), 2.67);
        assert_eq!(round2(0.125), 0.12);
        assert_eq!(round2(0.375), 0.38);
        assert_eq!(round2(1.005), 1.0);
    }

    #[test]
    fn curves_bucket_by_rounded_arrival_with_fallback() {
        // 10 GPUs: 1 % = 100 milli. Events at 0.4 %, 0.6 %, 3.2 %.
        let ev = |a: u64, l: u64| Event {
            arrived: a,
            allocated: l,
            frag_ratio: a as f64,
        };
        let events = [ev(40, 40), ev(60, 50), ev(320, 300)];
        let (alloc, frag) = curves(&events, 10, 4);
        assert_eq!(alloc[0], Some(0.4));
        assert_eq!(alloc[1], Some(0.5));
        assert_eq!(
            alloc[2],
            Some(1.75),
            "empty bucket 2 falls back to buckets 1..=3"
        );
        assert_eq!(alloc[3], Some(3.0));
        assert_eq!(alloc[4], Some(3.0), "falls back to 3..=5");
        assert_eq!(frag[0], Some(40.0));
        let (alloc, _) = curves(&events, 10, 6);
        assert_eq!(alloc[6], None);
    }
}
