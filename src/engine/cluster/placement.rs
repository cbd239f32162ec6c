//! Placement: turns a job into a kernel record, asks the kernel seam for the best anchor domain, and turns the
//! winner into GPUs. The kernel decides *where* (which anchor domain); this module decides *which GPUs* in a
//! way each policy documents:
//! - a gang that fits its anchor takes GPUs there (best fit over the anchor's nodes);
//! - a gang that spills takes all of the anchor, then the rest from the anchor's group (rack or pool):
//!   first-fit in domain order, best-fit fullest-first (fewest free first), topology-pack emptiest-first
//!   (most free first, so the fewest domains); ties by domain index.

use crate::domain::cluster::{Allocation, Cluster, ClusterState};
use crate::domain::workload::Job;
use crate::domain::workload::PlacementPolicy;
use crate::kernel::placement::{
    CandidateRecord, CostBackend, JobRecord, KernelError, ResidentCandidates, Winner, LEVEL_DOMAIN,
};
use std::ops::Range;

/// The kernel's view of one gang of `job`, allowed the pool codes of `mask` (see [`Gate`]).
pub fn job_record(job: &Job, mask: u32) -> JobRecord {
    JobRecord {
        gpus: job.gpus,
        model_mask: mask,
        level: job.required,
        preferred: job.preferred,
    }
}

/// Which pools a job may use now, as kernel masks over `Cluster::pool_class` codes (GPU models when the
/// cluster is not gated): a power cap closes the pools of a site that cannot take one more gang, and
/// on-demand pools open only to a job that has waited `spill_after_s`.
#[derive(Debug, Clone, Copy)]
pub struct Gate<'g> {
    /// Masks of the job's gangs and of its async rollout gangs on committed capacity (every pool when the
    /// cluster is not gated).
    pub first: (u32, u32),
    /// The masks with the open on-demand pools too, when the job may spill now: tried only when it does
    /// not fit committed capacity.
    pub spill: Option<(u32, u32)>,
    /// GPUs per pool that are taken but draw idle power (spares held back), for the power check.
    pub idle_taken: &'g [u64],
}

/// Allocates a gang of `gpus` anchored at `winner`'s domain. The winner must come from the current state.
pub fn allocate(
    cluster: &Cluster,
    state: &mut ClusterState,
    policy: PlacementPolicy,
    record: &JobRecord,
    winner: Winner,
    alloc: &mut Allocation,
) {
    let anchor = winner.candidate;
    let free = state.domain_free[anchor as usize];
    if record.gpus <= free {
        state.take_from_domain(cluster, anchor, record.gpus, alloc);
        return;
    }
    debug_assert!(
        record.level != LEVEL_DOMAIN,
        "a domain-level gang never spills"
    );
    state.take_from_domain(cluster, anchor, free, alloc);
    let mut left = record.gpus - free;
    // Each policy's order as a key, smallest first: (rank, domain), unique per domain. Only the first few
    // domains are taken, so they come off a heap (built in linear time) instead of a sort of the group.
    let rank = |free: u32| match policy {
        PlacementPolicy::FirstFit => 0,
        PlacementPolicy::BestFit => free,
        PlacementPolicy::TopologyPack | PlacementPolicy::FragAware => u32::MAX - free,
    };
    let mut others: std::collections::BinaryHeap<std::cmp::Reverse<(u32, u32)>> = cluster
        .group(anchor, record.level)
        .filter(|&d| d != anchor && state.domain_free[d as usize] > 0)
        .map(|d| std::cmp::Reverse((rank(state.domain_free[d as usize]), d)))
        .collect();
    while left > 0 {
        let Some(std::cmp::Reverse((_, d))) = others.pop() else {
            break;
        };
        let take = left.min(state.domain_free[d as usize]);
        state.take_from_domain(cluster, d, take, alloc);
        left -= take;
    }
    debug_assert_eq!(left, 0, "the kernel checked the group's free GPUs");
}

