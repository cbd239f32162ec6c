//! Property tests over random small workloads, judged by code that is not the engine's:
//! - the engine agrees job for job with the reference scheduler (tests/common/reference.rs) on one pool of
//!   pool-level gangs, under every queue policy and backfill mode;
//! - every run passes the independent checker (`ultrasched::check`): pools of several shapes, GPU-model and
//!   topology constraints, inference replicas, priority preemption, every placement policy;
//! - under greedy backfill no job waits at an instant while it fits the free GPUs of that instant (recomputed
//!   from placements.csv, not from the engine).
//!
//! Failing cases shrink to a minimal workload, printed as TOML.

mod common;

use common::reference::{self, RefBackfill, RefJob, RefQueue};
use proptest::prelude::*;
use ultrasched::domain::workload::Workload;

const QUEUES: [&str; 4] = ["fifo", "sjf", "smallest-area", "priority"];
/// The checker property also covers the policies the reference scheduler does not implement.
const MIXED_QUEUES: [&str; 6] = [
    "fifo",
    "sjf",
    "smallest-area",
    "priority",
    "las",
    "fair-share",
];
const BACKFILLS: [&str; 3] = ["none", "easy", "greedy"];
const PLACEMENTS: [&str; 4] = ["first-fit", "best-fit", "topology-pack", "frag-aware"];

#[derive(Debug, Clone)]
struct JobGen {
    gpus: u32,
    duration_s: u32,
    submit_s: u32,
    priority: i32,
}

fn job_gen(max_gpus: u32) -> impl Strategy<Value = JobGen> {
    (1..=max_gpus, 1u32..4000, 0u32..6000, 0i32..3).prop_map(
        |(gpus, duration_s, submit_s, priority)| JobGen {
            gpus,
            duration_s,
            submit_s,
            priority,
        },
    )
}

/// One pool of pool-level gangs: the reference's world.
fn single_pool() -> impl Strategy<Value = (String, u32, u32, Vec<JobGen>, usize, usize)> {
    prop_oneof![Just(("p5-h100", 8u32)), Just(("p6e-gb200-x36", 36u32))].prop_flat_map(
        |(preset, domain)| {
            (1u32..5).prop_flat_map(move |count| {
                let cap = domain * count;
                (
                    Just(preset.to_string()),
                    Just(count),
                    Just(cap),
                    prop::collection::vec(job_gen(cap + cap / 4), 1..24),
                    0..QUEUES.len(),
                    0..BACKFILLS.len(),
                )
            })
        },
    )
}

fn single_pool_toml(preset: &str, count: u32, jobs: &[JobGen], queue: &str, bf: &str) -> String {
    let mut t = format!(
        "seed = 1\n[scheduler]\nqueue = \"{queue}\"\nbackfill = \"{bf}\"\n\
         [cluster]\n[[cluster.pools]]\npreset = \"{preset}\"\ncount = {count}\n"
    );
    for (i, j) in jobs.iter().enumerate() {
        t += &format!(
            "[[jobs]]\nid = \"j{i}\"\ngpus = {}\nduration_s = {}\nsubmit_s = {}\npriority = {}\n",
            j.gpus, j.duration_s, j.submit_s, j.priority
        );
    }
    t
}

/// The run's files as `run --out` writes them, checked.
fn run_and_check(w: &Workload) -> Result<ultrasched::engine::cluster::Outcome, String> {
    let o = common::run(w);
    common::check_outcome(w, &o).map_err(|e| format!("{e}"))?;
    Ok(o)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_reference_scheduler(
        (preset, count, cap, jobs, q, b) in single_pool()
    ) {
        let text = single_pool_toml(&preset, count, &jobs, QUEUES[q], BACKFILLS[b]);
        let w = common::from_toml(&text);
        let o = run_and_check(&w).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let ref_jobs: Vec<RefJob> = w
            .jobs
            .iter()
            .map(|j| RefJob {
                submit: j.submit,
                duration: j.duration,
                gpus: j.gpus as u64,
                priority: j.priority,
            })
            .collect();
        let queue = [RefQueue::Fifo, RefQueue::Sjf, RefQueue::SmallestArea, RefQueue::Priority][q];
        let backfill = [RefBackfill::None, RefBackfill::Easy, RefBackfill::Greedy][b];
        let want = reference::schedule(&ref_jobs, cap as u64, queue, backfill, usize::MAX);
        for (i, job) in w.jobs.iter().enumerate() {
            prop_assert_eq!(
                o.jobs[i].start,
                want[i],
                "job {} ({} GPUs, {} us, submit {}): engine vs reference\n{}",
                job.id,
                job.gpus,
                job.duration,
                job.submit,
                text
            );
        }
    }
}

