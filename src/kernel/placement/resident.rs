//! Resident candidates: the candidate set kept between kernel calls and updated in place with the deltas
//! of each change (issue 16, item 1), instead of rebuilt and converted for every call.
//!
//! The CPU twin scores the struct of arrays ([`CandidateLanes`]) directly, so a call after a placement
//! costs the few domains that changed (plus a fill of the rack's and pool's free counts), not a rebuild of
//! every record and a conversion of every record. The array of structs a GPU uploads is rebuilt from the
//! lanes only when a backend asks for it ([`ResidentCandidates::records`]); the GPU backend then uploads
//! the runs that differ from what it holds. The contents are always exactly the records a rebuild would
//! give (the engine checks so in debug builds), so every backend decides the same.

use super::cpu::{model_bit, size_f32, CandidateLanes, LANES};
use super::CandidateRecord;
use std::ops::Range;

/// A candidate set kept between calls: the lanes, the columns they do not hold exactly (model, size), and
/// the records rebuilt on demand.
#[derive(Debug, Default, Clone)]
pub struct ResidentCandidates {
    lanes: CandidateLanes,
    /// GPU model per candidate (the lanes hold `1 << model`, or 0 for a candidate that takes nothing).
    model: Vec<u32>,
    /// Domain size per candidate (the lanes hold it as f32).
    size: Vec<u32>,
    /// The records, valid while `fresh`.
    records: Vec<CandidateRecord>,
    fresh: bool,
}

/// Inserts `x` at `i` into a column padded to a multiple of [`LANES`] holding `len` entries before the
/// insert (the pads after them are `pad`), keeping the padding.
fn insert_padded<T: Copy>(v: &mut Vec<T>, len: usize, i: usize, x: T, pad: T) {
    v.insert(i, x);
    v.resize((len + 1).div_ceil(LANES) * LANES, pad);
}

/// Removes entry `i` of a padded column holding `len` entries, keeping the padding.
fn remove_padded<T: Copy>(v: &mut Vec<T>, len: usize, i: usize, pad: T) {
    v.remove(i);
    v.resize((len - 1).div_ceil(LANES) * LANES, pad);
}

impl ResidentCandidates {
    /// Candidates held.
    pub fn len(&self) -> usize {
        self.lanes.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.lanes.len == 0
    }

    /// The struct of arrays the CPU twin scores.
    pub fn lanes(&self) -> &CandidateLanes {
        &self.lanes
    }

    /// Replaces the whole set.
    pub fn assign(&mut self, records: &[CandidateRecord]) {
        self.lanes.refill(records);
        self.model.clear();
        self.model.extend(records.iter().map(|c| c.model));
        self.size.clear();
        self.size.extend(records.iter().map(|c| c.size));
        self.set_exact();
        self.records.clear();
        self.records.extend_from_slice(records);
        self.fresh = true;
    }

    fn set_exact(&mut self) {
        // As `CandidateLanes::refill` decides it.
        self.lanes.exact = self.lanes.len < (u32::MAX / 2) as usize;
    }

    /// Inserts `c` before candidate `i` (`i == len()` appends).
    pub fn insert(&mut self, i: usize, c: &CandidateRecord) {
        let n = self.lanes.len;
        let l = &mut self.lanes;
        insert_padded(
            &mut l.model_bit,
            n,
            i,
            model_bit(c.free, c.size, c.model),
            0,
        );
        insert_padded(&mut l.free, n, i, c.free, 0);
        insert_padded(&mut l.rack_free, n, i, c.rack_free, 0);
        insert_padded(&mut l.pool_free, n, i, c.pool_free, 0);
        insert_padded(&mut l.size, n, i, size_f32(c.free, c.size), 1.0);
        l.len = n + 1;
        self.model.insert(i, c.model);
        self.size.insert(i, c.size);
        self.set_exact();
        self.fresh = false;
    }

    /// Removes candidate `i`.
    pub fn remove(&mut self, i: usize) {
        let n = self.lanes.len;
        let l = &mut self.lanes;
        remove_padded(&mut l.model_bit, n, i, 0);
        remove_padded(&mut l.free, n, i, 0);
        remove_padded(&mut l.rack_free, n, i, 0);
        remove_padded(&mut l.pool_free, n, i, 0);
        remove_padded(&mut l.size, n, i, 1.0);
        l.len = n - 1;
        self.model.remove(i);
        self.size.remove(i);
        self.set_exact();
        self.fresh = false;
    }

    /// Candidate `i`'s free GPUs.
    pub fn free_at(&self, i: usize) -> u32 {
        self.lanes.free[i]
    }

    /// Sets candidate `i`'s free GPUs (0 leaves it in place as a hole: infeasible for every job).
    pub fn set_free(&mut self, i: usize, free: u32) {
        let (size, model) = (self.size[i], self.model[i]);
        self.lanes.free[i] = free;
        self.lanes.model_bit[i] = model_bit(free, size, model);
        self.lanes.size[i] = size_f32(free, size);
        self.fresh = false;
    }

    /// Sets the rack free GPUs of candidates `range`.
    pub fn fill_rack_free(&mut self, range: Range<usize>, v: u32) {
        self.lanes.rack_free[range].fill(v);
        self.fresh = false;
    }

