//! Measured operator times from Microsoft Vidur's profiling CSVs (MIT licence; the bundled copies, their
//! source commit and what their columns mean are in workloads/profiles/vidur/README.md), so that a serving
//! cost model can use measured times instead of analytic ones.
//!
//! - [`ComputeProfile`], from an `mlp.csv`: per tensor-parallel size and batch size (`num_tokens`), the
//!   median time of each non-attention operator of one layer ([`ProfileOp`]) on one GPU of the group.
//! - [`CollectiveProfile`], from an `all_reduce.csv`: per worker count and message size in bytes, the median
//!   time of one all-reduce.
//! - [`bundled`]: the profiles compiled into the binary, parsed once.
//!
//! Times are the files' **medians** (Vidur's own predictor fits the medians too), converted from the files'
//! milliseconds to microseconds. Rows that repeat a key (the H100 files repeat some) count once, with the
//! mean of their medians, summed in file order (deterministic).
//!
//! A lookup between two profiled sizes interpolates linearly; below the first profiled size it is the first
//! size's time (a kernel's fixed latency does not shrink with fewer tokens); above the last it extrapolates
//! linearly, never below the last size's time. The extrapolation follows the secant from the profiled size
//! nearest below half the last one (2,048 tokens or 32 MiB in the bundled files) to the last one, not the
//! secant of the last two rows: neighbouring medians differ by measurement noise of the order of their
//! difference (in the bundled files that secant is negative for most all-reduce curves and for the 4,096-token
//! MLP GEMMs at TP 1), while the wide secant is within a few percent of time proportional to size, as it
//! should be in the compute- and bandwidth-bound regime.
//!
//! Parsing is pure: callers pass the text and a file label. Columns are found by header name, in any order;
//! other columns are ignored. Errors name the file, the data row (1-based, header excluded; row 0 is the
//! header) and the column, and say what is allowed. No input panics.

use crate::error::{InputError, Location};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Number of [`ProfileOp`]s.
const N_OPS: usize = 10;

/// A non-attention operator of one transformer layer (plus the embedding) as Vidur's `mlp.csv` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProfileOp {
    /// Token embedding lookup (once per iteration, not per layer).
    Emb,
    /// RMSNorm before attention.
    InputLayernorm,
    /// QKV projection.
    AttnPreProj,
    /// Rotary position embedding.
    AttnRope,
    /// Attention output projection.
    AttnPostProj,
    /// RMSNorm before the MLP.
    PostAttentionLayernorm,
    /// Gated MLP up and gate projection.
    MlpUpProj,
    /// MLP activation (SiLU and gating).
    MlpAct,
    /// MLP down projection.
    MlpDownProj,
    /// Residual add.
    Add,
}

impl ProfileOp {
    /// Every operator, in the order of the file's columns.
    pub const ALL: [ProfileOp; N_OPS] = [
        ProfileOp::Emb,
        ProfileOp::InputLayernorm,
        ProfileOp::AttnPreProj,
        ProfileOp::AttnRope,
        ProfileOp::AttnPostProj,
        ProfileOp::PostAttentionLayernorm,
        ProfileOp::MlpUpProj,
        ProfileOp::MlpAct,
        ProfileOp::MlpDownProj,
        ProfileOp::Add,
    ];

    /// The stem of the operator's CSV columns (`attn_pre_proj` in `time_stats.attn_pre_proj.median`).
    pub fn column(self) -> &'static str {
        match self {
            ProfileOp::Emb => "emb",
            ProfileOp::InputLayernorm => "input_layernorm",
            ProfileOp::AttnPreProj => "attn_pre_proj",
            ProfileOp::AttnRope => "attn_rope",
            ProfileOp::AttnPostProj => "attn_post_proj",
            ProfileOp::PostAttentionLayernorm => "post_attention_layernorm",
            ProfileOp::MlpUpProj => "mlp_up_proj",
            ProfileOp::MlpAct => "mlp_act",
            ProfileOp::MlpDownProj => "mlp_down_proj",
            ProfileOp::Add => "add",
        }
    }

    /// The column this module reads: the median, in milliseconds.
    fn median_column(self) -> String {
        format!("time_stats.{}.median", self.column())
    }

    /// Position in [`ProfileOp::ALL`].
    fn index(self) -> usize {
        self as usize
    }
}

/// The profiled batch sizes of one tensor-parallel size and each operator's median there.
#[derive(Debug, Clone, PartialEq)]
struct TpRows {
    /// `num_tokens`, ascending, distinct.
    tokens: Vec<u64>,
    /// Per operator (index of [`ProfileOp::ALL`]), the median at each of `tokens`, microseconds; empty for
    /// an operator the file has no column for.
    us: [Vec<f64>; N_OPS],
}

