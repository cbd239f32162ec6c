//! Agentic RL jobs: each step is rollout (agentic episodes on the job's rollout replicas) -> reward (CPU) ->
//! train step (a gang) -> weight sync. Pure model; the engine calls [`step`] when it knows where the job's
//! GPUs are.
//!
//! - Rollout: `episodes_per_step` episodes spread over the replicas, batched up to `max_batch` (and the KV
//!   budget); each episode runs `turns` LLM calls. Turn k prefills only its new tokens (the earlier context
//!   stays cached: an episode keeps its replica) and decodes `output_tokens`; decode time is linear in the KV
//!   read, so the mid-point context gives the exact sum. Tool waits are sequential inside an episode and
//!   overlap across the batch.
//! - Train: [`training::step_time_s`] on the training gang, tokens per step = all tokens of all episodes.
//! - Sync: BF16 weights (2 bytes x params). Colocated: a reshard inside the gang over NVLink. Async: to the
//!   rollout replicas over EFA (NVLink when every GPU of both sits in one domain), in parallel streams.
//! - Colocated: one step = rollout + reward + train + sync + 2 x switch (the same GPUs are time-sliced).
//!   Async: rollouts may run up to `staleness` steps ahead; with staleness >= 1 the pipeline's step is
//!   max(rollout + reward, train + sync), with staleness 0 the phases add up.

use crate::domain::catalog::Preset;
use crate::domain::workload::{RlJob, RlMode, TrainingModel};
use crate::perf::inference::{Efficiency, Roofline};
use crate::perf::training::{self, LINK_EFFICIENCY};

/// Where one step's time goes, seconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RlBreakdown {
    /// Rollout phase (tool waits included).
    pub rollout_s: f64,
    /// Reward phase.
    pub reward_s: f64,
    /// Train step.
    pub train_s: f64,
    /// Weight sync.
    pub sync_s: f64,
    /// Colocated switches (both directions).
    pub switch_s: f64,
    /// One step of the loop.
    pub step_s: f64,
    /// Share of the job's GPU-time its GPUs sit idle (reward, tool waits, switches, pipeline bubbles).
    pub gpu_idle_share: f64,
}

/// Tokens of context an episode holds at its end.
pub fn final_context(rl: &RlJob) -> u64 {
    rl.prompt_tokens as u64
        + rl.turns as u64 * rl.output_tokens as u64
        + (rl.turns as u64 - 1) * rl.turn_tokens as u64
}

/// The roofline of one rollout replica, or why it cannot exist (weights or one episode do not fit).
pub fn rollout_roofline(rl: &RlJob, preset: &Preset) -> Result<Roofline, String> {
    let r = Roofline::new(
        rl.llm.clone(),
        *preset.model(),
        rl.rollout_tp,
        Efficiency::default(),
    )
    .map_err(|e| e.message)?;
    if r.kv_budget_tokens() < final_context(rl) {
        return Err(format!(
            "one episode ({} tokens of context) does not fit the KV cache of a {} x {} replica ({} tokens)",
            final_context(rl),
            rl.rollout_tp,
            preset.model().id,
            r.kv_budget_tokens()
        ));
    }
    Ok(r)
}

/// Rollout time of one step on `replicas` replicas: (total, GPU-busy part).
fn rollout_s(rl: &RlJob, roof: &Roofline, replicas: u32) -> (f64, f64) {
    let per_replica = rl.episodes_per_step.div_ceil(replicas.max(1)) as u64;
    let kv_cap = (roof.kv_budget_tokens() / final_context(rl)).max(1);
    let cap = (rl.max_batch as u64).min(kv_cap).max(1);
    let waves = per_replica.div_ceil(cap).max(1);
    let batch = per_replica.div_ceil(waves);
    let mut model_time = 0.0;
    for k in 0..rl.turns as u64 {
        let new_tokens = if k == 0 {
            rl.prompt_tokens
        } else {
            rl.turn_tokens
        } as u64;
        let ctx = rl.prompt_tokens as u64 + k * (rl.output_tokens as u64 + rl.turn_tokens as u64);
        model_time += roof.prefill_s(batch * new_tokens);
        let mid = ctx + rl.output_tokens as u64 / 2;
        model_time += rl.output_tokens as f64 * roof.decode_step_s(batch * mid);
    }
    let waits = rl.turns as f64 * rl.tool_wait_s;
    (
        waves as f64 * (model_time + waits),
        waves as f64 * model_time,
    )
}

/// Where the rollout replicas of an async job are.
#[derive(Debug, Clone, Copy)]
pub struct RolloutPlacement<'a> {
    /// Their pool's preset.
    pub preset: &'a Preset,
    /// Replicas.
    pub replicas: u32,
    /// True when every training and rollout GPU sits in one NVLink domain.
    pub same_domain: bool,
}

