//! The node-score kernel of the fragmentation study (src/fgd): one call scores one pod against every node of a
//! GPU-sharing cluster and returns the winner (highest score; ties go to the smallest tie-break rank).
//!
//! Records are `#[repr(C)]` integers so the WGSL twin (shaders/node_score.wgsl, `node_score_gpu`) can follow.
//! `CpuNodeScorer` is the reference: DotProduct, BestFit and FGD are `f64` there, as in the original. The
//! "integer twins" below (`score_int`, `IntCpuNodeScorer`) are what the GPU computes: DotProduct and BestFit as
//! exact ceil-divisions (f64 rounding at exact boundaries reproduced by `BestFitTable`, or, for DotProduct,
//! flagged and decided in f64), FGD as `F * total` integers against 100 host-computed sigmoid thresholds
//! (`FgdThresholds`). tests/node_score_conformance.rs proves twin == f64 and GPU == CPU.
//! The score functions are pure and follow docs/fgd.md term by term.

pub mod gpu;

use bytemuck::{Pod, Zeroable};

/// Most GPUs one node record holds.
pub const MAX_GPUS: usize = 8;
/// Milli-GPU of one whole GPU.
pub const MILLI: u32 = 1000;
/// CPU milli the DotProduct and BestFit scores normalise by (the largest node).
pub const MAX_CPU_MILLI: u32 = 128_000;
/// GPU milli the DotProduct, BestFit and GpuClustering scores normalise by (8 GPUs).
pub const MAX_GPU_MILLI: u32 = 8_000;
/// `PodRecord::model_mask` accepting every model (no `gpu_spec`).
pub const ANY_MODEL: u32 = u32::MAX;
/// `PodRecord::tag` bit of a GPU-sharing pod (k = 1, m < 1000); whole-GPU pods use bit k.
pub const TAG_SHARE: u32 = 1;

/// DotProduct (cosine-like alignment of node free capacity and pod demand).
pub const POLICY_DOT_PRODUCT: u32 = 0;
/// GpuClustering (co-locate pods of the same GPU shape).
pub const POLICY_GPU_CLUSTERING: u32 = 1;
/// GpuPacking (share used GPUs, then used nodes, then idle nodes).
pub const POLICY_GPU_PACKING: u32 = 2;
/// BestFit (least free CPU+GPU after placement).
pub const POLICY_BEST_FIT: u32 = 3;
/// Fragmentation Gradient Descent (least growth of node fragmentation).
pub const POLICY_FGD: u32 = 4;
/// Number of scored policies (Random is not a score; the study draws it directly).
pub const POLICY_COUNT: u32 = 5;

/// `ScoreWinner::node` when no node is feasible.
pub const NO_NODE: u32 = u32::MAX;

/// One node. Must match `struct NodeRecord` of shaders/node_score.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NodeRecord {
    /// Free CPU (milli).
    pub cpu_left: u32,
    /// Free memory (MiB).
    pub mem_left: u32,
    /// GPU model id (index into the study's model table).
    pub model: u32,
    /// GPUs on the node (0..=`MAX_GPUS`).
    pub gpu_count: u32,
    /// Free milli-GPU of each GPU; entries at and after `gpu_count` are 0.
    pub gpu_left: [u32; MAX_GPUS],
    /// Tie-break rank: among equal scores the smallest rank wins.
    pub rank: u32,
    /// GpuClustering: OR of the tags of the GPU pods placed here (0 = none).
    pub tags: u32,
    /// Bumped on every change, so cached scores of unchanged nodes can be reused.
    pub version: u32,
    /// Padding to 16 words; always 0.
    pub _pad: u32,
}

/// One pod. Must match `struct PodRecord` of shaders/node_score.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct PodRecord {
    /// CPU demand (milli).
    pub cpu: u32,
    /// Memory demand (MiB).
    pub mem: u32,
    /// GPUs k (0 = CPU-only).
    pub gpus: u32,
    /// Milli-GPU m per GPU (0..=1000).
    pub milli: u32,
    /// Bit `i` set: model id `i` is acceptable (`ANY_MODEL` without `gpu_spec`).
    pub model_mask: u32,
    /// GpuClustering tag: 0 (CPU-only), `TAG_SHARE`, or `1 << k` (k whole GPUs).
    pub tag: u32,
    /// Dense id of (cpu, gpus, milli, model_mask): pods with equal shape score equally on an unchanged node.
    pub shape: u32,
    /// Padding to 8 words; always 0.
    pub _pad: u32,
}

/// A pod's best node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreWinner {
    /// Best score (meaningless when `node == NO_NODE`).
    pub score: i32,
    /// Tie-break rank of the winner.
    pub rank: u32,
    /// Index of the winner in the node slice, or `NO_NODE`.
    pub node: u32,
}

impl ScoreWinner {
    /// No feasible node.
    pub const NONE: ScoreWinner = ScoreWinner {
        score: i32::MIN,
        rank: u32::MAX,
        node: NO_NODE,
    };

    /// True when some node is feasible.
    pub fn is_feasible(&self) -> bool {
        self.node != NO_NODE
    }

