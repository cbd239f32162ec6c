//! `compare`: one workload under every (queue x placement x seed) combination, run in parallel, as one table
//! of headline metrics with the delta of each run against the first. Rows come in the order the flags
//! list them (queue, then placement, then seed), whatever order the runs finish in.

use crate::domain::workload::{Backfill, PlacementPolicy, QueuePolicy};
use crate::engine::cluster::metrics::{summarize, Summary};
use crate::input::workload::{self, Overrides};
use crate::kernel::placement::select::BackendChoice;
use crate::kernel::placement::{CostBackend, KernelError};
use crate::output::report::{enum_name, human_s};
use anyhow::Context;
use rayon::prelude::*;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

/// The combinations to run; an empty list means "as the workload file says".
#[derive(Debug, Clone, Default)]
pub struct Grid {
    /// Queue policies.
    pub queues: Vec<QueuePolicy>,
    /// Placement policies.
    pub placements: Vec<PlacementPolicy>,
    /// Backfill modes.
    pub backfills: Vec<Backfill>,
    /// Sharing policies.
    pub sharings: Vec<crate::domain::workload::Sharing>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// `scheduler.spill_after_s` values, seconds.
    pub spill_afters: Vec<f64>,
}

impl Grid {
    /// Overrides of every run, in row order.
    pub fn overrides(&self) -> Vec<Overrides> {
        fn or_file<T: Copy>(v: &[T]) -> Vec<Option<T>> {
            if v.is_empty() {
                vec![None]
            } else {
                v.iter().copied().map(Some).collect()
            }
        }
        let mut out = Vec::new();
        for &queue in &or_file(&self.queues) {
            for &backfill in &or_file(&self.backfills) {
                for &placement in &or_file(&self.placements) {
                    for &sharing in &or_file(&self.sharings) {
                        for &spill_after_s in &or_file(&self.spill_afters) {
                            for &seed in &or_file(&self.seeds) {
                                out.push(Overrides {
                                    seed,
                                    queue,
                                    placement,
                                    backfill,
                                    sharing,
                                    spill_after_s,
                                });
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// One finished run.
#[derive(Debug, Clone)]
pub struct Row {
    /// Queue policy as run.
    pub queue: QueuePolicy,
    /// Backfill mode as run.
    pub backfill: Backfill,
    /// Placement policy as run.
    pub placement: PlacementPolicy,
    /// Seed as run.
    pub seed: u64,
    /// Sharing policy as run.
    pub sharing: crate::domain::workload::Sharing,
    /// Its headline numbers.
    pub summary: Summary,
    /// Serving and sharing numbers, for workloads where the sharing policy matters (autoscaled services,
    /// elastic or checkpointed jobs, or a policy other than static).
    pub shared: Option<Shared>,
    /// `spill_after_s` as run, seconds.
    pub spill_after_s: f64,
    /// Cost by contract and site power, for workloads with on-demand pools or sites.
    pub capacity: Option<Capacity>,
}

/// The capacity columns of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// USD paid for committed pools.
    pub committed_usd: f64,
    /// USD paid for on-demand GPU-hours.
    pub on_demand_usd: f64,
    /// Committed GPU-hours used / bought.
    pub committed_utilization: f64,
    /// Jobs that ran on on-demand capacity.
    pub jobs_spilled: f64,
    /// Highest site power over its cap (0 without caps).
    pub peak_over_cap: f64,
}

/// The capacity columns of a finished run, if its workload has on-demand pools or sites.
pub fn capacity_of(
    w: &crate::domain::workload::Workload,
    o: &crate::engine::cluster::Outcome,
) -> Option<Capacity> {
    let c = &w.cluster;
    if c.sites.is_empty()
        && c.pools
            .iter()
            .all(|p| p.contract == crate::domain::cluster::Contract::Committed)
    {
        return None;
    }
    let r = crate::engine::cluster::metrics::capacity_report(w, o);
    let get = |k: &str| r.cost_by_contract.get(k).copied().unwrap_or(0.0);
    Some(Capacity {
        committed_usd: get("committed"),
        on_demand_usd: get("on-demand"),
        committed_utilization: r.committed_utilization,
        jobs_spilled: r.jobs_spilled as f64,
        peak_over_cap: r
            .sites
            .iter()
            .filter_map(|s| s.cap_mw.map(|cap| s.peak_mw / cap))
            .fold(0.0, f64::max),
    })
}

/// The serving and sharing columns of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shared {
    /// Requests meeting their SLOs / requests sent.
    pub slo_attainment: f64,
    /// Serving cost per million output tokens, USD.
    pub usd_per_million_output_tokens: f64,
    /// Mean wait of training and RL jobs, seconds.
    pub training_wait_s: f64,
    /// Mean JCT of training and RL jobs, seconds.
    pub training_jct_s: f64,
    /// Useful training GPU-hours / held.
    pub goodput: f64,
    /// Training GPU-hours lost to preemptions and resizes.
    pub lost_gpu_hours: f64,
    /// Scale-ups that took capacity from training.
    pub reclaims: f64,
}

/// The serving and sharing columns of a finished run, if it has them.
pub fn shared_of(
    w: &crate::domain::workload::Workload,
    o: &crate::engine::cluster::Outcome,
    inference: Option<&crate::engine::serving::InferenceReport>,
) -> Option<Shared> {
    let sh = crate::engine::cluster::metrics::sharing_report(w, o)?;
    let (mut waits, mut jcts) = (Vec::new(), Vec::new());
    for (job, out) in w.jobs.iter().zip(&o.jobs) {
        if job.kind == crate::domain::workload::JobKind::Inference {
            continue;
        }
        if let Some(s) = out.start {
            waits.push(crate::domain::workload::time_to_s(s - job.submit));
        }
        if let Some(e) = out.end {
            jcts.push(crate::domain::workload::time_to_s(e - job.submit));
        }
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    Some(Shared {
        slo_attainment: inference.map_or(0.0, |i| i.slo_attainment),
        usd_per_million_output_tokens: inference.map_or(0.0, |i| i.usd_per_million_output_tokens),
        training_wait_s: mean(&waits),
        training_jct_s: mean(&jcts),
        goodput: sh.goodput,
        lost_gpu_hours: sh.lost_gpu_hours,
        reclaims: sh.reclaims as f64,
    })
}

/// All runs of a comparison; the first row is the baseline.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Workload name.
    pub workload: String,
    /// Runs in grid order.
    pub rows: Vec<Row>,
}

/// Opens the placement kernel of one run. The one place `compare` picks a backend: every run gets its own
/// (a GPU run its own device), so runs share nothing; the choice follows `run --backend`.
pub fn open_run_backend(choice: BackendChoice) -> Result<Box<dyn CostBackend>, KernelError> {
    crate::kernel::placement::select::open_backend(choice, false).map(|(backend, _note)| backend)
}

/// Runs every combination of `grid` on `file` in parallel; `done` is called after each run (from worker
/// threads). Bad input fails before anything runs.
pub fn run_grid(
    file: &Path,
    grid: &Grid,
    backend: BackendChoice,
    done: &(dyn Fn() + Sync),
) -> anyhow::Result<Comparison> {
    let overrides = grid.overrides();
    // Fail fast, with the loader's located message, before spinning up runs.
    let first = workload::load(file, overrides[0])?;
    open_run_backend(backend)?;
    let results: Vec<anyhow::Result<Row>> = overrides
        .par_iter()
        .map(|&ov| {
            let w = workload::load(file, ov)?;
            let mut b = open_run_backend(backend)?;
            let o =
                crate::engine::cluster::simulate(&w, b.as_mut()).context("simulation stopped")?;
            // Serving only where sharing matters: otherwise compare stays a cluster-level comparison.
            let shared = match crate::engine::cluster::metrics::sharing_report(&w, &o) {
                Some(_) => {
                    let inf = crate::engine::serving::serve_services(&w, &o)?;
                    shared_of(&w, &o, inf.as_ref())
                }
                None => None,
            };
            done();
            Ok(Row {
                queue: w.scheduler.queue,
                backfill: w.scheduler.backfill,
                placement: w.scheduler.placement,
                seed: w.seed,
                sharing: w.scheduler.sharing,
                summary: summarize(&w, &o),
                shared,
                spill_after_s: crate::domain::workload::time_to_s(w.scheduler.spill_after),
                capacity: capacity_of(&w, &o),
            })
        })
        .collect();
    let rows = results.into_iter().collect::<anyhow::Result<Vec<Row>>>()?;
    Ok(Comparison {
        workload: first.name,
        rows,
    })
}

/// How a metric is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds, shown in a readable unit.
    Seconds,
    /// A fraction 0..1, shown in %; deltas in percentage points.
    Fraction,
    /// A count.
    Count,
    /// US dollars.
    Usd,
}

/// One column of the comparison.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Key in CSV and JSON.
    pub key: &'static str,
    /// Column header in tables.
    pub header: &'static str,
    /// How it is shown.
    pub unit: Unit,
    /// Where it comes from.
    pub get: fn(&Row) -> f64,
}

/// The headline metrics, in column order.
pub const METRICS: [Metric; 9] = [
    Metric {
        key: "makespan_s",
        header: "makespan",
        unit: Unit::Seconds,
        get: |r| r.summary.makespan_s,
    },
    Metric {
        key: "jct_mean_s",
        header: "mean JCT",
        unit: Unit::Seconds,
        get: |r| r.summary.jct_s.mean,
    },
    Metric {
        key: "jct_p99_s",
        header: "p99 JCT",
        unit: Unit::Seconds,
        get: |r| r.summary.jct_s.p99,
    },
    Metric {
        key: "wait_mean_s",
        header: "mean wait",
        unit: Unit::Seconds,
        get: |r| r.summary.wait_s.mean,
    },
    Metric {
        key: "wait_p99_s",
        header: "p99 wait",
        unit: Unit::Seconds,
        get: |r| r.summary.wait_s.p99,
    },
    Metric {
        key: "gpu_utilization",
        header: "GPU util",
        unit: Unit::Fraction,
        get: |r| r.summary.gpu_utilization,
    },
    Metric {
        key: "gangs_split",
        header: "gangs split",
        unit: Unit::Count,
        get: |r| r.summary.training_gangs_split as f64,
    },
    Metric {
        key: "completed",
        header: "completed",
        unit: Unit::Count,
        get: |r| r.summary.jobs.completed as f64,
    },
    Metric {
        key: "unschedulable",
        header: "unschedulable",
        unit: Unit::Count,
        get: |r| r.summary.jobs.unschedulable as f64,
    },
];

/// The serving and sharing columns, shown when the rows have them.
pub const SHARED_METRICS: [Metric; 7] = [
    Metric {
        key: "slo_attainment",
        header: "SLO met",
        unit: Unit::Fraction,
        get: |r| r.shared.map_or(0.0, |s| s.slo_attainment),
    },
    Metric {
        key: "training_wait_mean_s",
        header: "train wait",
        unit: Unit::Seconds,
        get: |r| r.shared.map_or(0.0, |s| s.training_wait_s),
    },
    Metric {
        key: "training_jct_mean_s",
        header: "train JCT",
        unit: Unit::Seconds,
        get: |r| r.shared.map_or(0.0, |s| s.training_jct_s),
    },
    Metric {
        key: "goodput",
        header: "goodput",
        unit: Unit::Fraction,
        get: |r| r.shared.map_or(0.0, |s| s.goodput),
    },
    Metric {
        key: "lost_gpu_hours",
        header: "lost GPU-h",
        unit: Unit::Count,
        get: |r| r.shared.map_or(0.0, |s| s.lost_gpu_hours),
    },
    Metric {
        key: "reclaims",
        header: "reclaims",
        unit: Unit::Count,
        get: |r| r.shared.map_or(0.0, |s| s.reclaims),
    },
    Metric {
        key: "usd_per_million_output_tokens",
        header: "$/M out tok",
        unit: Unit::Usd,
        get: |r| r.shared.map_or(0.0, |s| s.usd_per_million_output_tokens),
    },
];

/// The capacity columns, shown when the rows have them.
pub const CAPACITY_METRICS: [Metric; 5] = [
    Metric {
        key: "committed_usd",
        header: "committed $",
        unit: Unit::Usd,
        get: |r| r.capacity.map_or(0.0, |c| c.committed_usd),
    },
    Metric {
        key: "on_demand_usd",
        header: "on-demand $",
        unit: Unit::Usd,
        get: |r| r.capacity.map_or(0.0, |c| c.on_demand_usd),
    },
    Metric {
        key: "committed_utilization",
        header: "committed used",
        unit: Unit::Fraction,
        get: |r| r.capacity.map_or(0.0, |c| c.committed_utilization),
    },
    Metric {
        key: "jobs_spilled",
        header: "spilled jobs",
        unit: Unit::Count,
        get: |r| r.capacity.map_or(0.0, |c| c.jobs_spilled),
    },
    Metric {
        key: "peak_over_cap",
        header: "peak/cap",
        unit: Unit::Fraction,
        get: |r| r.capacity.map_or(0.0, |c| c.peak_over_cap),
    },
];

/// The columns of a comparison: the headline metrics, then the sharing and capacity ones when its rows
/// have them.
fn metrics(c: &Comparison) -> Vec<&'static Metric> {
    let mut m: Vec<&'static Metric> = METRICS.iter().collect();
    if c.rows.iter().any(|r| r.shared.is_some()) {
        m.extend(SHARED_METRICS.iter());
    }
    if c.rows.iter().any(|r| r.capacity.is_some()) {
        m.extend(CAPACITY_METRICS.iter());
    }
    m
}

/// Names of the policy columns, and their values for a row: sharing only when the rows have it.
fn key_columns(c: &Comparison) -> Vec<&'static str> {
    let mut k = vec!["queue", "backfill", "placement"];
    if c.rows.iter().any(|r| r.shared.is_some()) {
        k.push("sharing");
    }
    if c.rows.iter().any(|r| r.capacity.is_some()) {
        k.push("spill after");
    }
    k.push("seed");
    k
}

fn key_values(c: &Comparison, r: &Row) -> Vec<String> {
    key_columns(c)
        .iter()
        .map(|&k| match k {
            "queue" => enum_name(&r.queue),
            "backfill" => enum_name(&r.backfill),
            "placement" => enum_name(&r.placement),
            "sharing" => r.sharing.as_str().to_string(),
            "spill after" => human_s(r.spill_after_s),
            _ => r.seed.to_string(),
        })
        .collect()
}

/// A value against the baseline: (absolute delta, relative delta in %; `None` when the baseline is 0).
pub fn delta(value: f64, base: f64) -> (f64, Option<f64>) {
    let abs = value - base;
    let pct = (base != 0.0).then(|| abs / base * 100.0);
    (abs, pct)
}

fn show(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Seconds => human_s(v),
        Unit::Fraction => format!("{:.1}%", v * 100.0),
        Unit::Count => format!("{v:.0}"),
        Unit::Usd => format!("${v:.2}"),
    }
}

fn show_delta(unit: Unit, d: f64) -> String {
    let sign = if d < 0.0 { "-" } else { "+" };
    let m = d.abs();
    match unit {
        Unit::Seconds => format!("{sign}{}", human_s(m)),
        Unit::Fraction => format!("{sign}{:.1}pp", m * 100.0),
        Unit::Count => format!("{sign}{m:.0}"),
        Unit::Usd => format!("{sign}${m:.2}"),
    }
}

/// A table cell: the value, then for later rows its delta against the baseline, "(=)" when equal.
fn cell(m: &Metric, row: &Row, base: &Row, baseline: bool) -> String {
    let (v, b) = ((m.get)(row), (m.get)(base));
    if baseline {
        return show(m.unit, v);
    }
    let (abs, pct) = delta(v, b);
    if abs == 0.0 {
        return format!("{} (=)", show(m.unit, v));
    }
    let pct = pct.map_or("n/a".to_string(), |p| format!("{p:+.1}%"));
    format!("{} ({}, {pct})", show(m.unit, v), show_delta(m.unit, abs))
}

/// Output formats of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    /// An aligned text table.
    Table,
    /// A GitHub-flavoured Markdown table.
    Markdown,
    /// CSV with value, delta and delta_pct columns per metric.
    Csv,
    /// JSON with every run's metrics and deltas.
    Json,
}

