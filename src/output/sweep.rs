//! `sweep`: a grid of policy and workload axes x seeds, planned here, run anywhere (locally, one Slurm array
//! task or one Kubernetes index at a time), summarised here with a mean and a 95 % confidence interval over
//! seeds per combination. Builds values and text; the CLI runs, reads and writes.
//!
//! A plan is deterministic: axes in flag order (the first varies slowest), seeds innermost; run `i` is
//! combination `i / seeds` with seed `seeds[i % seeds]`. A run's result holds no wall time, so the same
//! sweep gives byte-identical summaries wherever its runs ran.

use crate::domain::workload::{Backfill, PlacementPolicy, QueuePolicy, Sharing};
use crate::engine::cluster::metrics::summarize;
use crate::input::workload::{Edits, Overrides};
use crate::output::html::{page, section, series, WIDTH};
use crate::output::svg::{esc, Axis as ChartAxis, LineChart};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Axes a sweep may vary, besides the seed.
pub const AXES: &str =
    "queue, backfill, placement, sharing, spill_after_s, load (a factor on every generator's rate), \
     pool.<name> (that pool's count)";

/// One axis: a name and its values as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Axis {
    /// `queue`, `load`, `pool.gb300`...
    pub name: String,
    /// Values in order.
    pub values: Vec<String>,
}

impl Axis {
    /// Parses `name=v1,v2,...`, checking every value now.
    pub fn parse(text: &str) -> Result<Axis, String> {
        let (name, values) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}`: expected AXIS=V1,V2,... (axes: {AXES})"))?;
        let name = name.trim().to_string();
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(format!("`{text}`: axis `{name}` has no values"));
        }
        let axis = Axis { name, values };
        for v in &axis.values {
            let mut ov = Overrides::default();
            let mut ed = Edits::default();
            axis.apply(v, &mut ov, &mut ed)?;
        }
        Ok(axis)
    }

    /// Whether the axis is a number (a plot's x axis).
    pub fn numeric(&self) -> bool {
        self.name == "load" || self.name == "spill_after_s" || self.name.starts_with("pool.")
    }

    /// Sets `value` of this axis on a run's overrides and edits.
    pub fn apply(&self, value: &str, ov: &mut Overrides, ed: &mut Edits) -> Result<(), String> {
        fn choice<T: clap::ValueEnum>(axis: &str, v: &str) -> Result<T, String> {
            T::from_str(v, false).map_err(|_| {
                let allowed: Vec<String> = T::value_variants()
                    .iter()
                    .filter_map(|x| x.to_possible_value().map(|p| p.get_name().to_string()))
                    .collect();
                format!("{axis}={v}: allowed: {}", allowed.join(", "))
            })
        }
        let number = |lo: f64, hi: f64| -> Result<f64, String> {
            let x: f64 = value
                .parse()
                .map_err(|_| format!("{}={value}: expected a number", self.name))?;
            if x.is_finite() && x >= lo && x <= hi {
                Ok(x)
            } else {
                Err(format!("{}={value}: allowed: {lo} to {hi}", self.name))
            }
        };
        match self.name.as_str() {
            "queue" => ov.queue = Some(choice::<QueuePolicy>("queue", value)?),
            "backfill" => ov.backfill = Some(choice::<Backfill>("backfill", value)?),
            "placement" => ov.placement = Some(choice::<PlacementPolicy>("placement", value)?),
            "sharing" => ov.sharing = Some(choice::<Sharing>("sharing", value)?),
            "spill_after_s" => ov.spill_after_s = Some(number(0.0, 315_360_000.0)?),
            "load" => {
                let x = number(0.0, 1000.0)?;
                if x == 0.0 {
                    return Err(format!("load={value}: allowed: above 0 and at most 1000"));
                }
                ed.load = Some(x);
            }
            name => match name.strip_prefix("pool.") {
                Some(pool) if !pool.is_empty() => {
                    let x = number(1.0, 1e7)?;
                    if x.fract() != 0.0 {
                        return Err(format!("{name}={value}: allowed: a whole count"));
                    }
                    ed.pool_counts.retain(|(p, _)| p != pool);
                    ed.pool_counts.push((pool.to_string(), x as u32));
                }
                _ => return Err(format!("unknown axis `{name}`; axes: {AXES}")),
            },
        }
        Ok(())
    }
}

/// Parses `--seeds`: `1..20` (inclusive), `1,2,3`, or one seed.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let bad = || format!("`{text}`: expected seeds as A..B (inclusive) or A,B,C");
    let seeds: Vec<u64> = if let Some((a, b)) = text.split_once("..") {
        let (a, b): (u64, u64) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if b < a || b - a >= MAX_RUNS as u64 {
            return Err(format!(
                "`{text}`: allowed: A..B with A <= B and at most {MAX_RUNS} seeds"
            ));
        }
        (a..=b).collect()
    } else {
        text.split(',')
            .map(|s| s.trim().parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?
    };
    if seeds.is_empty() {
        return Err(bad());
    }
    Ok(seeds)
}

/// Most runs in one sweep.
pub const MAX_RUNS: usize = 1_000_000;

/// What a sweep runs; written as `DIR/sweep.json` so every task finds its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The workload file (absolute path).
    pub workload: String,
    /// Axes, slowest first.
    pub axes: Vec<Axis>,
    /// Seeds, fastest.
    pub seeds: Vec<u64>,
    /// Runs per array task or Kubernetes index.
    pub chunk: usize,
}

/// One run of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Index in the plan.
    pub index: usize,
    /// Combination index (runs of one combination differ only in seed).
    pub combination: usize,
    /// (axis, value) of the combination.
    pub params: Vec<(String, String)>,
    /// Seed.
    pub seed: u64,
}

impl Plan {
    /// A plan; errors when it holds no run or too many.
    pub fn new(
        workload: String,
        axes: Vec<Axis>,
        seeds: Vec<u64>,
        chunk: usize,
    ) -> Result<Plan, String> {
        let mut names = std::collections::BTreeSet::new();
        for a in &axes {
            if !names.insert(a.name.as_str()) {
                return Err(format!("axis `{}` is given twice", a.name));
            }
        }
        let plan = Plan {
            workload,
            axes,
            seeds,
            chunk: chunk.max(1),
        };
        let n = plan
            .axes
            .iter()
            .try_fold(plan.seeds.len(), |n, a| n.checked_mul(a.values.len()));
        match n {
            Some(n) if n > 0 && n <= MAX_RUNS => Ok(plan),
            _ => Err(format!(
                "a sweep holds 1 to {MAX_RUNS} runs (combinations x seeds)"
            )),
        }
    }

    /// Number of combinations.
    pub fn combinations(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    /// Number of runs.
    pub fn len(&self) -> usize {
        self.combinations() * self.seeds.len()
    }

    /// Whether the plan is empty (never, once built by [`Plan::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of array tasks (chunks of runs).
    pub fn tasks(&self) -> usize {
        self.len().div_ceil(self.chunk)
    }

