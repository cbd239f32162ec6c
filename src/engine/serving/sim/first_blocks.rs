//! The kv-aware router's index of where a request's first prompt block may be cached.
//!
//! A replica can hold a cached prefix of a request (one block or more) only if it holds the request's
//! first block. Without an index the router asks every replica within the load slack, one cache lookup
//! each, so a request costs as many lookups as the service has replicas, and a service's cost grows with
//! replicas x requests. This index keeps, for each distinct first block of the workload, the replicas
//! that pinned a request starting with it. That is a superset of the replicas holding it, pruned to the
//! exact set when the router reads it, so a routed request costs a lookup per replica that may hold its
//! prefix (one or two for a session), not one per replica.
//!
//! Exact only when a first block never appears at a later position of any request (then the only way a
//! replica gets that block is by pinning a request that starts with it, and that pin registers it):
//! prefix-hashed ids (Mooncake's, and the generated sessions') always are. [`FirstBlocks::build`]
//! checks it over the whole workload and returns `None` otherwise, and the router then asks every
//! replica as before. Pure: no I/O.

use rustc_hash::FxHashMap;

/// Per request, the dense key of its first block; per key, the replicas that may hold that block: those
/// that pinned a request starting with it since the router last pruned the list (each holds the block or
/// held it once). Most blocks have one such replica at a time, so it is kept inline (4 bytes a key) and
/// only the others go to a map.
#[derive(Debug)]
pub(super) struct FirstBlocks {
    /// Per request: its first block's key, or [`NONE`] for a request without hash ids.
    key: Vec<u32>,
    /// Per key: one replica that may hold the block, or [`NONE`].
    first: Vec<u32>,
    /// Per key whose `first` is set: the other replicas that may hold it, when there are any.
    more: FxHashMap<u32, Vec<u32>>,
}

const NONE: u32 = u32::MAX;

impl FirstBlocks {
    /// The index for `ids` (each request's hash ids, in request order), or `None` when some request's
    /// first block also appears at a later position of a request (the index would miss holders), or when
    /// there are more distinct first blocks than keys.
    pub(super) fn build<'r>(ids: impl Iterator<Item = &'r [u64]> + Clone) -> Option<FirstBlocks> {
        let mut keys: FxHashMap<u64, u32> = FxHashMap::default();
        let mut key = Vec::new();
        // The request before's (first block, key): a session's calls are usually listed together, so
        // most requests find their key without a map lookup.
        let mut before = (0u64, NONE);
        for ids in ids.clone() {
            key.push(match ids.first() {
                None => NONE,
                Some(&h) if before.1 != NONE && h == before.0 => before.1,
                Some(&h) => {
                    let next = u32::try_from(keys.len()).ok().filter(|&k| k != NONE)?;
                    let k = *keys.entry(h).or_insert(next);
                    before = (h, k);
                    k
                }
            });
        }
        // Each request's ids after the first must miss `keys`. A session's calls repeat the ids of the
        // call before with the same first block, so only the ids past their common prefix are looked up,
        // and only those the filter cannot rule out.
        let filter = Filter::of(keys.keys().copied(), keys.len());
        let mut last: Vec<&[u64]> = vec![&[]; keys.len()];
        for (ids, &k) in ids.zip(&key) {
            let Some(seen) = last.get_mut(k as usize) else {
                continue;
            };
            let same = ids
                .iter()
                .zip(seen.iter())
                .take_while(|(a, b)| a == b)
                .count();
            if ids[same.max(1)..]
                .iter()
                .any(|&h| filter.may_hold(h) && keys.contains_key(&h))
            {
                return None;
            }
            *seen = ids;
        }
        Some(FirstBlocks {
            key,
            first: vec![NONE; keys.len()],
            more: FxHashMap::default(),
        })
    }

    /// Replica `r` pinned request `q`'s blocks.
    pub(super) fn pinned(&mut self, q: usize, r: usize) {
        // `NONE` is past the last key (there are fewer keys), so a request without ids finds no entry.
        let Some(&k) = self.key.get(q) else {
            return;
        };
        let Some(first) = self.first.get_mut(k as usize) else {
            return;
        };
        let r = r as u32;
        if *first == NONE {
            *first = r;
        } else if *first != r {
            let others = self.more.entry(k).or_default();
            if !others.contains(&r) {
                others.push(r);
            }
        }
    }

    /// The replicas that hold request `q`'s first block, as far as `holds` says: the list is pruned to
    /// those it accepts and returned (in no particular order); empty for a request without hash ids.
    pub(super) fn holders(
        &mut self,
        q: usize,
        holds: impl Fn(u32) -> bool,
    ) -> (Option<u32>, &[u32]) {
        let Some(&k) = self.key.get(q) else {
            return (None, &[]);
        };
        let Some(first) = self.first.get_mut(k as usize) else {
            return (None, &[]);
        };
        let mut others = self.more.remove(&k).unwrap_or_default();
        others.retain(|&r| holds(r));
        if *first != NONE && !holds(*first) {
            *first = others.pop().unwrap_or(NONE);
        }
        let first = (*first != NONE).then_some(*first);
        if others.is_empty() {
            return (first, &[]);
        }
        (first, self.more.entry(k).or_insert(others))
    }
}

/// A set of hash ids as one bit per id's mixed value (a one-hash Bloom filter) at 16 bits per id: an id
/// outside the set finds its bit clear 15 times in 16 or more, with one read of a table that stays in
/// cache where the map it guards (a third of a million first blocks per service at full UltraServer
/// scale) does not.
struct Filter {
    words: Vec<u64>,
    shift: u32,
}

