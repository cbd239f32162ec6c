//! The node-score kernel's integer formulation and its GPU twin (shaders/node_score.wgsl):
//! - the integer twins equal the f64 scores (BestFit exhaustively, DotProduct densely at and around every
//!   rounding boundary, FGD by identical placements on the default trace);
//! - `GpuNodeScorer` returns the same winners as `CpuNodeScorer` on random node sets and on full experiments.

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ultrasched::kernel::node_score::*;

fn node(cpu_left: u32, gpus: &[u32]) -> NodeRecord {
    let mut n = NodeRecord {
        cpu_left,
        mem_left: 1 << 20,
        gpu_count: gpus.len() as u32,
        version: 1,
        ..Default::default()
    };
    n.gpu_left[..gpus.len()].copy_from_slice(gpus);
    n
}

fn pod(cpu: u32, gpus: u32, milli: u32) -> PodRecord {
    let tag = if gpus == 0 || milli == 0 {
        0
    } else if gpus == 1 && milli < MILLI {
        TAG_SHARE
    } else {
        1 << gpus
    };
    PodRecord {
        cpu,
        gpus,
        milli,
        model_mask: ANY_MODEL,
        tag,
        ..Default::default()
    }
}

/// A node with cpu_left `a` and idle `c` (spread over up to 8 GPUs of <= 1000).
fn node_with_idle(a: u32, c: u32) -> NodeRecord {
    let mut g = Vec::new();
    let mut rest = c;
    while rest > 0 {
        let x = rest.min(MILLI);
        g.push(x);
        rest -= x;
    }
    node(a, &g)
}

/// A pod with cpu `b` and GPU demand `e` = k*m (k GPUs of m milli; e <= 8000 factored as k * m with m <= 1000).
fn pod_with_demand(b: u32, e: u32) -> Option<PodRecord> {
    if e == 0 {
        return Some(pod(b, 0, 0));
    }
    (1..=8u32)
        .find(|k| e.is_multiple_of(*k) && e / k <= MILLI)
        .map(|k| pod(b, k, e / k))
}

/// BestFit: every (A = cpu_left - cpu, B = idle - k*m) of the domain (A <= 128000, B <= 8000). Both scores
/// depend only on (A, B) (cpu_left, cpu, idle, demand enter as differences of exactly representable values).
#[test]
fn best_fit_integer_equals_f64_exhaustively() {
    // Debug builds check every 7th A (plus every A near a boundary); release builds check all 1.03e9 pairs.
    let step = if cfg!(debug_assertions) { 7 } else { 1 };
    let mut checked = 0u64;
    for b in 0..=8000u32 {
        let p = pod(0, 1, 0); // demand 0: B = idle
        let mut a = 0u32;
        while a <= MAX_CPU_MILLI {
            let n = node_with_idle(a, b);
            assert_eq!(
                score_best_fit(&n, &p),
                score_best_fit_int(&n, &p),
                "A={a} B={b}"
            );
            checked += 1;
            a += step;
        }
        if step > 1 {
            // Every A where A + 16B is within 1 of a multiple of 2560.
            let mut m = (16 * b).div_ceil(2560) * 2560;
            while m <= MAX_CPU_MILLI + 16 * b {
                for a in [m.wrapping_sub(16 * b + 1), m - 16 * b, m - 16 * b + 1] {
                    if a <= MAX_CPU_MILLI {
                        let n = node_with_idle(a, b);
                        assert_eq!(score_best_fit(&n, &p), score_best_fit_int(&n, &p));
                    }
                }
                m += 2560;
            }
        }
    }
    assert!(checked > 1000);
}

