//! First-order (roofline) performance of one replica: a tensor-parallel group of `tp` GPUs serving one model.
//!
//! - Prefill of P new tokens is compute-bound: `2 * N * P / (tp * peak_flops * prefill_mfu)`.
//! - A decode step is memory-bound: it reads every weight once plus the KV cache of every sequence in the
//!   batch: `(weight_bytes / tp + kv_bytes / tp) / (hbm_bw * decode_bw_eff)`, i.e.
//!   `(weight_bytes + kv_bytes) / (tp * hbm_bw * eff)` (weights and KV are both sharded over the group).
//! - KV-cache budget: `tp * HBM - weight bytes` (activations and runtime overheads are folded into the
//!   efficiency factors, not reserved).
//!
//! The efficiency factors are parameters ([`Efficiency`]); see ../shared/docs/hardware.md (roofline section)
//! for why a roofline with factors is an acceptable first model. Communication (all-reduce) time is not
//! modelled separately: it is part of what the factors absorb.

use crate::domain::catalog::GpuModel;
use crate::domain::llm::ModelSpec;
use crate::error::{InputError, Location};
use serde::Serialize;

/// Fractions of peak a real serving stack reaches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Efficiency {
    /// Model FLOPs utilisation during prefill (fraction of dense BF16 peak).
    pub prefill_mfu: f64,
    /// Fraction of HBM bandwidth a decode step achieves.
    pub decode_bw_eff: f64,
}

impl Efficiency {
    /// Both factors must be fractions in (0, 1]; the error names the flag.
    pub fn validate(&self) -> Result<(), InputError> {
        for (name, v) in [
            ("--prefill-mfu", self.prefill_mfu),
            ("--decode-bw-eff", self.decode_bw_eff),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(InputError::new(
                    name,
                    Location::File,
                    format!("expected a fraction in (0, 1], found {v}"),
                ));
            }
        }
        Ok(())
    }
}

impl Default for Efficiency {
    /// Prefill MFU 0.5 and decode bandwidth efficiency 0.6: typical of tuned serving stacks on H100.
    fn default() -> Self {
        Efficiency {
            prefill_mfu: 0.5,
            decode_bw_eff: 0.6,
        }
    }
}

/// Board power while serving, as fractions of the catalog's busy power. SplitwiseSim's H100 constants (idle
/// 75 W, prefill 700 W, decode 380 W of 700 W) scaled to each GPU's board power.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PowerFractions {
    /// Idle, fraction of board power.
    pub idle: f64,
    /// Running a prefill.
    pub prefill: f64,
    /// Running a decode step.
    pub decode: f64,
}

impl Default for PowerFractions {
    /// SplitwiseSim H100: 75/700, 700/700, 380/700.
    fn default() -> Self {
        PowerFractions {
            idle: 75.0 / 700.0,
            prefill: 1.0,
            decode: 380.0 / 700.0,
        }
    }
}

/// Roofline model of one TP group.
#[derive(Debug, Clone, PartialEq)]
pub struct Roofline {
    /// The model served.
    pub model: ModelSpec,
    /// The GPU (catalog figures).
    pub gpu: GpuModel,
    /// GPUs in the tensor-parallel group.
    pub tp: u32,
    /// Efficiency factors.
    pub eff: Efficiency,
}

impl Roofline {
    /// A roofline model; an error when the weights do not fit the group's HBM or a factor is not in (0, 1].
    pub fn new(
        model: ModelSpec,
        gpu: GpuModel,
        tp: u32,
        eff: Efficiency,
    ) -> Result<Roofline, InputError> {
        if tp == 0 {
            return Err(InputError::new(
                "--tp",
                Location::File,
                "must be at least 1",
            ));
        }
        eff.validate()?;
        let r = Roofline {
            model,
            gpu,
            tp,
            eff,
        };
        if r.kv_budget_bytes() < r.model.kv_bytes_per_token() as f64 {
            return Err(InputError::new(
                "--tp",
                Location::File,
                format!(
                    "{} weights ({:.1} GB) do not fit {} x {} ({:.0} GB HBM) with room for KV cache; raise --tp \
                     or pick a GPU with more memory",
                    r.model.name,
                    r.model.weight_bytes() / 1e9,
                    tp,
                    r.gpu.id,
                    f64::from(tp) * r.gpu.hbm_gb
                ),
            ));
        }
        Ok(r)
    }

