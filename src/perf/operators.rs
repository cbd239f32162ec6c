//! Per-operator cost of one serving iteration of a tensor-parallel group (`ultrasched`'s default serving
//! model, `cost_model = "operators"`).
//!
//! An iteration processes `T` tokens: the new tokens of each prefill chunk plus one token per decoding
//! request. Per transformer layer and per GPU of the group (weights and heads are sharded `tp` ways):
//!
//! - **Linear layers** (QKV projection `h -> (heads + 2 kv_heads) head_dim / tp`, output projection, the
//!   gated MLP's up+gate `h -> 2 ffn / tp` and down `ffn / tp -> h`): each on the GPU's roofline,
//!   `max(2 T in out / (peak * linear_mfu), (in out + T (in + out)) bytes / (hbm * linear_bw_eff))`, plus a
//!   fixed kernel latency. With one token the weights are read once per iteration: that is the prefill
//!   weight-read floor, so no prefill is faster than a decode step of the same batch.
//! - **Attention**, separately: a prefill chunk of `q` new tokens after `c` cached ones does
//!   `4 (heads / tp) head_dim (q c + q (q + 1) / 2)` FLOPs (causal: QK^T and PV) at `attention_mfu`, and
//!   reads its context's KV; a decode reads the KV of every running request's context at
//!   `attention_bw_eff`. Each kernel has a fixed latency.
//! - **Small kernels**: two RMSNorms, rotary embedding, the MLP activation, the residual add and the KV-cache
//!   write, each a fixed latency plus its bytes at `elementwise_bw_eff`.
//! - **Two all-reduces** of `T x hidden` activations (after attention and after the MLP), ring algorithm:
//!   `latency + launch + 2 (tp - 1) / tp * bytes / (link bandwidth * bus_eff)`, over NVLink inside one NVLink
//!   domain and over EFA when the group spans domains. None when `tp = 1`.
//!
//! Per iteration: the embedding lookup, the LM head for the tokens that produce logits (each decode and the
//! last chunk of each prompt), and a fixed host overhead.
//!
//! With a bundled Vidur profile ([`crate::perf::profile`]) the linear layers, small kernels, embedding and
//! all-reduces take measured times instead (`cost_model = "profile"`); attention stays analytic (the public
//! profiles do not include it).
//!
//! Every constant is in [`OperatorConstants`] with its source.

use crate::domain::catalog::GpuModel;
use crate::domain::llm::ModelSpec;
use crate::error::{InputError, Location};
pub use crate::perf::inference::Chunk;
use crate::perf::inference::{decode_run_monotone, s_to_us, ServiceModel};
use crate::perf::profile::{Bundled, ProfileOp};
use serde::Serialize;