/// DotProduct: random (a, b, c, e) over the domain, and every exact boundary N = q * 327,680,000 reachable
/// with a*b = 0 or c*e = 0, and +-1 around them, and dense random points near boundaries.
#[test]
fn dot_product_integer_equals_f64() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n_random = if cfg!(debug_assertions) {
        200_000
    } else {
        5_000_000
    };
    let check = |a: u32, b: u32, c: u32, e: u32| {
        if let Some(p) = pod_with_demand(b, e) {
            let n = node_with_idle(a, c);
            let (s, boundary) = dot_product_int(&n, &p);
            if !boundary {
                assert_eq!(score_dot_product(&n, &p), s, "a={a} b={b} c={c} e={e}");
            }
            assert_eq!(score_dot_product(&n, &p), score_dot_product_int(&n, &p));
        }
    };
    for _ in 0..n_random {
        let a = rng.random_range(0..=MAX_CPU_MILLI);
        let b = rng.random_range(0..=a);
        let c = rng.random_range(0..=MAX_GPU_MILLI);
        let e = rng.random_range(0..=c);
        check(a, b, c, e);
    }
    // CPU part alone on boundaries: a*b = q*D (+-): for every a, the b near each multiple.
    let step = if cfg!(debug_assertions) { 97 } else { 1 };
    let mut a = 1;
    while a <= MAX_CPU_MILLI {
        let mut q = 0u64;
        while q * DOT_DIVISOR <= u64::from(a) * u64::from(a) {
            let b0 = (q * DOT_DIVISOR / u64::from(a)) as u32;
            for b in b0.saturating_sub(1)..=b0 + 1 {
                if b <= a {
                    check(a, b, 0, 0);
                }
            }
            q += 1;
        }
        a += step;
    }
    // GPU part alone: 256*c*e = q*D  <=> c*e = q * 1,280,000; every c, e near each multiple.
    for c in 1..=MAX_GPU_MILLI {
        let mut q = 0u64;
        while q * 1_280_000 <= u64::from(c) * u64::from(c) {
            let e0 = (q * 1_280_000 / u64::from(c)) as u32;
            for e in e0.saturating_sub(1)..=e0 + 1 {
                if e <= c {
                    check(0, 0, c, e);
                    check(1, 1, c, e);
                }
            }
            q += 1;
        }
    }
    // Mixed: both parts non-zero, summing near a boundary.
    for _ in 0..n_random / 4 {
        let c = rng.random_range(1..=MAX_GPU_MILLI);
        let e = rng.random_range(0..=c);
        let gpu = 256 * u64::from(c) * u64::from(e);
        let a = rng.random_range(1..=MAX_CPU_MILLI);
        let next = gpu.div_ceil(DOT_DIVISOR) * DOT_DIVISOR + DOT_DIVISOR * rng.random_range(0..3);
        let b0 = ((next - gpu) / u64::from(a)) as u32;
        for b in b0.saturating_sub(1)..=b0 + 1 {
            if b <= a {
                check(a, b, c, e);
            }
        }
    }
}

/// Random typical pods with counts (and their frequencies).
fn random_typical(rng: &mut ChaCha8Rng) -> Vec<TypicalRecord> {
    let n = rng.random_range(1..=40);
    let mut t: Vec<TypicalRecord> = (0..n)
        .map(|_| {
            let (gpus, milli) = match rng.random_range(0..4) {
                0 => (0, 0),
                1 => (1, rng.random_range(1..MILLI)),
                2 => (rng.random_range(1..=8), MILLI),
                _ => (1, MILLI),
            };
            TypicalRecord {
                cpu: rng.random_range(0..=64) * 1000,
                gpus,
                milli,
                model_mask: if rng.random_bool(0.2) {
                    rng.random_range(1..16)
                } else {
                    ANY_MODEL
                },
                freq: 0.0,
                count: rng.random_range(1..=1200),
            }
        })
        .collect();
    let total: u32 = t.iter().map(|x| x.count).sum();
    for x in &mut t {
        x.freq = f64::from(x.count) / f64::from(total);
    }
    t
}

