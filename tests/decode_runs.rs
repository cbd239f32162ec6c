//! Coalesced decode runs equal the step-by-step loop: `decode_run_monotone` against a plain loop on random
//! non-decreasing step functions with good and bad run-length guesses, and the roofline's override against
//! the trait's default loop on every built-in model, GPU and TP size.

use proptest::prelude::*;
use ultrasched::domain::catalog::GPU_MODELS;
use ultrasched::domain::llm::builtin_models;
use ultrasched::perf::inference::{decode_run_monotone, Efficiency, Roofline, ServiceModel};
use ultrasched::perf::operators::{OperatorConstants, Operators};

/// The definition: steps one by one, at least one, until `max_steps` or the end reaches `until`.
fn looped(step: impl Fn(u64) -> u64, max_steps: u32, until: Option<u64>) -> (u64, u32) {
    let (mut d, mut i) = (0u64, 0u32);
    loop {
        d += step(i as u64);
        i += 1;
        if i >= max_steps.max(1) || until.is_some_and(|u| d >= u) {
            return (d, i);
        }
    }
}

/// A model that only has the default `decode_run_us` (the loop), delegating steps to a roofline.
struct StepByStep<'a>(&'a Roofline);

impl ServiceModel for StepByStep<'_> {
    fn prefill_us(&self, t: u64, r: usize) -> u64 {
        self.0.prefill_us(t, r)
    }
    fn decode_step_us(&self, kv: u64, b: usize) -> u64 {
        self.0.decode_step_us(kv, b)
    }
    fn kv_capacity_tokens(&self) -> u64 {
        self.0.kv_capacity_tokens()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn monotone_runs_equal_the_loop(
        base in 1u64..5000,
        num in 0u64..50,
        den in 1u64..400,
        max_steps in 1u32..3000,
        until in prop::option::of(0u64..2_000_000),
        bias in -40i64..40,
    ) {
        let step = |i: u64| base + i * num / den;
        // A guess off by `bias` steps from the true end of the run (clamped by the function).
        let guess = |i: u64, c: u64| {
            let mut j = i;
            while step(j + 1) == c && j < i + 100_000 {
                j += 1;
            }
            (j as i64 + bias).max(0) as u64
        };
        prop_assert_eq!(
            decode_run_monotone(step, guess, max_steps, until),
            looped(step, max_steps, until)
        );
    }
}

#[test]
fn the_roofline_decode_run_equals_its_step_by_step_loop() {
    let mut checked = 0;
    for m in builtin_models() {
        for g in GPU_MODELS.iter() {
            for tp in [1u32, 2, 4, 8] {
                let Ok(r) = Roofline::new(m.clone(), *g, tp, Efficiency::default()) else {
                    continue;
                };
                let plain = StepByStep(&r);
                for (kv, batch, max, until) in [
                    (0u64, 1usize, 4096u32, None),
                    (3000, 1, 250, Some(1_000_000u64)),
                    (120_000, 64, 900, None),
                    (512, 7, 2000, Some(12_345)),
                    (1, 128, 1, Some(0)),
                    (50_000, 3, 4000, Some(40_000_000)),
                ] {
                    assert_eq!(
                        r.decode_run_us(kv, batch, max, until),
                        plain.decode_run_us(kv, batch, max, until),
                        "{} on {} x{tp}: kv {kv} batch {batch} max {max} until {until:?}",
                        m.name,
                        g.id
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 100, "{checked} cases");
}

/// The operator model behind the default loop.
struct OpsStepByStep<'a>(&'a Operators);

impl ServiceModel for OpsStepByStep<'_> {
    fn prefill_us(&self, t: u64, r: usize) -> u64 {
        self.0.prefill_us(t, r)
    }
    fn decode_step_us(&self, kv: u64, b: usize) -> u64 {
        self.0.decode_step_us(kv, b)
    }
    fn kv_capacity_tokens(&self) -> u64 {
        self.0.kv_capacity_tokens()
    }
}

#[test]
fn the_operator_model_decode_run_equals_its_step_by_step_loop() {
    let mut checked = 0;
    for m in builtin_models() {
        for g in GPU_MODELS.iter() {
            for (tp, domains) in [(1u32, 1u32), (2, 1), (4, 1), (8, 1), (16, 2)] {
                let Ok(o) =
                    Operators::new(m.clone(), *g, tp, domains, OperatorConstants::default())
                else {
                    continue;
                };
                let plain = OpsStepByStep(&o);
                for (kv, batch, max, until) in [
                    (0u64, 1usize, 4096u32, None),
                    (3000, 1, 250, Some(1_000_000u64)),
                    (120_000, 64, 900, None),
                    (512, 7, 2000, Some(12_345)),
                    (1, 128, 1, Some(0)),
                    (50_000, 3, 4000, Some(40_000_000)),
                ] {
                    assert_eq!(
                        o.decode_run_us(kv, batch, max, until),
                        plain.decode_run_us(kv, batch, max, until),
                        "{} on {} x{tp}: kv {kv} batch {batch} max {max} until {until:?}",
                        m.name,
                        g.id
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 100, "{checked} cases");
}