    /// Peak BF16 FLOP/s of the whole group.
    fn group_flops(&self) -> f64 {
        f64::from(self.tp) * self.gpu.bf16_tflops * 1e12
    }

    /// HBM bytes/s of the whole group.
    fn group_bw(&self) -> f64 {
        f64::from(self.tp) * self.gpu.hbm_tbps * 1e12
    }

    /// Seconds to prefill `tokens` prompt tokens (a whole batch's sum).
    pub fn prefill_s(&self, tokens: u64) -> f64 {
        2.0 * self.model.params * tokens as f64 / (self.group_flops() * self.eff.prefill_mfu)
    }

    /// Seconds of one decode step whose batch holds `kv_tokens` tokens of KV cache in all.
    pub fn decode_step_s(&self, kv_tokens: u64) -> f64 {
        let bytes =
            self.model.weight_bytes() + kv_tokens as f64 * self.model.kv_bytes_per_token() as f64;
        bytes / (self.group_bw() * self.eff.decode_bw_eff)
    }

    /// KV-cache bytes of the group: HBM minus weights.
    pub fn kv_budget_bytes(&self) -> f64 {
        f64::from(self.tp) * self.gpu.hbm_gb * 1e9 - self.model.weight_bytes()
    }

    /// KV-cache budget in tokens.
    pub fn kv_budget_tokens(&self) -> u64 {
        (self.kv_budget_bytes() / self.model.kv_bytes_per_token() as f64).floor() as u64
    }
}

/// Seconds -> whole microseconds, at least 1 so that every iteration advances time.
pub fn s_to_us(s: f64) -> u64 {
    ((s * 1e6).round() as u64).max(1)
}

/// One prefill chunk of an iteration: `new` prompt tokens computed after `ctx` tokens already in the KV
/// cache (a prefix-cache hit, or earlier chunks of the same prompt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Chunk {
    /// Tokens computed in this iteration.
    pub new: u64,
    /// Tokens of the same request already in the KV cache.
    pub ctx: u64,
    /// The chunk ends its prompt (its last token produces logits: the first output token).
    pub last: bool,
}

/// What the simulator asks of a replica's hardware. [`Roofline`] is the real one; tests inject others.
pub trait ServiceModel {
    /// Microseconds to prefill a batch: `new_tokens` uncached prompt tokens of `requests` requests.
    fn prefill_us(&self, new_tokens: u64, requests: usize) -> u64;
    /// Microseconds of one decode step for `batch` sequences holding `kv_tokens` tokens of KV cache.
    fn decode_step_us(&self, kv_tokens: u64, batch: usize) -> u64;
    /// Microseconds of one iteration mixing prefill chunks with `decodes` decoding requests that hold
    /// `decode_kv` KV tokens in all (chunked prefill). The default runs the two parts one after the other:
    /// [`ServiceModel::prefill_us`] of all new tokens, then [`ServiceModel::decode_step_us`]; models that
    /// know the operators ([`crate::perf::operators::Operators`]) cost the mixed batch as one pass.
    fn iteration_us(&self, prefills: &[Chunk], decodes: u64, decode_kv: u64) -> u64 {
        let mut us = 0;
        if !prefills.is_empty() {
            us += self.prefill_us(prefills.iter().map(|c| c.new).sum(), prefills.len());
        }
        if decodes > 0 {
            us += self.decode_step_us(decode_kv, decodes as usize);
        }
        us
    }
    /// Which model produced the times, for reports.
    fn describe(&self) -> String {
        "custom".to_string()
    }
    /// Decode steps back to back from `kv` KV tokens with `batch` sequences (the KV grows by `batch` per
    /// step): at most `max_steps` (at least one), stopping after the first step whose cumulative end
    /// reaches `until` microseconds. Returns (microseconds, steps). Each step costs exactly its own
    /// [`ServiceModel::decode_step_us`]; models whose step time never falls as the KV grows may override
    /// this with [`decode_run_monotone`], which gives the same answer with far fewer evaluations.
    fn decode_run_us(
        &self,
        kv: u64,
        batch: usize,
        max_steps: u32,
        until: Option<u64>,
    ) -> (u64, u32) {
        let (mut d, mut steps, mut kv) = (0u64, 0u32, kv);
        loop {
            d += self.decode_step_us(kv, batch);
            steps += 1;
            kv += batch as u64;
            if steps >= max_steps || until.is_some_and(|u| d >= u) {
                return (d, steps);
            }
        }
    }
    /// KV-cache capacity of one replica, tokens.
    fn kv_capacity_tokens(&self) -> u64;
    /// GPUs per replica (for energy and GPU-seconds).
    fn gpus(&self) -> u32 {
        1
    }
    /// Board power of one GPU when busy, W.
    fn board_power_w(&self) -> f64 {
        0.0
    }
}