/// Random nodes: mixes of idle, partly used and full GPUs, CPU-only nodes, several models.
fn random_nodes(rng: &mut ChaCha8Rng, n: usize) -> Vec<NodeRecord> {
    let mut ranks: Vec<u32> = (0..n as u32).collect();
    rand::seq::SliceRandom::shuffle(ranks.as_mut_slice(), rng);
    (0..n)
        .map(|i| {
            let g = [0, 1, 2, 4, 8][rng.random_range(0..5)];
            let mut nd = NodeRecord {
                cpu_left: rng.random_range(0..=128) * 1000 + [0, 500, 150][rng.random_range(0..3)],
                mem_left: rng.random_range(0..1 << 20),
                model: rng.random_range(0..4),
                gpu_count: g,
                rank: if rng.random_bool(0.05) { 0 } else { ranks[i] },
                version: 1,
                ..Default::default()
            };
            nd.cpu_left = nd.cpu_left.min(MAX_CPU_MILLI);
            for j in 0..g as usize {
                nd.gpu_left[j] = match rng.random_range(0..4) {
                    0 => MILLI,
                    1 => 0,
                    2 => rng.random_range(0..=MILLI),
                    _ => [500, 250, 750, 100][rng.random_range(0..4)],
                };
            }
            for _ in 0..rng.random_range(0..3) {
                nd.tags |= [TAG_SHARE, 1 << 1, 1 << 2, 1 << 4, 1 << 8][rng.random_range(0..5)];
            }
            nd
        })
        .collect()
}

/// Pod shapes: cpu-only, sharing, whole-GPU multi-GPU, gpu_spec constrained.
fn random_pods(rng: &mut ChaCha8Rng, count: usize) -> Vec<PodRecord> {
    (0..count)
        .map(|i| {
            let cpu = rng.random_range(0..=32) * 1000 + [0, 150, 3150][rng.random_range(0..3)];
            let mut p = match i % 4 {
                0 => pod(cpu, 0, 0),
                1 => pod(cpu, 1, rng.random_range(1..MILLI)),
                2 => pod(cpu, [1, 2, 4, 8][rng.random_range(0..4)], MILLI),
                _ => {
                    let mut p = pod(cpu, 1, [MILLI, 500, 250][rng.random_range(0..3)]);
                    p.model_mask = rng.random_range(1..16);
                    p
                }
            };
            p.mem = rng.random_range(0..1 << 16);
            p.shape = i as u32;
            p
        })
        .collect()
}

const POLICIES: [u32; 5] = [
    POLICY_DOT_PRODUCT,
    POLICY_GPU_CLUSTERING,
    POLICY_GPU_PACKING,
    POLICY_BEST_FIT,
    POLICY_FGD,
];

#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn gpu_winners_equal_cpu_on_random_node_sets() {
    let Some(mut gpu) = common::gpu_node_scorer() else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let pods_per_set = if cfg!(debug_assertions) { 8 } else { 24 };
    let mut compared = 0;
    for &size in &[0usize, 1, 63, 64, 65, 1213, 5000] {
        let nodes = random_nodes(&mut rng, size);
        let typical = random_typical(&mut rng);
        let frag: Vec<f64> = nodes.iter().map(|n| node_frag(n, &typical)).collect();
        let fgd = FgdInputs {
            typical: &typical,
            node_frag: &frag,
        };
        for &policy in &POLICIES {
            let mut cpu = CpuNodeScorer::new();
            let mut int = IntCpuNodeScorer::new();
            for p in random_pods(&mut rng, pods_per_set) {
                let want = cpu.best_node(policy, &p, &nodes, &fgd);
                let twin = int.best_node(policy, &p, &nodes, &fgd);
                let got = gpu.best_node(policy, &p, &nodes, &fgd);
                assert_eq!(
                    want, twin,
                    "integer twin: size {size} policy {policy} pod {p:?}"
                );
                assert_eq!(want, got, "gpu: size {size} policy {policy} pod {p:?}");
                if policy == POLICY_FGD && got.is_feasible() {
                    let n = &nodes[got.node as usize];
                    let (_, mask) = score_fgd(n, &p, &typical, frag[got.node as usize]);
                    assert_eq!(gpu.last_gpus(), mask, "FGD GPU choice");
                }
                compared += 1;
            }
        }
    }
    assert!(gpu.last_error().is_none(), "{:?}", gpu.last_error());
    eprintln!(
        "{compared} calls compared; {} decided on the GPU, {} on the CPU (DotProduct boundaries)",
        gpu.gpu_calls(),
        gpu.fallbacks()
    );
    assert!(gpu.gpu_calls() > 0);
}