/// Places every gang of `job` on `state` (its replicas, then an async RL job's rollout replicas), one kernel
/// call per gang after the first (whose winner the caller may already hold, scored with `gate.first`). All
/// or nothing: on failure the state is restored and `None` returned. On committed capacity first; then, if
/// the gate lets the job spill, with on-demand pools open too. A gated cluster's sites must stay within
/// their power caps with all the gangs placed.
#[allow(clippy::too_many_arguments)]
pub fn place_job(
    cluster: &Cluster,
    state: &mut ClusterState,
    backend: &mut dyn CostBackend,
    policy: PlacementPolicy,
    job: &Job,
    first: Option<Winner>,
    scratch: &mut Scratch,
    gate: Gate<'_>,
) -> Result<Option<Vec<Allocation>>, KernelError> {
    let placed = place_masked(
        cluster, state, backend, policy, job, first, scratch, gate.first, gate,
    )?;
    match (placed, gate.spill) {
        (None, Some(masks)) if masks != gate.first && masks.0 != 0 => place_masked(
            cluster, state, backend, policy, job, None, scratch, masks, gate,
        ),
        (placed, _) => Ok(placed),
    }
}

/// [`place_job`] under one pair of masks.
#[allow(clippy::too_many_arguments)]
fn place_masked(
    cluster: &Cluster,
    state: &mut ClusterState,
    backend: &mut dyn CostBackend,
    policy: PlacementPolicy,
    job: &Job,
    first: Option<Winner>,
    scratch: &mut Scratch,
    masks: (u32, u32),
    gate: Gate<'_>,
) -> Result<Option<Vec<Allocation>>, KernelError> {
    let mut gangs: Vec<Allocation> = Vec::with_capacity(job.replicas as usize);
    let mut placed = masks.0 != 0
        && place_gangs(
            cluster,
            state,
            backend,
            policy,
            &job_record(job, masks.0),
            job.replicas,
            first,
            scratch,
            &mut gangs,
        )?;
    if let (true, Some(g)) = (placed, job.rollout) {
        let record = JobRecord {
            gpus: g.gpus,
            model_mask: masks.1,
            level: g.required,
            preferred: g.preferred,
        };
        placed = masks.1 != 0
            && place_gangs(
                cluster, state, backend, policy, &record, g.count, None, scratch, &mut gangs,
            )?;
    }
    if placed && cluster.gated && !cluster.within_power_caps(state, gate.idle_taken) {
        placed = false;
    }
    if !placed {
        for a in &gangs {
            state.release(cluster, a);
        }
        scratch.dirty = true;
        return Ok(None);
    }
    Ok(Some(gangs))
}

/// Places `count` gangs of `record`, appending their allocations to `gangs`; false at the first that fits
/// nowhere (the caller undoes what was placed).
#[allow(clippy::too_many_arguments)]
fn place_gangs(
    cluster: &Cluster,
    state: &mut ClusterState,
    backend: &mut dyn CostBackend,
    policy: PlacementPolicy,
    record: &JobRecord,
    count: u32,
    first: Option<Winner>,
    scratch: &mut Scratch,
    gangs: &mut Vec<Allocation>,
) -> Result<bool, KernelError> {
    for r in 0..count {
        let winner = match (r, first) {
            (0, Some(w)) => w,
            _ => {
                scratch.refresh(cluster, state);
                backend.best_candidates_resident(
                    crate::kernel::placement::policy_id(policy),
                    std::slice::from_ref(record),
                    &mut scratch.candidates,
                    &mut scratch.winners,
                )?;
                scratch.stats.kernel_calls += 1;
                scratch.stats.pairs += scratch.live() as u64;
                scratch.winners_to_domains();
                scratch.winners[0]
            }
        };
        if !winner.is_feasible() {
            return Ok(false);
        }
        let mut alloc = Allocation::new();
        allocate(cluster, state, policy, record, winner, &mut alloc);
        scratch.dirty = true;
        gangs.push(alloc);
    }
    Ok(true)
}

/// Kernel-call counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Calls into the backend.
    pub kernel_calls: u64,
    /// (job, candidate) pairs scored.
    pub pairs: u64,
}