    /// The better of two candidates: higher score, then smaller rank.
    #[inline]
    pub fn better(self, other: ScoreWinner) -> ScoreWinner {
        if other.score > self.score || (other.score == self.score && other.rank < self.rank) {
            other
        } else {
            self
        }
    }
}

/// One typical pod of FGD's fragmentation measure, with its frequency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TypicalRecord {
    /// CPU demand (milli).
    pub cpu: u32,
    /// GPUs k.
    pub gpus: u32,
    /// Milli-GPU m per GPU.
    pub milli: u32,
    /// Acceptable models, as in `PodRecord::model_mask`.
    pub model_mask: u32,
    /// Share of this pod among the typical pods (they sum to 1): `count / sum of counts`.
    pub freq: f64,
    /// How many trace pods have this key (the integer numerator of `freq`; FGD's integer twin weighs by it).
    pub count: u32,
}

const _: () = assert!(std::mem::size_of::<NodeRecord>() == 64);
const _: () = assert!(std::mem::size_of::<PodRecord>() == 32);

impl NodeRecord {
    /// Free milli-GPU over all GPUs (`idle(N)`).
    #[inline]
    pub fn idle(&self) -> u32 {
        let mut s = 0;
        for i in 0..self.gpu_count as usize {
            s += self.gpu_left[i];
        }
        s
    }

    /// Number of GPUs with `gpu_left >= milli`.
    #[inline]
    fn gpus_with_at_least(&self, milli: u32) -> u32 {
        let mut c = 0;
        for i in 0..self.gpu_count as usize {
            if self.gpu_left[i] >= milli {
                c += 1;
            }
        }
        c
    }
}

impl PodRecord {
    /// True when the pod asks for GPU capacity (k > 0 and m > 0).
    #[inline]
    pub fn uses_gpu(&self) -> bool {
        self.gpus > 0 && self.milli > 0
    }

    /// True for a GPU-sharing pod (k = 1, 0 < m < 1000).
    #[inline]
    pub fn is_sharing(&self) -> bool {
        self.gpus == 1 && self.milli > 0 && self.milli < MILLI
    }

    /// Total GPU demand k*m (milli).
    #[inline]
    pub fn gpu_demand(&self) -> u32 {
        self.gpus * self.milli
    }
}

/// Can `node` take `pod`? (CPU, memory, model, and enough GPUs with `gpu_left >= m`.)
#[inline]
pub fn feasible(node: &NodeRecord, pod: &PodRecord) -> bool {
    if pod.cpu > node.cpu_left || pod.mem > node.mem_left {
        return false;
    }
    if !pod.uses_gpu() {
        return true;
    }
    if node.gpu_count == 0 || (pod.model_mask >> node.model.min(31)) & 1 == 0 {
        return false;
    }
    node.gpus_with_at_least(pod.milli) >= pod.gpus
}

/// GPUs a non-sharing GPU pod takes on a feasible node: the k lowest-indexed GPUs with `gpu_left >= m`
/// (for whole-GPU pods, the k lowest-indexed fully free GPUs). Bit i set = GPU i.
#[inline]
pub fn lowest_fitting_gpus(node: &NodeRecord, pod: &PodRecord) -> u32 {
    let mut mask = 0;
    let mut taken = 0;
    for i in 0..node.gpu_count as usize {
        if taken == pod.gpus {
            break;
        }
        if node.gpu_left[i] >= pod.milli {
            mask |= 1 << i;
            taken += 1;
        }
    }
    mask
}

/// The fitting GPU with the smallest `gpu_left` (ties: lowest index); `None` when none fits.
#[inline]
pub fn tightest_gpu(node: &NodeRecord, milli: u32) -> Option<usize> {
    let mut best: Option<usize> = None;
    for i in 0..node.gpu_count as usize {
        let left = node.gpu_left[i];
        if left >= milli && best.is_none_or(|b| left < node.gpu_left[b]) {
            best = Some(i);
        }
    }
    best
}

/// GPUs a scored `policy` gives `pod` on the chosen (feasible) `node`, as a bit mask (0 for CPU-only pods):
/// whole-GPU pods take the lowest-indexed fitting GPUs; sharing pods go on FGD's best GPU (`score_fgd`, `frag`
/// is F(N) of the node as it is) or, under every other policy, on the tightest fitting GPU. The lockstep shader's
/// `chosen_gpus` is the same rule.
pub fn chosen_gpus(
    policy: u32,
    node: &NodeRecord,
    pod: &PodRecord,
    typical: &[TypicalRecord],
    frag: f64,
) -> u32 {
    if !pod.uses_gpu() {
        0
    } else if !pod.is_sharing() {
        lowest_fitting_gpus(node, pod)
    } else if policy == POLICY_FGD {
        score_fgd(node, pod, typical, frag).1
    } else {
        tightest_gpu(node, pod.milli).map_or(0, |i| 1 << i)
    }
}

/// `node` after placing `pod` on the GPUs in `gpu_mask` (CPU and memory always; GPU milli on each chosen GPU).
#[inline]
pub fn after_placing(node: &NodeRecord, pod: &PodRecord, gpu_mask: u32) -> NodeRecord {
    let mut n = *node;
    n.cpu_left -= pod.cpu;
    n.mem_left -= pod.mem;
    for i in 0..n.gpu_count as usize {
        if gpu_mask & (1 << i) != 0 {
            n.gpu_left[i] -= pod.milli;
        }
    }
    n
}