    /// Runs of array task `task`.
    pub fn task_runs(&self, task: usize) -> std::ops::Range<usize> {
        let lo = (task * self.chunk).min(self.len());
        lo..(lo + self.chunk).min(self.len())
    }

    /// (axis, value) of a combination.
    pub fn params(&self, combination: usize) -> Vec<(String, String)> {
        let mut rest = combination;
        let mut out = vec![(String::new(), String::new()); self.axes.len()];
        for (k, a) in self.axes.iter().enumerate().rev() {
            out[k] = (a.name.clone(), a.values[rest % a.values.len()].clone());
            rest /= a.values.len();
        }
        out
    }

    /// Run `index`.
    pub fn run(&self, index: usize) -> RunSpec {
        let combination = index / self.seeds.len();
        RunSpec {
            index,
            combination,
            params: self.params(combination),
            seed: self.seeds[index % self.seeds.len()],
        }
    }

    /// The overrides and edits of a run.
    pub fn settings(&self, r: &RunSpec) -> Result<(Overrides, Edits), String> {
        let mut ov = Overrides {
            seed: Some(r.seed),
            ..Default::default()
        };
        let mut ed = Edits::default();
        for (a, (_, v)) in self.axes.iter().zip(&r.params) {
            a.apply(v, &mut ov, &mut ed)?;
        }
        Ok((ov, ed))
    }
}

