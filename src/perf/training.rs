//! Training performance model: how long a training step takes on the GPUs a gang actually got.
//!
//! Step time = compute + gradient all-reduce, not overlapped (a documented simplification):
//! - compute = 6 * params * tokens_per_step / (gpus * peak BF16 * MFU);
//! - the gradient a GPU holds is B = 2 bytes * params / tp (BF16 gradients of its tensor-parallel shard);
//!   tensor/expert-parallel traffic is assumed to stay inside NVLink domains;
//! - all-reduce is hierarchical: a ring inside each NVLink domain at the NVLink bandwidth per GPU
//!   (2 * B / bw_nvlink), then, when the gang spans k > 1 domains, a ring across domains in which each GPU
//!   carries B / m of the gradient (m = the fewest GPUs the gang has in one domain, the bottleneck) at the
//!   pool's EFA bandwidth per GPU: 2 * (k - 1) / k * (B / m) / bw_efa;
//! - link bandwidths are multiplied by `link_efficiency`.
//!
//! The ideal placement is the fewest domains of the pool the gang landed in, evenly filled; slowdown =
//! step(actual) / step(ideal) >= 1. Pure functions; no I/O.

use crate::domain::catalog::Preset;
use crate::domain::workload::TrainingModel;

/// Fraction of the nominal link bandwidth collectives achieve.
pub const LINK_EFFICIENCY: f64 = 0.7;

/// Step time, seconds, for a gang holding `per_domain` GPUs in each of its domains (all in one pool).
pub fn step_time_s(m: &TrainingModel, preset: &Preset, per_domain: &[u32]) -> f64 {
    let gpus: u32 = per_domain.iter().sum();
    if gpus == 0 {
        return 0.0;
    }
    let model = preset.model();
    let compute =
        6.0 * m.params * m.tokens_per_step / (gpus as f64 * model.bf16_tflops * 1e12 * m.mfu);
    let grad_bytes = 2.0 * m.params / m.tp.max(1) as f64;
    let nvlink = model.scaleup_gbps * 1e9 * LINK_EFFICIENCY;
    let efa_per_gpu =
        preset.scaleout_gbps_per_domain / 8.0 * 1e9 / preset.domain_gpus() as f64 * LINK_EFFICIENCY;
    let k = per_domain.len() as f64;
    // One GPU needs no all-reduce; a single domain reduces over NVLink only.
    let intra = if gpus > 1 {
        2.0 * grad_bytes / nvlink
    } else {
        0.0
    };
    let inter = if per_domain.len() > 1 {
        let m_min = *per_domain.iter().min().unwrap_or(&1) as f64;
        2.0 * (k - 1.0) / k * (grad_bytes / m_min) / efa_per_gpu
    } else {
        0.0
    };
    compute + intra + inter
}

/// GPUs per domain of the ideal placement of `gpus` in `preset`'s domains: the fewest domains, evenly filled.
pub fn ideal_split(preset: &Preset, gpus: u32) -> Vec<u32> {
    let d = preset.domain_gpus().max(1);
    let k = gpus.div_ceil(d).max(1);
    (0..k).map(|i| gpus / k + u32::from(i < gpus % k)).collect()
}

/// Slowdown of an actual placement against the ideal one (>= 1 up to rounding).
pub fn slowdown(m: &TrainingModel, preset: &Preset, per_domain: &[u32]) -> f64 {
    let gpus = per_domain.iter().sum();
    let ideal = step_time_s(m, preset, &ideal_split(preset, gpus));
    if ideal <= 0.0 {
        return 1.0;
    }
    (step_time_s(m, preset, per_domain) / ideal).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::preset;

    fn llama70b() -> TrainingModel {
        TrainingModel {
            params: 70e9,
            tokens_per_step: 4.0 * 1024.0 * 1024.0,
            tp: 8,
            mfu: 0.4,
        }
    }

    #[test]
    fn step_time_matches_a_hand_computation() {
        let gb200 = preset("p6e-gb200").unwrap();
        let m = llama70b();
        // 64 GPUs in one domain: compute 6*70e9*4194304/(64*2500e12*0.4) = 27.525 s;
        // grad bytes 2*70e9/8 = 17.5e9; NVLink 1800e9*0.7 = 1260e9 B/s -> 2*17.5e9/1260e9 = 0.027778 s.
        let one = step_time_s(&m, gb200, &[64]);
        assert!((one - (27.525_120 + 0.027_778)).abs() < 1e-3, "{one}");
        // Split 32 + 32 over two domains adds the EFA ring: EFA per GPU 28800/8e-9/72*0.7 = 35e9 B/s;
        // 2*(1/2)*(17.5e9/32)/35e9 = 0.015625 s.
        let two = step_time_s(&m, gb200, &[32, 32]);
        assert!((two - one - 0.015_625).abs() < 1e-4, "{two} vs {one}");
    }

    #[test]
    fn a_split_gang_runs_measurably_slower() {
        let p5 = preset("p5-h100").unwrap();
        // A communication-heavy case: 7B, pure data parallel, 64k tokens per step (compute 0.87 s; the
        // gradient is 14 GB per GPU).
        let m = TrainingModel {
            params: 7e9,
            tokens_per_step: 65536.0,
            tp: 1,
            mfu: 0.4,
        };
        assert_eq!(ideal_split(p5, 8), [8]);
        assert_eq!(ideal_split(p5, 20), [7, 7, 6]);
        assert!((slowdown(&m, p5, &[8]) - 1.0).abs() < 1e-12);
        let split = slowdown(&m, p5, &[4, 4]);
        // Hand computation: ideal 0.8697 + 2*14e9/630e9 = 0.9141 s; split adds 2*(1/2)*(14e9/4)/35e9 = 0.1 s.
        assert!((split - 1.0141 / 0.9141).abs() < 2e-3, "slowdown {split}");
        // A lopsided split is worse than an even one over the same domains.
        assert!(slowdown(&m, p5, &[7, 1]) > split);
    }
}