/// One step of `rl` with its training gang at `train_per_domain` GPUs per domain of `train`, and (async) its
/// rollout replicas at `rollout`. `None` when a rollout replica cannot be built there.
pub fn step(
    rl: &RlJob,
    train: &Preset,
    train_per_domain: &[u32],
    rollout: Option<RolloutPlacement>,
) -> Option<RlBreakdown> {
    let train_gpus: u32 = train_per_domain.iter().sum();
    let tokens = rl.episodes_per_step as f64 * final_context(rl) as f64;
    let model = TrainingModel {
        params: rl.llm.params,
        tokens_per_step: tokens,
        tp: rl.train_tp,
        mfu: rl.mfu,
    };
    let train_s = training::step_time_s(&model, train, train_per_domain);
    let bytes = 2.0 * rl.llm.params;
    let nvlink = |p: &Preset| p.model().scaleup_gbps * 1e9 * LINK_EFFICIENCY;
    let efa = |p: &Preset| {
        p.scaleout_gbps_per_domain / 8.0 * 1e9 / p.domain_gpus() as f64 * LINK_EFFICIENCY
    };
    let b = match (rl.mode, rollout) {
        (RlMode::Colocated, _) => {
            let roof = rollout_roofline(rl, train).ok()?;
            let (roll, busy) = rollout_s(rl, &roof, (train_gpus / rl.rollout_tp).max(1));
            let sync = bytes / (train_gpus as f64 * nvlink(train));
            let switch = 2.0 * rl.switch_s;
            let step = roll + rl.reward_s + train_s + sync + switch;
            let idle = (roll - busy) + rl.reward_s + switch;
            RlBreakdown {
                rollout_s: roll,
                reward_s: rl.reward_s,
                train_s,
                sync_s: sync,
                switch_s: switch,
                step_s: step,
                gpu_idle_share: idle / step,
            }
        }
        (RlMode::Async, Some(r)) => {
            let roof = rollout_roofline(rl, r.preset).ok()?;
            let (roll, busy) = rollout_s(rl, &roof, r.replicas);
            let rollout_gpus = r.replicas * rl.rollout_tp;
            let streams = train_gpus.min(rollout_gpus).max(1) as f64;
            let link = if r.same_domain {
                nvlink(train).min(nvlink(r.preset))
            } else {
                efa(train).min(efa(r.preset))
            };
            let sync = bytes / (streams * link);
            let step = if rl.staleness == 0 {
                roll + rl.reward_s + train_s + sync
            } else {
                (roll + rl.reward_s).max(train_s + sync)
            };
            let (gt, gr) = (train_gpus as f64, rollout_gpus as f64);
            let idle = gt * (step - train_s - sync) + gr * (step - busy);
            RlBreakdown {
                rollout_s: roll,
                reward_s: rl.reward_s,
                train_s,
                sync_s: sync,
                switch_s: 0.0,
                step_s: step,
                gpu_idle_share: idle / ((gt + gr) * step),
            }
        }
        (RlMode::Async, None) => return None,
    };
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::preset;
    use crate::domain::llm::builtin;

    fn job(mode: RlMode, staleness: u32) -> RlJob {
        RlJob {
            mode,
            staleness,
            steps: 10,
            llm: builtin("llama-3-8b").unwrap(),
            train_tp: 1,
            mfu: 0.4,
            rollout_tp: 1,
            episodes_per_step: 64,
            turns: 3,
            prompt_tokens: 1024,
            turn_tokens: 256,
            output_tokens: 128,
            tool_wait_s: 2.0,
            reward_s: 5.0,
            switch_s: 3.0,
            max_batch: 256,
        }
    }

    // Hand computations below use llama-3-8b (8,030,261,248 params, 2-byte weights = 16.0605 GB, KV 131,072
    // B/token) on GB200 (2,500 TFLOP/s BF16, 8 TB/s HBM, 186 GB, NVLink 1,800 GB/s) with the default
    // efficiencies (prefill MFU 0.5, decode bandwidth 0.6) and the training link efficiency 0.7. The job's
    // episodes end at 1,024 + 3 x 128 + 2 x 256 = 1,920 tokens; a replica's KV holds
    // (186e9 - 16.0605e9) / 131,072 = 1,296,535 tokens = 675 episodes, so the batch cap (256) binds.
    //   prefill(t) = 2 x 8.030e9 x t / (2,500e12 x 0.5) s; decode(kv) = (16.0605e9 + 131,072 kv) / (8e12 x 0.6) s.
    // Turn k has context 1,024 + 384 k before it, prefills 1,024 (k = 0) or 256 new tokens, and decodes
    // 128 tokens at the mid-point context + 64.

    #[test]
    fn a_colocated_step_by_hand() {
        // 8 GPUs train, and serve as 8 rollout replicas of 8 episodes each (one wave, batch 8):
        //   turn 0: prefill(8,192) = 0.105254 s, 128 x decode(8 x 1,088) = 0.458703 s
        //   turn 1: prefill(2,048) = 0.026314 s, 128 x decode(8 x 1,472) = 0.469441 s
        //   turn 2: prefill(2,048) = 0.026314 s, 128 x decode(8 x 1,856) = 0.480178 s
        //   busy 1.566203 s, + 3 tool waits of 2 s = 7.566203 s.
        // Train: 6 x 8.030e9 x (64 x 1,920) / (8 x 2,500e12 x 0.4) = 0.740069 s, + all-reduce
        //   2 x 16.0605e9 / (1,800e9 x 0.7) = 0.025493 s = 0.765562 s.
        // Sync: 16.0605e9 / (8 x 1,800e9 x 0.7) = 0.001593 s. Switches 2 x 3 s, reward 5 s.
        // Step 7.566203 + 5 + 0.765562 + 0.001593 + 6 = 19.333359 s; idle 6 + 5 + 6 = 17 s = 87.93 %.
        let gb200 = preset("p6e-gb200").unwrap();
        let b = step(&job(RlMode::Colocated, 0), gb200, &[8], None).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b;
        assert!(close(b.rollout_s, 7.566_203_469_784_679), "{b:?}");
        assert!(close(b.train_s, 0.765_561_769_466_473_7), "{b:?}");
        assert!(close(b.sync_s, 0.001_593_305_803_174_603), "{b:?}");
        assert_eq!((b.reward_s, b.switch_s), (5.0, 6.0));
        assert!(close(b.step_s, 19.333_358_545_054_327), "{b:?}");
        assert!(close(b.gpu_idle_share, 0.879_309_198_160_439_4), "{b:?}");
    }

    #[test]
    fn rollout_matches_a_hand_computation() {
        // One replica, all 64 episodes in one batch:
        //   turn 0: prefill(65,536) = 0.842034 s, 128 x decode(64 x 1,088) = 0.671662 s
        //   turn 1: prefill(16,384) = 0.210508 s, 128 x decode(64 x 1,472) = 0.757561 s
        //   turn 2: prefill(16,384) = 0.210508 s, 128 x decode(64 x 1,856) = 0.843461 s
        //   busy 3.535735 s; with the 3 tool waits of 2 s, 9.535735 s.
        let gb200 = preset("p6e-gb200").unwrap();
        let rl = job(RlMode::Colocated, 0);
        let roof = rollout_roofline(&rl, gb200).unwrap();
        let (total, busy) = rollout_s(&rl, &roof, 1);
        assert!((busy - 3.535_735_160_517_427_6).abs() < 1e-9, "{busy}");
        assert!((total - 9.535_735_160_517_428).abs() < 1e-9, "{total}");
        // A batch cap of 16 runs the 64 episodes in 4 waves of 16: the tool waits repeat per wave.
        let capped = RlJob {
            max_batch: 16,
            ..rl.clone()
        };
        let (total4, busy4) = rollout_s(&capped, &roof, 1);
        assert!(total4 - busy4 > 23.999_999 && total4 - busy4 < 24.000_001);
    }

    #[test]
    fn async_overlaps_rollout_and_training_within_the_staleness_bound() {
        let gb200 = preset("p6e-gb200").unwrap();
        let at = |staleness| {
            let rl = job(RlMode::Async, staleness);
            let r = RolloutPlacement {
                preset: gb200,
                replicas: 8,
                same_domain: false,
            };
            step(&rl, gb200, &[8], Some(r)).unwrap()
        };
        // Rollout on 8 replicas of 1 GPU as in the colocated step: 7.566203 s; train 0.765562 s. Sync over
        // EFA (other domains): 28,800 Gb/s / 8 / 72 GPUs x 0.7 = 35 GB/s per stream, 8 streams:
        // 16.0605e9 / (8 x 35e9) = 0.057359 s.
        // Staleness 0: 7.566203 + 5 + 0.765562 + 0.057359 = 13.389124 s.
        // Staleness 1: max(7.566203 + 5, 0.765562 + 0.057359) = 12.566203 s.
        // Idle: training GPUs 8 x (step - 0.822921), rollout GPUs 8 x (step - 1.566203), over 16 x step.
        let (sync, pipelined) = (at(0), at(1));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b;
        assert!(close(sync.sync_s, 0.057_359_008_914_285_71), "{sync:?}");
        assert!(close(sync.step_s, 13.389_124_248_165_44), "{sync:?}");
        assert!(
            close(pipelined.step_s, 12.566_203_469_784_679),
            "{pipelined:?}"
        );
        assert!(
            close(sync.gpu_idle_share, 0.910_781_160_743_474_5),
            "{sync:?}"
        );
        assert!(
            close(pipelined.gpu_idle_share, 0.904_938_502_153_412_3),
            "{pipelined:?}"
        );
    }

    #[test]
    fn an_episode_that_does_not_fit_the_kv_cache_is_refused() {
        let h100 = preset("p5-h100").unwrap();
        let mut rl = job(RlMode::Colocated, 0);
        rl.llm = builtin("llama-3-70b").unwrap();
        assert!(
            rollout_roofline(&rl, h100).is_err(),
            "70B does not fit one H100"
        );
        rl.rollout_tp = 8;
        assert!(rollout_roofline(&rl, h100).is_ok());
    }
}