/// The headline numbers of one run: `DIR/runs/run-<index>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Index in the plan.
    pub index: usize,
    /// (axis -> value) of its combination.
    pub params: std::collections::BTreeMap<String, String>,
    /// Seed.
    pub seed: u64,
    /// Metric -> value, the keys of [`METRICS`] (SLO attainment only with request-level serving).
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// Metrics summarised, in column order: (key, header, unit: "s", "%", "$" or "").
pub const METRICS: [(&str, &str, &str); 8] = [
    ("wait_mean_s", "mean wait", "s"),
    ("wait_p99_s", "p99 wait", "s"),
    ("jct_mean_s", "mean JCT", "s"),
    ("jct_p99_s", "p99 JCT", "s"),
    ("gpu_utilization", "GPU util", "%"),
    ("slo_attainment", "SLO met", "%"),
    ("cost_usd", "cost", "$"),
    ("unschedulable", "unschedulable", ""),
];

/// Runs one run of a plan (the engine on the CPU-twin-equal backend the caller opened), returning its
/// result. Bad settings or input are errors, before any simulation.
pub fn run_one(
    plan: &Plan,
    index: usize,
    backend: &mut dyn crate::kernel::placement::CostBackend,
) -> anyhow::Result<RunResult> {
    use anyhow::Context;
    let r = plan.run(index);
    let (ov, ed) = plan.settings(&r).map_err(anyhow::Error::msg)?;
    let w = crate::input::workload::load_edited(std::path::Path::new(&plan.workload), ov, &ed)?;
    crate::engine::serving::check_limits(&w)?;
    let o = crate::engine::cluster::simulate(&w, backend).context("simulation stopped")?;
    let inference = crate::engine::serving::serve_services(&w, &o)?;
    let s = summarize(&w, &o);
    let mut metrics = std::collections::BTreeMap::new();
    metrics.insert("wait_mean_s".to_string(), s.wait_s.mean);
    metrics.insert("wait_p99_s".to_string(), s.wait_s.p99);
    metrics.insert("jct_mean_s".to_string(), s.jct_s.mean);
    metrics.insert("jct_p99_s".to_string(), s.jct_s.p99);
    metrics.insert("gpu_utilization".to_string(), s.gpu_utilization);
    if let Some(i) = &inference {
        metrics.insert("slo_attainment".to_string(), i.slo_attainment);
    }
    metrics.insert("cost_usd".to_string(), s.cost_usd);
    metrics.insert("unschedulable".to_string(), s.jobs.unschedulable as f64);
    Ok(RunResult {
        index,
        params: r.params.into_iter().collect(),
        seed: r.seed,
        metrics,
    })
}

/// Two-sided 95 % Student t quantiles for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The two-sided 95 % t quantile for `df` degrees of freedom (past 30: 40, 60, 120 and the normal's
/// 1.960, taking the nearest smaller tabulated df, so the interval errs wide).
pub fn t95(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T95[df - 1],
        31..=39 => 2.042,
        40..=59 => 2.021,
        60..=119 => 2.000,
        120..=999 => 1.980,
        _ => 1.960,
    }
}

/// Mean and 95 % confidence half-width (t over the sample standard deviation; NaN below 2 samples).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Mean.
    pub mean: f64,
    /// Half-width of the 95 % confidence interval.
    pub ci95: f64,
    /// Samples.
    pub n: usize,
}

impl Estimate {
    /// Of a sample.
    pub fn of(xs: &[f64]) -> Estimate {
        let n = xs.len();
        if n == 0 {
            return Estimate {
                mean: f64::NAN,
                ci95: f64::NAN,
                n,
            };
        }
        let mean = xs.iter().sum::<f64>() / n as f64;
        let ci95 = if n < 2 {
            f64::NAN
        } else {
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t95(n - 1) * (var / n as f64).sqrt()
        };
        Estimate { mean, ci95, n }
    }
}

/// One combination's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CombinationSummary {
    /// (axis, value).
    pub params: Vec<(String, String)>,
    /// Seeds finished.
    pub runs: usize,
    /// Per metric key (absent: no run had it).
    pub metrics: Vec<(String, Estimate)>,
}

/// A sweep's summary: per combination, in plan order; and the runs still missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Workload file.
    pub workload: String,
    /// Seeds of the plan.
    pub seeds: Vec<u64>,
    /// Combinations.
    pub combinations: Vec<CombinationSummary>,
    /// Run indices without a result.
    pub missing: Vec<usize>,
}

