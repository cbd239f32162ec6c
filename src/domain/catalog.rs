//! The hardware catalog: every GPU and system figure the simulator uses, in one place.
//!
//! Figures come from ../shared/docs/hardware.md (vendor pages and named secondary sources); a figure not
//! published there says where it came from beside it.

/// One accelerator model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuModel {
    /// Catalog id used in workload files (`gpu_model = "h100"`).
    pub id: &'static str,
    /// Marketing name.
    pub name: &'static str,
    /// HBM capacity, GB.
    pub hbm_gb: f64,
    /// HBM bandwidth, TB/s.
    pub hbm_tbps: f64,
    /// Dense BF16, TFLOP/s.
    pub bf16_tflops: f64,
    /// Dense FP8, TFLOP/s.
    pub fp8_tflops: f64,
    /// Board power, W (busy).
    pub power_w: f64,
    /// Scale-up link bandwidth per device, GB/s.
    pub scaleup_gbps: f64,
    /// Idle power, W. H100: 75 W (SplitwiseSim constants, hardware.md); others: the same 10.7 % of board
    /// power (project assumption).
    pub idle_w: f64,
    /// Default price, USD per GPU-hour: an order-of-magnitude placeholder (project assumption, not a quote);
    /// set `usd_per_gpu_hour` on the pool to your committed price.
    pub usd_per_gpu_hour: f64,
}

/// GPU models, indexed by their position (the kernel's model id).
pub const GPU_MODELS: &[GpuModel] = &[
    GpuModel {
        id: "h100",
        name: "H100 SXM 80GB",
        hbm_gb: 80.0,
        hbm_tbps: 3.35,
        bf16_tflops: 989.0,
        fp8_tflops: 1979.0,
        power_w: 700.0,
        scaleup_gbps: 900.0,
        idle_w: 75.0,
        usd_per_gpu_hour: 4.0,
    },
    GpuModel {
        id: "h200",
        name: "H200 SXM 141GB",
        hbm_gb: 141.0,
        hbm_tbps: 4.8,
        bf16_tflops: 989.0,
        fp8_tflops: 1979.0,
        power_w: 700.0,
        scaleup_gbps: 900.0,
        idle_w: 75.0,
        usd_per_gpu_hour: 5.0,
    },
    GpuModel {
        id: "b200",
        name: "B200 (HGX, 1,000 W)",
        hbm_gb: 180.0,
        hbm_tbps: 8.0,
        bf16_tflops: 2250.0,
        fp8_tflops: 4500.0,
        power_w: 1000.0,
        scaleup_gbps: 1800.0,
        idle_w: 107.0,
        usd_per_gpu_hour: 6.0,
    },
    // 13.4 TB / 72 and 576 TB/s / 72 per hardware.md.
    GpuModel {
        id: "gb200",
        name: "GB200 (NVL72, 1,200 W)",
        hbm_gb: 186.0,
        hbm_tbps: 8.0,
        bf16_tflops: 2500.0,
        fp8_tflops: 5000.0,
        power_w: 1200.0,
        scaleup_gbps: 1800.0,
        idle_w: 128.0,
        usd_per_gpu_hour: 8.0,
    },
    GpuModel {
        id: "gb300",
        name: "GB300 (NVL72)",
        hbm_gb: 288.0,
        hbm_tbps: 8.0,
        bf16_tflops: 2500.0,
        fp8_tflops: 5000.0,
        power_w: 1400.0,
        scaleup_gbps: 1800.0,
        idle_w: 150.0,
        usd_per_gpu_hour: 10.0,
    },
    // Trainium2 power is not published (hardware.md): 500 W is this project's placeholder parameter.
    GpuModel {
        id: "trn2",
        name: "Trainium2",
        hbm_gb: 103.1,
        hbm_tbps: 2.9,
        bf16_tflops: 670.0,
        fp8_tflops: 1300.0,
        power_w: 500.0,
        scaleup_gbps: 1280.0,
        idle_w: 54.0,
        usd_per_gpu_hour: 2.5,
    },
];

/// One system shape a cluster pool is built from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// Name used in workload files (`preset = "p6e-gb200"`).
    pub id: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Index into [`GPU_MODELS`].
    pub gpu_model: usize,
    /// Devices per node (instance / tray).
    pub gpus_per_node: u32,
    /// Nodes per NVLink (scale-up) domain: one "unit" of the preset.
    pub nodes_per_domain: u32,
    /// Default domains per rack/block (the level above the NVLink domain).
    pub domains_per_rack: u32,
    /// Scale-out (EFA) bandwidth per domain, Gbit/s.
    pub scaleout_gbps_per_domain: f64,
}

