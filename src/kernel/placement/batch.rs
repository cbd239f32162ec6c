//! Seeded random kernel batches: realistic mixes of jobs and NVLink domains for benchmarks, calibration
//! and conformance tests.

use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// NVLink domain sizes that occur in real clusters (8-GPU servers, 36/72-GPU racks, 64-GPU pods).
const DOMAIN_SIZES: [u32; 4] = [8, 36, 64, 72];
/// GPU model ids the random clusters use (a mask bit outside them makes a job infeasible).
const MODELS: u32 = 4;

/// A seeded, realistic batch: `jobs` pending jobs and `candidates` NVLink domains.
///
/// Domains come in pools (one model and domain size per pool) of racks of 1..=4 domains; free counts are a
/// mix of idle, full and partly used domains, and `rack_free`/`pool_free` are the sums over the emitted
/// domains, so they are consistent. Jobs need 1..=576 GPUs, mostly few, accept one or a few models, and mix
/// levels and preferences, so batches hold feasible and infeasible pairs and many equal costs.
pub fn random_batch(
    seed: u64,
    jobs: usize,
    candidates: usize,
) -> (Vec<JobRecord>, Vec<CandidateRecord>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cands = Vec::with_capacity(candidates);
    while cands.len() < candidates {
        let model = rng.random_range(0..MODELS);
        let size = DOMAIN_SIZES[rng.random_range(0..DOMAIN_SIZES.len())];
        let racks = rng.random_range(1..=16usize);
        let per_rack = rng.random_range(1..=4usize);
        let pool_start = cands.len();
        for _ in 0..racks {
            let rack_start = cands.len();
            for _ in 0..per_rack {
                if cands.len() == candidates {
                    break;
                }
                let free = match rng.random_range(0..100u32) {
                    0..25 => size,
                    25..40 => 0,
                    // Partly used: whole servers (multiples of 4) or any count.
                    40..70 => rng.random_range(0..=size / 4) * 4,
                    _ => rng.random_range(0..=size),
                };
                cands.push(CandidateRecord {
                    free,
                    size,
                    model,
                    ..Default::default()
                });
            }
            let rack_free: u32 = cands[rack_start..].iter().map(|c| c.free).sum();
            for c in &mut cands[rack_start..] {
                c.rack_free = rack_free;
            }
        }
        let pool_free: u32 = cands[pool_start..].iter().map(|c| c.free).sum();
        for c in &mut cands[pool_start..] {
            c.pool_free = pool_free;
        }
    }

    let jobs = (0..jobs)
        .map(|_| {
            let gpus = match rng.random_range(0..100u32) {
                0..40 => [1, 2, 4, 8][rng.random_range(0..4usize)],
                40..70 => [16, 32, 36, 64, 72][rng.random_range(0..5usize)],
                70..90 => rng.random_range(1..=144),
                _ => rng.random_range(1..=576),
            };
            let model_mask = match rng.random_range(0..100u32) {
                0..60 => 1 << rng.random_range(0..MODELS),
                60..85 => (1 << rng.random_range(0..MODELS)) | (1 << rng.random_range(0..MODELS)),
                85..95 => (1 << MODELS) - 1,
                // A model no domain has: infeasible everywhere.
                _ => 1 << rng.random_range(MODELS..32),
            };
            let level = match rng.random_range(0..100u32) {
                0..40 => LEVEL_DOMAIN,
                40..75 => LEVEL_RACK,
                _ => LEVEL_POOL,
            };
            let preferred = match rng.random_range(0..100u32) {
                0..50 => LEVEL_NONE,
                50..75 => LEVEL_DOMAIN,
                75..95 => LEVEL_RACK,
                _ => LEVEL_POOL,
            };
            JobRecord {
                gpus,
                model_mask,
                level,
                preferred,
            }
        })
        .collect();
    (jobs, cands)
}