impl CompareFormat {
    /// The comparison in this format.
    pub fn export(self, c: &Comparison) -> String {
        match self {
            CompareFormat::Table => text_table(c, false),
            CompareFormat::Markdown => text_table(c, true),
            CompareFormat::Csv => csv(c),
            CompareFormat::Json => json(c),
        }
    }
}

/// Header and cells of the human tables.
fn cells(c: &Comparison) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = key_columns(c).iter().map(|s| s.to_string()).collect();
    let ms = metrics(c);
    header.extend(ms.iter().map(|m| m.header.to_string()));
    let Some(base) = c.rows.first() else {
        return (header, Vec::new());
    };
    let body = c
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut line = key_values(c, r);
            line.extend(ms.iter().map(|m| cell(m, r, base, i == 0)));
            line
        })
        .collect();
    (header, body)
}

fn text_table(c: &Comparison, markdown: bool) -> String {
    let (header, body) = cells(c);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in &body {
        for (w, s) in widths.iter_mut().zip(line) {
            *w = (*w).max(s.chars().count());
        }
    }
    // Names left-aligned, numbers right-aligned.
    let pad = |k: usize, s: &str| {
        if k < 2 {
            format!("{s:<w$}", w = widths[k])
        } else {
            format!("{s:>w$}", w = widths[k])
        }
    };
    let mut t = String::new();
    let join = |line: &[String]| -> String {
        let parts: Vec<String> = line.iter().enumerate().map(|(k, s)| pad(k, s)).collect();
        if markdown {
            format!("| {} |", parts.join(" | "))
        } else {
            parts.join("  ").trim_end().to_string()
        }
    };
    if !markdown {
        let _ = writeln!(
            t,
            "{}: {} runs; deltas against the first row (absolute, %)\n",
            c.workload,
            c.rows.len()
        );
    }
    let _ = writeln!(t, "{}", join(&header));
    if markdown {
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(k, &w)| {
                if k < 2 {
                    "-".repeat(w.max(3))
                } else {
                    format!("{}:", "-".repeat(w.max(3) - 1))
                }
            })
            .collect();
        let _ = writeln!(t, "| {} |", rule.join(" | "));
    }
    for line in &body {
        let _ = writeln!(t, "{}", join(line));
    }
    t
}