/// DotProduct: `trunc(100 * (1 - d/2))` with `d = cpu_left/128000 * cpu/128000 + idle/8000 * k*m/8000`.
pub fn score_dot_product(node: &NodeRecord, pod: &PodRecord) -> i32 {
    if node.cpu_left < pod.cpu {
        return 0;
    }
    let d = (node.cpu_left as f64 / MAX_CPU_MILLI as f64) * (pod.cpu as f64 / MAX_CPU_MILLI as f64)
        + (node.idle() as f64 / MAX_GPU_MILLI as f64)
            * (pod.gpu_demand() as f64 / MAX_GPU_MILLI as f64);
    (100.0 * (1.0 - d / 2.0)) as i32
}

/// GpuClustering: used share of the node (0..25) plus 75/50/25/0 by how the node's pod tags match the pod's.
pub fn score_gpu_clustering(node: &NodeRecord, pod: &PodRecord) -> i32 {
    if pod.tag == 0 {
        return 0;
    }
    let base = (25 * (MAX_GPU_MILLI as i64 - node.idle() as i64) / MAX_GPU_MILLI as i64) as i32;
    if node.tags & pod.tag != 0 {
        // One distinct tag means every GPU pod here has the pod's shape.
        if node.tags.count_ones() == 1 {
            base + 75
        } else {
            base + 50
        }
    } else if node.tags == 0 {
        base + 25
    } else {
        base
    }
}

/// GpuPacking: share a partly used GPU (50..100) > open a free GPU on a used node (33..49) > idle node (<= 33).
pub fn score_gpu_packing(node: &NodeRecord, pod: &PodRecord) -> i32 {
    if pod.milli == 0 {
        return 0;
    }
    let g = node.gpu_count as usize;
    let free = node.gpus_with_at_least(MILLI) as i32;
    if free == g as i32 {
        return (33 - free).max(free);
    }
    // Walk GPUs by gpu_left ascending, stable by index: repeatedly take the smallest untaken fitting GPU.
    let mut taken_mask = 0u32;
    let mut taken = 0;
    let mut fully_free = 0;
    let mut left_pct_sum = 0i32;
    while taken < pod.gpus {
        let mut best: Option<usize> = None;
        for i in 0..g {
            let left = node.gpu_left[i];
            if taken_mask & (1 << i) == 0
                && left >= pod.milli
                && best.is_none_or(|b| left < node.gpu_left[b])
            {
                best = Some(i);
            }
        }
        let Some(b) = best else { break };
        taken_mask |= 1 << b;
        taken += 1;
        if node.gpu_left[b] == MILLI {
            fully_free += 1;
        }
        left_pct_sum += (node.gpu_left[b] * 100 / MILLI) as i32;
    }
    if fully_free > 0 {
        (50 - fully_free).max(33)
    } else {
        (100 - left_pct_sum / 10).max(50)
    }
}

/// BestFit: `trunc((1 - s) * 100)` with `s = 0.5*(cpu_left - cpu)/128000 + 0.5*(idle - k*m)/8000`.
pub fn score_best_fit(node: &NodeRecord, pod: &PodRecord) -> i32 {
    let cpu_after = node.cpu_left as f64 - pod.cpu as f64;
    let gpu_after = node.idle() as f64 - pod.gpu_demand() as f64;
    let s = 0.5 * cpu_after / MAX_CPU_MILLI as f64 + 0.5 * gpu_after / MAX_GPU_MILLI as f64;
    ((1.0 - s) * 100.0) as i32
}

/// FGD's node fragmentation F(N) in milli-GPU: the free GPU milli that each typical pod could not use,
/// weighted by the typical pod's frequency.
pub fn node_frag(node: &NodeRecord, typical: &[TypicalRecord]) -> f64 {
    let idle = node.idle() as f64;
    let mut f = 0.0;
    for t in typical {
        if t.gpus == 0 || t.milli == 0 || (t.model_mask >> node.model.min(31)) & 1 == 0 {
            // A CPU-only pod uses no GPU; a pod that may not run on this model uses none of its GPUs.
            f += t.freq * idle;
            continue;
        }
        let mut fitting = 0;
        let mut too_small = 0u32;
        for i in 0..node.gpu_count as usize {
            if node.gpu_left[i] >= t.milli {
                fitting += 1;
            } else {
                too_small += node.gpu_left[i];
            }
        }
        if fitting >= t.gpus && node.cpu_left >= t.cpu {
            f += t.freq * too_small as f64;
        } else {
            f += t.freq * idle;
        }
    }
    f
}

/// `1 / (1 + e^-x)`.
#[inline]
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// FGD's score of moving a node from fragmentation `before` to `after`: `trunc(sigmoid((before-after)/1000)*100)`.
#[inline]
pub fn fgd_delta_score(before: f64, after: f64) -> i32 {
    (sigmoid((before - after) / 1000.0) * 100.0) as i32
}