/// The constants of the operator model. Sources:
///
/// - `linear_mfu` 0.70, `linear_bw_eff` 0.85, `kernel_latency_us` 4: fitted by hand to the H100 operator
///   profile of Llama-2-70B that Microsoft Vidur publishes (bundled: workloads/profiles/vidur): at 4,096
///   tokens the QKV, output and MLP GEMMs run at 69-71 % of the 989 TFLOP/s BF16 peak (down projection 86 %);
///   at 1-8 tokens, TP 4, they take 16-19, 16, 81-85 and 43-48 us, i.e. their weight bytes at 85 % of
///   3.35 TB/s plus about 4 us.
/// - `attention_mfu` 0.40: FlashAttention-2 forward on H100 reaches 35-50 % of the dense BF16 peak (Dao,
///   "FlashAttention-2", 2023; its H100 figures). `attention_bw_eff` 0.60: paged decode attention reads KV
///   at 50-70 % of HBM bandwidth (vLLM/FlashInfer kernel benchmarks); `attention_latency_us` 8: one
///   attention kernel's fixed cost (project assumption, of the order of the small kernels below).
/// - Small kernels: latencies 6 us (RMSNorm), 2 us (rope), 4 us (activation), 2 us (add), 2 us (KV write)
///   are the 1-token medians of the same Vidur profile; `elementwise_bw_eff` 0.5: the profile's 4,096-token
///   times of those kernels are their bytes at 35-95 % of HBM bandwidth.
/// - `nvlink_latency_us` 37 and `nccl_launch_us` 20: Vidur's H100 DGX all-reduce profile gives a 37 us
///   median for 2 KB at 4 workers (23-41 us up to 1 MB), and Vidur adds a 20 us NCCL CPU launch overhead
///   (`nccl_cpu_launch_overhead_ms`). `nvlink_bus_eff` 0.7: the same profile's 64 MB all-reduce at 4
///   workers reaches 316 GB/s of bus bandwidth, 70 % of NVLink 4's 450 GB/s per direction.
/// - `efa_latency_us` 60, `efa_gbps_per_gpu` 50 GB/s (3,200 Gbps EFA per 8-GPU P5 node, hardware.md),
///   `efa_bus_eff` 0.8: project assumptions for an all-reduce that crosses NVLink domains.
/// - `iteration_overhead_us` 0: host-side scheduling and sampling overlap the GPU in vLLM with CUDA graphs;
///   Vidur, validated within 9 % of vLLM, models none by default (`skip_cpu_overhead_modeling = True`).
///   Set it to study a slower host.
/// - `memory_margin` 0.1: vLLM's `gpu_memory_utilization` default of 0.9 (also Vidur's
///   `memory_margin_fraction`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OperatorConstants {
    /// Fraction of dense BF16 peak a large GEMM reaches.
    pub linear_mfu: f64,
    /// Fraction of HBM bandwidth a weight-bound GEMM reaches.
    pub linear_bw_eff: f64,
    /// Fixed cost of one GEMM kernel, us.
    pub kernel_latency_us: f64,
    /// Fraction of peak a prefill attention kernel reaches.
    pub attention_mfu: f64,
    /// Fraction of HBM bandwidth decode attention reaches reading KV.
    pub attention_bw_eff: f64,
    /// Fixed cost of one attention kernel, us.
    pub attention_latency_us: f64,
    /// Fraction of HBM bandwidth the element-wise kernels reach.
    pub elementwise_bw_eff: f64,
    /// Fixed cost of an RMSNorm, us.
    pub norm_latency_us: f64,
    /// Fixed cost of the rotary embedding, us.
    pub rope_latency_us: f64,
    /// Fixed cost of the MLP activation, us.
    pub act_latency_us: f64,
    /// Fixed cost of the residual add, us.
    pub add_latency_us: f64,
    /// Fixed cost of writing new tokens' KV into the cache, us.
    pub kv_write_latency_us: f64,
    /// Fixed latency of one all-reduce inside an NVLink domain, us.
    pub nvlink_latency_us: f64,
    /// Host launch overhead of one NCCL call, us.
    pub nccl_launch_us: f64,
    /// Fraction of per-direction NVLink bandwidth an all-reduce's bus bandwidth reaches.
    pub nvlink_bus_eff: f64,
    /// Fixed latency of an all-reduce across NVLink domains (over EFA), us.
    pub efa_latency_us: f64,
    /// EFA bandwidth per GPU, GB/s.
    pub efa_gbps_per_gpu: f64,
    /// Fraction of EFA bandwidth an all-reduce reaches.
    pub efa_bus_eff: f64,
    /// Fixed host cost per iteration, us.
    pub iteration_overhead_us: f64,
    /// Fraction of HBM kept free (activations, runtime): the KV cache gets the rest after the weights.
    pub memory_margin: f64,
}