/// [`ServiceModel::decode_run_us`] for a step time that is non-decreasing in the KV size (the roofline's:
/// every float operation in it is monotone, and so is the rounding to microseconds). Consecutive steps of
/// equal (whole-microsecond) time form runs; each run's end is found by exponential and binary search on
/// exact evaluations of `step(i)` (the time of step `i`), so the sum and the stopping step equal the
/// step-by-step loop's.
///
/// `guess(i, c)` may estimate the last index of the run of value `c` that starts at `i` (any value is
/// safe: it is checked, and a wrong guess only costs evaluations).
pub fn decode_run_monotone(
    step: impl Fn(u64) -> u64,
    guess: impl Fn(u64, u64) -> u64,
    max_steps: u32,
    until: Option<u64>,
) -> (u64, u32) {
    let max = u64::from(max_steps.max(1));
    let (mut d, mut done) = (0u64, 0u64);
    while done < max {
        let c = step(done);
        // Bracket the last index of this run: step(lo) == c, and step(hi) != c or hi == max.
        let g = guess(done, c).clamp(done, max - 1);
        let (mut lo, mut hi) = if g > done && step(g) != c {
            (done, g) // the guess overshot: the run ends before g
        } else {
            let mut lo = g;
            let mut jump = 1u64;
            while lo + jump < max && step(lo + jump) == c {
                lo += jump;
                jump *= 2;
            }
            (lo, (lo + jump).min(max))
        };
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if step(mid) == c {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let count = lo - done + 1;
        if let Some(u) = until {
            if d + count * c >= u {
                // The first step of the run whose end reaches `u` (at least one step in all).
                let k = u.saturating_sub(d).div_ceil(c).max(1).min(count);
                return (d + k * c, (done + k) as u32);
            }
        }
        d += count * c;
        done += count;
    }
    (d, done as u32)
}

impl ServiceModel for Roofline {
    fn prefill_us(&self, new_tokens: u64, _requests: usize) -> u64 {
        s_to_us(self.prefill_s(new_tokens))
    }
    fn decode_step_us(&self, kv_tokens: u64, _batch: usize) -> u64 {
        s_to_us(self.decode_step_s(kv_tokens))
    }
    fn decode_run_us(
        &self,
        kv: u64,
        batch: usize,
        max_steps: u32,
        until: Option<u64>,
    ) -> (u64, u32) {
        let n = batch as u64;
        let (wb, kvb) = (
            self.model.weight_bytes(),
            self.model.kv_bytes_per_token() as f64,
        );
        let bw = self.group_bw() * self.eff.decode_bw_eff;
        // The step time reaches c + 0.5 us (the next whole microsecond) at this KV size.
        let guess = |i: u64, c: u64| -> u64 {
            let kv_next = ((c as f64 + 0.5) * 1e-6 * bw - wb) / kvb;
            let steps = (kv_next - (kv + n * i) as f64) / n.max(1) as f64;
            if steps.is_finite() && steps > 1.0 {
                i + steps.ceil() as u64 - 1
            } else {
                i
            }
        };
        decode_run_monotone(
            |i| self.decode_step_us(kv + n * i, batch),
            guess,
            max_steps,
            until,
        )
    }
    fn kv_capacity_tokens(&self) -> u64 {
        self.kv_budget_tokens()
    }
    fn gpus(&self) -> u32 {
        self.tp
    }
    fn board_power_w(&self) -> f64 {
        self.gpu.power_w
    }
    fn describe(&self) -> String {
        format!(
            "roofline (prefill MFU {}, decode bandwidth efficiency {})",
            self.eff.prefill_mfu, self.eff.decode_bw_eff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::{gpu_model_index, GPU_MODELS};
    use crate::domain::llm::builtin;

    fn roofline(model: &str, gpu: &str, tp: u32) -> Result<Roofline, InputError> {
        let g = GPU_MODELS[gpu_model_index(gpu).unwrap()];
        Roofline::new(builtin(model).unwrap(), g, tp, Efficiency::default())
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs()
    }

    #[test]
    fn llama_3_70b_on_8_h100_by_hand() {
        let r = roofline("llama-3-70b", "h100", 8).unwrap();
        // Prefill 1,000 tokens: 2 * 70,553,706,496 * 1000 FLOP / (8 * 989e12 * 0.5 FLOP/s)
        //   = 141,107,412,992,000 / 3,956,000,000,000,000 = 0.0356692... s.
        assert!(close(r.prefill_s(1000), 0.035_669_214_608_695_65));
        assert_eq!(r.prefill_us(1000, 1), 35_669);
        // Decode step, batch holding 10,000 tokens of KV:
        //   weights 141,107,412,992 B + 10,000 * 327,680 B = 144,384,212,992 B
        //   / (8 * 3.35e12 * 0.6 = 16.08e12 B/s) = 0.0089791... s.
        assert!(close(r.decode_step_s(10_000), 144_384_212_992.0 / 16.08e12));
        assert_eq!(r.decode_step_us(10_000, 4), 8_979);
        // KV budget: 8 * 80e9 - 141,107,412,992 = 498,892,587,008 B = 1,522,499.35 -> 1,522,499 tokens of 327,680 B.
        assert!(close(r.kv_budget_bytes(), 498_892_587_008.0));
        assert_eq!(r.kv_budget_tokens(), 1_522_499);
    }

    #[test]
    fn llama_3_8b_on_one_h100_by_hand() {
        let r = roofline("llama-3-8b", "h100", 1).unwrap();
        // Prefill 512 tokens: 2 * 8,030,261,248 * 512 / (989e12 * 0.5) = 0.0166289 s.
        assert_eq!(r.prefill_us(512, 1), 16_629);
        // Decode with an empty cache: 16,060,522,496 B / (3.35e12 * 0.6) = 0.0079903... s.
        assert_eq!(r.decode_step_us(0, 1), 7_990);
        // KV budget: 80e9 - 16,060,522,496 = 63,939,477,504 B / 131,072 = 487,819.5 -> 487,819 tokens.
        assert_eq!(r.kv_budget_tokens(), 487_819);
    }

    #[test]
    fn weights_that_do_not_fit_are_an_input_error() {
        // 141 GB of llama-3-70b weights on one 80 GB H100.
        let err = roofline("llama-3-70b", "h100", 1).unwrap_err().to_string();
        assert!(err.contains("do not fit 1 x h100 (80 GB HBM)"), "{err}");
        // Two H200s hold them (282 GB).
        assert!(roofline("llama-3-70b", "h200", 2).is_ok());
        assert!(roofline("llama-3-70b", "h100", 0).is_err());
    }

    #[test]
    fn efficiency_factors_must_be_fractions() {
        let g = GPU_MODELS[0];
        for eff in [
            Efficiency {
                prefill_mfu: 0.0,
                decode_bw_eff: 0.6,
            },
            Efficiency {
                prefill_mfu: 0.5,
                decode_bw_eff: f64::NAN,
            },
            Efficiency {
                prefill_mfu: 1.5,
                decode_bw_eff: 0.6,
            },
        ] {
            assert!(Roofline::new(builtin("llama-3-8b").unwrap(), g, 1, eff).is_err());
        }
    }
}