/// Summarises the results found (any order; one per index) against the plan.
pub fn summarize_sweep(plan: &Plan, results: &[RunResult]) -> Summary {
    let mut by_index: Vec<Option<&RunResult>> = vec![None; plan.len()];
    for r in results {
        if r.index < by_index.len() {
            by_index[r.index] = Some(r);
        }
    }
    let missing: Vec<usize> = (0..plan.len()).filter(|&i| by_index[i].is_none()).collect();
    let seeds = plan.seeds.len();
    let combinations = (0..plan.combinations())
        .map(|c| {
            let done: Vec<&RunResult> = by_index[c * seeds..(c + 1) * seeds]
                .iter()
                .flatten()
                .copied()
                .collect();
            let metrics = METRICS
                .iter()
                .filter_map(|&(key, _, _)| {
                    let xs: Vec<f64> = done
                        .iter()
                        .filter_map(|r| r.metrics.get(key).copied())
                        .collect();
                    (!xs.is_empty()).then(|| (key.to_string(), Estimate::of(&xs)))
                })
                .collect();
            CombinationSummary {
                params: plan.params(c),
                runs: done.len(),
                metrics,
            }
        })
        .collect();
    Summary {
        workload: plan.workload.clone(),
        seeds: plan.seeds.clone(),
        combinations,
        missing,
    }
}

fn metric_keys(s: &Summary) -> Vec<(&'static str, &'static str, &'static str)> {
    METRICS
        .iter()
        .copied()
        .filter(|(k, _, _)| {
            s.combinations
                .iter()
                .any(|c| c.metrics.iter().any(|(m, _)| m == k))
        })
        .collect()
}

fn show(unit: &str, v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    match unit {
        "s" => crate::output::report::human_s(v),
        "%" => format!("{:.1}%", v * 100.0),
        "$" => format!("${v:.0}"),
        _ => format!("{v:.1}"),
    }
}

/// A table cell: "mean ± half-width", the mean alone below two runs, "-" without the metric.
fn cell(c: &CombinationSummary, key: &str, unit: &str) -> String {
    match c.metrics.iter().find(|(m, _)| m == key) {
        Some((_, e)) if e.ci95.is_finite() => {
            format!("{} ± {}", show(unit, e.mean), show(unit, e.ci95))
        }
        Some((_, e)) => show(unit, e.mean),
        None => "-".into(),
    }
}

fn axis_names(s: &Summary) -> Vec<String> {
    s.combinations
        .first()
        .map(|c| c.params.iter().map(|(a, _)| a.clone()).collect())
        .unwrap_or_default()
}

/// `summary.md`: one row per combination, "mean ± CI" per metric.
pub fn summary_markdown(s: &Summary) -> String {
    let keys = metric_keys(s);
    let mut header: Vec<String> = axis_names(s);
    header.push("runs".into());
    header.extend(keys.iter().map(|(_, h, _)| h.to_string()));
    let mut t = format!("| {} |\n", header.join(" | "));
    let _ = writeln!(
        t,
        "|{}",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i < axis_names(s).len() {
                " --- |"
            } else {
                " ---: |"
            })
            .collect::<String>()
    );
    for c in &s.combinations {
        let mut row: Vec<String> = c.params.iter().map(|(_, v)| v.clone()).collect();
        row.push(c.runs.to_string());
        for (k, _, unit) in &keys {
            row.push(cell(c, k, unit));
        }
        let _ = writeln!(t, "| {} |", row.join(" | "));
    }
    t
}