/// FGD: the score of the best placement of `pod` on `node` and the GPUs it uses (bit i = GPU i; 0 for
/// CPU-only). `frag` is F(N) of the node as it is. Sharing pods try every fitting GPU (strictly better wins, so
/// the lowest index on ties); other pods go on their lowest-indexed fitting GPUs.
pub fn score_fgd(
    node: &NodeRecord,
    pod: &PodRecord,
    typical: &[TypicalRecord],
    frag: f64,
) -> (i32, u32) {
    if pod.is_sharing() {
        let mut best = (i32::MIN, 0u32);
        for i in 0..node.gpu_count as usize {
            if node.gpu_left[i] >= pod.milli {
                let after = node_frag(&after_placing(node, pod, 1 << i), typical);
                let s = fgd_delta_score(frag, after);
                if s > best.0 {
                    best = (s, 1 << i);
                }
            }
        }
        best
    } else {
        let gpus = if pod.uses_gpu() {
            lowest_fitting_gpus(node, pod)
        } else {
            0
        };
        let after = node_frag(&after_placing(node, pod, gpus), typical);
        (fgd_delta_score(frag, after), gpus)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Integer twins. shaders/node_score.wgsl has no f64, so it decides on integers; these functions are the same
// integer formulas on the CPU (tests prove each equals its f64 original over the bounded domain, and the GPU
// equals these). Domain: `cpu_left <= MAX_CPU_MILLI`, `gpu_count <= MAX_GPUS`, `gpu_left <= MILLI`
// (see `in_integer_domain`).
// ---------------------------------------------------------------------------------------------------------

/// `100 * (1 - d/2)` with `d = a*b/128000^2 + c*e/8000^2` equals `100 - N / 327_680_000` with
/// `N = a*b + 256*c*e` (128000 = 16 * 8000). `N <= 2 * 128000^2 < 2^35`, so the value lies in [0, 100] and its
/// truncation is `100 - ceil(N / 327_680_000)`.
pub const DOT_DIVISOR: u64 = 327_680_000;

/// True when the node lies in the domain the integer twins (and the GPU kernel) are exact for.
#[inline]
pub fn in_integer_domain(node: &NodeRecord) -> bool {
    node.cpu_left <= MAX_CPU_MILLI
        && node.gpu_count as usize <= MAX_GPUS
        && node.gpu_left.iter().all(|&g| g <= MILLI)
}

/// DotProduct on integers: `(100 - ceil(N / 327_680_000), exact_boundary)` with `N = a*b + 256*c*e`.
/// Off a boundary (N not a positive multiple of the divisor) the exact value is at least 1/327,680,000 * 50 away
/// from an integer, far beyond f64's rounding, so this equals `score_dot_product`. On a boundary the exact value is
/// an integer and f64's rounded steps may land just below it (truncating one lower), depending on a, b, c, e
/// separately: the flag says "decide with the f64 formula" (the GPU kernel reports such nodes and the host
/// scores that pod on the CPU).
pub fn dot_product_int(node: &NodeRecord, pod: &PodRecord) -> (i32, bool) {
    if node.cpu_left < pod.cpu {
        return (0, false);
    }
    let n = u64::from(node.cpu_left) * u64::from(pod.cpu)
        + 256 * u64::from(node.idle()) * u64::from(pod.gpu_demand());
    (
        100 - n.div_ceil(DOT_DIVISOR) as i32,
        n > 0 && n % DOT_DIVISOR == 0,
    )
}

/// DotProduct through the integer formula, deferring to f64 on exact boundaries (see `dot_product_int`).
pub fn score_dot_product_int(node: &NodeRecord, pod: &PodRecord) -> i32 {
    match dot_product_int(node, pod) {
        (_, true) => score_dot_product(node, pod),
        (s, false) => s,
    }
}

/// BestFit's exact-boundary table: `(1 - s) * 100 = 100 - M / 2560` with `M = A + 16 B`, `A = cpu_left - cpu`
/// (0..=128000), `B = idle - k*m` (0..=8000). Off a multiple of 2560 the exact value is >= 1/2560 from an
/// integer and f64 truncates it like the integer formula; on a multiple (M = 2560 q) f64's rounded steps may
/// land just below the integer 100 - q. Bit `B * 101 + q` is set when f64 gives `100 - q - 1` there.
pub struct BestFitTable {
    /// The bits, 32 per word.
    pub words: Vec<u32>,
}

/// Entries of `BestFitTable` (B in 0..=8000, q in 0..=100).
pub const BEST_FIT_TABLE_BITS: usize = (MAX_GPU_MILLI as usize + 1) * 101;

impl BestFitTable {
    fn build() -> BestFitTable {
        let mut words = vec![0u32; BEST_FIT_TABLE_BITS.div_ceil(32)];
        for b in 0..=MAX_GPU_MILLI {
            for q in 0..=100u32 {
                let m = 2560 * q;
                if m < 16 * b || m - 16 * b > MAX_CPU_MILLI {
                    continue;
                }
                let a = m - 16 * b;
                let s = 0.5 * f64::from(a) / MAX_CPU_MILLI as f64
                    + 0.5 * f64::from(b) / MAX_GPU_MILLI as f64;
                if (((1.0 - s) * 100.0) as i32) < (100 - q as i32) {
                    let bit = (b * 101 + q) as usize;
                    words[bit / 32] |= 1 << (bit % 32);
                }
            }
        }
        BestFitTable { words }
    }

    /// The table (built once per process from the f64 formula).
    pub fn get() -> &'static BestFitTable {
        static TABLE: std::sync::OnceLock<BestFitTable> = std::sync::OnceLock::new();
        TABLE.get_or_init(BestFitTable::build)
    }

    #[inline]
    fn lowered(&self, b: u32, q: u32) -> bool {
        let bit = (b * 101 + q) as usize;
        self.words
            .get(bit / 32)
            .is_some_and(|w| (w >> (bit % 32)) & 1 != 0)
    }
}

/// BestFit on integers: `100 - ceil(M / 2560)`, one lower on the table's boundaries; equals `score_best_fit`
/// on the domain (exhaustive test). Outside `0 <= A <= 128000, 0 <= B <= 8000` it defers to f64.
pub fn score_best_fit_int(node: &NodeRecord, pod: &PodRecord) -> i32 {
    let a = i64::from(node.cpu_left) - i64::from(pod.cpu);
    let b = i64::from(node.idle()) - i64::from(pod.gpu_demand());
    if !(0..=i64::from(MAX_CPU_MILLI)).contains(&a) || !(0..=i64::from(MAX_GPU_MILLI)).contains(&b)
    {
        return score_best_fit(node, pod);
    }
    let m = a + 16 * b;
    let q = (m + 2559) / 2560;
    let lowered = m % 2560 == 0 && BestFitTable::get().lowered(b as u32, q as u32);
    (100 - q) as i32 - i32::from(lowered)
}

/// FGD's integer form: `F(N) * total` where `total` is the sum of the typical pods' counts
/// (`freq = count / total`), i.e. `sum over t of count_t * x_t(N)`.
pub fn node_frag_scaled(node: &NodeRecord, typical: &[TypicalRecord]) -> i64 {
    let idle = i64::from(node.idle());
    let mut f = 0i64;
    for t in typical {
        let x = if t.gpus == 0 || t.milli == 0 || (t.model_mask >> node.model.min(31)) & 1 == 0 {
            idle
        } else {
            let mut fitting = 0;
            let mut too_small = 0u32;
            for i in 0..node.gpu_count as usize {
                if node.gpu_left[i] >= t.milli {
                    fitting += 1;
                } else {
                    too_small += node.gpu_left[i];
                }
            }
            if fitting >= t.gpus && node.cpu_left >= t.cpu {
                i64::from(too_small)
            } else {
                idle
            }
        };
        f += i64::from(t.count) * x;
    }
    f
}

/// Thresholds of FGD's integer score: with `D = (F(N) - F(N')) * total` (an integer), the score is the number
/// of `k` in 1..=100 with `D >= t[k]`. `t[k]` is the smallest integer `n` in `[-bound, bound + 1]` with
/// `fgd_delta_score(n / total, 0) >= k` (the same f64 sigmoid as the CPU), `bound = 8000 * total` being the
/// largest `|D|`; `t[0] = i32::MIN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FgdThresholds {
    /// Sum of the typical pods' counts.
    pub total: u32,
    /// `t[k]` for k = 0..=100.
    pub t: [i32; 101],
}

