//! Conformance of every placement cost backend, written once (cubecl style): each backend must return the
//! winners of a naive scalar reference, on seeded random batches and on small hand-written cases.
//!
//! GPU tests need an adapter (Mesa's lavapipe is enough: `apt-get install mesa-vulkan-drivers libvulkan1`,
//! `WGPU_BACKEND=vulkan`). Without one they print a skip message, or fail when `ULTRASCHED_REQUIRE_GPU=1`.

mod common;
use common::gpu_backend;
use ultrasched::kernel::placement::bench::random_batch;
use ultrasched::kernel::placement::cpu::{pair_cost, CpuBackend};
use ultrasched::kernel::placement::*;

/// Every policy the kernel knows (a new one is tested as soon as `POLICY_COUNT` counts it).
const POLICIES: std::ops::Range<u32> = 0..POLICY_COUNT;

/// Batch sizes (jobs x candidates): edges of a wave and of a workgroup, reuse after growing and shrinking,
/// and one large round.
const SIZES: [(usize, usize); 12] = [
    (0, 5),
    (5, 0),
    (7, 1),
    (9, 63),
    (9, 64),
    (9, 65),
    (33, 4097),
    (3, 2),
    (11, 4),
    (6, 5),
    (300, 20_000),
    (17, 129),
];

/// The documented rule, as plainly as it can be written: the lowest cost, then the lowest candidate index;
/// `Winner::NONE` when every pair is infeasible.
fn reference(policy: u32, jobs: &[JobRecord], candidates: &[CandidateRecord]) -> Vec<Winner> {
    let mut winners = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut best = Winner::NONE;
        for (i, c) in candidates.iter().enumerate() {
            let cost = pair_cost(policy, job, c, i as u32);
            // Candidates come in increasing index, so strict `<` keeps the lowest index among equal costs.
            if cost < best.cost {
                best = Winner {
                    cost,
                    candidate: i as u32,
                };
            }
        }
        winners.push(best);
    }
    winners
}

/// Compares one call of `b` with the reference; panics naming the first differing job and both winners.
fn check(
    b: &mut dyn CostBackend,
    policy: u32,
    jobs: &[JobRecord],
    candidates: &[CandidateRecord],
    what: &str,
) {
    let want = reference(policy, jobs, candidates);
    let mut got = vec![
        Winner {
            cost: 7,
            candidate: 7
        };
        3
    ]; // stale contents must be replaced
    if let Err(e) = b.best_candidates(policy, jobs, candidates, &mut got) {
        panic!(
            "{} backend failed on {what} (policy {policy}): {e}",
            b.name()
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{} backend: winner count on {what} (policy {policy})",
        b.name()
    );
    if let Some(j) = (0..want.len()).find(|&j| got[j] != want[j]) {
        panic!(
            "{} backend disagrees with the reference on {what}, policy {policy}: job {j} {:?}: \
             expected {:?}, got {:?} (exact match required)",
            b.name(),
            jobs[j],
            want[j],
            got[j]
        );
    }
    // The same call over the candidates held resident, as the engine makes it (stale contents again:
    // a call that wrote nothing must not pass on the first call's answer).
    got.clear();
    got.resize(
        3,
        Winner {
            cost: 7,
            candidate: 7,
        },
    );
    let mut resident = ResidentCandidates::default();
    resident.assign(candidates);
    if let Err(e) = b.best_candidates_resident(policy, jobs, &mut resident, &mut got) {
        panic!(
            "{} backend failed on {what} (policy {policy}), resident: {e}",
            b.name()
        );
    }
    assert_eq!(
        got,
        want,
        "{} backend, resident candidates, on {what} (policy {policy})",
        b.name()
    );
}

/// The conformance suite every backend runs: seeded random batches of every size, under every policy.
fn check_backend(b: &mut dyn CostBackend) {
    let mut feasible = 0usize;
    let mut infeasible = 0usize;
    for (k, &(jobs, candidates)) in SIZES.iter().enumerate() {
        let (jobs, candidates) = random_batch(1000 + k as u64, jobs, candidates);
        for policy in POLICIES {
            check(
                b,
                policy,
                &jobs,
                &candidates,
                &format!("random batch {} x {}", jobs.len(), candidates.len()),
            );
        }
        let winners = reference(POLICY_BEST_FIT, &jobs, &candidates);
        feasible += winners.iter().filter(|w| w.is_feasible()).count();
        infeasible += winners.iter().filter(|w| !w.is_feasible()).count();
    }
    // The batches must exercise both outcomes, or the comparison proves little.
    assert!(
        feasible > 50 && infeasible > 20,
        "feasible {feasible}, infeasible {infeasible}"
    );
}

#[test]
fn cpu_backend_conforms() {
    check_backend(&mut CpuBackend);
}

#[test]
fn auto_backend_conforms() {
    // `--backend auto` as the CLI opens it: the CPU twin below the crossover (and on the resident path,
    // the twin's lanes), a GPU from it on where one opens (a software adapter only when named).
    check_backend(&mut HybridBackend::lazy(None));
}

#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn gpu_backend_conforms() {
    let Some(mut gpu) = gpu_backend() else { return };
    check_backend(&mut gpu);
}

