//! Time to move one request's KV cache from the prefill replica that computed it to the decode replica
//! that continues it (prefill/decode disaggregation: Splitwise, ISCA 2024; DistServe, OSDI 2024).
//!
//! Both replicas shard the KV by attention head over their tensor-parallel GPUs, so the copy runs over
//! `min(prefill TP, decode TP)` GPU links at once:
//!
//! `us = latency + tokens * kv_bytes_per_token / (links * link GB/s * eff)`
//!
//! over NVLink when both replicas sit in one NVLink domain and over EFA otherwise. Constants
//! ([`KvLink::default`]):
//! - NVLink: half of the GPU's `scaleup_gbps` (the catalogue gives both directions: H100 900 GB/s, so 450
//!   GB/s one way), 10 us fixed cost (a peer copy's launch and synchronisation; project assumption), 0.8 of
//!   the link (NCCL point-to-point send/recv reaches ~80 % of NVLink bandwidth; project assumption).
//! - EFA: 50 GB/s per GPU (3,200 Gbps EFA per 8-GPU P5 node, hardware.md), 60 us fixed cost, 0.8 of the
//!   link: the same assumptions as the all-reduce across domains in [`crate::perf::operators`].
//!
//! The copy starts when the prefill ends (no layer-by-layer overlap, as Splitwise's baseline) and the
//! link is the only cost: the decode replica's HBM write is far faster than either link.

use crate::domain::catalog::GpuModel;
use crate::domain::llm::ModelSpec;
use serde::Serialize;

/// Link constants of a KV copy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KvLink {
    /// NVLink bandwidth per GPU, one direction, GB/s.
    pub nvlink_gbps_per_gpu: f64,
    /// Fixed cost of a copy inside one NVLink domain, us.
    pub nvlink_latency_us: f64,
    /// EFA bandwidth per GPU, GB/s.
    pub efa_gbps_per_gpu: f64,
    /// Fixed cost of a copy across NVLink domains, us.
    pub efa_latency_us: f64,
    /// Fraction of a link's bandwidth a copy reaches.
    pub bw_eff: f64,
}

impl KvLink {
    /// The defaults above for `gpu`.
    pub fn for_gpu(gpu: &GpuModel) -> KvLink {
        KvLink {
            nvlink_gbps_per_gpu: gpu.scaleup_gbps / 2.0,
            nvlink_latency_us: 10.0,
            efa_gbps_per_gpu: 50.0,
            efa_latency_us: 60.0,
            bw_eff: 0.8,
        }
    }
}

/// The KV copy between one prefill pool and one decode pool of a service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KvTransfer {
    /// KV bytes of one token (all layers, keys and values).
    pub bytes_per_token: u64,
    /// Links used at once: the smaller TP degree of the two pools.
    pub links: u32,
    /// The link constants.
    pub link: KvLink,
}

impl KvTransfer {
    /// The copy of `model`'s KV from replicas of `prefill_tp` to replicas of `decode_tp` GPUs of `gpu`.
    pub fn new(model: &ModelSpec, gpu: &GpuModel, prefill_tp: u32, decode_tp: u32) -> KvTransfer {
        KvTransfer {
            bytes_per_token: model.kv_bytes_per_token(),
            links: prefill_tp.min(decode_tp).max(1),
            link: KvLink::for_gpu(gpu),
        }
    }

    /// Microseconds to copy the KV of `tokens` tokens, inside one NVLink domain or across domains.
    pub fn us(&self, tokens: u64, same_domain: bool) -> u64 {
        let l = &self.link;
        let (gbps, latency) = if same_domain {
            (l.nvlink_gbps_per_gpu, l.nvlink_latency_us)
        } else {
            (l.efa_gbps_per_gpu, l.efa_latency_us)
        };
        let bytes = tokens as f64 * self.bytes_per_token as f64;
        let us = latency + bytes / (f64::from(self.links) * gbps * 1e3 * l.bw_eff);
        us.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_2_70b_on_h100_by_hand() {
        let m = crate::domain::llm::builtin("llama-2-70b").unwrap();
        let h100 = crate::domain::catalog::GPU_MODELS
            [crate::domain::catalog::gpu_model_index("h100").unwrap()];
        let x = KvTransfer::new(&m, &h100, 4, 2);
        // 80 layers x 8 KV heads x 128 dims x 2 (K, V) x 2 bytes = 327,680 bytes per token.
        assert_eq!(x.bytes_per_token, 327_680);
        assert_eq!(x.links, 2);
        // 1,000 tokens: 327.68 MB over 2 x 450 GB/s x 0.8 = 720 GB/s: 455.1 us + 10 us.
        assert_eq!(x.us(1000, true), 465);
        // Over EFA: 2 x 50 GB/s x 0.8 = 80 GB/s: 4,096 us + 60 us.
        assert_eq!(x.us(1000, false), 4156);
    }
}