impl Default for OperatorConstants {
    fn default() -> Self {
        OperatorConstants {
            linear_mfu: 0.70,
            linear_bw_eff: 0.85,
            kernel_latency_us: 4.0,
            attention_mfu: 0.40,
            attention_bw_eff: 0.60,
            attention_latency_us: 8.0,
            elementwise_bw_eff: 0.5,
            norm_latency_us: 6.0,
            rope_latency_us: 2.0,
            act_latency_us: 4.0,
            add_latency_us: 2.0,
            kv_write_latency_us: 2.0,
            nvlink_latency_us: 37.0,
            nccl_launch_us: 20.0,
            nvlink_bus_eff: 0.7,
            efa_latency_us: 60.0,
            efa_gbps_per_gpu: 50.0,
            efa_bus_eff: 0.8,
            iteration_overhead_us: 0.0,
            memory_margin: 0.1,
        }
    }
}

/// What one iteration computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape<'a> {
    /// Prefill chunks.
    pub prefills: &'a [Chunk],
    /// Decoding requests (one token each).
    pub decodes: u64,
    /// KV tokens of the decoding requests' contexts, in all.
    pub decode_kv: u64,
}

/// An iteration's time by term, microseconds (whole iteration, all layers).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Breakdown {
    /// QKV, output and MLP GEMMs.
    pub linear_us: f64,
    /// Attention kernels (prefill and decode).
    pub attention_us: f64,
    /// Norms, rope, activation, add, KV write.
    pub small_us: f64,
    /// The two tensor-parallel all-reduces per layer.
    pub all_reduce_us: f64,
    /// Embedding lookup and LM head.
    pub embed_head_us: f64,
    /// Per-iteration host overhead.
    pub overhead_us: f64,
}

impl Breakdown {
    /// The iteration's time, microseconds.
    pub fn total_us(&self) -> f64 {
        self.linear_us
            + self.attention_us
            + self.small_us
            + self.all_reduce_us
            + self.embed_head_us
            + self.overhead_us
    }
}

/// The operator model of one TP group.
#[derive(Debug, Clone)]
pub struct Operators {
    /// The model served.
    pub model: ModelSpec,
    /// The GPU.
    pub gpu: GpuModel,
    /// GPUs in the tensor-parallel group.
    pub tp: u32,
    /// NVLink domains the group spans (1: all-reduces stay on NVLink; more: they cross EFA).
    pub domains: u32,
    /// Constants.
    pub c: OperatorConstants,
    /// Measured operator times replacing the analytic ones, when set.
    pub profile: Option<&'static Bundled>,
    /// Decode step time with an empty KV, us, by batch size (memo of [`Operators::decode_base_us`]).
    decode_base: std::cell::RefCell<Vec<f64>>,
}

impl Operators {
    /// An operator model; an error when the weights do not fit the group's HBM (after the memory margin).
    pub fn new(
        model: ModelSpec,
        gpu: GpuModel,
        tp: u32,
        domains: u32,
        c: OperatorConstants,
    ) -> Result<Operators, InputError> {
        if tp == 0 {
            return Err(InputError::new(
                "--tp",
                Location::File,
                "must be at least 1",
            ));
        }
        let o = Operators {
            model,
            gpu,
            tp,
            domains: domains.max(1),
            c,
            profile: None,
            decode_base: Default::default(),
        };
        if o.kv_budget_bytes() < o.model.kv_bytes_per_token() as f64 {
            return Err(InputError::new(
                "--tp",
                Location::File,
                format!(
                    "{} weights ({:.1} GB) do not fit {} x {} ({:.0} GB HBM, {:.0} % kept free) with room for \
                     KV cache; raise --tp or pick a GPU with more memory",
                    o.model.name,
                    o.model.weight_bytes() / 1e9,
                    tp,
                    o.gpu.id,
                    f64::from(tp) * o.gpu.hbm_gb,
                    o.c.memory_margin * 100.0
                ),
            ));
        }
        Ok(o)
    }

    /// The same model with measured operator times (a profile for this model, GPU and TP size).
    pub fn with_profile(mut self, profile: &'static Bundled) -> Operators {
        self.profile = Some(profile);
        self
    }