mod trace_runs {
    use super::*;
    use std::path::{Path, PathBuf};
    use ultrasched::engine::fgd::engine::{curves, node_ranks, pod_order, run};
    use ultrasched::engine::fgd::trace::Trace;
    use ultrasched::engine::fgd::Policy;
    use ultrasched::input::openb::{load_nodes, load_pods};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/traces/openb")
    }

    pub fn trace() -> Trace {
        let nodes = load_nodes(&root().join("openb_node_list_gpu_node.csv")).unwrap();
        let pods = load_pods(&root().join("openb_pod_list_default.csv")).unwrap();
        Trace::new("openb_pod_list_default", &nodes, "nodes", &pods).unwrap()
    }

    const SCORED: [Policy; 5] = [
        Policy::DotProd,
        Policy::GpuClustering,
        Policy::GpuPacking,
        Policy::BestFit,
        Policy::Fgd,
    ];

    /// The integer formulation places every pod of every scored experiment (default trace, seed 42) exactly as
    /// the f64 one, and FGD's integer GPU choice inside the node equals the f64 choice at every placement.
    #[test]
    fn integer_twin_places_like_f64_on_the_default_trace() {
        let t = trace();
        let total: u32 = t.typical.iter().map(|x| x.count).sum();
        assert!(total <= MAX_FGD_TOTAL, "typical counts {total}");
        let thr = FgdThresholds::new(&t.typical).expect("thresholds");
        for policy in SCORED {
            let want = run(&t, policy, 42, 1.3, None, &mut CpuNodeScorer::new());
            let got = run(&t, policy, 42, 1.3, None, &mut IntCpuNodeScorer::new());
            assert_eq!(want.placements, got.placements, "{policy:?}");
            assert_eq!(want.events, got.events, "{policy:?}");
            if policy == Policy::Fgd {
                // Replay the placements and check the integer GPU choice at every one.
                let order = pod_order(&t, 42, 1.3);
                let ranks = node_ranks(&t, 42);
                let mut nodes = t.nodes.clone();
                for (n, r) in nodes.iter_mut().zip(&ranks) {
                    n.rank = *r;
                }
                let mut checked = 0;
                for (&pi, placed) in order.iter().zip(&want.placements) {
                    let Some((ni, mask)) = *placed else { continue };
                    let p = &t.pods[pi];
                    let n = nodes[ni];
                    let f = node_frag_scaled(&n, &t.typical);
                    let (s_int, m_int) = score_fgd_int(&n, p, &t.typical, &thr, f);
                    let (s_f64, _) = score_fgd(&n, p, &t.typical, node_frag(&n, &t.typical));
                    assert_eq!((s_int, m_int), (s_f64, mask), "pod {pi} node {ni}");
                    let mut after = after_placing(&n, p, mask);
                    after.tags |= p.tag;
                    after.version += 1;
                    nodes[ni] = after;
                    checked += 1;
                }
                assert!(checked > 8000);
            }
        }
    }

    /// Full default-trace experiments (seed 42) on the GPU: identical placements, hence identical curves.
    #[test]
    #[cfg_attr(
        no_gpu_adapter,
        ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
    )]
    fn gpu_experiment_equals_cpu_on_the_default_trace() {
        let Some(mut gpu) = common::gpu_node_scorer() else {
            return;
        };
        let t = trace();
        let policies: &[Policy] = if cfg!(debug_assertions) {
            &[Policy::BestFit]
        } else {
            &[Policy::Fgd, Policy::BestFit]
        };
        for &policy in policies {
            let want = run(&t, policy, 42, 1.3, None, &mut CpuNodeScorer::new());
            let got = run(&t, policy, 42, 1.3, None, &mut gpu);
            assert_eq!(want.placements, got.placements, "{policy:?}");
            assert_eq!(
                curves(&want.events, t.total_gpus, 130),
                curves(&got.events, t.total_gpus, 130),
                "{policy:?}"
            );
            assert!(gpu.last_error().is_none(), "{:?}", gpu.last_error());
            eprintln!(
                "{policy:?}: {} calls on the GPU, {} on the CPU",
                gpu.gpu_calls(),
                gpu.fallbacks()
            );
        }
    }

    /// The first `n` nodes of the default trace and every `step`-th of its pods: a small cluster whose grid
    /// lavapipe places in seconds.
    fn small_trace(n: usize, step: usize) -> Trace {
        let nodes = load_nodes(&root().join("openb_node_list_gpu_node.csv")).unwrap();
        let pods = load_pods(&root().join("openb_pod_list_default.csv")).unwrap();
        let pods: Vec<_> = pods.into_iter().step_by(step).collect();
        Trace::new("small", &nodes[..n], "nodes", &pods).unwrap()
    }

    /// A lockstep grid (every scored policy x three seeds, all on the device at once) places every pod where
    /// one experiment at a time on the CPU does, and the placements replayed give the same events. DotProduct
    /// rounding boundaries stall their experiment and are decided on the CPU: the grid must meet some.
    #[test]
    #[cfg_attr(
        no_gpu_adapter,
        ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
    )]
    fn lockstep_grid_places_like_one_experiment_at_a_time() {
        use ultrasched::engine::fgd::engine::{order_and_ranks, ranked_nodes, replay_placements};
        use ultrasched::kernel::node_score::gpu::{LockstepExperiment, LockstepGrid};
        let Some(mut gpu) = common::gpu_node_scorer() else {
            return;
        };
        let t = if cfg!(debug_assertions) {
            small_trace(40, 20)
        } else {
            small_trace(120, 6)
        };
        let seeds = [1u64, 2, 3];
        let mut setups = Vec::new();
        for policy in SCORED {
            for seed in seeds {
                let (order, ranks) = order_and_ranks(&t, seed, 1.3, None);
                setups.push((policy, seed, order, ranks));
            }
        }
        let experiments: Vec<LockstepExperiment> = setups
            .iter()
            .map(|(policy, _, order, ranks)| LockstepExperiment {
                policy: policy.kernel_id().unwrap(),
                nodes: ranked_nodes(&t, ranks),
                order: order.iter().map(|&i| i as u32).collect(),
            })
            .collect();
        let grid = LockstepGrid {
            pods: &t.pods,
            typical: &t.typical,
            experiments: &experiments,
        };
        // The adapter's own steps per dispatch (one on lavapipe), then four: several steps per workgroup, as
        // a hardware adapter runs them, while llvmpipe's loop bound still holds on this small cluster.
        for steps in [None, Some(4)] {
            if let Some(n) = steps {
                gpu.set_lockstep_steps(n);
            }
            let got = gpu.lockstep(&grid).expect("device").expect("grid fits");
            assert_eq!(got.placements.len(), setups.len());
            let mut attempts = 0;
            for ((policy, seed, order, ranks), placed) in setups.iter().zip(&got.placements) {
                let want = run(&t, *policy, *seed, 1.3, None, &mut CpuNodeScorer::new());
                let placed: Vec<Option<(usize, u32)>> = placed
                    .iter()
                    .map(|p| p.map(|(n, m)| (n as usize, m)))
                    .collect();
                if let Some(i) = (0..placed.len()).find(|&i| want.placements[i] != placed[i]) {
                    panic!(
                        "{policy:?} seed {seed} steps {steps:?}: attempt {i} of {}: want {:?} got {:?}",
                        placed.len(),
                        want.placements[i],
                        placed[i],
                    );
                }
                assert_eq!(want.placements.len(), placed.len());
                let replayed = replay_placements(&t, order, ranks, &placed).unwrap();
                assert_eq!(want.events, replayed.events, "{policy:?} seed {seed}");
                assert!(want.placed > 0 && want.placed < want.attempted);
                attempts += want.attempted as u64;
            }
            eprintln!(
                "steps {steps:?}: {} experiments, {attempts} attempts: {} on the device, {} on the CPU, {} rounds",
                setups.len(),
                got.on_device,
                got.on_cpu,
                got.rounds
            );
            assert_eq!(got.on_device + got.on_cpu, attempts);
            assert!(
                got.on_cpu > 0,
                "no DotProduct boundary met: the stall path went untested"
            );
        }
        assert!(gpu.last_error().is_none(), "{:?}", gpu.last_error());
    }
}
