//! The six placement policies of the study, and how each picks GPUs inside the chosen node.

use rand::Rng;

use crate::kernel::node_score::{
    chosen_gpus, lowest_fitting_gpus, NodeRecord, PodRecord, TypicalRecord, POLICY_BEST_FIT,
    POLICY_DOT_PRODUCT, POLICY_FGD, POLICY_GPU_CLUSTERING, POLICY_GPU_PACKING,
};

/// A placement policy of the FGD paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Policy {
    /// Uniform among feasible nodes and fitting GPUs.
    #[value(name = "random")]
    Random,
    /// Align free capacity with demand (DotProduct).
    #[value(name = "dotprod")]
    DotProd,
    /// Co-locate pods of the same GPU shape.
    #[value(name = "gpuclustering")]
    GpuClustering,
    /// Fill used GPUs, then used nodes, then idle nodes.
    #[value(name = "gpupacking")]
    GpuPacking,
    /// Least free CPU + GPU after placement.
    #[value(name = "bestfit")]
    BestFit,
    /// Fragmentation Gradient Descent.
    #[value(name = "fgd")]
    Fgd,
}

impl Policy {
    /// All six, in the published order.
    pub const ALL: [Policy; 6] = [
        Policy::Random,
        Policy::DotProd,
        Policy::GpuClustering,
        Policy::GpuPacking,
        Policy::BestFit,
        Policy::Fgd,
    ];

    /// The published `sc_policy` label (`01-Random` .. `06-FGD`).
    pub fn label(self) -> &'static str {
        match self {
            Policy::Random => "01-Random",
            Policy::DotProd => "02-DotProd",
            Policy::GpuClustering => "03-GpuClustering",
            Policy::GpuPacking => "04-GpuPacking",
            Policy::BestFit => "05-BestFit",
            Policy::Fgd => "06-FGD",
        }
    }

    /// The node-score kernel's policy id; `None` for Random (drawn, not scored).
    pub fn kernel_id(self) -> Option<u32> {
        match self {
            Policy::Random => None,
            Policy::DotProd => Some(POLICY_DOT_PRODUCT),
            Policy::GpuClustering => Some(POLICY_GPU_CLUSTERING),
            Policy::GpuPacking => Some(POLICY_GPU_PACKING),
            Policy::BestFit => Some(POLICY_BEST_FIT),
            Policy::Fgd => Some(POLICY_FGD),
        }
    }

    /// GPUs `pod` takes on the chosen (feasible) `node`, as a bit mask (0 for CPU-only pods).
    /// Whole-GPU pods take the lowest-indexed free GPUs under every policy; sharing pods go where the policy
    /// says (Random: uniform; FGD: best FGD score; others: the tightest fitting GPU).
    pub fn choose_gpus(
        self,
        node: &NodeRecord,
        pod: &PodRecord,
        typical: &[TypicalRecord],
        frag: f64,
        rng: &mut impl Rng,
    ) -> u32 {
        let Some(kernel_policy) = self.kernel_id() else {
            // Random: whole-GPU pods as everywhere; a sharing pod on a uniformly drawn fitting GPU.
            if !pod.uses_gpu() {
                return 0;
            }
            if !pod.is_sharing() {
                return lowest_fitting_gpus(node, pod);
            }
            let fitting: Vec<usize> = (0..node.gpu_count as usize)
                .filter(|&i| node.gpu_left[i] >= pod.milli)
                .collect();
            return if fitting.is_empty() {
                0
            } else {
                1 << fitting[rng.random_range(0..fitting.len())]
            };
        };
        chosen_gpus(kernel_policy, node, pod, typical, frag)
    }
}
