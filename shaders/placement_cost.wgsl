// Placement cost kernel: scores every (job x candidate) pair and writes each job's best candidate.
//
// CPU twin: src/kernel/cpu.rs (`pair_cost` line for line, `best_candidate` walks candidates like one
// workgroup of `main`). Every value is a u32, so the GPU and the CPU twin agree bit for bit.
//
// Dispatch: one workgroup per job. More than `max_compute_workgroups_per_dimension` jobs spread over a 2D
// grid; the job index is `workgroup_id.x + workgroup_id.y * num_workgroups.x`.

// Must match WORKGROUP_SIZE in src/kernel/mod.rs.
const WORKGROUP_SIZE: u32 = 64u;

// Must match the constants of the same names in src/kernel/mod.rs.
const INFEASIBLE: u32 = 0xffffffffu;
const NO_CANDIDATE: u32 = 0xffffffffu;
const LEVEL_DOMAIN: u32 = 0u;
const LEVEL_RACK: u32 = 1u;
const LEVEL_POOL: u32 = 2u;
const LEVEL_NONE: u32 = 3u;
const POLICY_FIRST_FIT: u32 = 0u;
const POLICY_BEST_FIT: u32 = 1u;
const POLICY_TOPOLOGY_PACK: u32 = 2u;
const POLICY_FRAG_AWARE: u32 = 3u;
const FRAG_SHIFT: u32 = 11u;
const FRAG_MAX: u32 = 0xffffu + 7u + 15u + 31u;
const FRAG_LEFTOVER_MAX: u32 = 0x7ffu;
const PREF_MISS_BIT: u32 = 0x80000000u;
const SPILL_BIT: u32 = 0x40000000u;
const SPAN_SHIFT: u32 = 16u;
const SPAN_MAX: u32 = 0x7fffu;
const DOMAIN_SIZE_MAX: u32 = 0xffffu;

// Must match struct JobRecord in src/kernel/mod.rs.
struct JobRecord {
    gpus: u32,
    model_mask: u32,
    level: u32,
    preferred: u32,
}