// ---- any workload passes the checker -------------------------------------------------------------------

#[derive(Debug, Clone)]
struct MixedJob {
    base: JobGen,
    inference: Option<u32>, // replicas
    model: Option<usize>,   // index into the pools' models
    required: usize,        // 0 domain, 1 rack, 2 any
}

const POOL_KINDS: [(&str, &str, u32); 4] = [
    ("p5-h100", "h100", 8),
    ("p6e-gb200", "gb200", 72),
    ("p6e-gb200-x36", "gb200", 36),
    ("trn2-ultraserver", "trn2", 64),
];

/// (pools as (kind, count), jobs, queue, backfill, placement, preemption).
type Mixed = (Vec<(usize, u32)>, Vec<MixedJob>, usize, usize, usize, bool);

fn mixed() -> impl Strategy<Value = Mixed> {
    let pools = prop::collection::vec((0..POOL_KINDS.len(), 1u32..4), 1..4);
    let job = (
        job_gen(160),
        prop::option::weighted(0.25, 1u32..4),
        prop::option::weighted(0.4, 0usize..4),
        0usize..3,
    )
        .prop_map(|(base, inference, model, required)| MixedJob {
            base,
            inference,
            model,
            required,
        });
    (
        pools,
        prop::collection::vec(job, 1..30),
        0..MIXED_QUEUES.len(),
        0..BACKFILLS.len(),
        0..PLACEMENTS.len(),
        any::<bool>(),
    )
}

fn mixed_toml(
    pools: &[(usize, u32)],
    jobs: &[MixedJob],
    queue: &str,
    bf: &str,
    placement: &str,
    preempt: bool,
) -> String {
    let mut t = format!(
        "seed = 1\n[scheduler]\nqueue = \"{queue}\"\nbackfill = \"{bf}\"\nplacement = \"{placement}\"\n\
         preemption = {preempt}\nrestart_cost_s = 30\nlas_thresholds_gpu_s = [2000, 20000]\n\
         [scheduler.tenants]\nt0 = 2\n[cluster]\n"
    );
    for (i, &(k, count)) in pools.iter().enumerate() {
        t += &format!(
            "[[cluster.pools]]\nname = \"p{i}\"\npreset = \"{}\"\ncount = {count}\n",
            POOL_KINDS[k].0
        );
    }
    for (i, j) in jobs.iter().enumerate() {
        let level = ["domain", "rack", "any"][j.required];
        t += &format!("[[jobs]]\nid = \"j{i}\"\ntenant = \"t{}\"\n", i % 3);
        match j.inference {
            Some(r) => {
                let g = j.base.gpus.min(16);
                t += &format!(
                    "kind = \"inference\"\nreplicas = {r}\ngpus_per_replica = {g}\nlifetime_s = {}\n",
                    j.base.duration_s
                );
            }
            None => {
                t += &format!(
                    "gpus = {}\nduration_s = {}\n",
                    j.base.gpus, j.base.duration_s
                );
            }
        }
        t += &format!(
            "submit_s = {}\npriority = {}\ntopology = {{ required = \"{level}\" }}\n",
            j.base.submit_s, j.base.priority
        );
        if let Some(m) = j.model {
            // A model of one of the pools (or of a pool this cluster may lack: unschedulable).
            t += &format!("gpu_model = \"{}\"\n", POOL_KINDS[m].1);
        }
    }
    t
}