impl Filter {
    fn of(ids: impl Iterator<Item = u64>, n: usize) -> Filter {
        let bits = n.saturating_mul(16).next_power_of_two().max(64);
        let mut f = Filter {
            words: vec![0; bits / 64],
            shift: 64 - bits.trailing_zeros(),
        };
        for h in ids {
            let b = f.bit(h);
            f.words[b / 64] |= 1 << (b % 64);
        }
        f
    }

    /// Fibonacci hashing: the top bits of the id times 2^64 / phi, so consecutive or strided ids spread.
    fn bit(&self, h: u64) -> usize {
        (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// False only for an id not in the set.
    fn may_hold(&self, h: u64) -> bool {
        let b = self.bit(h);
        self.words[b / 64] >> (b % 64) & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(reqs: &[&[u64]]) -> Option<FirstBlocks> {
        FirstBlocks::build(reqs.iter().copied())
    }

    /// Request `q`'s holders, sorted, pruned by nothing.
    fn all(fb: &mut FirstBlocks, q: usize) -> Vec<u32> {
        let (first, more) = fb.holders(q, |_| true);
        let mut v: Vec<u32> = first.into_iter().chain(more.iter().copied()).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn requests_sharing_a_first_block_share_a_key_and_its_holders() {
        let mut fb = build(&[&[1, 2, 3], &[7, 8], &[1, 2, 4], &[]]).unwrap();
        fb.pinned(0, 5);
        fb.pinned(1, 2);
        fb.pinned(2, 5);
        fb.pinned(2, 3);
        fb.pinned(2, 3);
        fb.pinned(0, 9);
        fb.pinned(3, 9);
        // Each block's first holder inline; only block 1's two others in the map.
        assert_eq!(fb.more.len(), 1);
        assert_eq!(all(&mut fb, 2), vec![3, 5, 9]);
        assert_eq!(all(&mut fb, 0), vec![3, 5, 9]);
        assert_eq!(all(&mut fb, 1), vec![2]);
        assert_eq!(all(&mut fb, 3), Vec::<u32>::new());
        assert_eq!(all(&mut fb, 4), Vec::<u32>::new());
    }

    #[test]
    fn pruning_keeps_exactly_the_replicas_that_still_hold_the_block() {
        let mut fb = build(&[&[1, 2], &[1, 3]]).unwrap();
        for r in [4, 6, 8, 10] {
            fb.pinned(0, r);
        }
        let (first, more) = fb.holders(1, |r| r != 4 && r != 8);
        let mut v: Vec<u32> = first.into_iter().chain(more.iter().copied()).collect();
        v.sort_unstable();
        assert_eq!(v, vec![6, 10]);
        assert_eq!(all(&mut fb, 0), vec![6, 10]);
        assert_eq!(fb.holders(0, |_| false), (None, &[][..]));
        assert_eq!(all(&mut fb, 1), Vec::<u32>::new());
        assert!(fb.more.is_empty());
        // A pruned replica that pins again is listed again.
        fb.pinned(1, 8);
        assert_eq!(all(&mut fb, 0), vec![8]);
    }

    #[test]
    fn a_first_block_id_of_zero_is_a_key_like_any_other() {
        // Mooncake's ids start at 0; the first request's block 0 must not be taken for "no block".
        let mut fb = build(&[&[0, 1], &[0, 1, 2], &[5]]).unwrap();
        fb.pinned(0, 4);
        assert_eq!(all(&mut fb, 1), vec![4]);
        assert_eq!(all(&mut fb, 2), Vec::<u32>::new());
    }

    #[test]
    fn a_first_block_seen_later_in_a_request_refuses_the_index() {
        assert!(build(&[&[1, 2], &[2, 3]]).is_none());
        assert!(build(&[&[2, 3], &[1, 2]]).is_none());
        assert!(build(&[&[5, 5]]).is_none());
        assert!(build(&[&[1, 2], &[1, 3], &[4, 2]]).is_some());
    }

    /// Every id of the set passes the filter; of ids outside it, consecutive or strided like generated
    /// and traced ids, at most about 1 in 16 does.
    #[test]
    fn the_filter_keeps_every_member_and_rules_out_most_others() {
        for (n, stride) in [
            (1usize, 1u64),
            (1_000, 1),
            (50_000, 1),
            (50_000, 1 << 20),
            (3_000, 7),
        ] {
            let members: Vec<u64> = (0..n as u64).map(|i| i * stride * 2).collect();
            let f = Filter::of(members.iter().copied(), n);
            assert!(
                members.iter().all(|&h| f.may_hold(h)),
                "n {n} stride {stride}"
            );
            let others = 100_000u64;
            let passed = (0..others)
                .filter(|&i| f.may_hold(i * stride * 2 + 1))
                .count();
            assert!(
                (passed as f64) < others as f64 / 12.0,
                "n {n} stride {stride}: {passed} of {others} outsiders pass"
            );
        }
    }

    proptest::proptest! {
        /// The index is refused exactly when some request's first block sits at a later position of a
        /// request (the filter only skips lookups that would miss).
        #[test]
        fn refused_exactly_when_a_first_block_appears_later(
            reqs in proptest::collection::vec(proptest::collection::vec(0u64..24, 0..6), 0..12)
        ) {
            let slices: Vec<&[u64]> = reqs.iter().map(Vec::as_slice).collect();
            let firsts: std::collections::BTreeSet<u64> =
                reqs.iter().filter_map(|r| r.first().copied()).collect();
            let later = reqs.iter().any(|r| r.iter().skip(1).any(|h| firsts.contains(h)));
            proptest::prop_assert_eq!(build(&slices).is_none(), later);
        }
    }
}