    /// KV-cache bytes of the group: HBM less the margin, less the weights.
    pub fn kv_budget_bytes(&self) -> f64 {
        f64::from(self.tp) * self.gpu.hbm_gb * 1e9 * (1.0 - self.c.memory_margin)
            - self.model.weight_bytes()
    }

    fn flops(&self) -> f64 {
        self.gpu.bf16_tflops * 1e12
    }

    fn hbm(&self) -> f64 {
        self.gpu.hbm_tbps * 1e12
    }

    /// One GEMM of `t` tokens, `inp x out` weights on one GPU, microseconds.
    pub fn gemm_us(&self, t: f64, inp: f64, out: f64) -> f64 {
        let b = f64::from(self.model.bytes_per_element);
        let compute = 2.0 * t * inp * out / (self.flops() * self.c.linear_mfu);
        let memory = (inp * out + t * (inp + out)) * b / (self.hbm() * self.c.linear_bw_eff);
        compute.max(memory) * 1e6 + self.c.kernel_latency_us
    }

    /// One element-wise kernel moving `bytes`, with fixed cost `latency`, microseconds.
    fn elementwise_us(&self, bytes: f64, latency: f64) -> f64 {
        latency + bytes / (self.hbm() * self.c.elementwise_bw_eff) * 1e6
    }

    /// One all-reduce of `bytes` across the group, microseconds (0 when `tp = 1`).
    pub fn all_reduce_us(&self, bytes: f64) -> f64 {
        if self.tp <= 1 {
            return 0.0;
        }
        let n = f64::from(self.tp);
        let (latency, bw) = if self.domains > 1 {
            (
                self.c.efa_latency_us,
                self.c.efa_gbps_per_gpu * 1e9 * self.c.efa_bus_eff,
            )
        } else {
            (
                self.c.nvlink_latency_us,
                self.gpu.scaleup_gbps / 2.0 * 1e9 * self.c.nvlink_bus_eff,
            )
        };
        latency + self.c.nccl_launch_us + 2.0 * (n - 1.0) / n * bytes / bw * 1e6
    }

    /// A measured time for `op` at `t` tokens, when a profile covers this TP size.
    fn profiled(&self, op: ProfileOp, t: u64) -> Option<f64> {
        self.profile?.compute.op_us(op, t, self.tp)
    }

