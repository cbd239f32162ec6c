//! CPU twin of shaders/placement_cost.wgsl: the reference implementation and the fallback.
//!
//! `pair_cost` is the shader's `pair_cost` line for line; `best_candidate` walks candidates the way one
//! workgroup does (each of `WORKGROUP_SIZE` lanes strides over the candidates, then the lanes reduce), so
//! the tie rule is the same by construction. Jobs are independent and run in parallel with rayon.
//!
//! `CpuBackend` runs [`best_candidate_lanes`], the same algorithm laid out for SIMD: candidates are
//! converted once per call to a struct of arrays ([`CandidateLanes`]), and one "wave" of `LANES`
//! consecutive candidates is scored branch-free, lane `l` of the wave keeping its own best like a shader
//! lane. Any lane count yields the same winner (the minimum of (cost, index)), which the conformance tests
//! check against the scalar reference [`best_candidate`].
//!
//! Inside the simulator the lanes are not refilled per call: the engine keeps them resident and edits them
//! in place ([`super::resident::ResidentCandidates`]), and `best_candidates_resident` scores them as they are.

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
    // A model id of 32 or more takes no job: a 32-bit mask cannot name it.
    if job.model_mask.checked_shr(c.model).unwrap_or(0) & 1 == 0 || c.free == 0 || c.size == 0 {
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
    } else if policy == POLICY_FRAG_AWARE && fits_domain {
        // Fragmentation gradient: frag(after) - frag(before), offset by the largest possible frag so it is
        // never negative, then the leftover.
        let before = domain_frag(c.free, c.size);
        let after = domain_frag(c.free - job.gpus, c.size);
        // after + FRAG_MAX - before is in [0, 2 x FRAG_MAX] < 2^18, so the shift stays below the spill bit.
        let delta = after + FRAG_MAX - before;
        (delta << FRAG_SHIFT) | (c.free - job.gpus).min(FRAG_LEFTOVER_MAX)
    } else {
        // Topology-pack (and frag-aware when it spills): lower bound on domains spanned (anchor first, then
        // whole domains), then leftover. Spills sort after every single-domain fit.
        // Frag-aware keeps bit 30 for the spill flag, so its span is clamped one bit narrower.
        let (spill, span_max) = if policy == POLICY_FRAG_AWARE {
            (SPILL_BIT, SPAN_MAX >> 1)
        } else {
            (0, SPAN_MAX)
        };
        let span = if fits_domain {
            1
        } else {
            1 + div_ceil(job.gpus - c.free, c.size)
        };
        let leftover = if fits_domain { c.free - job.gpus } else { 0 };
        spill | (span.min(span_max) << SPAN_SHIFT) | leftover.min(DOMAIN_SIZE_MAX)
    };
    pref_miss | cost
}