#[test]
fn reference_agrees_with_the_scalar_twin() {
    // `best_candidate` (the shader-shaped scalar walk) against the plain loop, on every size.
    for (k, &(jobs, candidates)) in SIZES.iter().enumerate().take(8) {
        let (jobs, candidates) = random_batch(7 + k as u64, jobs, candidates);
        for policy in POLICIES {
            let walked: Vec<Winner> = jobs
                .iter()
                .map(|j| cpu::best_candidate(policy, j, &candidates))
                .collect();
            assert_eq!(
                walked,
                reference(policy, &jobs, &candidates),
                "policy {policy}"
            );
        }
    }
}

// ---- Small cases where the answer is obvious -------------------------------------------------------------

fn job(gpus: u32, level: u32, preferred: u32) -> JobRecord {
    JobRecord {
        gpus,
        model_mask: 1,
        level,
        preferred,
    }
}

fn domain(free: u32, size: u32, rack_free: u32, pool_free: u32) -> CandidateRecord {
    CandidateRecord {
        free,
        size,
        rack_free,
        pool_free,
        model: 0,
        _pad: [0; 3],
    }
}

/// Every backend (reference, CPU, GPU when present) must pick `expected` (candidate index or None).
fn case(policy: u32, j: JobRecord, candidates: &[CandidateRecord], expected: Option<u32>) {
    let want = reference(policy, &[j], candidates)[0];
    let want_index = want.is_feasible().then_some(want.candidate);
    assert_eq!(
        want_index, expected,
        "reference on {j:?} (policy {policy}), winner {want:?}"
    );
    check(
        &mut CpuBackend,
        policy,
        &[j],
        candidates,
        "hand-written case",
    );
    if let Some(mut gpu) = gpu_backend() {
        check(&mut gpu, policy, &[j], candidates, "hand-written case");
    }
}

#[test]
fn best_fit_picks_the_tightest_domain() {
    let c = [
        domain(64, 72, 64, 200),
        domain(10, 36, 10, 200),
        domain(8, 8, 8, 200),
        domain(36, 36, 36, 200),
    ];
    case(
        POLICY_BEST_FIT,
        job(8, LEVEL_DOMAIN, LEVEL_NONE),
        &c,
        Some(2),
    );
    // A spill sorts after every single-domain fit, however loose.
    let c = [domain(8, 8, 64, 64), domain(72, 72, 72, 72)];
    case(
        POLICY_BEST_FIT,
        job(16, LEVEL_RACK, LEVEL_NONE),
        &c,
        Some(1),
    );
}

#[test]
fn topology_pack_prefers_one_domain_over_spilling() {
    let c = [domain(8, 8, 40, 40), domain(20, 36, 20, 20)];
    case(
        POLICY_TOPOLOGY_PACK,
        job(16, LEVEL_RACK, LEVEL_NONE),
        &c,
        Some(1),
    );
    // Among spills, fewer domains wins: 40 GPUs span 1 + ceil(32/8) = 5 domains of 8, 1 + ceil(4/36) = 2 of 36.
    let c = [domain(8, 8, 64, 64), domain(36, 36, 72, 72)];
    case(
        POLICY_TOPOLOGY_PACK,
        job(40, LEVEL_RACK, LEVEL_NONE),
        &c,
        Some(1),
    );
    // Among single-domain fits, the smallest leftover wins.
    let c = [
        domain(72, 72, 72, 72),
        domain(40, 72, 40, 40),
        domain(64, 72, 64, 64),
    ];
    case(
        POLICY_TOPOLOGY_PACK,
        job(36, LEVEL_DOMAIN, LEVEL_NONE),
        &c,
        Some(1),
    );
}