/// Largest `total` (sum of typical counts) for which `|D| <= 8000 * total` fits in i32.
pub const MAX_FGD_TOTAL: u32 = (i32::MAX as u32 - 1) / MAX_GPU_MILLI;

impl FgdThresholds {
    /// Builds the thresholds; `None` when the typical pods are empty, their counts do not reproduce their
    /// frequencies' denominator, or `total > MAX_FGD_TOTAL` (the integer path would overflow i32; use the CPU).
    pub fn new(typical: &[TypicalRecord]) -> Option<FgdThresholds> {
        let total: u64 = typical.iter().map(|t| u64::from(t.count)).sum();
        if total == 0 || total > u64::from(MAX_FGD_TOTAL) {
            return None;
        }
        let total = total as u32;
        let bound = i64::from(MAX_GPU_MILLI) * i64::from(total);
        let f = |n: i64| fgd_delta_score(n as f64 / f64::from(total), 0.0);
        let mut t = [i32::MIN; 101];
        for (k, slot) in t.iter_mut().enumerate().skip(1) {
            let k = k as i32;
            // Smallest n in [-bound, bound + 1] with f(n) >= k (bound + 1 = never reached).
            let (mut lo, mut hi) = (-bound, bound + 1);
            if f(lo) >= k {
                hi = lo;
            }
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if f(mid) >= k {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            // Verify against the f64 sigmoid: hi reaches k, hi - 1 does not.
            if hi <= bound && (f(hi) < k || (hi > -bound && f(hi - 1) >= k)) {
                return None;
            }
            *slot = hi as i32;
        }
        Some(FgdThresholds { total, t })
    }

    /// FGD's score for `D = (F(N) - F(N')) * total`.
    #[inline]
    pub fn score(&self, d: i64) -> i32 {
        self.t[1..].iter().filter(|&&t| d >= i64::from(t)).count() as i32
    }
}

/// `score_fgd` on integers: same GPU choice rule, `F` scaled by `total`, scores through `thr`.
/// `frag_scaled` is `node_frag_scaled(node, typical)`.
pub fn score_fgd_int(
    node: &NodeRecord,
    pod: &PodRecord,
    typical: &[TypicalRecord],
    thr: &FgdThresholds,
    frag_scaled: i64,
) -> (i32, u32) {
    if pod.is_sharing() {
        let mut best = (i32::MIN, 0u32);
        for i in 0..node.gpu_count as usize {
            if node.gpu_left[i] >= pod.milli {
                let after = node_frag_scaled(&after_placing(node, pod, 1 << i), typical);
                let s = thr.score(frag_scaled - after);
                if s > best.0 {
                    best = (s, 1 << i);
                }
            }
        }
        best
    } else {
        let gpus = if pod.uses_gpu() {
            lowest_fitting_gpus(node, pod)
        } else {
            0
        };
        let after = node_frag_scaled(&after_placing(node, pod, gpus), typical);
        (thr.score(frag_scaled - after), gpus)
    }
}

/// Score of a feasible node under a scored `policy` through the integer twins (what the GPU computes).
#[inline]
pub fn score_int(
    policy: u32,
    node: &NodeRecord,
    pod: &PodRecord,
    typical: &[TypicalRecord],
    thr: Option<&FgdThresholds>,
) -> (i32, u32) {
    match policy {
        POLICY_DOT_PRODUCT => (score_dot_product_int(node, pod), 0),
        POLICY_GPU_CLUSTERING => (score_gpu_clustering(node, pod), 0),
        POLICY_GPU_PACKING => (score_gpu_packing(node, pod), 0),
        POLICY_BEST_FIT => (score_best_fit_int(node, pod), 0),
        _ => match thr {
            Some(thr) => score_fgd_int(node, pod, typical, thr, node_frag_scaled(node, typical)),
            None => (0, 0),
        },
    }
}

/// The integer CPU twin of the GPU kernel: a plain loop over nodes with `score_int` (no cache). Used to prove
/// the integer formulation reproduces `CpuNodeScorer` and as the GPU's reference.
#[derive(Debug, Default)]
pub struct IntCpuNodeScorer {
    /// Thresholds and the typical pods (cpu, gpus, milli, model_mask, count) they were built for.
    thr: Option<(Vec<TypicalKey>, FgdThresholds)>,
}

/// A typical pod's fields the thresholds and F depend on: (cpu, gpus, milli, model_mask, count).
type TypicalKey = (u32, u32, u32, u32, u32);

impl IntCpuNodeScorer {
    /// A scorer without cached thresholds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Thresholds for `typical` (cached while the typical pods stay the same).
    fn thresholds(&mut self, typical: &[TypicalRecord]) -> Option<&FgdThresholds> {
        let key: Vec<_> = typical
            .iter()
            .map(|t| (t.cpu, t.gpus, t.milli, t.model_mask, t.count))
            .collect();
        if self.thr.as_ref().is_none_or(|(k, _)| *k != key) {
            self.thr = FgdThresholds::new(typical).map(|t| (key, t));
        }
        self.thr.as_ref().map(|(_, t)| t)
    }
}

impl NodeScoreBackend for IntCpuNodeScorer {
    fn name(&self) -> &'static str {
        "cpu-int"
    }

