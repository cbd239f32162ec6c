//! Builds a replica's [`ServiceModel`] from a [`CostModel`] name: the seam the CLI, the post-run serving and
//! the cluster engine's live services share.

use crate::domain::catalog::GpuModel;
use crate::domain::llm::ModelSpec;
use crate::domain::traffic::CostModel;
use crate::error::{InputError, Location};
use crate::perf::inference::{Efficiency, Roofline, ServiceModel};
use crate::perf::operators::{OperatorConstants, Operators};

/// NVLink domain size of a GPU model when a replica's placement is not known (`replay-inference`): 72 for
/// the NVL72 parts, 64 for Trainium 2 UltraServers, else one 8-GPU node (hardware.md).
pub fn default_domain_gpus(gpu: &GpuModel) -> u32 {
    match gpu.id {
        "gb200" | "gb300" => 72,
        "trn2" => 64,
        _ => 8,
    }
}

/// A replica of `tp` GPUs spanning `domains` NVLink domains, timed by `cost`. `eff` applies to the
/// roofline only. Errors: the weights do not fit, or no profile is bundled for this model and GPU.
pub fn build(
    cost: CostModel,
    model: &ModelSpec,
    gpu: &GpuModel,
    tp: u32,
    domains: u32,
    eff: Efficiency,
) -> Result<Box<dyn ServiceModel + Send>, InputError> {
    Ok(match cost {
        CostModel::Roofline => Box::new(Roofline::new(model.clone(), *gpu, tp, eff)?),
        CostModel::Operators => Box::new(Operators::new(
            model.clone(),
            *gpu,
            tp,
            domains,
            OperatorConstants::default(),
        )?),
        CostModel::Profile => {
            let ops = Operators::new(
                model.clone(),
                *gpu,
                tp,
                domains,
                OperatorConstants::default(),
            )?;
            let Some(p) = crate::perf::profile::bundled(&model.name, gpu.id) else {
                return Err(InputError::new(
                    "cost_model",
                    Location::File,
                    format!(
                        "no operator profile is bundled for {} on {} (bundled: llama-2-70b on h100); use \
                         cost_model = \"operators\"",
                        model.name, gpu.id
                    ),
                ));
            };
            if !p.compute.tps().contains(&tp) {
                return Err(InputError::new(
                    "cost_model",
                    Location::File,
                    format!(
                        "the bundled profile of {} on {} covers TP {:?}, not {tp}",
                        model.name,
                        gpu.id,
                        p.compute.tps()
                    ),
                ));
            }
            Box::new(ops.with_profile(p))
        }
    })
}