#[test]
fn preferred_domain_miss_loses_to_a_hit() {
    // Even first-fit, whose cost is the index, takes a later domain that honours the preference.
    let c = [domain(8, 8, 64, 64), domain(16, 36, 16, 16)];
    case(
        POLICY_FIRST_FIT,
        job(16, LEVEL_RACK, LEVEL_DOMAIN),
        &c,
        Some(1),
    );
    case(
        POLICY_BEST_FIT,
        job(16, LEVEL_RACK, LEVEL_DOMAIN),
        &c,
        Some(1),
    );
    // A rack preference misses when the rack is too small, even if the pool holds the gang.
    let c = [domain(8, 8, 8, 64), domain(4, 8, 16, 64)];
    case(
        POLICY_TOPOLOGY_PACK,
        job(16, LEVEL_POOL, LEVEL_RACK),
        &c,
        Some(1),
    );
    // When every candidate misses, the best of the misses still wins.
    case(
        POLICY_FIRST_FIT,
        job(16, LEVEL_POOL, LEVEL_DOMAIN),
        &c,
        Some(0),
    );
}

#[test]
fn model_mask_excludes() {
    let mut other = domain(72, 72, 72, 72);
    other.model = 1;
    let c = [other, domain(8, 8, 8, 8)];
    case(
        POLICY_BEST_FIT,
        job(8, LEVEL_DOMAIN, LEVEL_NONE),
        &c,
        Some(1),
    );
    let j = JobRecord {
        model_mask: 1 << 3,
        ..job(8, LEVEL_POOL, LEVEL_NONE)
    };
    case(POLICY_FIRST_FIT, j, &c, None);
}

#[test]
fn a_gpu_model_beyond_the_mask_takes_no_job() {
    // A 32-bit mask names models 0..32; a record of model 32 or more matches no job, even one that takes
    // every model (u32::MAX). Without the rule a shift by 32 wraps (to bit 0 on the CPU and in WGSL) and
    // the tight model-32 domain at index 0 would win best-fit. Twenty candidates, so the CPU twin takes its
    // wave path (and the resident lanes), not the scan.
    let mut c = vec![domain(72, 72, 72, 72); 20];
    for (i, model) in [32, 33, 63, 64, u32::MAX].into_iter().enumerate() {
        c[i] = CandidateRecord {
            model,
            ..domain(8, 8, 8, 8)
        };
    }
    for d in &mut c[5..] {
        d.model = 40;
    }
    c[17].model = 0;
    let every = JobRecord {
        model_mask: u32::MAX,
        ..job(8, LEVEL_DOMAIN, LEVEL_NONE)
    };
    for policy in POLICIES {
        case(policy, every, &c, Some(17));
        case(policy, job(8, LEVEL_POOL, LEVEL_NONE), &c, Some(17));
    }
    c[17].model = 32;
    for policy in POLICIES {
        case(policy, every, &c, None);
    }
}

#[test]
fn full_and_empty_domains_and_levels_exclude() {
    // No free GPU, a zero-size domain, and a gang larger than its widest allowed group.
    let c = [
        domain(0, 8, 64, 64),
        domain(8, 0, 64, 64),
        domain(8, 8, 64, 64),
    ];
    case(
        POLICY_FIRST_FIT,
        job(2, LEVEL_DOMAIN, LEVEL_NONE),
        &c,
        Some(2),
    );
    case(
        POLICY_TOPOLOGY_PACK,
        job(16, LEVEL_DOMAIN, LEVEL_NONE),
        &c,
        None,
    );
    case(
        POLICY_TOPOLOGY_PACK,
        job(65, LEVEL_RACK, LEVEL_NONE),
        &c,
        None,
    );
}

#[test]
fn ties_go_to_the_lowest_index() {
    // 130 identical domains: every lane and stride holds a tie.
    let c = vec![domain(36, 36, 36, 36); 130];
    for policy in [POLICY_BEST_FIT, POLICY_TOPOLOGY_PACK] {
        case(policy, job(8, LEVEL_DOMAIN, LEVEL_NONE), &c, Some(0));
    }
    // Ties only at 100, 37 (another lane) and 101 (lane of 37 in the next stride): 37 wins.
    let mut c = vec![domain(0, 36, 0, 0); 130];
    for i in [100, 37, 101] {
        c[i] = domain(12, 36, 12, 12);
    }
    for policy in [POLICY_BEST_FIT, POLICY_TOPOLOGY_PACK] {
        case(policy, job(8, LEVEL_DOMAIN, LEVEL_NONE), &c, Some(37));
    }
}