/// Per tensor-parallel size, the median time of each operator at each profiled batch size (a Vidur
/// `mlp.csv`).
///
/// Required columns: `num_tokens`, `num_tensor_parallel_workers` and at least one
/// `time_stats.<op>.median` ([`ProfileOp::column`]); an operator without a column is absent (Vidur's phi-2
/// profile has no `post_attention_layernorm`): [`ComputeProfile::op_us`] gives `None` for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeProfile {
    /// Which operators the file has a median column for.
    present: [bool; N_OPS],
    /// Tensor-parallel size -> its rows.
    by_tp: BTreeMap<u32, TpRows>,
}

impl ComputeProfile {
    /// Parses a Vidur `mlp.csv`. Errors: a missing required column, a row with another number of fields than
    /// the header, a time that is empty, not a number, negative or not finite, a `num_tokens` or
    /// `num_tensor_parallel_workers` that is not a whole number of 1 or more; an empty file or one without
    /// data rows.
    pub fn parse(text: &str, file: &str) -> Result<ComputeProfile, InputError> {
        const WHAT: &str =
            "a Vidur mlp.csv with columns num_tokens, num_tensor_parallel_workers and \
                            time_stats.<op>.median";
        let table = Table::open(text, file, WHAT)?;
        let tokens_k = table.required("num_tokens")?;
        let tp_k = table.required("num_tensor_parallel_workers")?;
        let mut op_k = [None; N_OPS];
        for op in ProfileOp::ALL {
            op_k[op.index()] = table.optional(&op.median_column())?;
        }
        if op_k.iter().all(Option::is_none) {
            return Err(InputError::new(
                file,
                Location::Row(0, None),
                format!(
                    "the header has no operator column; expected at least one of {}",
                    ProfileOp::ALL
                        .iter()
                        .map(|op| op.median_column())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        // (tp, tokens) -> (sum of medians, rows), in file order.
        let mut acc: BTreeMap<(u32, u64), ([f64; N_OPS], u32)> = BTreeMap::new();
        table.rows(|r| {
            let tp = r.whole(
                tp_k,
                1,
                u64::from(u32::MAX),
                "a tensor-parallel size (whole number)",
            )? as u32;
            let tokens = r.whole(tokens_k, 1, u64::MAX, "a number of tokens (whole number)")?;
            let mut us = [0.0; N_OPS];
            for (v, k) in us.iter_mut().zip(op_k) {
                if let Some(k) = k {
                    *v = r.time_us(k)?;
                }
            }
            let e = acc.entry((tp, tokens)).or_insert(([0.0; N_OPS], 0));
            for (s, v) in e.0.iter_mut().zip(us) {
                *s += v;
            }
            e.1 = e.1.saturating_add(1);
            Ok(())
        })?;
        let present = op_k.map(|k| k.is_some());
        let mut by_tp: BTreeMap<u32, TpRows> = BTreeMap::new();
        for ((tp, tokens), (sum, n)) in acc {
            let rows = by_tp.entry(tp).or_insert_with(|| TpRows {
                tokens: Vec::new(),
                us: Default::default(),
            });
            rows.tokens.push(tokens);
            for (i, s) in sum.iter().enumerate() {
                if present[i] {
                    rows.us[i].push(s / f64::from(n));
                }
            }
        }
        Ok(ComputeProfile { present, by_tp })
    }

    /// The median time of `op` on one GPU of a `tp`-way group for a batch of `tokens` tokens, microseconds:
    /// the profiled value at a profiled size, linear interpolation between two, the first size's value below
    /// the first, linear extrapolation above the last (never below the last's value; see the module doc).
    /// `None` when `tp` is not profiled, `tokens` is 0 or the file has no column for `op`.
    pub fn op_us(&self, op: ProfileOp, tokens: u64, tp: u32) -> Option<f64> {
        if tokens == 0 || !self.present[op.index()] {
            return None;
        }
        let rows = self.by_tp.get(&tp)?;
        interpolate(&rows.tokens, &rows.us[op.index()], tokens)
    }

    /// Whether the file has a column for `op`.
    pub fn has_op(&self, op: ProfileOp) -> bool {
        self.present[op.index()]
    }

    /// The profiled tensor-parallel sizes, ascending.
    pub fn tps(&self) -> Vec<u32> {
        self.by_tp.keys().copied().collect()
    }

    /// The largest profiled `num_tokens` of a tensor-parallel size (beyond it times are extrapolated);
    /// `None` when `tp` is not profiled.
    pub fn max_tokens(&self, tp: u32) -> Option<u64> {
        self.by_tp.get(&tp)?.tokens.last().copied()
    }
}

/// Per worker count, the median time of one all-reduce at each profiled message size (a Vidur
/// `all_reduce.csv`).
///
/// Required columns: `num_workers`, `size` (bytes) and `time_stats.all_reduce.median`. Only **rank 0** rows
/// are used (Vidur's files hold only those); rows of other ranks are checked like the rest and skipped; a
/// file without a `rank` column counts every row as rank 0. When a `collective` column is present every row
/// must say `all_reduce`. The first, unnamed column (the pandas index) and any other column are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectiveProfile {
    /// Worker count -> (sizes in bytes, ascending and distinct; the median at each, microseconds).
    by_workers: BTreeMap<u32, (Vec<u64>, Vec<f64>)>,
}

impl CollectiveProfile {
    /// Parses a Vidur `all_reduce.csv`. Errors: a missing required column, a row with another number of
    /// fields than the header, a time that is empty, not a number, negative or not finite, a `num_workers`
    /// or `size` that is not a whole number of 1 or more, a `rank` that is not a whole number, a
    /// `collective` other than `all_reduce`; an empty file, one without data rows or without rank-0 rows.
    pub fn parse(text: &str, file: &str) -> Result<CollectiveProfile, InputError> {
        const WHAT: &str = "a Vidur all_reduce.csv with columns num_workers, size and \
                            time_stats.all_reduce.median";
        let table = Table::open(text, file, WHAT)?;
        let workers_k = table.required("num_workers")?;
        let size_k = table.required("size")?;
        let time_k = table.required("time_stats.all_reduce.median")?;
        let rank_k = table.optional("rank")?;
        let collective_k = table.optional("collective")?;
        // (workers, size) -> (sum of medians, rows), in file order.
        let mut acc: BTreeMap<(u32, u64), (f64, u32)> = BTreeMap::new();
        table.rows(|r| {
            let workers = r.whole(
                workers_k,
                1,
                u64::from(u32::MAX),
                "a number of workers (whole number)",
            )? as u32;
            let size = r.whole(size_k, 1, u64::MAX, "a size in bytes (whole number)")?;
            let us = r.time_us(time_k)?;
            let rank = match rank_k {
                Some(k) => r.whole(k, 0, u64::MAX, "a rank (whole number)")?,
                None => 0,
            };
            if let Some(k) = collective_k {
                let c = r.cell(k);
                if c != "all_reduce" {
                    return Err(r.err(k, format!("`{c}`: allowed: all_reduce")));
                }
            }
            if rank == 0 {
                let e = acc.entry((workers, size)).or_insert((0.0, 0));
                e.0 += us;
                e.1 = e.1.saturating_add(1);
            }
            Ok(())
        })?;
        if acc.is_empty() {
            return Err(InputError::new(
                file,
                Location::File,
                "has no rank-0 rows; the all-reduce times are read from rank 0",
            ));
        }
        let mut by_workers: BTreeMap<u32, (Vec<u64>, Vec<f64>)> = BTreeMap::new();
        for ((workers, size), (sum, n)) in acc {
            let (sizes, us) = by_workers.entry(workers).or_default();
            sizes.push(size);
            us.push(sum / f64::from(n));
        }
        Ok(CollectiveProfile { by_workers })
    }

    /// The median time of one all-reduce of `bytes` bytes over `workers` GPUs, microseconds, by the rule of
    /// [`ComputeProfile::op_us`] in bytes. `None` when `workers` is not profiled or `bytes` is 0.
    pub fn all_reduce_us(&self, bytes: u64, workers: u32) -> Option<f64> {
        if bytes == 0 {
            return None;
        }
        let (sizes, us) = self.by_workers.get(&workers)?;
        interpolate(sizes, us, bytes)
    }

    /// The profiled worker counts, ascending.
    pub fn workers(&self) -> Vec<u32> {
        self.by_workers.keys().copied().collect()
    }
}

/// Vidur's H100 `mlp.csv` for Llama-2-70B (meta-llama/Llama-2-70b-hf): TP 1, 2, 4, 8; 1 to 4,096 tokens.
pub const LLAMA2_70B_H100_MLP: &str =
    include_str!("../../workloads/profiles/vidur/compute/h100/llama-2-70b/mlp.csv");

/// Vidur's all-reduce profile of an 8-GPU H100 DGX node (NVSwitch, as in a P5 node): 2, 4, 8 workers;
/// 2 KiB to 64 MiB.
pub const H100_DGX_ALL_REDUCE: &str =
    include_str!("../../workloads/profiles/vidur/network/h100_dgx/all_reduce.csv");

/// Vidur's all-reduce profile of a 4-GPU H100 node linked pairwise by NVLink: 2, 4 workers; 2 KiB to
/// 64 MiB.
pub const H100_PAIRWISE_NVLINK_ALL_REDUCE: &str =
    include_str!("../../workloads/profiles/vidur/network/h100_pairwise_nvlink/all_reduce.csv");

/// The file labels of the bundled profiles, for error messages.
const LLAMA2_70B_H100_MLP_FILE: &str = "workloads/profiles/vidur/compute/h100/llama-2-70b/mlp.csv";
const H100_DGX_ALL_REDUCE_FILE: &str = "workloads/profiles/vidur/network/h100_dgx/all_reduce.csv";

/// A bundled profile: one model's operator times on one GPU and that GPU's all-reduce times.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundled {
    /// Operator times of the model, per tensor-parallel size.
    pub compute: ComputeProfile,
    /// All-reduce times of the GPU's node, per worker count.
    pub all_reduce: CollectiveProfile,
    /// Where the times come from, for reports.
    pub source: &'static str,
}

/// The bundled profile of a built-in model on a catalog GPU, parsed on first use: `("llama-2-70b", "h100")`
/// with the H100 DGX (NVSwitch) all-reduce profile. `None` for any other pair.
pub fn bundled(model: &str, gpu: &str) -> Option<&'static Bundled> {
    static LLAMA2_70B_H100: OnceLock<Option<Bundled>> = OnceLock::new();
    match (model, gpu) {
        ("llama-2-70b", "h100") => LLAMA2_70B_H100
            .get_or_init(|| {
                Some(Bundled {
                    compute: ComputeProfile::parse(LLAMA2_70B_H100_MLP, LLAMA2_70B_H100_MLP_FILE)
                        .ok()?,
                    all_reduce: CollectiveProfile::parse(
                        H100_DGX_ALL_REDUCE,
                        H100_DGX_ALL_REDUCE_FILE,
                    )
                    .ok()?,
                    source: "vidur h100 llama-2-70b (mlp.csv, h100_dgx all_reduce.csv)",
                })
            })
            .as_ref(),
        _ => None,
    }
}

/// The value at `x` of the curve through `(xs[i], ys[i])` (`xs` ascending and distinct): exact at a point,
/// linear between two, the first value below the first, the wide-secant extrapolation of the module doc
/// above the last (never below the last value). `None` for an empty curve.
fn interpolate(xs: &[u64], ys: &[f64], x: u64) -> Option<f64> {
    let n = xs.len();
    if n == 0 || ys.len() != n {
        return None;
    }
    match xs.binary_search(&x) {
        Ok(i) => Some(ys[i]),
        Err(0) => Some(ys[0]),
        Err(i) if i < n => {
            let (x0, x1) = (xs[i - 1] as f64, xs[i] as f64);
            Some(ys[i - 1] + (ys[i] - ys[i - 1]) * ((x as f64 - x0) / (x1 - x0)))
        }
        Err(_) => {
            let last = n - 1;
            if last == 0 {
                return Some(ys[0]);
            }
            // The profiled point nearest at or below half the last size (always before the last, since
            // half < xs[last]); when every earlier point is above half, the one before the last.
            let a = match xs.binary_search(&(xs[last] / 2)) {
                Ok(k) => k,
                Err(0) => last - 1,
                Err(k) => k - 1,
            };
            let slope = (ys[last] - ys[a]) / (xs[last] - xs[a]) as f64;
            let v = ys[last] + slope * (x - xs[last]) as f64;
            Some(v.max(ys[last]))
        }
    }
}

/// A CSV text: its header and a reader positioned at the first data row.
struct Table<'a> {
    file: &'a str,
    header: Vec<String>,
    reader: csv::Reader<&'a [u8]>,
    /// What the file should be, for messages.
    what: &'static str,
}