    fn reset(&mut self) {}

    fn best_node(
        &mut self,
        policy: u32,
        pod: &PodRecord,
        nodes: &[NodeRecord],
        fgd: &FgdInputs<'_>,
    ) -> ScoreWinner {
        let thr = if policy == POLICY_FGD {
            self.thresholds(fgd.typical).cloned()
        } else {
            None
        };
        let mut best = ScoreWinner::NONE;
        for (i, node) in nodes.iter().enumerate() {
            if !feasible(node, pod) {
                continue;
            }
            let (s, _) = score_int(policy, node, pod, fgd.typical, thr.as_ref());
            best = best.better(ScoreWinner {
                score: s,
                rank: node.rank,
                node: i as u32,
            });
        }
        best
    }
}

/// Score of a feasible node under a scored `policy` (one of the `POLICY_*` constants).
#[inline]
pub fn score(
    policy: u32,
    node: &NodeRecord,
    pod: &PodRecord,
    fgd: &FgdInputs<'_>,
    node_index: usize,
) -> i32 {
    match policy {
        POLICY_DOT_PRODUCT => score_dot_product(node, pod),
        POLICY_GPU_CLUSTERING => score_gpu_clustering(node, pod),
        POLICY_GPU_PACKING => score_gpu_packing(node, pod),
        POLICY_BEST_FIT => score_best_fit(node, pod),
        _ => score_fgd(node, pod, fgd.typical, fgd.node_frag[node_index]).0,
    }
}

/// FGD's extra inputs: the typical pods and F(N) of every node (kept up to date by the caller).
#[derive(Clone, Copy, Debug, Default)]
pub struct FgdInputs<'a> {
    /// Typical pods with frequencies.
    pub typical: &'a [TypicalRecord],
    /// F(N) per node, same order as the node slice.
    pub node_frag: &'a [f64],
}