#[test]
fn huge_values_take_the_exact_path() {
    // Sizes and gangs beyond the CPU twin's f32 fast path must still match the reference.
    let c = [
        domain(5, 1 << 25, 1 << 26, u32::MAX - 1),
        domain(3, 3, 1 << 26, u32::MAX - 1),
    ];
    let j = job((1 << 25) + 7, LEVEL_POOL, LEVEL_NONE);
    for policy in POLICIES {
        check(&mut CpuBackend, policy, &[j], &c, "huge values");
        if let Some(mut gpu) = gpu_backend() {
            check(&mut gpu, policy, &[j], &c, "huge values");
        }
    }
    case(POLICY_TOPOLOGY_PACK, j, &c, Some(0));
}

#[test]
fn a_gang_past_f32_integers_leaves_the_waves() {
    // A gang of 2^24 + 2 GPUs anchored on 1024-GPU domains: anchored where 1 GPU is free it misses
    // 2^24 + 1, which spans 1 + 16,385 domains; where 2 are free it misses 2^24, 1 + 16,384. In f32 the
    // first rounds to 2^24 as well, a tie the lower index (0) would win. Six candidates, so the CPU twin
    // has lanes; the gang must take its scalar path (and the shader its integers) and pick candidate 1.
    let mut c = vec![domain(0, 1024, 0, u32::MAX - 1); 6];
    c[0] = domain(1, 1024, 1, u32::MAX - 1);
    c[1] = domain(2, 1024, 2, u32::MAX - 1);
    let j = job((1 << 24) + 2, LEVEL_POOL, LEVEL_NONE);
    assert_eq!(
        pair_cost(POLICY_TOPOLOGY_PACK, &j, &c[0], 0),
        16_386 << SPAN_SHIFT
    );
    assert_eq!(
        pair_cost(POLICY_TOPOLOGY_PACK, &j, &c[1], 1),
        16_385 << SPAN_SHIFT
    );
    case(POLICY_TOPOLOGY_PACK, j, &c, Some(1));
    // Domains past f32's integers stay on the waves (see `F32_EXACT`) and agree with the reference.
    let mut c = vec![domain(0, 8, 0, 1 << 30); 20];
    c[2] = domain(3, (1 << 24) + 1, 3, 1 << 30);
    c[7] = domain(5, u32::MAX, 5, 1 << 30);
    c[9] = domain(4, 8, 4, 1 << 30);
    c[12] = domain(6, 1 << 31, 6, 1 << 30);
    for gpus in [1, 3, 4, 5, 6, 7, 1000, (1 << 24) - 1] {
        for policy in POLICIES {
            check(
                &mut CpuBackend,
                policy,
                &[job(gpus, LEVEL_POOL, LEVEL_NONE)],
                &c,
                "domains past f32's integers",
            );
            if let Some(mut gpu) = gpu_backend() {
                check(
                    &mut gpu,
                    policy,
                    &[job(gpus, LEVEL_POOL, LEVEL_NONE)],
                    &c,
                    "domains past f32's integers",
                );
            }
        }
    }
}

#[test]
fn a_saturated_pool_spill_is_clamped_below_the_spill_bit() {
    // Best-fit scores a spill as `SPILL_BIT | group leftover`, the leftover clamped to SPILL_BIT - 1. A pool
    // past 4G GPUs saturates its free count (u32::MAX), so its spill scores 2^31 - 1 and loses to a spill
    // that leaves 5 GPUs (2^30 + 5). Six candidates, so the CPU twin takes its wave path, not the scan.
    let c = [
        domain(50, 72, 50, u32::MAX),
        domain(60, 72, 60, 105),
        domain(0, 72, 0, 105),
        domain(0, 72, 0, 105),
        domain(0, 72, 0, 105),
        domain(0, 72, 0, 105),
    ];
    let j = job(100, LEVEL_POOL, LEVEL_NONE);
    assert_eq!(
        pair_cost(POLICY_BEST_FIT, &j, &c[0], 0),
        SPILL_BIT | (SPILL_BIT - 1)
    );
    assert_eq!(pair_cost(POLICY_BEST_FIT, &j, &c[1], 1), SPILL_BIT | 5);
    case(POLICY_BEST_FIT, j, &c, Some(1));
}