impl<'a> Table<'a> {
    /// Reads the header; an error when the text has none.
    fn open(text: &'a str, file: &'a str, what: &'static str) -> Result<Table<'a>, InputError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut rec = csv::StringRecord::new();
        let more = reader.read_record(&mut rec).map_err(|e| {
            InputError::new(
                file,
                Location::Row(0, None),
                format!("cannot read the header: {e}"),
            )
        })?;
        if !more {
            return Err(InputError::new(
                file,
                Location::File,
                format!("is empty; expected {what}"),
            ));
        }
        let header = rec
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = if i == 0 {
                    h.trim_start_matches('\u{feff}')
                } else {
                    h
                };
                h.trim().to_string()
            })
            .collect();
        Ok(Table {
            file,
            header,
            reader,
            what,
        })
    }

    /// The index of a column, `None` when the header lacks it; an error when it appears more than once.
    fn optional(&self, name: &str) -> Result<Option<usize>, InputError> {
        let mut found = self
            .header
            .iter()
            .enumerate()
            .filter(|(_, h)| *h == name)
            .map(|(i, _)| i);
        let first = found.next();
        if found.next().is_some() {
            return Err(InputError::row(
                self.file,
                0,
                Some(name),
                "appears more than once in the header; each column may appear once",
            ));
        }
        Ok(first)
    }

    /// The index of a required column.
    fn required(&self, name: &str) -> Result<usize, InputError> {
        self.optional(name)?.ok_or_else(|| {
            InputError::row(
                self.file,
                0,
                Some(name),
                format!(
                    "the header has no such column; expected {}; found: {}",
                    self.what,
                    self.header.join(", ")
                ),
            )
        })
    }

    /// Calls `each` on every data row; an error when there is none or a row's field count differs from
    /// the header's.
    fn rows(
        mut self,
        mut each: impl FnMut(&Row<'_>) -> Result<(), InputError>,
    ) -> Result<(), InputError> {
        let mut rec = csv::StringRecord::new();
        let mut n = 0usize;
        loop {
            let more = self
                .reader
                .read_record(&mut rec)
                .map_err(|e| InputError::row(self.file, n + 1, None, format!("not CSV: {e}")))?;
            if !more {
                break;
            }
            n += 1;
            if rec.len() != self.header.len() {
                return Err(InputError::row(
                    self.file,
                    n,
                    None,
                    format!(
                        "has {} fields, the header {}; every row needs one per column",
                        rec.len(),
                        self.header.len()
                    ),
                ));
            }
            each(&Row {
                file: self.file,
                n,
                rec: &rec,
                header: &self.header,
            })?;
        }
        if n == 0 {
            return Err(InputError::new(
                self.file,
                Location::File,
                format!("has a header but no data rows; expected {}", self.what),
            ));
        }
        Ok(())
    }
}