/// The seam: scores one pod against every node and returns the winner.
pub trait NodeScoreBackend: Send {
    /// Short name for reports ("cpu").
    fn name(&self) -> &'static str;
    /// Forgets cached state; call before a new experiment (node versions restart).
    fn reset(&mut self);
    /// Best feasible node for `pod` under `policy` (highest score, ties to the smallest rank), or
    /// `ScoreWinner::NONE`. `fgd.node_frag` must have one entry per node when `policy == POLICY_FGD`.
    fn best_node(
        &mut self,
        policy: u32,
        pod: &PodRecord,
        nodes: &[NodeRecord],
        fgd: &FgdInputs<'_>,
    ) -> ScoreWinner;
}

/// The CPU twin: a plain loop over nodes, with a per-(shape, node) score cache keyed by the node's version.
#[derive(Debug, Default)]
pub struct CpuNodeScorer {
    /// `cache[shape * nodes + node] = (version, score)`; version 0 never matches (nodes start at 1).
    cache: Vec<(u32, i32)>,
    /// Node count the cache is laid out for.
    nodes: usize,
    /// Policy the cached scores belong to.
    policy: u32,
}

impl CpuNodeScorer {
    /// A scorer with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

impl NodeScoreBackend for CpuNodeScorer {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn reset(&mut self) {
        self.cache.clear();
        self.nodes = 0;
    }