#[test]
fn a_frag_aware_spill_over_many_domains_is_clamped_below_the_spill_bit() {
    // Frag-aware scores a spill as topology-pack does, with bit 30 set (spill) and so a span clamped one
    // bit narrower: SPAN_MAX >> 1 = 0x3FFF. A 40,000-GPU gang anchored on a 1-GPU domain spans 40,000
    // domains; clamped, its cost is 2^30 | 0x3FFF << 16 = 0x7FFF_0000. Clamped only to SPAN_MAX it would
    // be 2^30 | 40,000 << 16 = 0xDC40_0000: past bit 31, read as a missed preference.
    let j = job(40_000, LEVEL_POOL, LEVEL_NONE);
    let c = domain(1, 1, 1, 50_000);
    assert_eq!(pair_cost(POLICY_FRAG_AWARE, &j, &c, 0), 0x7FFF_0000);
    // Topology-pack has no spill bit and clamps at SPAN_MAX: 0x7FFF << 16.
    assert_eq!(pair_cost(POLICY_TOPOLOGY_PACK, &j, &c, 0), 0x7FFF_0000);
    // The shader clamps the same (skipped, with a message, where no adapter opens).
    let Some(mut gpu) = gpu_backend() else { return };
    for policy in [POLICY_FRAG_AWARE, POLICY_TOPOLOGY_PACK] {
        let got = gpu
            .pair_costs(policy, &j, &[c])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, [0x7FFF_0000], "policy {policy}");
    }
}

// ---- GPU specifics ---------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn gpu_pair_costs_match_the_cpu_row() {
    let Some(mut gpu) = gpu_backend() else { return };
    for n in [0, 1, 65, 4097] {
        let (jobs, candidates) = random_batch(99 + n as u64, 4, n);
        for policy in POLICIES {
            for j in &jobs {
                let want: Vec<u32> = candidates
                    .iter()
                    .enumerate()
                    .map(|(i, c)| pair_cost(policy, j, c, i as u32))
                    .collect();
                let got = gpu
                    .pair_costs(policy, j, &candidates)
                    .unwrap_or_else(|e| panic!("pair_costs: {e}"));
                if let Some(i) = (0..want.len()).find(|&i| got.get(i) != Some(&want[i])) {
                    panic!(
                        "pair {j:?} x {:?} (index {i}): cpu {} gpu {:?}",
                        candidates[i],
                        want[i],
                        got.get(i)
                    );
                }
                assert_eq!(got.len(), want.len());
            }
        }
    }
}

#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn gpu_splits_batches_and_uses_2d_grids_under_small_limits() {
    let Some(mut gpu) = gpu_backend() else { return };
    let small = wgpu::Limits {
        max_storage_buffer_binding_size: 4096,
        max_compute_workgroups_per_dimension: 7,
        ..gpu.limits().clone()
    };
    gpu.restrict_limits(&small);
    // 4096-byte bindings: 256 jobs per dispatch (a 7 x 37 grid), at most 128 candidates.
    let (jobs, candidates) = random_batch(5, 600, 128);
    for policy in POLICIES {
        check(
            &mut gpu,
            policy,
            &jobs,
            &candidates,
            "600 x 128 under small limits",
        );
    }
    let (jobs, candidates) = random_batch(6, 3, 129);
    let mut out = Vec::new();
    match gpu.best_candidates(POLICY_BEST_FIT, &jobs, &candidates, &mut out) {
        Err(KernelError::TooLarge(msg)) => assert!(msg.contains("129 candidates"), "{msg}"),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The backend stays usable after refusing a batch.
    check(
        &mut gpu,
        POLICY_TOPOLOGY_PACK,
        &jobs,
        &candidates[..100],
        "3 x 100 after TooLarge",
    );
}

#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn gpu_reports_phase_timings_in_both_modes() {
    let Some(mut gpu) = gpu_backend() else { return };
    let (jobs, candidates) = random_batch(11, 64, 256);
    let want = reference(POLICY_TOPOLOGY_PACK, &jobs, &candidates);
    for sync in [false, true] {
        gpu.set_phase_sync(sync);
        let mut out = Vec::new();
        gpu.best_candidates(POLICY_TOPOLOGY_PACK, &jobs, &candidates, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, want, "phase sync {sync}");
        let t = gpu.last_timings();
        assert!(
            t.dispatch > std::time::Duration::ZERO && t.total() >= t.dispatch,
            "{t:?}"
        );
    }
}

// ---- Verification ----------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn verifying_backend_agrees_on_random_batches() {
    let Some(gpu) = gpu_backend() else { return };
    let mut v = VerifyingBackend::new(CpuBackend, gpu);
    assert_eq!(v.name(), "verify");
    assert!(v.adapter().starts_with("cpu twin vs "), "{}", v.adapter());
    for (k, (jobs, candidates)) in [(40, 300), (3, 4097), (10, 0)].into_iter().enumerate() {
        let (jobs, candidates) = random_batch(70 + k as u64, jobs, candidates);
        for policy in POLICIES {
            check(&mut v, policy, &jobs, &candidates, "verify");
        }
    }
}