/// One data row of a [`Table`] (as many fields as the header).
struct Row<'r> {
    file: &'r str,
    /// 1-based data row.
    n: usize,
    rec: &'r csv::StringRecord,
    header: &'r [String],
}

impl Row<'_> {
    /// The trimmed field of column `k`.
    fn cell(&self, k: usize) -> &str {
        self.rec.get(k).unwrap_or("").trim()
    }

    /// An error at column `k` of this row.
    fn err(&self, k: usize, msg: String) -> InputError {
        let col = self.header.get(k).map(String::as_str);
        InputError::row(self.file, self.n, col, msg)
    }

    /// A time in milliseconds (finite, 0 or more), as microseconds.
    fn time_us(&self, k: usize) -> Result<f64, InputError> {
        const ALLOWED: &str = "allowed: a time in milliseconds, a finite number of 0 or more";
        let s = self.cell(k);
        if s.is_empty() {
            return Err(self.err(k, format!("is empty; {ALLOWED}")));
        }
        let v: f64 = s
            .parse()
            .map_err(|_| self.err(k, format!("`{s}` is not a number; {ALLOWED}")))?;
        if !v.is_finite() || v < 0.0 {
            return Err(self.err(k, format!("`{s}`: {ALLOWED}")));
        }
        Ok(v * 1000.0)
    }

    /// A whole number in `min..=max` (`4096` or `4096.0`, as pandas may write it).
    fn whole(&self, k: usize, min: u64, max: u64, what: &str) -> Result<u64, InputError> {
        let s = self.cell(k);
        let v = s.parse::<u64>().ok().or_else(|| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && v.fract() == 0.0 && *v >= 0.0 && *v <= 2f64.powi(53))
                .map(|v| v as u64)
        });
        match v {
            Some(v) if (min..=max).contains(&v) => Ok(v),
            _ => {
                let range = if max == u64::MAX {
                    format!("{min} or more")
                } else {
                    format!("{min} ..= {max}")
                };
                Err(self.err(k, format!("`{s}`: expected {what}, {range}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= EPS * b.abs().max(1.0)
    }

    fn profile() -> &'static Bundled {
        bundled("llama-2-70b", "h100").expect("the bundled profile parses")
    }

    /// A small mlp.csv: columns out of Vidur's order, one operator only.
    fn small_compute(rows: &str) -> Result<ComputeProfile, InputError> {
        ComputeProfile::parse(
            &format!(
                "num_tensor_parallel_workers,time_stats.mlp_up_proj.median,num_tokens\n{rows}"
            ),
            "t.csv",
        )
    }

    #[test]
    fn bundled_profile_parses_with_tp_1_2_4_8() {
        let b = profile();
        assert_eq!(b.compute.tps(), vec![1, 2, 4, 8]);
        for tp in [1, 2, 4, 8] {
            assert_eq!(b.compute.max_tokens(tp), Some(4096));
        }
        assert_eq!(b.compute.max_tokens(3), None);
        assert!(ProfileOp::ALL.iter().all(|&op| b.compute.has_op(op)));
        assert_eq!(b.all_reduce.workers(), vec![2, 4, 8]);
        assert!(b.source.contains("llama-2-70b") && b.source.contains("h100_dgx"));
        // The same &'static each call (parsed once); other pairs have none.
        assert!(std::ptr::eq(b, profile()));
        assert!(bundled("llama-3-70b", "h100").is_none());
        assert!(bundled("llama-2-70b", "a100").is_none());
        // The other bundled all-reduce file parses too.
        let pair =
            CollectiveProfile::parse(H100_PAIRWISE_NVLINK_ALL_REDUCE, "pairwise.csv").unwrap();
        assert_eq!(pair.workers(), vec![2, 4]);
    }

    #[test]
    fn profiled_points_are_the_files_medians_in_us() {
        let c = &profile().compute;
        // Read from mlp.csv with awk: tp 4, num_tokens 1: time_stats.mlp_up_proj.median 0.081 ms.
        assert!(close(c.op_us(ProfileOp::MlpUpProj, 1, 4).unwrap(), 81.0));
        // tp 4, 1,024 tokens: 0.327 ms; attn_pre_proj 0.075 ms.
        assert!(close(
            c.op_us(ProfileOp::MlpUpProj, 1024, 4).unwrap(),
            327.0
        ));
        assert!(close(
            c.op_us(ProfileOp::AttnPreProj, 1024, 4).unwrap(),
            75.0
        ));
        // tp 4, 4,096 tokens appears twice (1.361 and 1.348 ms): the mean of the two.
        assert!(close(
            c.op_us(ProfileOp::MlpUpProj, 4096, 4).unwrap(),
            (1361.0 + 1348.0) / 2.0
        ));
        // tp 1, 2,048 tokens appears twice (2.732 and 2.737 ms).
        assert!(close(
            c.op_us(ProfileOp::MlpUpProj, 2048, 1).unwrap(),
            (2732.0 + 2737.0) / 2.0
        ));
        assert_eq!(c.op_us(ProfileOp::MlpUpProj, 0, 4), None);
        assert_eq!(c.op_us(ProfileOp::MlpUpProj, 16, 3), None);
    }

    #[test]
    fn interpolation_halfway_is_the_midpoint() {
        let c = &profile().compute;
        // tp 4: 1,024 and 1,040 tokens are neighbouring profiled rows.
        let (a, b) = (
            c.op_us(ProfileOp::MlpUpProj, 1024, 4).unwrap(),
            c.op_us(ProfileOp::MlpUpProj, 1040, 4).unwrap(),
        );
        assert!(close(
            c.op_us(ProfileOp::MlpUpProj, 1032, 4).unwrap(),
            (a + b) / 2.0
        ));
        let p = small_compute("2,1.0,10\n2,3.0,20\n").unwrap();
        assert!(close(p.op_us(ProfileOp::MlpUpProj, 15, 2).unwrap(), 2000.0));
        assert!(close(p.op_us(ProfileOp::MlpUpProj, 12, 2).unwrap(), 1400.0));
        // An operator without a column is absent.
        assert!(!p.has_op(ProfileOp::Add));
        assert_eq!(p.op_us(ProfileOp::Add, 15, 2), None);
    }

    #[test]
    fn extrapolates_above_the_last_row_and_clamps_below_the_first() {
        // Collinear rows (time 0.1 ms per token): the extrapolation continues the line.
        let p = small_compute("1,0.4,4\n1,0.8,8\n1,1.2,12\n1,1.6,16\n").unwrap();
        assert!(close(p.op_us(ProfileOp::MlpUpProj, 32, 1).unwrap(), 3200.0));
        // Below the first row: the first row's time.
        assert!(close(p.op_us(ProfileOp::MlpUpProj, 1, 1).unwrap(), 400.0));
        assert!(close(p.op_us(ProfileOp::MlpUpProj, 3, 1).unwrap(), 400.0));
        // Noisy last rows: the secant runs from the row at half the last size (8) to the last (16), not
        // through the last two; and it never falls below the last row.
        let noisy = small_compute("1,0.8,8\n1,1.7,15\n1,1.6,16\n").unwrap();
        assert!(close(
            noisy.op_us(ProfileOp::MlpUpProj, 24, 1).unwrap(),
            1600.0 + 100.0 * 8.0
        ));
        let falling = small_compute("1,2.0,8\n1,1.0,16\n").unwrap();
        assert!(close(
            falling.op_us(ProfileOp::MlpUpProj, 100, 1).unwrap(),
            1000.0
        ));
        // One row: its time at every size.
        let one = small_compute("1,0.5,8\n").unwrap();
        assert!(close(
            one.op_us(ProfileOp::MlpUpProj, 1000, 1).unwrap(),
            500.0
        ));
        // The bundled GEMMs double (within 15 %) from 4,096 to 8,192 tokens at every TP size.
        let c = &profile().compute;
        for tp in c.tps() {
            for op in [
                ProfileOp::MlpUpProj,
                ProfileOp::MlpDownProj,
                ProfileOp::AttnPreProj,
            ] {
                let r = c.op_us(op, 8192, tp).unwrap() / c.op_us(op, 4096, tp).unwrap();
                assert!((1.7..=2.3).contains(&r), "{op:?} tp {tp}: x{r}");
            }
        }
        // And a 128 MiB all-reduce takes 1.7x-2.3x a 64 MiB one.
        let ar = &profile().all_reduce;
        for w in ar.workers() {
            let r =
                ar.all_reduce_us(128 << 20, w).unwrap() / ar.all_reduce_us(64 << 20, w).unwrap();
            assert!((1.7..=2.3).contains(&r), "{w} workers: x{r}");
        }
    }

    #[test]
    fn all_reduce_profiled_size_is_the_rank0_median() {
        let ar = &profile().all_reduce;
        // Read from h100_dgx/all_reduce.csv with awk: rank 0, num_workers 4, size 2048: median 0.038 ms;
        // size 13238272: 0.08 ms; size 16777216 appears twice (0.094, 0.093 ms).
        assert!(close(ar.all_reduce_us(2048, 4).unwrap(), 38.0));
        assert!(close(ar.all_reduce_us(13_238_272, 4).unwrap(), 80.0));
        assert!(close(
            ar.all_reduce_us(16_777_216, 4).unwrap(),
            (94.0 + 93.0) / 2.0
        ));
        // Below the smallest size: the smallest size's time.
        assert!(close(ar.all_reduce_us(1, 4).unwrap(), 38.0));
        assert_eq!(ar.all_reduce_us(0, 4), None);
        assert_eq!(ar.all_reduce_us(2048, 3), None);
        // Other ranks are skipped; rank and index columns in any order.
        let text = "rank,time_stats.all_reduce.median,,size,num_workers\n\
                    1,9.0,0,100,2\n0,0.5,1,100,2\n0,1.5,2,300,2\n";
        let p = CollectiveProfile::parse(text, "ar.csv").unwrap();
        assert!(close(p.all_reduce_us(100, 2).unwrap(), 500.0));
        assert!(close(p.all_reduce_us(200, 2).unwrap(), 1000.0));
    }

    #[test]
    fn bad_input_is_an_error_naming_row_and_column() {
        let row_col = |e: &InputError| match &e.location {
            Location::Row(r, c) => (*r, c.clone()),
            other => panic!("expected a row location, found {other:?}"),
        };
        // Missing column.
        let e = ComputeProfile::parse("num_tokens,time_stats.add.median\n1,0.1\n", "m.csv")
            .unwrap_err();
        assert_eq!(e.file, "m.csv");
        assert_eq!(
            row_col(&e),
            (0, Some("num_tensor_parallel_workers".to_string()))
        );
        let e = CollectiveProfile::parse(",num_workers,size\n0,2,100\n", "a.csv").unwrap_err();
        assert_eq!(
            row_col(&e),
            (0, Some("time_stats.all_reduce.median".to_string()))
        );
        let e = ComputeProfile::parse("num_tokens,num_tensor_parallel_workers\n1,1\n", "m.csv")
            .unwrap_err();
        assert!(e.to_string().contains("time_stats.emb.median"), "{e}");
        // Text in a time field (row 2).
        let e = small_compute("1,0.5,1\n1,abc,2\n").unwrap_err();
        assert_eq!(
            row_col(&e),
            (2, Some("time_stats.mlp_up_proj.median".to_string()))
        );
        assert!(e.to_string().contains("`abc` is not a number"), "{e}");
        // Negative and non-finite times, empty times.
        for bad in ["-0.1", "NaN", "inf", ""] {
            let e = small_compute(&format!("1,{bad},1\n")).unwrap_err();
            assert_eq!(
                row_col(&e),
                (1, Some("time_stats.mlp_up_proj.median".to_string())),
                "{bad}"
            );
        }
        // Zero tokens, a fractional or zero TP size.
        let e = small_compute("1,0.5,0\n").unwrap_err();
        assert_eq!(row_col(&e), (1, Some("num_tokens".to_string())));
        for tp in ["0", "1.5", "x", "-1"] {
            let e = small_compute(&format!("{tp},0.5,1\n")).unwrap_err();
            assert_eq!(
                row_col(&e),
                (1, Some("num_tensor_parallel_workers".to_string())),
                "{tp}"
            );
        }
        // pandas-style whole floats are fine.
        assert!(small_compute("2.0,0.5,16.0\n").is_ok());
        // Empty text and a header alone.
        for text in ["", "\n", "\u{feff}"] {
            let e = ComputeProfile::parse(text, "m.csv").unwrap_err();
            assert_eq!(e.location, Location::File, "{text:?}");
            assert!(CollectiveProfile::parse(text, "a.csv").is_err());
        }
        let e = small_compute("").unwrap_err();
        assert_eq!(e.location, Location::File);
        assert!(e.to_string().contains("no data rows"), "{e}");
        // Ragged rows: too few and too many fields.
        for rows in ["1,0.5\n", "1,0.5,1,9\n", "1,0.5,1\n1\n"] {
            let e = small_compute(rows).unwrap_err();
            assert!(
                matches!(e.location, Location::Row(_, None)),
                "{rows:?}: {e}"
            );
        }
        // A column twice.
        let e = ComputeProfile::parse(
            "num_tokens,num_tokens,num_tensor_parallel_workers,time_stats.add.median\n1,1,1,0.1\n",
            "m.csv",
        )
        .unwrap_err();
        assert_eq!(row_col(&e), (0, Some("num_tokens".to_string())));
        // All-reduce: another collective, no rank-0 rows, zero size.
        let head = "rank,num_workers,size,time_stats.all_reduce.median,collective\n";
        let e = CollectiveProfile::parse(&format!("{head}0,2,100,0.1,send_recv\n"), "a.csv")
            .unwrap_err();
        assert_eq!(row_col(&e), (1, Some("collective".to_string())));
        let e = CollectiveProfile::parse(&format!("{head}1,2,100,0.1,all_reduce\n"), "a.csv")
            .unwrap_err();
        assert_eq!(e.location, Location::File);
        let e = CollectiveProfile::parse(&format!("{head}0,2,0,0.1,all_reduce\n"), "a.csv")
            .unwrap_err();
        assert_eq!(row_col(&e), (1, Some("size".to_string())));
    }

    #[test]
    fn never_panics_on_odd_text() {
        for text in [
            "\"",
            "a,b\n\"unterminated",
            ",,,\n,,,\n",
            "num_tokens\n\n\n",
            "\r\n\r\n",
            "num_tokens,num_tensor_parallel_workers,time_stats.add.median\r\n1,1,0.1\r\n",
            "num_tokens,num_tensor_parallel_workers,time_stats.add.median\n18446744073709551615,4294967295,1e300\n",
        ] {
            let _ = ComputeProfile::parse(text, "x.csv");
            let _ = CollectiveProfile::parse(text, "x.csv");
        }
        // CRLF line ends parse.
        let p = ComputeProfile::parse(
            "num_tokens,num_tensor_parallel_workers,time_stats.add.median\r\n1,1,0.1\r\n",
            "x.csv",
        )
        .unwrap();
        assert!(close(p.op_us(ProfileOp::Add, 1, 1).unwrap(), 100.0));
        // Extreme sizes stay finite.
        let p = ComputeProfile::parse(
            "num_tokens,num_tensor_parallel_workers,time_stats.add.median\n1,1,0.1\n2,1,0.2\n",
            "x.csv",
        )
        .unwrap();
        assert!(p.op_us(ProfileOp::Add, u64::MAX, 1).unwrap().is_finite());
    }
}