/// `summary.csv`: axes, runs, then `<metric>_mean` and `<metric>_ci95` per metric (empty when unknown).
pub fn summary_csv(s: &Summary) -> String {
    let keys = metric_keys(s);
    let mut wtr = csv::Writer::from_writer(Vec::new());
    let mut header = axis_names(s);
    header.push("runs".into());
    for (k, _, _) in &keys {
        header.push(format!("{k}_mean"));
        header.push(format!("{k}_ci95"));
    }
    let _ = wtr.write_record(&header);
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v}")
        } else {
            String::new()
        }
    };
    for c in &s.combinations {
        let mut row: Vec<String> = c.params.iter().map(|(_, v)| v.clone()).collect();
        row.push(c.runs.to_string());
        for (k, _, _) in &keys {
            let e = c.metrics.iter().find(|(m, _)| m == k).map(|(_, e)| *e);
            row.push(e.map_or(String::new(), |e| num(e.mean)));
            row.push(e.map_or(String::new(), |e| num(e.ci95)));
        }
        let _ = wtr.write_record(&row);
    }
    String::from_utf8(wtr.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// `summary.json`.
pub fn summary_json(s: &Summary) -> String {
    let combos: Vec<serde_json::Value> = s
        .combinations
        .iter()
        .map(|c| {
            let params: serde_json::Map<String, serde_json::Value> = c
                .params
                .iter()
                .map(|(a, v)| (a.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let metrics: serde_json::Map<String, serde_json::Value> = c
                .metrics
                .iter()
                .map(|(k, e)| {
                    let f = |v: f64| {
                        serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into)
                    };
                    (
                        k.clone(),
                        serde_json::json!({ "mean": f(e.mean), "ci95": f(e.ci95), "n": e.n }),
                    )
                })
                .collect();
            serde_json::json!({ "params": params, "runs": c.runs, "metrics": metrics })
        })
        .collect();
    let v = serde_json::json!({
        "workload": s.workload,
        "seeds": s.seeds,
        "combinations": combos,
        "missing": s.missing,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// `sweep.html`: each metric against the first numeric axis, one line per combination of the other axes,
/// its 95 % interval shaded; without a numeric axis, the summary table alone.
pub fn sweep_html(s: &Summary) -> String {
    let names = axis_names(s);
    let x_axis = names.iter().position(|n| {
        Axis {
            name: n.clone(),
            values: vec![],
        }
        .numeric()
    });
    let mut body = format!("<h1>Sweep of {}</h1>\n", esc(&s.workload));
    let _ = writeln!(
        body,
        "<p class=\"note\">{} combinations x {} seeds; {} runs missing. Lines: means over seeds; shading: 95 % \
         confidence intervals (Student t).</p>",
        s.combinations.len(),
        s.seeds.len(),
        s.missing.len()
    );
    if let Some(xa) = x_axis {
        // Lines: the other axes' values.
        let mut lines: Vec<(String, Vec<&CombinationSummary>)> = Vec::new();
        for c in &s.combinations {
            let label: Vec<String> = c
                .params
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != xa)
                .map(|(_, (a, v))| format!("{a}={v}"))
                .collect();
            let label = if label.is_empty() {
                "all".to_string()
            } else {
                label.join(", ")
            };
            match lines.iter_mut().find(|(l, _)| *l == label) {
                Some((_, v)) => v.push(c),
                None => lines.push((label, vec![c])),
            }
        }
        for (key, header, unit) in metric_keys(s) {
            let scale = if unit == "%" { 100.0 } else { 1.0 };
            let mut chart_series = Vec::new();
            let (mut xlo, mut xhi, mut yhi) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
            for (k, (label, combos)) in lines.iter().enumerate() {
                let mut pts: Vec<(f64, f64, f64)> = Vec::new();
                for c in combos {
                    let x: f64 = c.params[xa].1.parse().unwrap_or(f64::NAN);
                    if let Some((_, e)) = c.metrics.iter().find(|(m, _)| m == key) {
                        let ci = if e.ci95.is_finite() { e.ci95 } else { 0.0 };
                        pts.push((x, e.mean * scale, ci * scale));
                    }
                }
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                for &(x, m, ci) in &pts {
                    if x.is_finite() && m.is_finite() {
                        xlo = xlo.min(x);
                        xhi = xhi.max(x);
                        yhi = yhi.max(m + ci);
                    }
                }
                let mut line = series(
                    label,
                    k,
                    pts.iter().map(|&(x, m, _)| (x, m)).collect(),
                    false,
                );
                line.band = pts.iter().map(|&(x, m, ci)| (x, m - ci, m + ci)).collect();
                chart_series.push(line);
            }
            if !xlo.is_finite() {
                continue;
            }
            let y_label = match unit {
                "s" => format!("{header} (s)"),
                "%" => format!("{header} (%)"),
                "$" => format!("{header} (USD)"),
                _ => header.to_string(),
            };
            let chart = LineChart {
                title: format!("{header} against {}", names[xa]),
                x: ChartAxis::linear(xlo, xhi, &names[xa]),
                y: ChartAxis::linear(0.0, yhi.max(1e-9) * 1.05, &y_label),
                series: chart_series,
                width: WIDTH,
                height: 360.0,
            };
            body += &section(
                key,
                header,
                &format!(
                    "{header}: mean over seeds against {}, 95 % interval shaded.",
                    names[xa]
                ),
                &chart.render(),
            );
        }
    }
    let mut table = String::from("<table>\n<tr>");
    for n in &names {
        let _ = write!(table, "<th>{}</th>", esc(n));
    }
    table += "<th class=\"n\">runs</th>";
    let keys = metric_keys(s);
    for (_, h, _) in &keys {
        let _ = write!(table, "<th class=\"n\">{}</th>", esc(h));
    }
    table += "</tr>\n";
    for c in &s.combinations {
        table += "<tr>";
        for (_, v) in &c.params {
            let _ = write!(table, "<td>{}</td>", esc(v));
        }
        let _ = write!(table, "<td class=\"n\">{}</td>", c.runs);
        for (k, _, unit) in &keys {
            let cell = cell(c, k, unit);
            let _ = write!(table, "<td class=\"n\">{}</td>", esc(&cell));
        }
        table += "</tr>\n";
    }
    table += "</table>";
    body += &section(
        "summary",
        "Summary",
        "Mean ± 95 % confidence half-width over seeds.",
        &table,
    );
    page(&format!("sweep: {}", s.workload), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::new(
            "w.toml".into(),
            vec![
                Axis::parse("queue=fifo,sjf").unwrap(),
                Axis::parse("load=0.5,1").unwrap(),
            ],
            vec![1, 2, 3],
            2,
        )
        .unwrap()
    }

    #[test]
    fn runs_enumerate_axes_slowest_first_then_seeds() {
        let p = plan();
        assert_eq!((p.combinations(), p.len(), p.tasks()), (4, 12, 6));
        let r = p.run(7);
        assert_eq!(r.combination, 2);
        assert_eq!(r.seed, 2);
        assert_eq!(
            r.params,
            vec![
                ("queue".into(), "sjf".into()),
                ("load".into(), "0.5".into())
            ]
        );
        assert_eq!(p.task_runs(5), 10..12);
        let (ov, ed) = p.settings(&r).unwrap();
        assert_eq!(ov.queue, Some(QueuePolicy::Sjf));
        assert_eq!((ov.seed, ed.load), (Some(2), Some(0.5)));
    }

    #[test]
    fn bad_axes_and_seeds_are_refused() {
        for bad in [
            "queue",
            "queue=",
            "queue=lifo",
            "load=0",
            "load=x",
            "pool.=4",
            "pool.a=1.5",
            "color=red",
        ] {
            assert!(Axis::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_seeds("3..5").unwrap(), vec![3, 4, 5]);
        assert_eq!(parse_seeds("7,1").unwrap(), vec![7, 1]);
        for bad in ["5..3", "a..b", "", "1..2000000"] {
            assert!(parse_seeds(bad).is_err(), "{bad}");
        }
        let q = Axis::parse("queue=fifo").unwrap();
        assert!(Plan::new("w".into(), vec![q.clone(), q], vec![1], 1).is_err());
    }

    #[test]
    fn estimates_match_a_hand_computation() {
        // 2, 4, 6: mean 4, s = 2, t(2) = 4.303, half-width 4.303 x 2 / sqrt 3 = 4.9687.
        let e = Estimate::of(&[2.0, 4.0, 6.0]);
        assert_eq!(e.mean, 4.0);
        assert!((e.ci95 - 4.303 * 2.0 / 3f64.sqrt()).abs() < 1e-12);
        assert!(Estimate::of(&[1.0]).ci95.is_nan());
        assert_eq!(t95(1000), 1.96);
    }

    #[test]
    fn summaries_group_by_combination_and_list_the_missing() {
        let p = plan();
        let results: Vec<RunResult> = (0..12)
            .filter(|&i| i != 4)
            .map(|i| {
                let r = p.run(i);
                RunResult {
                    index: i,
                    params: r.params.into_iter().collect(),
                    seed: r.seed,
                    metrics: [("wait_mean_s".to_string(), i as f64)]
                        .into_iter()
                        .collect(),
                }
            })
            .collect();
        let s = summarize_sweep(&p, &results);
        assert_eq!(s.missing, vec![4]);
        assert_eq!(s.combinations[1].runs, 2);
        assert_eq!(s.combinations[1].metrics[0].1.mean, 4.0); // runs 3 and 5
        assert_eq!(s.combinations[0].metrics[0].1.mean, 1.0); // runs 0, 1, 2
        let md = summary_markdown(&s);
        assert!(
            md.starts_with("| queue | load | runs | mean wait |"),
            "{md}"
        );
        let csv = summary_csv(&s);
        assert!(
            csv.starts_with("queue,load,runs,wait_mean_s_mean,wait_mean_s_ci95\nfifo,0.5,3,1,"),
            "{csv}"
        );
        assert!(sweep_html(&s).contains("<svg"));
    }
}