    /// Sets the pool free GPUs of candidates `range`.
    pub fn fill_pool_free(&mut self, range: Range<usize>, v: u32) {
        self.lanes.pool_free[range].fill(v);
        self.fresh = false;
    }

    /// The records (array of structs), rebuilt from the lanes if they changed since the last time.
    pub fn records(&mut self) -> &[CandidateRecord] {
        self.records_and_lanes().0
    }

    /// [`ResidentCandidates::records`] and the lanes together (a call that scores some jobs on each).
    pub fn records_and_lanes(&mut self) -> (&[CandidateRecord], &CandidateLanes) {
        if !self.fresh {
            let l = &self.lanes;
            self.records.clear();
            self.records.extend((0..l.len).map(|i| CandidateRecord {
                free: l.free[i],
                size: self.size[i],
                rack_free: l.rack_free[i],
                pool_free: l.pool_free[i],
                model: self.model[i],
                _pad: [0; 3],
            }));
            self.fresh = true;
        }
        (&self.records, &self.lanes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::placement::cpu::{best_candidate, best_candidate_lanes, wave_winner};
    use crate::kernel::placement::{
        JobRecord, LEVEL_POOL, POLICY_BEST_FIT, POLICY_FIRST_FIT, POLICY_TOPOLOGY_PACK,
    };

    fn rec(free: u32, size: u32, rack_free: u32, pool_free: u32, model: u32) -> CandidateRecord {
        CandidateRecord {
            free,
            size,
            rack_free,
            pool_free,
            model,
            _pad: [0; 3],
        }
    }

    /// Edits applied in place give the records, the lanes and the winners of a set built from scratch.
    #[test]
    fn edits_in_place_equal_a_rebuild() {
        let mut want: Vec<CandidateRecord> = (0..40u32)
            .map(|i| rec(1 + i % 72, 72, 200 + i, 5000, i % 3))
            .collect();
        let mut r = ResidentCandidates::default();
        r.assign(&want);
        // Cross padding boundaries both ways: 40 -> 49 -> 31 candidates.
        for k in 0..9u32 {
            let c = rec(3 + k, 72, 100, 5000, 1);
            let at = (k as usize * 5) % (want.len() + 1);
            want.insert(at, c);
            r.insert(at, &c);
        }
        for k in 0..18 {
            let at = (k * 7) % want.len();
            want.remove(at);
            r.remove(at);
        }
        for (i, c) in want.iter_mut().enumerate().step_by(3) {
            c.free = (i as u32 * 11) % 73;
            r.set_free(i, c.free);
        }
        for c in &mut want[4..9] {
            c.rack_free = 17;
        }
        r.fill_rack_free(4..9, 17);
        for c in &mut want {
            c.pool_free = 64;
        }
        r.fill_pool_free(0..want.len(), 64);
        assert_eq!(r.records(), &want[..]);
        let mut fresh = ResidentCandidates::default();
        fresh.assign(&want);
        assert_eq!(r.lanes().model_bit, fresh.lanes().model_bit);
        assert_eq!(r.lanes().free, fresh.lanes().free);
        assert_eq!(r.lanes().size, fresh.lanes().size);
        assert_eq!(r.lanes().pool_free.len() % LANES, 0);
        for gpus in [1, 8, 60, 72, 100, 144] {
            let job = JobRecord {
                gpus,
                model_mask: 0b11,
                level: LEVEL_POOL,
                preferred: LEVEL_POOL,
            };
            assert_eq!(
                best_candidate_lanes(POLICY_TOPOLOGY_PACK, &job, &want, r.lanes()),
                best_candidate(POLICY_TOPOLOGY_PACK, &job, &want),
                "{gpus} GPUs"
            );
        }
    }

    #[test]
    fn huge_domains_and_unknown_models_stay_on_the_waves_and_exact() {
        // Sizes past f32's integers (2^24 + 1 rounds to 2^24) and model ids past the mask keep the waves
        // on (see `F32_EXACT`); their winners equal the scalar twin's for every gang below 2^24.
        let mut r = ResidentCandidates::default();
        r.assign(&[rec(8, 8, 8, 1 << 30, 0); 20]);
        r.insert(3, &rec(8, 8, 8, 1 << 30, 40));
        r.insert(4, &rec(3, (1 << 24) + 1, 8, 1 << 30, 0));
        r.insert(5, &rec(5, u32::MAX, 8, 1 << 30, 0));
        r.set_free(6, 2);
        assert!(r.lanes().exact);
        let records = r.records().to_vec();
        for gpus in [1, 2, 3, 5, 9, 100, (1 << 24) - 1] {
            for policy in [POLICY_TOPOLOGY_PACK, POLICY_BEST_FIT, POLICY_FIRST_FIT] {
                let job = JobRecord {
                    gpus,
                    model_mask: u32::MAX,
                    level: LEVEL_POOL,
                    preferred: LEVEL_POOL,
                };
                let waves = wave_winner(policy, &job, r.lanes());
                assert_eq!(
                    waves,
                    Some(best_candidate(policy, &job, &records)),
                    "{gpus} GPUs, policy {policy}"
                );
            }
        }
    }
}