/// A backend whose cost for one candidate index is wrong (0 wherever the pair is feasible).
struct Skewed {
    bad: u32,
}

impl CostBackend for Skewed {
    fn name(&self) -> &'static str {
        "skewed"
    }
    fn adapter(&self) -> String {
        "skewed fake".into()
    }
    fn best_candidates(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &[CandidateRecord],
        out: &mut Vec<Winner>,
    ) -> Result<(), KernelError> {
        out.clear();
        for j in jobs {
            let row = self.pair_costs(policy, j, candidates)?;
            let mut best = Winner::NONE;
            for (i, &cost) in row.iter().enumerate() {
                best = best.better(Winner {
                    cost,
                    candidate: i as u32,
                });
            }
            out.push(if best.is_feasible() {
                best
            } else {
                Winner::NONE
            });
        }
        Ok(())
    }
}

impl CostRows for Skewed {
    fn pair_costs(
        &mut self,
        policy: u32,
        job: &JobRecord,
        c: &[CandidateRecord],
    ) -> Result<Vec<u32>, KernelError> {
        let mut row = CpuBackend.pair_costs(policy, job, c)?;
        if let Some(cost) = row.get_mut(self.bad as usize) {
            if *cost != INFEASIBLE {
                *cost = 0;
            }
        }
        Ok(row)
    }
}

#[test]
fn verifying_backend_names_the_first_differing_pair() {
    let (jobs, candidates) = random_batch(3, 50, 200);
    let policy = POLICY_BEST_FIT;
    let bad = 150u32;
    let want = reference(policy, &jobs, &candidates);
    // The first job whose winner the skew changes: candidate 150 is feasible and was not already a free win.
    let j = (0..jobs.len())
        .find(|&j| {
            let cost = pair_cost(policy, &jobs[j], &candidates[bad as usize], bad);
            cost != INFEASIBLE
                && want[j]
                    != (Winner {
                        cost: 0,
                        candidate: bad,
                    })
                && (want[j].cost > 0 || want[j].candidate > bad)
        })
        .expect("the random batch has a job that candidate 150 can take");
    let mut v = VerifyingBackend::new(CpuBackend, Skewed { bad });
    let mut out = Vec::new();
    match v.best_candidates(policy, &jobs, &candidates, &mut out) {
        Err(KernelError::Mismatch {
            job,
            candidate,
            cpu,
            gpu,
            cpu_winner,
            gpu_winner,
        }) => {
            assert_eq!((job, candidate, gpu), (j, bad, 0));
            assert_eq!(
                cpu,
                pair_cost(policy, &jobs[j], &candidates[bad as usize], bad)
            );
            assert_eq!(cpu_winner, want[j]);
            assert_eq!(
                gpu_winner,
                Winner {
                    cost: 0,
                    candidate: bad
                }
            );
        }
        other => panic!("expected a mismatch at job {j}, got {other:?}"),
    }
    // The engine's resident path is verified the same way (the twin on its lanes, the other on records).
    let mut resident = ResidentCandidates::default();
    resident.assign(&candidates);
    match v.best_candidates_resident(policy, &jobs, &mut resident, &mut out) {
        Err(KernelError::Mismatch { job, candidate, .. }) => assert_eq!((job, candidate), (j, bad)),
        other => panic!("expected a mismatch at job {j} on the resident path, got {other:?}"),
    }
    // Agreement passes through the reference's winners.
    let mut v = VerifyingBackend::new(CpuBackend, CpuBackend);
    v.best_candidates(policy, &jobs, &candidates, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, want);
    v.best_candidates_resident(policy, &jobs, &mut resident, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, want);
}