    fn best_node(
        &mut self,
        policy: u32,
        pod: &PodRecord,
        nodes: &[NodeRecord],
        fgd: &FgdInputs<'_>,
    ) -> ScoreWinner {
        if self.nodes != nodes.len() || self.policy != policy {
            self.cache.clear();
            self.nodes = nodes.len();
            self.policy = policy;
        }
        let base = pod.shape as usize * nodes.len();
        if self.cache.len() < base + nodes.len() {
            self.cache.resize(base + nodes.len(), (0, 0));
        }
        let cache = &mut self.cache[base..base + nodes.len()];
        let mut best = ScoreWinner::NONE;
        for (i, node) in nodes.iter().enumerate() {
            if !feasible(node, pod) {
                continue;
            }
            // Scores ignore memory, and `shape` holds every other pod field a score reads, so an unchanged
            // node (same version) scores the same as for the last pod of this shape.
            let entry = &mut cache[i];
            let s = if entry.0 == node.version {
                entry.1
            } else {
                let s = score(policy, node, pod, fgd, i);
                *entry = (node.version, s);
                s
            };
            best = best.better(ScoreWinner {
                score: s,
                rank: node.rank,
                node: i as u32,
            });
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cpu: u32, gpus: &[u32], rank: u32) -> NodeRecord {
        let mut n = NodeRecord {
            cpu_left: cpu,
            mem_left: 1 << 20,
            model: 0,
            gpu_count: gpus.len() as u32,
            rank,
            version: 1,
            ..Default::default()
        };
        n.gpu_left[..gpus.len()].copy_from_slice(gpus);
        n
    }

    fn pod(cpu: u32, gpus: u32, milli: u32) -> PodRecord {
        let tag = if gpus == 0 || milli == 0 {
            0
        } else if gpus == 1 && milli < MILLI {
            TAG_SHARE
        } else {
            1 << gpus
        };
        PodRecord {
            cpu,
            mem: 0,
            gpus,
            milli,
            model_mask: ANY_MODEL,
            tag,
            shape: 0,
            _pad: 0,
        }
    }

    #[test]
    fn feasibility_cases() {
        let cases: &[(&str, NodeRecord, PodRecord, bool)] = &[
            ("cpu short", node(1000, &[1000], 0), pod(2000, 0, 0), false),
            (
                "cpu only anywhere",
                node(1000, &[], 0),
                pod(1000, 0, 0),
                true,
            ),
            (
                "gpu pod, gpu-less node",
                node(8000, &[], 0),
                pod(1000, 1, 500),
                false,
            ),
            (
                "share fits one gpu",
                node(8000, &[400, 600], 0),
                pod(1000, 1, 500),
                true,
            ),
            (
                "share fits none",
                node(8000, &[400, 450], 0),
                pod(1000, 1, 500),
                false,
            ),
            (
                "2 whole, 1 free",
                node(8000, &[1000, 999], 0),
                pod(1000, 2, 1000),
                false,
            ),
            (
                "2 whole, 2 free",
                node(8000, &[1000, 1000, 0], 0),
                pod(1000, 2, 1000),
                true,
            ),
        ];
        for (name, n, p, want) in cases {
            assert_eq!(feasible(n, p), *want, "{name}");
        }
        let mut p = pod(1000, 1, 500);
        p.model_mask = 0b10;
        assert!(
            !feasible(&node(8000, &[1000], 0), &p),
            "model 0 excluded by mask"
        );
    }

    #[test]
    fn dot_product_prefers_the_node_with_less_free_capacity() {
        let p = pod(16000, 1, 1000);
        let big = node(128_000, &[1000; 8], 0);
        let small = node(32_000, &[1000, 1000], 1);
        // d(big) = 1*0.125 + 1*0.125 = 0.25 -> 87; d(small) = 0.25*0.125 + 0.25*0.125 = 0.0625 -> 96.
        assert_eq!(score_dot_product(&big, &p), 87);
        assert_eq!(score_dot_product(&small, &p), 96);
    }

    #[test]
    fn gpu_clustering_tags() {
        let p = pod(1000, 1, 500);
        let mut n = node(8000, &[1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000], 0);
        assert_eq!(score_gpu_clustering(&n, &p), 25, "empty node: base 0 + 25");
        n.gpu_left[0] = 500;
        n.tags = TAG_SHARE;
        // idle 7500: base = 25*500/8000 = 1.
        assert_eq!(score_gpu_clustering(&n, &p), 76, "same tag only");
        n.tags = TAG_SHARE | (1 << 2);
        assert_eq!(score_gpu_clustering(&n, &p), 51, "same tag among others");
        n.tags = 1 << 2;
        assert_eq!(score_gpu_clustering(&n, &p), 1, "other tags only");
        assert_eq!(score_gpu_clustering(&n, &pod(1000, 0, 0)), 0, "cpu-only");
    }

    #[test]
    fn gpu_packing_orders_shared_used_idle() {
        let p = pod(1000, 1, 300);
        let shared = node(8000, &[1000, 400], 0);
        let used = node(8000, &[1000, 200], 0);
        let idle2 = node(8000, &[1000, 1000], 0);
        let idle8 = node(8000, &[1000; 8], 0);
        assert_eq!(score_gpu_packing(&shared, &p), 96, "100 - (40)/10");
        assert_eq!(
            score_gpu_packing(&used, &p),
            49,
            "one fresh GPU on a used node"
        );
        assert_eq!(score_gpu_packing(&idle2, &p), 31, "max(33-2, 2)");
        assert_eq!(score_gpu_packing(&idle8, &p), 25, "max(33-8, 8)");
        assert_eq!(score_gpu_packing(&shared, &pod(1000, 0, 0)), 0, "cpu-only");
    }

    #[test]
    fn best_fit_prefers_tight_nodes() {
        let p = pod(8000, 1, 1000);
        let tight = node(8000, &[1000], 0);
        let loose = node(128_000, &[1000; 8], 0);
        assert_eq!(score_best_fit(&tight, &p), 100);
        // s = 0.5*120000/128000 + 0.5*7000/8000 = 0.46875 + 0.4375 = 0.90625 -> 9.
        assert_eq!(score_best_fit(&loose, &p), 9);
    }

    #[test]
    fn node_frag_counts_unusable_leftovers() {
        let typical = [
            TypicalRecord {
                cpu: 1000,
                gpus: 1,
                milli: 500,
                model_mask: ANY_MODEL,
                freq: 0.5,
                count: 2,
            },
            TypicalRecord {
                cpu: 1000,
                gpus: 0,
                milli: 0,
                model_mask: ANY_MODEL,
                freq: 0.25,
                count: 1,
            },
            TypicalRecord {
                cpu: 99_000,
                gpus: 1,
                milli: 100,
                model_mask: ANY_MODEL,
                freq: 0.25,
                count: 1,
            },
        ];
        let n = node(8000, &[300, 1000], 0);
        // t0: 300 too small -> 0.5*300; t1: cpu-only -> 0.25*1300; t2: cpu lacking -> 0.25*1300.
        assert_eq!(node_frag(&n, &typical), 150.0 + 325.0 + 325.0);
    }

    #[test]
    fn fgd_picks_the_gpu_that_fragments_least() {
        let typical = [TypicalRecord {
            cpu: 0,
            gpus: 1,
            milli: 500,
            model_mask: ANY_MODEL,
            freq: 1.0,
            count: 1,
        }];
        let n = node(8000, &[1000, 700], 0);
        let f = node_frag(&n, &typical);
        // 400 on GPU 0 leaves 600+700 (both fit 500): F' = 0; on GPU 1 leaves 300: F' = 300.
        let (s, gpus) = score_fgd(&n, &pod(0, 1, 400), &typical, f);
        assert_eq!(gpus, 0b01);
        assert_eq!(s, fgd_delta_score(f, 0.0));
        assert_eq!(fgd_delta_score(0.0, 0.0), 50);
    }

    #[test]
    fn cpu_scorer_breaks_ties_by_rank_and_uses_cache_safely() {
        let p = pod(1000, 1, 1000);
        let mut nodes = vec![
            node(8000, &[1000], 5),
            node(8000, &[1000], 2),
            node(8000, &[0], 0),
        ];
        let mut s = CpuNodeScorer::new();
        let fgd = FgdInputs::default();
        let w = s.best_node(POLICY_BEST_FIT, &p, &nodes, &fgd);
        assert_eq!((w.node, w.rank), (1, 2), "equal scores: smallest rank");
        nodes[1].gpu_left[0] = 0;
        nodes[1].version += 1;
        let w = s.best_node(POLICY_BEST_FIT, &p, &nodes, &fgd);
        assert_eq!(w.node, 0, "changed node re-checked");
        nodes[0].gpu_left[0] = 0;
        nodes[0].version += 1;
        assert!(!s.best_node(POLICY_BEST_FIT, &p, &nodes, &fgd).is_feasible());
    }
}