/// GPUs of a domain with `free` free GPUs that typical gangs could not use: for each typical size s
/// (8, 16, 32 and the whole domain), `free mod s` (all of `free` when it is below s). The domain term is
/// clamped to `DOMAIN_SIZE_MAX` so the cost stays in range for any input.
#[inline(always)]
pub fn domain_frag(free: u32, size: u32) -> u32 {
    let mut f = (free % size).min(DOMAIN_SIZE_MAX);
    for s in FRAG_SIZES {
        f += free % s;
    }
    f
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

/// One job's winner by a plain scan in candidate order: the kernel's tie rule (lowest cost, then lowest
/// index) is what a strict `<` keeps, so this equals [`best_candidate`]; for calls over a few candidates.
pub fn best_of_few(policy: u32, job: &JobRecord, candidates: &[CandidateRecord]) -> Winner {
    let mut best = Winner::NONE;
    for (i, c) in candidates.iter().enumerate() {
        let cost = pair_cost(policy, job, c, i as u32);
        if cost < best.cost {
            best = Winner {
                cost,
                candidate: i as u32,
            };
        }
    }
    best
}

/// Lanes of one SIMD wave of the CPU twin (a multiple of the AVX2 width; the winner does not depend on it).
pub const LANES: usize = 16;

/// Bound on the gangs the wave path scores: its f32 division `ceil(a as f32 / b as f32)` (a = GPUs missing
/// from the anchor, below the gang, so below 2^24; b = the domain size) equals the integer `div_ceil(a, b)`.
/// For `b < 2^24` both are exact in f32 and the rounding error of the quotient is below 1/b. For any
/// larger `b`, `b as f32 >= 2^24 > a` (rounding is monotone and 2^24 is a float), so the quotient lies in
/// (0, 1 - 2^-24] when `a > 0` (the float `a / 2^24` bounds it and never rounds up to 1) and is 0 when
/// `a == 0`: its ceiling is 1 or 0, as `div_ceil` says. So every domain size is exact; a gang of 2^24
/// GPUs or more takes the scalar path.
pub const F32_EXACT: u32 = 1 << 24;
/// 2^23: for an integer-valued `0 <= x < 2^23`, `(x + 2^23).to_bits() - (2^23).to_bits()` is `x as u32`.
const F32_MAGIC: f32 = 8_388_608.0;

/// A candidate's lane bit: `1 << model`, or 0 when it can take nothing (no free GPU, no size, or a model
/// id of 32 or more, which no job's mask names; as [`pair_cost`] decides).
#[inline]
pub(super) fn model_bit(free: u32, size: u32, model: u32) -> u32 {
    if free != 0 && size != 0 {
        1u32.checked_shl(model).unwrap_or(0)
    } else {
        0
    }
}

/// A candidate's size lane: its size as f32, or 1.0 where it can take nothing (so that padding and holes
/// never divide by zero).
#[inline]
pub(super) fn size_f32(free: u32, size: u32) -> f32 {
    if free != 0 && size != 0 {
        size as f32
    } else {
        1.0
    }
}

/// Candidates as a struct of arrays, padded to a multiple of [`LANES`] with infeasible entries.
#[derive(Debug, Default, Clone)]
pub struct CandidateLanes {
    /// `1 << model`, or 0 when the candidate can take nothing (`free == 0`, `size == 0`, `model >= 32`,
    /// and padding).
    pub(super) model_bit: Vec<u32>,
    pub(super) free: Vec<u32>,
    pub(super) rack_free: Vec<u32>,
    pub(super) pool_free: Vec<u32>,
    /// `size` as f32 (1.0 where the candidate is infeasible, so padding never divides by zero).
    pub(super) size: Vec<f32>,
    /// Candidates before padding.
    pub(super) len: usize,
    /// False when the candidates are too many for the waves' u32 indices (then the scalar path runs).
    pub(super) exact: bool,
}

impl CandidateLanes {
    /// Converts candidate records once per call.
    pub fn new(candidates: &[CandidateRecord]) -> CandidateLanes {
        let mut s = CandidateLanes::default();
        s.refill(candidates);
        s
    }

    /// [`CandidateLanes::new`] into buffers that are kept (no allocation once they are large enough): one
    /// simple pass per lane, which the compiler vectorises.
    pub fn refill(&mut self, candidates: &[CandidateRecord]) {
        let padded = candidates.len().div_ceil(LANES) * LANES;
        let pad = padded - candidates.len();
        let s = self;
        s.len = candidates.len();
        s.exact = candidates.len() < (u32::MAX / 2) as usize;
        let lane = |v: &mut Vec<u32>, f: &dyn Fn(&CandidateRecord) -> u32| {
            v.clear();
            v.extend(candidates.iter().map(f));
            v.extend(std::iter::repeat_n(0, pad));
        };
        lane(&mut s.model_bit, &|c| model_bit(c.free, c.size, c.model));
        lane(&mut s.free, &|c| c.free);
        lane(&mut s.rack_free, &|c| c.rack_free);
        lane(&mut s.pool_free, &|c| c.pool_free);
        s.size.clear();
        s.size
            .extend(candidates.iter().map(|c| size_f32(c.free, c.size)));
        s.size.extend(std::iter::repeat_n(1.0, pad));
    }
}

/// One job's winner: [`best_candidate`] laid out for SIMD over [`CandidateLanes`]. Identical results.
pub fn best_candidate_lanes(
    policy: u32,
    job: &JobRecord,
    candidates: &[CandidateRecord],
    lanes: &CandidateLanes,
) -> Winner {
    wave_winner(policy, job, lanes).unwrap_or_else(|| best_candidate(policy, job, candidates))
}

/// The wave path's winner, or `None` where it does not apply (a gang of 2^24 GPUs or more, see
/// [`F32_EXACT`], or a policy without a wave version, which is still right, just scalar).
pub fn wave_winner(policy: u32, job: &JobRecord, lanes: &CandidateLanes) -> Option<Winner> {
    if !lanes.exact || job.gpus >= F32_EXACT {
        return None;
    }
    match policy {
        POLICY_FIRST_FIT => Some(waves::<POLICY_FIRST_FIT>(job, lanes)),
        POLICY_BEST_FIT => Some(waves::<POLICY_BEST_FIT>(job, lanes)),
        POLICY_TOPOLOGY_PACK => Some(waves::<POLICY_TOPOLOGY_PACK>(job, lanes)),
        _ => None,
    }
}

/// Runtime dispatch to an AVX2 build of the wave loop where the CPU has it.
#[inline(always)]
fn waves<const POLICY: u32>(job: &JobRecord, lanes: &CandidateLanes) -> Winner {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { waves_avx2::<POLICY>(job, lanes) };
        }
    }
    waves_generic::<POLICY>(job, lanes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn waves_avx2<const POLICY: u32>(job: &JobRecord, lanes: &CandidateLanes) -> Winner {
    waves_generic::<POLICY>(job, lanes)
}

/// `pair_cost` for one wave of `LANES` candidates starting at index `base`, branch-free, then each lane keeps
/// its best (strict `<`, so the lowest index among equal costs) exactly like phase 1 of the shader.
#[inline(always)]
fn waves_generic<const POLICY: u32>(job: &JobRecord, c: &CandidateLanes) -> Winner {
    let gpus = job.gpus;
    let mask = job.model_mask;
    // Free GPUs in the widest group this gang may spill into (a per-job choice of array).
    let group_free: &[u32] = match job.level {
        LEVEL_DOMAIN => &c.free,
        LEVEL_RACK => &c.rack_free,
        _ => &c.pool_free,
    };
    // Preference: missed when the gang exceeds the free GPUs of the preferred level.
    let (pref_free, pref_bit): (&[u32], u32) = match job.preferred {
        LEVEL_DOMAIN => (&c.free, PREF_MISS_BIT),
        LEVEL_RACK => (&c.rack_free, PREF_MISS_BIT),
        _ => (&c.free, 0),
    };
    let mut best_cost = [INFEASIBLE; LANES];
    let mut best_index = [NO_CANDIDATE; LANES];
    let waves = c.model_bit.len() / LANES;
    for w in 0..waves {
        let r = w * LANES..(w + 1) * LANES;
        let (bit, free, size) = (
            &c.model_bit[r.clone()],
            &c.free[r.clone()],
            &c.size[r.clone()],
        );
        let (group, pref) = (&group_free[r.clone()], &pref_free[r]);
        let base = (w * LANES) as u32;
        for lane in 0..LANES {
            let index = base + lane as u32;
            let f = free[lane];
            // `&`, not `&&`: both sides are cheap, and a short circuit would turn loads into masked loads.
            let feasible = ((mask & bit[lane]) != 0) & (gpus <= group[lane]);
            let fits_domain = gpus <= f;
            let pref_miss = if gpus > pref[lane] { pref_bit } else { 0 };
            let cost = if POLICY == POLICY_FIRST_FIT {
                index
            } else if POLICY == POLICY_BEST_FIT {
                let spill = SPILL_BIT | group[lane].wrapping_sub(gpus).min(SPILL_BIT - 1);
                if fits_domain {
                    f.wrapping_sub(gpus)
                } else {
                    spill
                }
            } else {
                // span = 1 + div_ceil(gpus - free, size), in exact f32 (see F32_EXACT); 1 when it fits.
                // The quotient is clamped where `min(span, SPAN_MAX)` would clamp it anyway, and turned back
                // into an integer with the 2^23 trick (exact below 2^23), which vectorizes where `as` does not.
                let missing = gpus.saturating_sub(f) as i32 as f32;
                let quotient = (missing / size[lane]).ceil().min((SPAN_MAX - 1) as f32);
                let span = 1 + ((quotient + F32_MAGIC).to_bits() - F32_MAGIC.to_bits());
                let leftover = if fits_domain { f.wrapping_sub(gpus) } else { 0 };
                (span.min(SPAN_MAX) << SPAN_SHIFT) | leftover.min(DOMAIN_SIZE_MAX)
            };
            let cost = if feasible {
                pref_miss | cost
            } else {
                INFEASIBLE
            };
            let (old_cost, old_index) = (best_cost[lane], best_index[lane]);
            best_cost[lane] = cost.min(old_cost);
            best_index[lane] = if cost < old_cost { index } else { old_index };
        }
    }
    // Phase 2: reduce the lanes under the tie rule.
    let mut best = Winner::NONE;
    for lane in 0..LANES {
        best = best.better(Winner {
            cost: best_cost[lane],
            candidate: best_index[lane],
        });
    }
    best
}

/// Calls of at least this many (job, candidate) pairs fan out over rayon. A simulator call scores at most
/// 32 jobs x the domains (58k pairs on 1,820 domains: ~50 us of work, where a hand-off to the other core
/// and back costs about as much); `bench-kernel`'s batches are far larger.
pub const PARALLEL_PAIRS: usize = 1 << 18;

/// Calls over at most this many candidates take [`best_of_few`] (identical results): filling the lanes, or
/// the shader's 64 lanes and tree reduction, cost more than scoring so few.
pub const SCALAR_CANDIDATES: usize = 4;

/// How the CPU twin scores a call; every path gives the same winners, only the cost differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// At most [`SCALAR_CANDIDATES`] candidates: [`best_of_few`], no lanes.
    Scalar,
    /// The waves on this thread: fewer than [`PARALLEL_PAIRS`] (job, candidate) pairs (every call inside
    /// the simulator).
    Serial,
    /// The waves with the jobs spread over rayon's threads: bench-size calls.
    Parallel,
}