#[test]
fn open_backend_follows_the_choice() {
    let (b, note) = open_backend(BackendChoice::Cpu, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (b.name(), note.as_str()),
        ("cpu", "backend: cpu (cpu twin)")
    );
    // `auto` opens no device up front (it does when a call is large enough): it names itself, and with
    // or without an adapter it answers as the CPU twin does.
    let (mut b, note) = open_backend(BackendChoice::Auto, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.name(), "auto");
    assert!(note.starts_with("backend: auto (cpu twin; "), "{note}");
    let (jobs, candidates) = random_batch(11, 9, 65);
    for policy in POLICIES {
        check(b.as_mut(), policy, &jobs, &candidates, "auto");
    }
    match open_backend(BackendChoice::Gpu, false) {
        Ok((b, note)) => assert_eq!(
            (b.name(), note.starts_with("backend: gpu (")),
            ("gpu", true),
            "{note}"
        ),
        Err(e) => assert!(matches!(e, KernelError::NoAdapter(_)), "{e}"),
    }
    match open_backend(BackendChoice::Auto, true) {
        Ok((b, note)) => assert_eq!(
            (b.name(), note.starts_with("backend: verify (")),
            ("verify", true),
            "{note}"
        ),
        Err(e) => assert!(e.to_string().contains("--verify"), "{e}"),
    }
}

#[test]
fn random_batches_are_seeded_and_consistent() {
    let a = random_batch(1, 100, 500);
    assert_eq!(a, random_batch(1, 100, 500));
    assert_ne!(a, random_batch(2, 100, 500));
    let (jobs, candidates) = a;
    assert!(jobs.iter().all(|j| (1..=576).contains(&j.gpus)));
    for c in &candidates {
        assert!(
            [8, 36, 64, 72].contains(&c.size) && c.free <= c.size,
            "{c:?}"
        );
        assert!(c.free <= c.rack_free && c.rack_free <= c.pool_free, "{c:?}");
    }
}

#[test]
fn wide_values_match_the_reference() {
    // Random sizes, free counts and gangs across the whole range the CPU twin's f32 division covers
    // (below 2^24), and some beyond it: every backend must still match the integer reference.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let mut wide = |bits: u32| rng.random_range(1..(1u32 << bits));
    let candidates: Vec<CandidateRecord> = (0..300)
        .map(|i| {
            let bits = [4, 8, 16, 24, 25][i % 5];
            let (size, free) = (wide(bits), wide(bits));
            domain(
                free,
                size,
                free.saturating_add(wide(bits)),
                u32::MAX - wide(30),
            )
        })
        .collect();
    let jobs: Vec<JobRecord> = (0..60)
        .map(|i| {
            let gpus = [wide(5), wide(12), wide(20), (1 << 24) - 1, 1 << 24][i % 5];
            job(
                gpus,
                [LEVEL_DOMAIN, LEVEL_RACK, LEVEL_POOL][i % 3],
                [LEVEL_NONE, LEVEL_DOMAIN, LEVEL_RACK][i % 3],
            )
        })
        .collect();
    // Without the 25-bit sizes (the CPU twin's fast path), then with them (its exact fallback).
    let fast: Vec<CandidateRecord> = candidates
        .iter()
        .copied()
        .filter(|c| c.size < 1 << 24)
        .collect();
    let mut gpu = gpu_backend();
    for (set, what) in [
        (&fast, "wide values below 2^24"),
        (&candidates, "wide values"),
    ] {
        for policy in POLICIES {
            check(&mut CpuBackend, policy, &jobs, set, what);
            if let Some(gpu) = gpu.as_mut() {
                check(gpu, policy, &jobs, set, what);
            }
        }
    }
}

/// Resident candidates: across a sequence of calls where a few records change, the list shrinks, grows
/// past the device buffer and is scored by `pair_costs` in between, every call's winners equal the CPU
/// twin's, and only changed records are uploaded (none when nothing changed).
#[test]
#[cfg_attr(
    no_gpu_adapter,
    ignore = "no GPU adapter on this machine (no Vulkan driver); ULTRASCHED_REQUIRE_GPU=1 runs it"
)]
fn resident_candidates_upload_only_what_changed_and_stay_exact() {
    let Some(mut gpu) = gpu_backend() else { return };
    let policy = POLICY_TOPOLOGY_PACK;
    let (jobs, mut cands) = random_batch(11, 40, 700);
    // Every record distinct (a pool far larger than any gang), so a shift changes every record after it.
    for (i, c) in cands.iter_mut().enumerate() {
        c.pool_free = 1_000_000 + i as u32;
    }
    let (mut got, mut want) = (Vec::new(), Vec::new());
    let mut check = |gpu: &mut gpu::GpuBackend, cands: &[CandidateRecord], what: &str| -> u64 {
        let before = gpu.uploaded_candidates();
        gpu.best_candidates(policy, &jobs, cands, &mut got)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        CpuBackend
            .best_candidates(policy, &jobs, cands, &mut want)
            .unwrap();
        assert_eq!(got, want, "{what}");
        gpu.uploaded_candidates() - before
    };
    assert_eq!(check(&mut gpu, &cands, "first call"), 700);
    assert_eq!(check(&mut gpu, &cands, "unchanged"), 0);
    // Two domains change: the span between them goes up, not the whole list.
    cands[100].free = cands[100].free.saturating_sub(1);
    cands[109].pool_free = cands[109].pool_free.saturating_add(3);
    assert_eq!(check(&mut gpu, &cands, "two changed"), 10);
    // A shorter list (a domain filled up, the rest shift down) then the longer one again.
    let shorter: Vec<CandidateRecord> = cands[..350].iter().chain(&cands[351..]).copied().collect();
    assert_eq!(check(&mut gpu, &shorter, "one removed"), 349);
    assert_eq!(check(&mut gpu, &cands, "back"), 350);
    // pair_costs writes the whole list; the next call sends nothing.
    gpu.pair_costs(policy, &jobs[0], &shorter).unwrap();
    assert_eq!(check(&mut gpu, &shorter, "after pair_costs"), 0);
    // Past the buffer: a new buffer, everything uploaded.
    let (_, big) = random_batch(12, 1, 9_000);
    assert_eq!(check(&mut gpu, &big, "grown"), 9_000);
    gpu.drop_resident();
    assert_eq!(check(&mut gpu, &big, "dropped"), 9_000);
}

