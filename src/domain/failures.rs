//! Hardware and software failures, as the workload's `[failures]` section describes them: a rate per GPU
//! per cause, how long a failed node is out for repair, how long a job takes to restart, and the spare nodes
//! held back to replace failed ones. The engine draws the failures (`engine::cluster::failures`).
//!
//! Default rates come from the 419 unexpected interruptions of Llama 3 405B pre-training: 16,384 H100s over
//! a 54-day snapshot (Meta, "The Llama 3 Herd of Models", 2024, table 5), i.e. 21,233,664 GPU-hours. The
//! paper's 18 root-cause categories are grouped into five causes:
//!
//! | cause      | categories of table 5                                                              | count |
//! |------------|------------------------------------------------------------------------------------|-------|
//! | `gpu`      | faulty GPU 148, GPU SRAM 19, GPU system processor 17, thermal/sensor 6, silent data corruption 6 | 196 |
//! | `hbm`      | GPU HBM3 memory 72                                                                 | 72    |
//! | `software` | software bug 54, NCCL watchdog timeouts 7, dependency 2                            | 63    |
//! | `network`  | network switch/cable 35, NIC 7                                                     | 42    |
//! | `host`     | host maintenance 32, SSD 3, power supply 3, chassis 2, IO expansion board 2, CPU 2, system memory 2 | 46 |
//!
//! The paper gives no repair times; the defaults are assumptions, stated here and overridable: a GPU or HBM
//! fault takes its node out for 48 h (replacement), a network fault 4 h, a host fault 24 h, a software
//! fault not at all (the job restarts in place).

/// Simulated microseconds (`domain::workload::Time`; this module stays below `workload`, which holds a
/// [`Failures`]).
pub type Time = u64;

/// Whole microseconds of `s` seconds.
fn us(s: f64) -> Time {
    (s * 1e6).round() as Time
}

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// The GPU itself (faulty GPU, SRAM, system processor, thermal, silent data corruption).
    Gpu,
    /// GPU HBM memory.
    Hbm,
    /// Switches, cables, NICs.
    Network,
    /// The host: maintenance, SSD, power supply, CPU, memory.
    Host,
    /// Software and NCCL: the job restarts, the node stays up.
    Software,
}

impl Cause {
    /// Every cause, in report order.
    pub const ALL: [Cause; 5] = [
        Cause::Gpu,
        Cause::Hbm,
        Cause::Network,
        Cause::Host,
        Cause::Software,
    ];

    /// The name as written in workload files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Gpu => "gpu",
            Cause::Hbm => "hbm",
            Cause::Network => "network",
            Cause::Host => "host",
            Cause::Software => "software",
        }
    }

    /// The cause named `s`.
    pub fn parse(s: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Index into per-cause arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Llama 3's interruptions per cause (see the module table).
pub const LLAMA3_INTERRUPTIONS: [u32; 5] = [196, 72, 42, 46, 63];
/// GPU-hours of the Llama 3 snapshot: 16,384 GPUs x 54 days x 24 h.
pub const LLAMA3_GPU_HOURS: f64 = 16_384.0 * 54.0 * 24.0;

/// The failure model of a workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Failures {
    /// Failures per GPU-hour, by [`Cause::index`].
    pub rates_per_gpu_hour: [f64; 5],
    /// How long a failed node is out, by cause (0: it stays up).
    pub repair: [Time; 5],
    /// Time a stopped job takes to restart (reload, re-initialise), counted as lost time on its GPUs.
    pub restart: Time,
    /// Nodes of each NVLink domain held back as spares.
    pub spare_nodes_per_domain: u32,
    /// Nodes of each rack held back as spares (the last nodes of the rack).
    pub spare_nodes_per_rack: u32,
    /// Weibull shape of each node's time to failure (renewed at each repair); `None`: the memoryless
    /// exponential (shape 1 in distribution, drawn cluster-wide). Below 1 failures come early (infant
    /// mortality), above 1 late (wear-out); the mean stays that of the rates.
    pub weibull_shape: Option<f64>,
}

impl Default for Failures {
    fn default() -> Self {
        let mut rates = [0.0; 5];
        for (r, n) in rates.iter_mut().zip(LLAMA3_INTERRUPTIONS) {
            *r = n as f64 / LLAMA3_GPU_HOURS;
        }
        Failures {
            rates_per_gpu_hour: rates,
            repair: [172_800.0, 172_800.0, 14_400.0, 86_400.0, 0.0].map(us),
            restart: us(300.0),
            spare_nodes_per_domain: 0,
            spare_nodes_per_rack: 0,
            weibull_shape: None,
        }
    }
}

/// The gamma function for x > 0 (Lanczos, g = 7, nine terms: about 15 significant digits), for the
/// Weibull scale that gives a mean: mean = scale x gamma(1 + 1 / shape).
pub fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        return std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x));
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

impl Failures {
    /// Failures per GPU-hour, all causes.
    pub fn rate_per_gpu_hour(&self) -> f64 {
        self.rates_per_gpu_hour.iter().sum()
    }

    /// Mean time between failures of a job on `gpus` GPUs, microseconds (infinite when no cause fails).
    pub fn job_mtbf(&self, gpus: u64) -> f64 {
        let per_us = self.rate_per_gpu_hour() * gpus as f64 / 3.6e9;
        if per_us > 0.0 {
            1.0 / per_us
        } else {
            f64::INFINITY
        }
    }
}

/// The checkpoint interval (compute between checkpoints) that minimises expected lost time for a job of
/// mean time between failures `mtbf` whose checkpoint costs `cost`: Daly's refinement of Young's
/// `sqrt(2 cost mtbf)` (J. T. Daly, "A higher order estimate of the optimum checkpoint interval for restart
/// dumps", FGCS 2006): `sqrt(2 d M) (1 + sqrt(d / 2M) / 3 + d / 18M) - d` for `d < 2M`, else `M`. At least
/// one microsecond.
pub fn young_daly(mtbf: f64, cost: Time) -> Time {
    let d = cost as f64;
    let m = mtbf;
    if !m.is_finite() {
        return Time::MAX / 4;
    }
    let t = if d < 2.0 * m {
        (2.0 * d * m).sqrt() * (1.0 + (d / (2.0 * m)).sqrt() / 3.0 + d / (18.0 * m)) - d
    } else {
        m
    };
    (t.round() as Time).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rates_reproduce_llama3_over_its_gpu_hours() {
        let f = Failures::default();
        let expected = f.rate_per_gpu_hour() * LLAMA3_GPU_HOURS;
        assert!((expected - 419.0).abs() < 1e-6, "{expected}");
        let gpu = f.rates_per_gpu_hour[Cause::Gpu.index()] * LLAMA3_GPU_HOURS;
        assert!((gpu - 196.0).abs() < 1e-6);
    }

    #[test]
    fn young_daly_by_hand() {
        // M = 10,000 s, d = 50 s: sqrt(2 * 50 * 10,000) = 1,000 s; d / 2M = 0.0025, sqrt = 0.05:
        // 1,000 * (1 + 0.05 / 3 + 50 / 180,000) - 50 = 1,000 * 1.016944 - 50 = 966.94 s.
        let t = young_daly(10_000e6, 50_000_000);
        assert!((t as f64 / 1e6 - 966.944).abs() < 0.01, "{t}");
        // A checkpoint dearer than twice the MTBF: checkpoint every MTBF.
        assert_eq!(young_daly(10e6, 30_000_000), 10_000_000);
        assert_eq!(young_daly(f64::INFINITY, 1), Time::MAX / 4);
    }
}