// Must match struct CandidateRecord in src/kernel/mod.rs.
struct CandidateRecord {
    free: u32,
    size: u32,
    rack_free: u32,
    pool_free: u32,
    model: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// Must match struct Params in src/kernel/mod.rs.
struct Params {
    policy: u32,
    num_jobs: u32,
    num_candidates: u32,
    pad: u32,
}

// Must match struct Winner in src/kernel/mod.rs.
struct Winner {
    cost: u32,
    candidate: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> jobs: array<JobRecord>;
@group(0) @binding(2) var<storage, read> candidates: array<CandidateRecord>;
@group(0) @binding(3) var<storage, read_write> winners: array<Winner>;
// Debug path only (entry point `pair_costs`): the full cost row of jobs[0].
@group(0) @binding(4) var<storage, read_write> costs: array<u32>;

// One (cost, candidate) per lane for the tree reduction.
var<workgroup> lanes: array<Winner, WORKGROUP_SIZE>;

// Integer ceiling division (`b > 0`), without the overflow of (a + b - 1) / b.
fn div_ceil(a: u32, b: u32) -> u32 {
    return a / b + select(0u, 1u, a % b != 0u);
}

// Cost of placing `job` with candidate `c` (index `index`) as its anchor domain; INFEASIBLE if it cannot go there.
// GPUs of a domain with `free` free GPUs that typical gangs (8, 16, 32, the whole domain) could not use;
// the domain term is clamped to DOMAIN_SIZE_MAX so the cost stays in range for any input.
// Must match `domain_frag` in src/kernel/cpu.rs.
fn domain_frag(free: u32, size: u32) -> u32 {
    return min(free % size, DOMAIN_SIZE_MAX) + free % 8u + free % 16u + free % 32u;
}

fn pair_cost(policy: u32, job: JobRecord, c: CandidateRecord, index: u32) -> u32 {
    // A model id of 32 or more takes no job (a 32-bit mask cannot name it; WGSL would shift modulo 32).
    if c.model >= 32u || ((job.model_mask >> c.model) & 1u) == 0u || c.free == 0u || c.size == 0u {
        return INFEASIBLE;
    }
    let fits_domain = job.gpus <= c.free;
    // Free GPUs in the widest group this gang may spill into.
    var group_free: u32;
    if job.level == LEVEL_DOMAIN {
        group_free = c.free;
    } else if job.level == LEVEL_RACK {
        group_free = c.rack_free;
    } else {
        group_free = c.pool_free;
    }
    if job.gpus > group_free {
        return INFEASIBLE;
    }
    // Preference: the group the placement needs must lie inside the preferred level.
    var pref_miss = 0u;
    if job.preferred == LEVEL_DOMAIN && !fits_domain {
        pref_miss = PREF_MISS_BIT;
    }
    if job.preferred == LEVEL_RACK && job.gpus > c.rack_free {
        pref_miss = PREF_MISS_BIT;
    }
    var cost: u32;
    if policy == POLICY_FIRST_FIT {
        cost = index;
    } else if policy == POLICY_BEST_FIT {
        if fits_domain {
            cost = c.free - job.gpus;
        } else {
            // Spill: the tightest group wins; the group leftover is clamped below the spill bit.
            cost = SPILL_BIT | min(group_free - job.gpus, SPILL_BIT - 1u);
        }
    } else if policy == POLICY_FRAG_AWARE && fits_domain {
        // Fragmentation gradient: frag(after) - frag(before), offset by the largest possible frag so it is
        // never negative, then the leftover.
        let before = domain_frag(c.free, c.size);
        let after = domain_frag(c.free - job.gpus, c.size);
        // after + FRAG_MAX - before is in [0, 2 x FRAG_MAX] < 2^18, so the shift stays below the spill bit.
        let delta = after + FRAG_MAX - before;
        cost = (delta << FRAG_SHIFT) | min(c.free - job.gpus, FRAG_LEFTOVER_MAX);
    } else {
        // Topology-pack (and frag-aware when it spills): lower bound on domains spanned (anchor first, then whole domains), then leftover.
        var span = 1u;
        var leftover = 0u;
        if fits_domain {
            leftover = c.free - job.gpus;
        } else {
            span = 1u + div_ceil(job.gpus - c.free, c.size);
        }
        // Frag-aware keeps bit 30 for the spill flag, so its span is clamped one bit narrower.
        var spill = 0u;
        var span_max = SPAN_MAX;
        if policy == POLICY_FRAG_AWARE {
            spill = SPILL_BIT;
            span_max = SPAN_MAX >> 1u;
        }
        cost = spill | (min(span, span_max) << SPAN_SHIFT) | min(leftover, DOMAIN_SIZE_MAX);
    }
    return pref_miss | cost;
}

// The better of two (cost, index) pairs: lowest cost, then lowest candidate index.
fn better(a: Winner, b: Winner) -> Winner {
    if b.cost < a.cost || (b.cost == a.cost && b.candidate < a.candidate) {
        return b;
    }
    return a;
}

// One workgroup per job: lanes stride over candidates, then reduce in shared memory.
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let job_index = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: the whole group leaves together, so the barriers below stay uniform.
    if job_index >= params.num_jobs {
        return;
    }
    let job = jobs[job_index];
    let n = params.num_candidates;

    // Phase 1: lane `lane` strides over candidates lane, lane + WG, lane + 2 WG, ...
    var best = Winner(INFEASIBLE, NO_CANDIDATE);
    for (var i = lane; i < n; i += WORKGROUP_SIZE) {
        let cost = pair_cost(params.policy, job, candidates[i], i);
        if cost < best.cost {
            best = Winner(cost, i);
        }
    }
    lanes[lane] = best;
    workgroupBarrier();

    // Phase 2: tree reduction over lanes.
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lane < stride {
            lanes[lane] = better(lanes[lane], lanes[lane + stride]);
        }
        workgroupBarrier();
    }
    if lane == 0u {
        winners[job_index] = lanes[0];
    }
}

// Debug path: the full cost row of jobs[0] (one invocation per candidate, 2D grid of workgroups).
@compute @workgroup_size(WORKGROUP_SIZE)
fn pair_costs(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lane;
    if i >= params.num_candidates {
        return;
    }
    costs[i] = pair_cost(params.policy, jobs[0], candidates[i], i);
}