/// Only a backend that splits calls between two others reports where they went.
#[test]
fn a_single_backend_reports_no_usage() {
    assert_eq!(CpuBackend.usage(), None);
}

/// The CPU twin's dispatch rule (`cpu::path`): at most `SCALAR_CANDIDATES` candidates take the plain scan,
/// a call under `PARALLEL_PAIRS` (job, candidate) pairs the waves on this thread, a larger one rayon. The
/// paths give the same winners (the conformance tests above run all three); this pins which runs, at
/// the edges of each, so a slip costs a thread hop per simulator call or scalar scoring of a whole
/// cluster, not a different answer.
#[test]
fn the_cpu_twin_takes_the_scalar_path_for_a_handful_and_rayon_only_for_bench_size_calls() {
    use ultrasched::kernel::placement::cpu::{path, Path, PARALLEL_PAIRS, SCALAR_CANDIDATES};
    assert_eq!((SCALAR_CANDIDATES, PARALLEL_PAIRS), (4, 262_144));
    for (jobs, candidates, want) in [
        (1, 0, Path::Scalar),
        (1, 4, Path::Scalar),
        (1_000_000, 4, Path::Scalar),
        (1, 5, Path::Serial),
        (0, 5, Path::Serial),
        (32, 1_820, Path::Serial),
        (32, 8_191, Path::Serial),
        (32, 8_192, Path::Parallel),
        (1, 262_143, Path::Serial),
        (1, 262_144, Path::Parallel),
        (2, 131_072, Path::Parallel),
        (512, 511, Path::Serial),
        (16_384, 8_192, Path::Parallel),
        (usize::MAX, usize::MAX, Path::Parallel),
    ] {
        assert_eq!(
            path(jobs, candidates),
            want,
            "{jobs} jobs x {candidates} candidates"
        );
    }
}

/// The wave path covers first-fit, best-fit and topology-pack for a gang below `F32_EXACT` and agrees with
/// the scalar twin there; frag-aware and larger gangs leave it (`None`), for the scalar twin to score.
#[test]
fn the_waves_cover_three_policies_below_f32_exact_and_agree_with_the_scalar_twin() {
    use ultrasched::kernel::placement::cpu::{
        best_candidate, wave_winner, CandidateLanes, F32_EXACT,
    };
    let (batch, candidates) = random_batch(7, 40, 37);
    let lanes = CandidateLanes::new(&candidates);
    for policy in POLICIES {
        for j in &batch {
            let waves = wave_winner(policy, j, &lanes);
            if policy == POLICY_FRAG_AWARE {
                assert_eq!(waves, None, "policy {policy}, {j:?}");
            } else {
                assert_eq!(
                    waves,
                    Some(best_candidate(policy, j, &candidates)),
                    "policy {policy}, {j:?}"
                );
            }
        }
        let huge = job(F32_EXACT, LEVEL_POOL, LEVEL_NONE);
        assert_eq!(wave_winner(policy, &huge, &lanes), None, "policy {policy}");
        let below = job(F32_EXACT - 1, LEVEL_POOL, LEVEL_NONE);
        assert_eq!(
            wave_winner(policy, &below, &lanes).is_some(),
            policy != POLICY_FRAG_AWARE,
            "policy {policy}"
        );
    }
}