    /// The iteration's time by term.
    pub fn breakdown(&self, s: &Shape) -> Breakdown {
        let m = &self.model;
        let tp = f64::from(self.tp);
        let b = f64::from(m.bytes_per_element);
        let (h, hd) = (f64::from(m.hidden), f64::from(m.head_dim));
        let (heads, kvh) = (
            f64::from(m.attention_heads) / tp,
            f64::from(m.kv_heads) / tp,
        );
        let ffn = f64::from(m.ffn_hidden) / tp;
        let tokens: u64 = s.prefills.iter().map(|c| c.new).sum::<u64>() + s.decodes;
        if tokens == 0 {
            return Breakdown::default();
        }
        let t = tokens as f64;
        let layers = f64::from(m.layers);
        let q_dim = heads * hd;
        let kv_dim = kvh * hd;

        // Linear layers.
        let analytic_linear = || {
            self.gemm_us(t, h, q_dim + 2.0 * kv_dim)
                + self.gemm_us(t, q_dim, h)
                + self.gemm_us(t, h, 2.0 * ffn)
                + self.gemm_us(t, ffn, h)
        };
        let linear = match self.profile {
            Some(_) => [
                ProfileOp::AttnPreProj,
                ProfileOp::AttnPostProj,
                ProfileOp::MlpUpProj,
                ProfileOp::MlpDownProj,
            ]
            .iter()
            .map(|&op| self.profiled(op, tokens))
            .sum::<Option<f64>>()
            .unwrap_or_else(analytic_linear),
            None => analytic_linear(),
        };

        // Attention (always analytic).
        let kv_token_bytes = 2.0 * kv_dim * b; // K and V of one token, one layer, one GPU
        let mut attention = 0.0;
        if !s.prefills.is_empty() {
            let (mut flops, mut bytes) = (0.0, 0.0);
            for c in s.prefills {
                let (q, ctx) = (c.new as f64, c.ctx as f64);
                flops += 4.0 * heads * hd * (q * ctx + q * (q + 1.0) / 2.0);
                bytes += (ctx + q) * kv_token_bytes + 2.0 * q * q_dim * b;
            }
            let compute = flops / (self.flops() * self.c.attention_mfu);
            let memory = bytes / (self.hbm() * self.c.attention_bw_eff);
            attention += compute.max(memory) * 1e6 + self.c.attention_latency_us;
        }
        if s.decodes > 0 {
            let bytes = s.decode_kv as f64 * kv_token_bytes;
            attention +=
                bytes / (self.hbm() * self.c.attention_bw_eff) * 1e6 + self.c.attention_latency_us;
        }

        // Small kernels.
        let analytic_small = || {
            let norm = self.elementwise_us(2.0 * t * h * b, self.c.norm_latency_us);
            let rope = self.elementwise_us(2.0 * t * (q_dim + kv_dim) * b, self.c.rope_latency_us);
            let act = self.elementwise_us(3.0 * t * ffn * b, self.c.act_latency_us);
            let add = self.elementwise_us(3.0 * t * h * b, self.c.add_latency_us);
            2.0 * norm + rope + act + add
        };
        let kv_write = self.elementwise_us(t * kv_token_bytes, self.c.kv_write_latency_us);
        let small = kv_write
            + match self.profile {
                Some(_) => [
                    ProfileOp::InputLayernorm,
                    ProfileOp::PostAttentionLayernorm,
                    ProfileOp::AttnRope,
                    ProfileOp::MlpAct,
                    ProfileOp::Add,
                ]
                .iter()
                .map(|&op| self.profiled(op, tokens))
                .sum::<Option<f64>>()
                .unwrap_or_else(analytic_small),
                None => analytic_small(),
            };

        // Two all-reduces of T x hidden activations.
        let ar_bytes = t * h * b;
        let one_ar = match self.profile {
            Some(p) if self.tp > 1 && self.domains == 1 => p
                .all_reduce
                .all_reduce_us(ar_bytes as u64, self.tp)
                .map(|v| v + self.c.nccl_launch_us)
                .unwrap_or_else(|| self.all_reduce_us(ar_bytes)),
            _ => self.all_reduce_us(ar_bytes),
        };

        // Embedding lookup (all tokens) and LM head (tokens that produce logits).
        let logits = s.decodes + s.prefills.iter().filter(|c| c.last).count() as u64;
        let embed = match self.profiled(ProfileOp::Emb, tokens) {
            Some(v) => v,
            None => self.elementwise_us(2.0 * t * h * b, self.c.add_latency_us),
        };
        let head = if logits > 0 {
            self.gemm_us(logits as f64, h, f64::from(m.vocab) / tp)
        } else {
            0.0
        };

        Breakdown {
            linear_us: layers * linear,
            attention_us: layers * attention,
            small_us: layers * small,
            all_reduce_us: layers * 2.0 * one_ar,
            embed_head_us: embed + head,
            overhead_us: self.c.iteration_overhead_us,
        }
    }

    /// The iteration's time, whole microseconds (at least 1).
    pub fn iteration(&self, s: &Shape) -> u64 {
        s_to_us(self.breakdown(s).total_us() * 1e-6)
    }