impl Preset {
    /// GPUs in one NVLink domain.
    pub fn domain_gpus(&self) -> u32 {
        self.gpus_per_node * self.nodes_per_domain
    }

    /// The preset's GPU model.
    pub fn model(&self) -> &'static GpuModel {
        &GPU_MODELS[self.gpu_model]
    }
}

/// The cluster presets. A "unit" (what a pool counts) is one NVLink domain.
pub const PRESETS: &[Preset] = &[
    // p5.48xlarge: 8 x H100, the node is the NVLink domain; 3,200 Gbps EFA per node. Racks: 4 nodes per
    // rack is a common P5 layout (project assumption; override with domains_per_rack).
    Preset { id: "p5-h100", description: "EC2 P5 (p5.48xlarge): 8 x H100, one node = one NVLink domain", gpu_model: 0, gpus_per_node: 8, nodes_per_domain: 1, domains_per_rack: 4, scaleout_gbps_per_domain: 3200.0 },
    Preset { id: "p5en-h200", description: "EC2 P5en: 8 x H200, one node = one NVLink domain", gpu_model: 1, gpus_per_node: 8, nodes_per_domain: 1, domains_per_rack: 4, scaleout_gbps_per_domain: 3200.0 },
    Preset { id: "p6-b200", description: "EC2 P6-B200: 8 x B200, one node = one NVLink domain", gpu_model: 2, gpus_per_node: 8, nodes_per_domain: 1, domains_per_rack: 4, scaleout_gbps_per_domain: 3200.0 },
    Preset { id: "p6e-gb200", description: "EC2 P6e-GB200 UltraServer u-p6e-gb200x72: 18 nodes x 4 GB200 = one 72-GPU NVLink domain", gpu_model: 3, gpus_per_node: 4, nodes_per_domain: 18, domains_per_rack: 1, scaleout_gbps_per_domain: 28800.0 },
    // x36 variant: 9 instances; EFA scaled by half (project assumption).
    Preset { id: "p6e-gb200-x36", description: "EC2 P6e-GB200 UltraServer x36 variant: 9 nodes x 4 GB200 = one 36-GPU NVLink domain", gpu_model: 3, gpus_per_node: 4, nodes_per_domain: 9, domains_per_rack: 2, scaleout_gbps_per_domain: 14400.0 },
    // Scale-out is operator-specific (hardware.md): 28.8 Tbps as for P6e is the default parameter.
    Preset { id: "gb300-nvl72", description: "GB300 NVL72 rack: 18 trays x 4 GB300 = one 72-GPU NVLink domain", gpu_model: 4, gpus_per_node: 4, nodes_per_domain: 18, domains_per_rack: 1, scaleout_gbps_per_domain: 28800.0 },
    Preset { id: "trn2-ultraserver", description: "Trn2 UltraServer: 4 x trn2u.48xlarge x 16 Trainium2 = one 64-chip NeuronLink domain", gpu_model: 5, gpus_per_node: 16, nodes_per_domain: 4, domains_per_rack: 1, scaleout_gbps_per_domain: 12800.0 },
];

/// Looks up a preset by name.
pub fn preset(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

/// Looks up a GPU model id (its kernel model index).
pub fn gpu_model_index(id: &str) -> Option<usize> {
    GPU_MODELS.iter().position(|m| m.id == id)
}

/// Comma-separated preset names, for error messages.
pub fn preset_names() -> String {
    PRESETS.iter().map(|p| p.id).collect::<Vec<_>>().join(", ")
}

/// Comma-separated GPU model ids, for error messages.
pub fn gpu_model_names() -> String {
    GPU_MODELS
        .iter()
        .map(|m| m.id)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_have_the_published_sizes() {
        let sizes: Vec<(&str, u32)> = PRESETS.iter().map(|p| (p.id, p.domain_gpus())).collect();
        assert_eq!(
            sizes,
            [
                ("p5-h100", 8),
                ("p5en-h200", 8),
                ("p6-b200", 8),
                ("p6e-gb200", 72),
                ("p6e-gb200-x36", 36),
                ("gb300-nvl72", 72),
                ("trn2-ultraserver", 64)
            ]
        );
    }

    #[test]
    fn model_ids_fit_the_kernel_mask() {
        assert!(GPU_MODELS.len() <= 32);
        for p in PRESETS {
            assert!(p.gpu_model < GPU_MODELS.len());
        }
    }
}