/// Reused buffers: the candidate records of the current state, kept between calls, and the last winners.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Candidate records: one per domain with a free GPU, in domain order, updated in place (see
    /// [`Scratch::refresh`]), plus holes: domains that filled up since the list was last compacted, held
    /// with 0 free GPUs (infeasible for every job, so they never win and never reorder the others).
    pub candidates: ResidentCandidates,
    /// Holes in `candidates`.
    holes: usize,
    /// The domain of each candidate.
    pub domain_of: Vec<u32>,
    /// Winners of the last call.
    pub winners: Vec<Winner>,
    /// Job records of the last batch.
    pub jobs: Vec<JobRecord>,
    /// True when `candidates` may no longer match the state.
    pub dirty: bool,
    /// Counters.
    pub stats: KernelStats,
    /// Free GPUs per domain, rack and pool that `candidates` holds (empty before the first build).
    seen_domain: Vec<u32>,
    seen_rack: Vec<u64>,
    seen_pool: Vec<u64>,
    /// Domains of each rack and of each pool, as index ranges; `None` when some rack or pool is not a
    /// contiguous run of domains (then every refresh rebuilds).
    groups: Option<(DomainRanges, DomainRanges)>,
}

/// Domain index ranges, one per rack or pool.
type DomainRanges = Vec<Range<u32>>;

/// The domains of each group (`group_of[d]` is domain d's group) as contiguous index ranges, or `None`
/// when some group's domains are not contiguous.
fn contiguous_groups(group_of: impl Iterator<Item = u32>, groups: usize) -> Option<DomainRanges> {
    let mut ranges: Vec<Option<Range<u32>>> = vec![None; groups];
    for (d, g) in group_of.enumerate() {
        let d = d as u32;
        let r = ranges.get_mut(g as usize)?;
        match r {
            None => *r = Some(d..d + 1),
            Some(r) if r.end == d => r.end += 1,
            Some(_) => return None,
        }
    }
    Some(ranges.into_iter().map(|r| r.unwrap_or(0..0)).collect())
}

impl Scratch {
    /// New scratch whose candidates must be built before use.
    pub fn new() -> Scratch {
        Scratch {
            dirty: true,
            ..Default::default()
        }
    }

    /// Brings the candidate records up to `state` if it may have changed: the domains whose free GPUs
    /// differ from what the records hold are updated in place (a domain that filled up becomes a hole),
    /// or inserted (a domain not in the list that has free GPUs again), then the rack and pool free counts
    /// that changed are written over their candidates. A call after one placement costs the domains it
    /// touched, not a rebuild of every record.
    pub fn refresh(&mut self, cluster: &Cluster, state: &ClusterState) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        if self.seen_domain.len() != state.domain_free.len() {
            self.groups =
                contiguous_groups(cluster.domain_rack.iter().copied(), state.rack_free.len()).zip(
                    contiguous_groups(cluster.domain_pool.iter().copied(), state.pool_free.len()),
                );
            return self.rebuild(cluster, state);
        }
        let Some((racks, pools)) = self.groups.take() else {
            return self.rebuild(cluster, state);
        };
        // Domains, racks and pools are compared with what the list holds a block at a time (a memcmp):
        // after one placement most blocks are unchanged.
        let mut seen = std::mem::take(&mut self.seen_domain);
        for_changed(&state.domain_free, &mut seen, |d, _| {
            self.update_domain(cluster, state, d)
        });
        self.seen_domain = seen;
        // The candidates of a group are the run of `domain_of` inside its domain range.
        let at = |domain_of: &[u32], r: &Range<u32>| {
            domain_of.partition_point(|&x| x < r.start)..domain_of.partition_point(|&x| x < r.end)
        };
        let (domain_of, list) = (&self.domain_of, &mut self.candidates);
        for_changed(&state.rack_free, &mut self.seen_rack, |k, free| {
            list.fill_rack_free(at(domain_of, &racks[k]), clamp_u32(free))
        });
        for_changed(&state.pool_free, &mut self.seen_pool, |k, free| {
            list.fill_pool_free(at(domain_of, &pools[k]), clamp_u32(free))
        });
        self.groups = Some((racks, pools));
        // Compacted when holes would make a call score more than twice the live candidates (amortised:
        // at least as many changes as the list is long happened since the last rebuild).
        if self.holes > 64 && 2 * self.holes > self.candidates.len() {
            self.rebuild(cluster, state);
        }
        #[cfg(debug_assertions)]
        {
            let (mut want, mut want_domains) = (Vec::new(), Vec::new());
            candidates(state, cluster, &mut want, &mut want_domains);
            let (domains, records) = self.live_candidates();
            assert_eq!(domains, want_domains, "resident candidates: domains");
            assert_eq!(records, want, "resident candidates");
        }
    }

    /// Candidates that are not holes: what a call scores.
    pub fn live(&self) -> usize {
        self.candidates.len() - self.holes
    }

    /// Applies domain `d`'s new free count: updated in place (a domain that fills up becomes a hole, a
    /// hole that frees up a candidate again), or inserted when it is not in the list.
    fn update_domain(&mut self, cluster: &Cluster, state: &ClusterState, d: usize) {
        let free = state.domain_free[d];
        let i = self.domain_of.partition_point(|&x| (x as usize) < d);
        if self.domain_of.get(i) == Some(&(d as u32)) {
            let was = self.candidates.free_at(i);
            self.holes = self.holes + (free == 0) as usize - (was == 0) as usize;
            self.candidates.set_free(i, free);
        } else if free > 0 {
            self.candidates.insert(i, &record(cluster, state, d));
            self.domain_of.insert(i, d as u32);
        }
    }

    /// The candidates without holes: (domains, records), what a rebuild gives.
    pub fn live_candidates(&mut self) -> (Vec<u32>, Vec<CandidateRecord>) {
        let domains = self.domain_of.clone();
        let records = self.candidates.records();
        domains
            .into_iter()
            .zip(records.iter().copied())
            .filter(|(_, r)| r.free > 0)
            .unzip()
    }

    /// Builds the candidate records from scratch.
    fn rebuild(&mut self, cluster: &Cluster, state: &ClusterState) {
        let mut records = Vec::new();
        candidates(state, cluster, &mut records, &mut self.domain_of);
        self.candidates.assign(&records);
        self.holes = 0;
        self.seen_domain.clone_from(&state.domain_free);
        self.seen_rack.clone_from(&state.rack_free);
        self.seen_pool.clone_from(&state.pool_free);
    }

    /// Turns the last call's winners from candidate indices into domain ids.
    pub fn winners_to_domains(&mut self) {
        for w in &mut self.winners {
            if w.is_feasible() {
                w.candidate = self.domain_of[w.candidate as usize];
            }
        }
    }
}