    /// KV-read time of one decode context token over all layers, us: a decode step's only term that
    /// depends on the KV size.
    pub fn decode_us_per_kv_token(&self) -> f64 {
        let m = &self.model;
        let kv_token_bytes = 2.0 * f64::from(m.kv_heads) / f64::from(self.tp)
            * f64::from(m.head_dim)
            * f64::from(m.bytes_per_element);
        f64::from(m.layers) * kv_token_bytes / (self.hbm() * self.c.attention_bw_eff) * 1e6
    }

    /// A decode step of `n` requests with no KV read, us (memoised per `n`).
    pub fn decode_base_us(&self, n: u64) -> f64 {
        let i = n as usize;
        if let Some(&v) = self.decode_base.borrow().get(i) {
            if v >= 0.0 {
                return v;
            }
        }
        let v = self
            .breakdown(&Shape {
                prefills: &[],
                decodes: n,
                decode_kv: 0,
            })
            .total_us();
        let mut memo = self.decode_base.borrow_mut();
        if memo.len() <= i && i < 1 << 16 {
            memo.resize(i + 1, -1.0);
        }
        if let Some(x) = memo.get_mut(i) {
            *x = v;
        }
        v
    }

    /// Which times this model uses, for reports.
    pub fn describe(&self) -> String {
        match self.profile {
            Some(p) => format!("profile ({}; attention and LM head analytic)", p.source),
            None => "operators (analytic per-operator roofline)".to_string(),
        }
    }
}

impl ServiceModel for Operators {
    fn prefill_us(&self, new_tokens: u64, requests: usize) -> u64 {
        // Without per-request sizes: `requests` equal prompts.
        let n = requests.max(1) as u64;
        let chunks: Vec<Chunk> = (0..n)
            .map(|i| Chunk {
                new: new_tokens / n + u64::from(i < new_tokens % n),
                ctx: 0,
                last: true,
            })
            .collect();
        self.iteration_us(&chunks, 0, 0)
    }

    /// A decode step: its time is affine in the KV size (only attention reads it), so it is computed as
    /// the step with no KV plus the KV-read time; equal to [`Operators::breakdown`]'s total up to float
    /// rounding.
    fn decode_step_us(&self, kv_tokens: u64, batch: usize) -> u64 {
        let base = self.decode_base_us(batch as u64);
        s_to_us((base + self.decode_us_per_kv_token() * kv_tokens as f64) * 1e-6)
    }

    fn iteration_us(&self, prefills: &[Chunk], decodes: u64, decode_kv: u64) -> u64 {
        self.iteration(&Shape {
            prefills,
            decodes,
            decode_kv,
        })
    }

    fn decode_run_us(
        &self,
        kv: u64,
        batch: usize,
        max_steps: u32,
        until: Option<u64>,
    ) -> (u64, u32) {
        // The step time only grows with the KV, and affinely (the attention bytes term): `slope` us per KV
        // token. The guess finds where the time reaches the next whole microsecond; the search checks it.
        let n = batch as u64;
        let slope = self.decode_us_per_kv_token();
        let base = self.decode_base_us(n) + slope * kv as f64;
        let guess = |i: u64, c: u64| -> u64 {
            let kv_next = (c as f64 + 0.5 - base) / slope + kv as f64;
            let steps = (kv_next - (kv + n * i) as f64) / n.max(1) as f64;
            if steps.is_finite() && steps > 1.0 {
                i + steps.ceil() as u64 - 1
            } else {
                i
            }
        };
        let zero = self.decode_base_us(n);
        decode_run_monotone(
            |i| s_to_us((zero + slope * (kv + n * i) as f64) * 1e-6),
            guess,
            max_steps,
            until,
        )
    }

    fn kv_capacity_tokens(&self) -> u64 {
        (self.kv_budget_bytes() / self.model.kv_bytes_per_token() as f64).floor() as u64
    }

    fn gpus(&self) -> u32 {
        self.tp
    }

    fn board_power_w(&self) -> f64 {
        self.gpu.power_w
    }

    fn describe(&self) -> String {
        Operators::describe(self)
    }
}
