//! One experiment = (trace, policy, tune, seed): order the pods, tune up, place them one by one, and record
//! arrived / allocated / fragmentation after every attempt. No I/O; cannot fail on validated input.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::kernel::node_score::{
    after_placing, feasible, node_frag, FgdInputs, NodeRecord, NodeScoreBackend, PodRecord,
    ScoreWinner,
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
    /// Per attempt: the chosen node and GPU mask (bit i = GPU i), or `None` when the pod failed.
    pub placements: Vec<Option<(usize, u32)>>,
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

/// The attempt order and node tie-break ranks of one experiment: from `draws` when given (exact replay; build
/// them with `replay`, which guarantees every pod id is in range and every node has a rank), otherwise from
/// the seed.
pub fn order_and_ranks(
    trace: &Trace,
    seed: u64,
    tune: f64,
    draws: Option<&Draws>,
) -> (Vec<usize>, Vec<u32>) {
    match draws {
        Some(d) => (d.pod_order.clone(), d.node_rank.clone()),
        None => (pod_order(trace, seed, tune), node_ranks(trace, seed)),
    }
}

/// The trace's nodes with their tie-break ranks: the state before the first attempt.
pub fn ranked_nodes(trace: &Trace, ranks: &[u32]) -> Vec<NodeRecord> {
    let mut nodes = trace.nodes.clone();
    for (n, r) in nodes.iter_mut().zip(ranks) {
        n.rank = *r;
    }
    nodes
}

/// The cluster as the attempts leave it, and the record of every attempt: what `run` and `replay_placements`
/// share, so an experiment decided elsewhere (the lockstep GPU grid) yields the same `Outcome`.
struct Tally<'t> {
    trace: &'t Trace,
    nodes: Vec<NodeRecord>,
    /// F(N) per node.
    frag: Vec<f64>,
    idle: u64,
    arrived: u64,
    allocated: u64,
    placed: usize,
    events: Vec<Event>,
    placements: Vec<Option<(usize, u32)>>,
}