/// A CSV number: shortest round-trip form, empty for none.
fn csv_num(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v}"))
}

fn csv(c: &Comparison) -> String {
    let mut wtr = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = key_columns(c).iter().map(|s| s.to_string()).collect();
    let ms = metrics(c);
    for m in &ms {
        header.push(m.key.into());
        header.push(format!("{}_delta", m.key));
        header.push(format!("{}_delta_pct", m.key));
    }
    let _ = wtr.write_record(&header);
    if let Some(base) = c.rows.first() {
        for r in &c.rows {
            let mut rec = key_values(c, r);
            for m in &ms {
                let (v, b) = ((m.get)(r), (m.get)(base));
                let (abs, pct) = delta(v, b);
                rec.extend([csv_num(Some(v)), csv_num(Some(abs)), csv_num(pct)]);
            }
            let _ = wtr.write_record(&rec);
        }
    }
    String::from_utf8(wtr.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn json(c: &Comparison) -> String {
    let runs: Vec<serde_json::Value> = c
        .rows
        .iter()
        .map(|r| {
            let base = &c.rows[0];
            let mut metrics = serde_json::Map::new();
            for m in self::metrics(c) {
                let (v, b) = ((m.get)(r), (m.get)(base));
                let (abs, pct) = delta(v, b);
                metrics.insert(
                    m.key.into(),
                    json!({"value": v, "delta": abs, "delta_pct": pct}),
                );
            }
            json!({
                "queue": r.queue,
                "backfill": r.backfill,
                "placement": r.placement,
                "sharing": r.sharing,
                "seed": r.seed,
                "metrics": metrics,
            })
        })
        .collect();
    let v = json!({"workload": c.workload, "baseline": 0, "runs": runs});
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cluster::metrics::Stats;
    use crate::input::workload::{build, parse_str, Format};

    /// A real summary (so the test does not depend on every field of `Summary`) with the compared fields set.
    fn summary(makespan_s: f64, util: f64, split: u64) -> Summary {
        let text = "[cluster]\npools = [{ preset = \"p6e-gb200\", count = 1 }]\n\
                    [[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 60\n";
        let w = build(
            parse_str(text, "t.toml", Format::Toml).unwrap(),
            "t.toml",
            "t",
            Overrides::default(),
        )
        .unwrap();
        let o =
            crate::engine::cluster::simulate(&w, &mut crate::kernel::placement::cpu::CpuBackend)
                .unwrap();
        let st = Stats {
            mean: 10.0,
            p50: 5.0,
            p90: 9.0,
            p99: 20.0,
            max: 30.0,
        };
        let mut s = summarize(&w, &o);
        s.makespan_s = makespan_s;
        s.gpu_utilization = util;
        s.training_gangs_split = split;
        s.jct_s = st;
        s.wait_s = st;
        s.jobs.completed = 4;
        s.jobs.unschedulable = 0;
        s
    }

    fn comparison() -> Comparison {
        let row = |placement, s| Row {
            queue: QueuePolicy::Fifo,
            backfill: Backfill::Easy,
            placement,
            seed: 1,
            sharing: crate::domain::workload::Sharing::Static,
            summary: s,
            shared: None,
            spill_after_s: 0.0,
            capacity: None,
        };
        Comparison {
            workload: "w".into(),
            rows: vec![
                row(PlacementPolicy::FirstFit, summary(7200.0, 0.5, 0)),
                row(PlacementPolicy::TopologyPack, summary(3600.0, 0.75, 2)),
            ],
        }
    }

    #[test]
    fn grid_order_is_queue_then_placement_then_seed() {
        let g = Grid {
            queues: vec![QueuePolicy::Sjf, QueuePolicy::Fifo],
            placements: vec![PlacementPolicy::BestFit],
            backfills: vec![],
            sharings: vec![],
            seeds: vec![3, 1],
            spill_afters: vec![],
        };
        let o: Vec<_> = g
            .overrides()
            .iter()
            .map(|o| (o.queue, o.placement, o.seed))
            .collect();
        let bf = Some(PlacementPolicy::BestFit);
        assert_eq!(
            o,
            vec![
                (Some(QueuePolicy::Sjf), bf, Some(3)),
                (Some(QueuePolicy::Sjf), bf, Some(1)),
                (Some(QueuePolicy::Fifo), bf, Some(3)),
                (Some(QueuePolicy::Fifo), bf, Some(1)),
            ]
        );
        assert_eq!(Grid::default().overrides().len(), 1);
    }

    #[test]
    fn deltas_are_absolute_and_relative_to_the_first_row() {
        assert_eq!(delta(3600.0, 7200.0), (-3600.0, Some(-50.0)));
        assert_eq!(delta(2.0, 0.0), (2.0, None));
        let t = CompareFormat::Table.export(&comparison());
        assert!(t.contains("2.00h"), "{t}");
        assert!(t.contains("1.00h (-1.00h, -50.0%)"), "{t}");
        assert!(t.contains("75.0% (+25.0pp, +50.0%)"), "{t}");
        assert!(t.contains("2 (+2, n/a)"), "{t}");
        assert!(t.contains("4 (=)"), "{t}");
    }

    #[test]
    fn every_format_has_one_line_or_record_per_run() {
        let c = comparison();
        let md = CompareFormat::Markdown.export(&c);
        assert_eq!(md.lines().count(), 4);
        assert!(md.lines().nth(1).is_some_and(|l| l.starts_with("| ---")));
        let csv = CompareFormat::Csv.export(&c);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with(
            "queue,backfill,placement,seed,makespan_s,makespan_s_delta,makespan_s_delta_pct"
        ));
        assert!(
            lines[2].starts_with("fifo,easy,topology-pack,1,3600,-3600,-50,"),
            "{csv}"
        );
        let v: serde_json::Value = serde_json::from_str(&CompareFormat::Json.export(&c)).unwrap();
        assert_eq!(
            v["runs"][1]["metrics"]["gangs_split"]["delta_pct"],
            serde_json::Value::Null
        );
        assert_eq!(v["runs"][1]["metrics"]["makespan_s"]["delta"], -3600.0);
        assert_eq!(v["runs"][0]["placement"], "first-fit");
    }
}