/// Calls `f(i, now[i])` for each `i` where `now` differs from `seen`, in increasing `i`, and copies it to
/// `seen`; blocks of 64 that are equal are skipped with one slice comparison.
fn for_changed<T: Copy + PartialEq>(now: &[T], seen: &mut [T], mut f: impl FnMut(usize, T)) {
    const BLOCK: usize = 64;
    for b in (0..now.len()).step_by(BLOCK) {
        let r = b..(b + BLOCK).min(now.len());
        if now[r.clone()] == seen[r.clone()] {
            continue;
        }
        for i in r {
            if now[i] != seen[i] {
                seen[i] = now[i];
                f(i, now[i]);
            }
        }
    }
}

/// Domain `d`'s candidate record in `state`.
fn record(cluster: &Cluster, state: &ClusterState, d: usize) -> CandidateRecord {
    let pool = cluster.domain_pool[d] as usize;
    CandidateRecord {
        free: state.domain_free[d],
        size: cluster.pools[pool].domain_gpus(),
        rack_free: clamp_u32(state.rack_free[cluster.domain_rack[d] as usize]),
        pool_free: clamp_u32(state.pool_free[pool]),
        model: cluster.pool_class[pool],
        _pad: [0; 3],
    }
}

/// The kernel's view of the cluster: one candidate per domain that has a free GPU (a full domain is
/// infeasible for every job: the kernel's first rule), in domain order, so the lowest-index tie rule and
/// first-fit's index cost order the same domains as over all of them. On a busy UltraServer fleet most
/// domains are full, and a call then scores a fraction of the domains.
pub fn candidates(
    state: &ClusterState,
    cluster: &Cluster,
    out: &mut Vec<CandidateRecord>,
    domain_of: &mut Vec<u32>,
) {
    out.clear();
    domain_of.clear();
    for d in state.domains_with_free() {
        debug_assert!(state.domain_free[d] > 0);
        domain_of.push(d as u32);
        out.push(record(cluster, state, d));
    }
}

/// Free counts above u32 (pools beyond 4G GPUs) saturate: the kernel only compares them with a gang size.
fn clamp_u32(v: u64) -> u32 {
    v.min(u32::MAX as u64) as u32
}