/// The path of a call of `jobs` jobs over `candidates` candidates (holes of a resident list included).
pub fn path(jobs: usize, candidates: usize) -> Path {
    if candidates <= SCALAR_CANDIDATES {
        Path::Scalar
    } else if jobs.saturating_mul(candidates) < PARALLEL_PAIRS {
        Path::Serial
    } else {
        Path::Parallel
    }
}

thread_local! {
    /// The struct-of-arrays buffers, kept between calls on this thread.
    static LANES_BUF: std::cell::RefCell<CandidateLanes> = std::cell::RefCell::new(CandidateLanes::default());
}

/// Runs `f` on this thread's lanes, refilled from `candidates` (no allocation once they are large enough).
fn with_lanes(candidates: &[CandidateRecord], f: impl FnOnce(&CandidateLanes)) {
    LANES_BUF.with(|buf| {
        let mut lanes = buf.borrow_mut();
        lanes.refill(candidates);
        f(&lanes)
    })
}

/// The CPU backend. Holds nothing between calls but its name (and a per-thread conversion buffer).
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
        match path(jobs.len(), candidates.len()) {
            // A handful of candidates (a pooled partition is one): the scalar twin, no lanes to refill.
            Path::Scalar => out.extend(jobs.iter().map(|j| best_of_few(policy, j, candidates))),
            // Small calls (every call inside the simulator: at most 32 jobs) are not worth a thread hop.
            Path::Serial => with_lanes(candidates, |lanes| {
                out.extend(
                    jobs.iter()
                        .map(|j| best_candidate_lanes(policy, j, candidates, lanes)),
                )
            }),
            Path::Parallel => with_lanes(candidates, |lanes| {
                jobs.par_iter()
                    .with_min_len(4)
                    .map(|j| best_candidate_lanes(policy, j, candidates, lanes))
                    .collect_into_vec(out)
            }),
        }
        Ok(())
    }

    /// The wave path straight over the resident lanes: nothing to refill. A handful of candidates takes
    /// the plain scan; a job the waves do not cover (a policy without waves, a gang past `F32_EXACT`) the scalar
    /// twin over the records, rebuilt from the lanes only then.
    fn best_candidates_resident(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &mut ResidentCandidates,
        out: &mut Vec<Winner>,
    ) -> Result<(), KernelError> {
        out.clear();
        match path(jobs.len(), candidates.len()) {
            Path::Scalar => {
                let records = candidates.records();
                out.extend(jobs.iter().map(|j| best_of_few(policy, j, records)));
            }
            // Large calls (bench-size, never the simulator's): the records cost little beside the scoring.
            Path::Parallel => {
                let (records, lanes) = candidates.records_and_lanes();
                jobs.par_iter()
                    .with_min_len(4)
                    .map(|j| best_candidate_lanes(policy, j, records, lanes))
                    .collect_into_vec(out);
            }
            Path::Serial => {
                let lanes = candidates.lanes();
                out.extend(jobs.iter().map_while(|j| wave_winner(policy, j, lanes)));
                if out.len() < jobs.len() {
                    let (records, lanes) = candidates.records_and_lanes();
                    let rest = &jobs[out.len()..];
                    out.extend(
                        rest.iter()
                            .map(|j| best_candidate_lanes(policy, j, records, lanes)),
                    );
                }
            }
        }
        Ok(())
    }
}
