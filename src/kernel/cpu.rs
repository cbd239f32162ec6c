//! CPU twin of shaders/placement_cost.wgsl: the reference implementation and the fallback.
//!
//! `pair_cost` is the shader's `pair_cost` line for line; `best_candidate` walks candidates the way one
//! workgroup does (each of `WORKGROUP_SIZE` lanes strides over the candidates, then the lanes reduce), so
//! the tie rule is the same by construction. Jobs are independent and run in parallel with rayon.

use super::*;
use rayon::prelude::*;

/// Integer ceiling division (`b > 0`).
#[inline(always)]
fn div_ceil(a: u32, b: u32) -> u32 {
    a.div_ceil(b)
}

/// Cost of placing `job` with candidate `c` (index `index`) as its anchor domain; `INFEASIBLE` if it cannot go there.
#[inline(always)]
pub fn pair_cost(policy: u32, job: &JobRecord, c: &CandidateRecord, index: u32) -> u32 {
    if (job.model_mask >> c.model) & 1 == 0 || c.free == 0 || c.size == 0 {
        return INFEASIBLE;
    }
    let fits_domain = job.gpus <= c.free;
    // Free GPUs in the widest group this gang may spill into.
    let group_free = if job.level == LEVEL_DOMAIN {
        c.free
    } else if job.level == LEVEL_RACK {
        c.rack_free
    } else {
        c.pool_free
    };
    if job.gpus > group_free {
        return INFEASIBLE;
    }
    // Preference: the group the placement needs must lie inside the preferred level.
    let mut pref_miss = 0u32;
    if job.preferred == LEVEL_DOMAIN && !fits_domain {
        pref_miss = PREF_MISS_BIT;
    }
    if job.preferred == LEVEL_RACK && job.gpus > c.rack_free {
        pref_miss = PREF_MISS_BIT;
    }
    let cost = if policy == POLICY_FIRST_FIT {
        index
    } else if policy == POLICY_BEST_FIT {
        if fits_domain {
            c.free - job.gpus
        } else {
            // Spill: the tightest group wins; the group leftover is clamped below the spill bit.
            SPILL_BIT | (group_free - job.gpus).min(SPILL_BIT - 1)
        }
    } else {
        // Topology-pack: lower bound on domains spanned (anchor first, then whole domains), then leftover.
        let span = if fits_domain {
            1
        } else {
            1 + div_ceil(job.gpus - c.free, c.size)
        };
        let leftover = if fits_domain { c.free - job.gpus } else { 0 };
        (span.min(SPAN_MAX) << SPAN_SHIFT) | leftover.min(DOMAIN_SIZE_MAX)
    };
    pref_miss | cost
}

/// One job's winner over all candidates, reduced the way one workgroup of the shader reduces.
pub fn best_candidate(policy: u32, job: &JobRecord, candidates: &[CandidateRecord]) -> Winner {
    let n = candidates.len() as u32;
    // Phase 1: lane `lane` strides over candidates lane, lane + WG, lane + 2 WG, ...
    let mut lanes = [Winner::NONE; WORKGROUP_SIZE as usize];
    for (lane, best) in lanes.iter_mut().enumerate() {
        let mut i = lane as u32;
        while i < n {
            let cost = pair_cost(policy, job, &candidates[i as usize], i);
            if cost < best.cost {
                *best = Winner { cost, candidate: i };
            }
            i += WORKGROUP_SIZE;
        }
    }
    // Phase 2: tree reduction over lanes, as in the shader's shared-memory loop.
    let mut stride = WORKGROUP_SIZE / 2;
    while stride > 0 {
        for lane in 0..stride as usize {
            lanes[lane] = lanes[lane].better(lanes[lane + stride as usize]);
        }
        stride /= 2;
    }
    lanes[0]
}

/// The CPU backend. Holds nothing between calls but its name.
#[derive(Debug, Default)]
pub struct CpuBackend;

impl CostBackend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn adapter(&self) -> String {
        "cpu twin".to_string()
    }

    fn best_candidates(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &[CandidateRecord],
        out: &mut Vec<Winner>,
    ) -> Result<(), KernelError> {
        out.clear();
        // Small rounds (the common case inside the simulator) are not worth a thread hop.
        if jobs.len() * candidates.len() < 1 << 15 {
            out.extend(jobs.iter().map(|j| best_candidate(policy, j, candidates)));
        } else {
            jobs.par_iter()
                .map(|j| best_candidate(policy, j, candidates))
                .collect_into_vec(out);
        }
        Ok(())
    }
}