impl<'t> Tally<'t> {
    fn new(trace: &'t Trace, nodes: Vec<NodeRecord>, attempts: usize) -> Tally<'t> {
        let frag = nodes.iter().map(|n| node_frag(n, &trace.typical)).collect();
        let idle = nodes.iter().map(|n| n.idle() as u64).sum();
        Tally {
            trace,
            nodes,
            frag,
            idle,
            arrived: 0,
            allocated: 0,
            placed: 0,
            events: Vec::with_capacity(attempts),
            placements: Vec::with_capacity(attempts),
        }
    }

    /// Records one attempt of `pod`: placed on node `ni` on the GPUs of the mask, or failed.
    fn attempt(&mut self, pod: &PodRecord, chosen: Option<(usize, u32)>) {
        self.arrived += pod.gpu_demand() as u64;
        self.placements.push(chosen);
        if let Some((ni, gpus)) = chosen {
            let mut after = after_placing(&self.nodes[ni], pod, gpus);
            after.tags |= pod.tag;
            after.version += 1;
            self.frag[ni] = node_frag(&after, &self.trace.typical);
            self.nodes[ni] = after;
            self.idle -= pod.gpu_demand() as u64;
            self.allocated += pod.gpu_demand() as u64;
            self.placed += 1;
        }
        // Summing all nodes each time (1 µs) keeps the total free of drift from repeated += deltas.
        let frag_milli: f64 = self.frag.iter().sum();
        let frag_ratio = if self.idle == 0 {
            0.0
        } else {
            100.0 * frag_milli / self.idle as f64
        };
        self.events.push(Event {
            arrived: self.arrived,
            allocated: self.allocated,
            frag_ratio,
        });
    }

    fn outcome(self) -> Outcome {
        Outcome {
            attempted: self.events.len(),
            placed: self.placed,
            events: self.events,
            placements: self.placements,
        }
    }
}

/// Runs one experiment. With `draws`, the pod order and node ranks come from them (see `order_and_ranks`);
/// otherwise from the seed. `seed` also drives the Random policy.
pub fn run(
    trace: &Trace,
    policy: Policy,
    seed: u64,
    tune: f64,
    draws: Option<&Draws>,
    backend: &mut dyn NodeScoreBackend,
) -> Outcome {
    let (order, ranks) = order_and_ranks(trace, seed, tune, draws);
    let mut tally = Tally::new(trace, ranked_nodes(trace, &ranks), order.len());
    let mut rng = rng(seed, STREAM_POLICY);
    backend.reset();
    let kernel_policy = policy.kernel_id();
    let mut feasible_nodes: Vec<usize> = Vec::new();
    for &pi in &order {
        let pod = &trace.pods[pi];
        let nodes = &tally.nodes;
        let chosen = match kernel_policy {
            Some(kp) => {
                let fgd = FgdInputs {
                    typical: &trace.typical,
                    node_frag: &tally.frag,
                };
                let w: ScoreWinner = backend.best_node(kp, pod, nodes, &fgd);
                w.is_feasible().then_some(w.node as usize)
            }
            None => {
                feasible_nodes.clear();
                feasible_nodes.extend((0..nodes.len()).filter(|&i| feasible(&nodes[i], pod)));
                (!feasible_nodes.is_empty())
                    .then(|| feasible_nodes[rng.random_range(0..feasible_nodes.len())])
            }
        };
        let chosen = chosen.map(|ni| {
            let gpus =
                policy.choose_gpus(&nodes[ni], pod, &trace.typical, tally.frag[ni], &mut rng);
            (ni, gpus)
        });
        tally.attempt(pod, chosen);
    }
    tally.outcome()
}

/// The `Outcome` of an experiment whose placements were decided elsewhere (the lockstep GPU grid): `order`
/// and `ranks` as `order_and_ranks` gives them, one placement per attempt. Every placement is checked against
/// the cluster as the earlier ones left it (node in range, pod feasible there, a GPU mask of exactly the GPUs
/// the pod needs, each with room); the first that is not is an error naming the attempt.
pub fn replay_placements(
    trace: &Trace,
    order: &[usize],
    ranks: &[u32],
    placements: &[Option<(usize, u32)>],
) -> Result<Outcome, String> {
    if placements.len() != order.len() {
        return Err(format!(
            "{} placements for {} attempts",
            placements.len(),
            order.len()
        ));
    }
    let mut tally = Tally::new(trace, ranked_nodes(trace, ranks), order.len());
    for (a, (&pi, &chosen)) in order.iter().zip(placements).enumerate() {
        let pod = &trace.pods[pi];
        if let Some((ni, mask)) = chosen {
            let Some(node) = tally.nodes.get(ni) else {
                return Err(format!("attempt {a}: node {ni} out of range"));
            };
            let want = if pod.uses_gpu() { pod.gpus } else { 0 };
            let fits = (0..node.gpu_count as usize)
                .filter(|&i| mask & (1 << i) != 0)
                .all(|i| node.gpu_left[i] >= pod.milli);
            if !feasible(node, pod)
                || mask.count_ones() != want
                || mask.checked_shr(node.gpu_count).unwrap_or(0) != 0
                || !fits
            {
                return Err(format!(
                    "attempt {a}: pod {pi} cannot take GPUs {mask:#b} of node {ni}"
                ));
            }
        }
        tally.attempt(pod, chosen);
    }
    Ok(tally.outcome())
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
    use crate::input::openb::{parse_nodes, parse_pods};
    use crate::kernel::node_score::CpuNodeScorer;

    /// Runs `policy` on a tiny cluster with pods attempted in file order and node ranks = file order.
    fn place(nodes: &str, pods: &str, policy: Policy) -> Vec<Option<(usize, u32)>> {
        let nodes = parse_nodes(
            format!("sn,cpu_milli,memory_mib,gpu,model\n{nodes}").as_bytes(),
            "n",
        )
        .unwrap();
        let pods = parse_pods(
            format!("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n{pods}").as_bytes(),
            "p",
        )
        .unwrap();
        let trace = Trace::new("w", &nodes, "n", &pods).unwrap();
        let draws = Draws {
            pod_order: (0..pods.len()).collect(),
            node_rank: (0..nodes.len() as u32).collect(),
        };
        run(
            &trace,
            policy,
            1,
            1.0,
            Some(&draws),
            &mut CpuNodeScorer::new(),
        )
        .placements
    }

    #[test]
    fn dot_product_takes_the_node_aligned_with_the_pod() {
        // small: d = 0.25*0.125 + 0.25*0.125 -> 96; big: d = 0.125 + 0.125 -> 87.
        let p = place(
            "big,128000,999999,8,A\nsmall,32000,999999,2,A",
            "p0,16000,1,1,1000",
            Policy::DotProd,
        );
        assert_eq!(p, [Some((1, 0b1))]);
    }

    #[test]
    fn gpu_clustering_groups_pods_by_gpu_shape() {
        let p = place(
            "a,96000,999999,8,A\nb,96000,999999,8,A",
            "p0,1000,1,1,300\np1,1000,1,1,1000\np2,1000,1,1,300",
            Policy::GpuClustering,
        );
        // p0: both empty (25 each) -> rank 0 = a. p1 (1-gpu): a holds `share` only (0), b empty (25) -> b.
        // p2 (share): a holds only `share` (75 + base) -> a, on the tightest GPU (GPU 0, 700 left).
        assert_eq!(p, [Some((0, 0b1)), Some((1, 0b1)), Some((0, 0b1))]);
    }

    #[test]
    fn gpu_packing_prefers_small_idle_nodes_then_shared_gpus() {
        let p = place(
            "eight,96000,999999,8,A\ntwo,96000,999999,2,A",
            "p0,1000,1,1,300\np1,1000,1,1,300\np2,1000,1,1,1000",
            Policy::GpuPacking,
        );
        // p0: idle nodes score max(33-8, 8) = 25 and max(33-2, 2) = 31 -> two. p1: shares two's GPU 0
        // (100 - 70/10 = 93). p2 (whole GPU): two has a free GPU on a used node (49) -> two, GPU 1.
        assert_eq!(p, [Some((1, 0b1)), Some((1, 0b1)), Some((1, 0b10))]);
    }

    #[test]
    fn best_fit_takes_the_tightest_node() {
        let p = place(
            "big,128000,999999,8,A\ntight,8000,999999,1,A",
            "p0,8000,1,1,1000\np1,8000,1,1,1000",
            Policy::BestFit,
        );
        // p0 fills `tight` exactly (100 vs 9); p1 only fits `big` (exactly one feasible node).
        assert_eq!(p, [Some((1, 0b1)), Some((0, 0b1))]);
    }

    #[test]
    fn fgd_fills_the_leftover_that_fragments() {
        let p = place(
            "a,96000,999999,2,A\nb,96000,999999,2,A",
            "p0,1000,1,1,600\np1,1000,1,1,400\np2,1000,1,1,600\np3,1000,1,1,400",
            Policy::Fgd,
        );
        // Typical pods: m=600 and m=400, half each. p0: a, GPU 0 (ties by rank and index), leaving 400 that
        // is fragment for m=600. p1 (m=400) fills exactly that GPU: F falls, so it scores above 50 there.
        assert_eq!(p[0], Some((0, 0b1)));
        assert_eq!(p[1], Some((0, 0b1)));
    }

    #[test]
    fn failed_pods_are_dropped_and_counted_as_arrived() {
        let nodes = "a,8000,1000,1,A";
        let p = place(
            nodes,
            "p0,1000,1,1,1000\np1,1000,1,1,500\np2,1000,5000,0,0\np3,1000,1,0,0",
            Policy::BestFit,
        );
        assert_eq!(
            p,
            [Some((0, 0b1)), None, None, Some((0, 0))],
            "no GPU left; memory short; CPU-only fits"
        );
    }

    #[test]
    fn random_is_reproducible_and_only_picks_feasible_nodes() {
        let nodes = "a,8000,999999,1,A\nb,8000,999999,1,A\nc,8000,999999,1,B";
        let pods = "p0,1000,1,1,500\np1,1000,1,1,500\np2,1000,1,1,500\np3,1000,1,1,500";
        let p = place(nodes, pods, Policy::Random);
        assert_eq!(p, place(nodes, pods, Policy::Random));
        assert!(p.iter().all(|x| x.is_some()));
        let more = "p0,1000,1,1,1000\np1,1000,1,1,1000\np2,1000,1,1,1000\np3,1000,1,1,1000";
        let p = place(nodes, more, Policy::Random);
        assert_eq!(
            p.iter().filter(|x| x.is_some()).count(),
            3,
            "three GPUs, four whole-GPU pods"
        );
    }

    #[test]
    fn own_rng_order_is_seeded_and_tuned_up() {
        let nodes = parse_nodes(
            b"sn,cpu_milli,memory_mib,gpu,model\na,8000,999999,2,A\n",
            "n",
        )
        .unwrap();
        let pods = parse_pods(
            b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\nx,1,1,1,500\ny,1,1,0,0\n",
            "p",
        )
        .unwrap();
        let trace = Trace::new("w", &nodes, "n", &pods).unwrap();
        let order = pod_order(&trace, 7, 1.3);
        assert_eq!(order, pod_order(&trace, 7, 1.3));
        // Target 2600 milli: the original 500, then copies of x (500 each) until 2500; y copies add nothing.
        let demand: u64 = order
            .iter()
            .map(|&i| trace.pods[i].gpu_demand() as u64)
            .sum();
        assert_eq!(demand, 2500);
        let mut ranks = node_ranks(&trace, 7);
        ranks.sort();
        assert_eq!(ranks, [0]);
    }

    #[test]
    fn replayed_placements_give_the_run_and_impossible_ones_are_refused() {
        let nodes = parse_nodes(
            b"sn,cpu_milli,memory_mib,gpu,model\na,8000,999999,2,A\nb,8000,999999,1,A\n",
            "n",
        )
        .unwrap();
        let pods = parse_pods(
            b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\nx,1000,1,1,600\ny,1000,1,2,1000\nz,1000,1,1,1000\n",
            "p",
        )
        .unwrap();
        let trace = Trace::new("w", &nodes, "n", &pods).unwrap();
        let order = vec![0, 1, 2];
        let ranks = vec![0, 1];
        let draws = Draws {
            pod_order: order.clone(),
            node_rank: ranks.clone(),
        };
        let want = run(
            &trace,
            Policy::BestFit,
            1,
            1.0,
            Some(&draws),
            &mut CpuNodeScorer::new(),
        );
        // x (600 milli) fills b's one GPU best; y needs both of a's; z then finds no whole GPU.
        assert_eq!(want.placements, [Some((1, 0b1)), Some((0, 0b11)), None]);
        let got = replay_placements(&trace, &order, &ranks, &want.placements).unwrap();
        assert_eq!(got, want);
        let refused = |placements: &[Option<(usize, u32)>]| {
            replay_placements(&trace, &order, &ranks, placements).unwrap_err()
        };
        // A GPU already taken, a node out of range, one GPU for a two-GPU pod, a GPU the node lacks.
        let e = refused(&[Some((1, 0b1)), Some((0, 0b11)), Some((1, 0b1))]);
        assert!(e.starts_with("attempt 2:"), "{e}");
        assert!(refused(&[Some((2, 0b1)), None, None]).contains("out of range"));
        assert!(refused(&[None, Some((0, 0b1)), None]).starts_with("attempt 1:"));
        assert!(refused(&[Some((1, 0b10)), None, None]).starts_with("attempt 0:"));
        assert!(refused(&[None, None]).contains("2 placements for 3 attempts"));
    }

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