/// Free GPUs per (pool, domain) and per node at instant `t`, after that instant's round, recomputed from the
/// placement rows alone; then whether a waiting job of `gpus` (one gang) fits an acceptable group.
fn greedy_left_no_fitting_job_waiting(
    w: &Workload,
    o: &ultrasched::engine::cluster::Outcome,
) -> Result<(), String> {
    let c = &w.cluster;
    let mut instants: Vec<u64> = w.jobs.iter().map(|j| j.submit).collect();
    instants.extend(o.segments.iter().flat_map(|s| [s.start, s.end]));
    instants.sort_unstable();
    instants.dedup();
    for &t in &instants {
        // Free GPUs per domain at t.
        let mut free: Vec<u64> = (0..c.num_domains())
            .map(|d| c.pool_of(d as u32).domain_gpus() as u64)
            .collect();
        for s in o.segments.iter().filter(|s| s.start <= t && t < s.end) {
            for &(d, g) in &s.domains {
                free[d as usize] -= g as u64;
            }
        }
        for (j, job) in w.jobs.iter().enumerate() {
            let waiting = job.submit <= t && o.jobs[j].start.is_none_or(|s| s > t);
            if !waiting || job.replicas != 1 || job.rollout.is_some() {
                continue;
            }
            // One gang: does some acceptable group of its required level hold it?
            let fits = c.pools.iter().any(|p| {
                if (job.model_mask >> p.preset.gpu_model) & 1 == 0 {
                    return false;
                }
                let doms = p.first_domain as usize..(p.first_domain + p.domains) as usize;
                let per_group = match job.required {
                    0 => 1,
                    1 => p.domains_per_rack.max(1) as usize,
                    _ => p.domains as usize,
                };
                free[doms]
                    .chunks(per_group)
                    .any(|g| g.iter().sum::<u64>() >= job.gpus as u64)
            });
            if fits {
                return Err(format!(
                    "greedy: job {} ({} GPUs) waits at {t} us although it fits",
                    job.id, job.gpus
                ));
            }
        }
    }
    Ok(())
}

proptest! {
    // A fixed seed: CI sees the same 192 workloads on every run. Random draws used to find greedy rounds
    // under `las` where a job waited although it fitted: greedy's walk left out gangs larger than the free
    // GPUs before anything blocked, though under preemption such a gang may preempt. Fixed; 15,000 random
    // cases pass, and the shrunk case is kept in schedule_props.proptest-regressions (replayed first).
    #![proptest_config(ProptestConfig {
        cases: 192,
        rng_seed: proptest::test_runner::RngSeed::Fixed(1),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_schedule_passes_the_checker((pools, jobs, q, b, p, preempt) in mixed()) {
        let queue = MIXED_QUEUES[q];
        let preempt = preempt && queue == "priority";
        let text = mixed_toml(&pools, &jobs, queue, BACKFILLS[b], PLACEMENTS[p], preempt);
        let w = common::from_toml(&text);
        let o = run_and_check(&w).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        if BACKFILLS[b] == "greedy" && !preempt {
            greedy_left_no_fitting_job_waiting(&w, &o)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: proptest::test_runner::RngSeed::Fixed(2),
        ..ProptestConfig::default()
    })]

    /// The engine's resident candidate set, updated in place after each change (domains filled, freed,
    /// partly taken; rack and pool counts moving), holds exactly the records a rebuild from the state gives,
    /// once its holes (domains that filled up, kept in place with 0 free) are left out; `live` counts the rest.
    #[test]
    fn resident_candidates_equal_a_rebuild(ops in prop::collection::vec((0u32..30, 1u32..40, any::<bool>()), 1..60)) {
        use ultrasched::domain::cluster::ClusterState;
        use ultrasched::engine::cluster::placement::{candidates, Scratch};
        // 12 H100 domains (8 GPUs, 4 per rack) and 6 GB200 x36 domains (2 per rack): 18 domains, 7 racks.
        let w = common::from_toml(
            "[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 12\ndomains_per_rack = 4\n\
             [[cluster.pools]]\npreset = \"p6e-gb200-x36\"\ncount = 6\n",
        );
        let c = &w.cluster;
        let domains = c.domain_pool.len() as u32;
        let mut state = ClusterState::new(c);
        let mut scratch = Scratch::new();
        let mut held: Vec<Vec<(u32, u32)>> = Vec::new();
        for (d, gpus, release) in ops {
            if release && !held.is_empty() {
                let a = held.remove(d as usize % held.len());
                state.release(c, &a);
            } else {
                let d = d % domains;
                let take = gpus.min(state.domain_free[d as usize]);
                if take > 0 {
                    let mut a = Vec::new();
                    state.take_from_domain(c, d, take, &mut a);
                    held.push(a);
                }
            }
            scratch.dirty = true;
            scratch.refresh(c, &state);
            let (mut want, mut want_domains) = (Vec::new(), Vec::new());
            candidates(&state, c, &mut want, &mut want_domains);
            prop_assert_eq!(scratch.live(), want.len());
            let (domains, records) = scratch.live_candidates();
            prop_assert_eq!(domains, want_domains);
            prop_assert_eq!(records, want);
        }
    }
}
