//! report.html and the fragmentation-study page: single self-contained files (inline CSS and SVG, no
//! scripts, fonts or network at view time). Pure: strings in, string out, same input -> same bytes.
//!
//! The plots are built with [`crate::output::svg`]. Every time axis comes from simulated time; the only run-specific
//! facts on the page are those of `report.run`.

use crate::domain::workload::{time_to_s, Workload};
use crate::engine::cluster::metrics::Stats;
use crate::engine::cluster::Outcome;
use crate::output::report::{enum_name, human_s, Report};
use crate::output::svg::{esc, Axis, HeatMap, HeatRow, LineChart, Series, PALETTE};
use std::fmt::Write as _;

/// Width of every plot in CSS pixels (the page scales them down on narrow screens).
pub const WIDTH: f64 = 960.0;
/// Width of plots shown side by side.
const HALF_WIDTH: f64 = 470.0;
/// Time columns of the occupancy heat map.
pub const HEAT_COLUMNS: usize = 200;
/// Most rows of the occupancy heat map before consecutive domains are grouped.
pub const HEAT_MAX_ROWS: usize = 64;
/// Most points a step line keeps before it is averaged into buckets.
const MAX_STEP_POINTS: usize = 2000;
/// Buckets of an averaged step line.
const STEP_BUCKETS: usize = 1000;
/// Most points of a CDF line (quantiles are kept beyond that).
const MAX_CDF_POINTS: usize = 1000;

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#111827;\
background:#f6f7f9;margin:0}main{max-width:1000px;margin:0 auto;padding:20px 24px 40px}\
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:0 0 4px}.sub{color:#4b5563;margin:0 0 16px}\
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:14px 16px;margin:14px 0}\
p.note{color:#4b5563;margin:0 0 8px;font-size:13px}svg{max-width:100%;height:auto;display:block}\
svg .tick{font:11px system-ui,sans-serif;fill:#4b5563}svg .axis{font:12px system-ui,sans-serif;fill:#111827}\
svg .legend{font:12px system-ui,sans-serif;fill:#111827}table{border-collapse:collapse;margin:6px 0 10px}\
td,th{padding:3px 12px 3px 0;text-align:left;border-bottom:1px solid #eef0f2}td.n,th.n{text-align:right}\
.grid{display:flex;flex-wrap:wrap;gap:0 24px;align-items:flex-start}.half{flex:1 1 440px;min-width:0}footer{color:#6b7280;font-size:12px;margin-top:18px}";

/// A whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        esc(title)
    )
}

/// A section with a heading, a one-line explanation and content.
pub fn section(id: &str, heading: &str, note: &str, content: &str) -> String {
    format!(
        "<section id=\"{id}\">\n<h2>{}</h2>\n<p class=\"note\">{}</p>\n{content}\n</section>\n",
        esc(heading),
        esc(note)
    )
}

/// A unit for an axis of durations up to `max_s` seconds: (seconds per unit, name).
fn time_unit(max_s: f64) -> (f64, &'static str) {
    if max_s <= 120.0 {
        (1.0, "s")
    } else if max_s <= 2.0 * 3600.0 {
        (60.0, "min")
    } else if max_s <= 3.0 * 86400.0 {
        (3600.0, "h")
    } else {
        (86400.0, "days")
    }
}

/// Step-function points (seconds, value) extended to `end`; beyond [`MAX_STEP_POINTS`] the time-weighted
/// mean of each of [`STEP_BUCKETS`] equal buckets, so huge runs still give a small file. The flag says
/// whether it averaged.
pub fn step_points(points: &[(f64, f64)], end: f64) -> (Vec<(f64, f64)>, bool) {
    let Some(&(_, last)) = points.last() else {
        return (Vec::new(), false);
    };
    let end = end.max(points[points.len() - 1].0);
    if points.len() <= MAX_STEP_POINTS || end <= 0.0 {
        let mut out = points.to_vec();
        out.push((end, last));
        return (out, false);
    }
    let bw = end / STEP_BUCKETS as f64;
    let mut acc = vec![0.0; STEP_BUCKETS];
    for (i, &(t, v)) in points.iter().enumerate() {
        let next = points.get(i + 1).map_or(end, |p| p.0);
        let (mut a, b) = (t.max(0.0), next.min(end));
        while a < b {
            let k = ((a / bw) as usize).min(STEP_BUCKETS - 1);
            let edge = if k == STEP_BUCKETS - 1 {
                b
            } else {
                ((k + 1) as f64 * bw).min(b)
            };
            acc[k] += v * (edge - a);
            if edge <= a {
                break; // float edge case: never loop forever
            }
            a = edge;
        }
    }
    let mut out: Vec<(f64, f64)> = acc
        .iter()
        .enumerate()
        .map(|(k, s)| (k as f64 * bw, s / bw))
        .collect();
    out.push((end, acc[STEP_BUCKETS - 1] / bw));
    (out, true)
}

/// Empirical CDF points (value, % at or below) as a step line, at most [`MAX_CDF_POINTS`] of them.
pub fn cdf_points(values: &mut [f64]) -> Vec<(f64, f64)> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    let stride = n.div_ceil(MAX_CDF_POINTS);
    let mut out = vec![(values[0], 0.0)];
    for (i, &v) in values.iter().enumerate() {
        if (i + 1) % stride == 0 || i + 1 == n {
            out.push((v, (i + 1) as f64 * 100.0 / n as f64));
        }
    }
    out
}

/// Durations for log-axis ticks, with labels.
const DURATION_TICKS: [(f64, &str); 18] = [
    (1.0, "1s"),
    (2.0, "2s"),
    (5.0, "5s"),
    (10.0, "10s"),
    (30.0, "30s"),
    (60.0, "1m"),
    (300.0, "5m"),
    (600.0, "10m"),
    (1800.0, "30m"),
    (3600.0, "1h"),
    (7200.0, "2h"),
    (21600.0, "6h"),
    (43200.0, "12h"),
    (86400.0, "1d"),
    (172800.0, "2d"),
    (604800.0, "1w"),
    (2592000.0, "30d"),
    (31536000.0, "1y"),
];

/// A log axis of durations in seconds with human tick labels.
fn duration_log_axis(lo: f64, hi: f64, label: &str) -> Axis {
    let lo = (lo / 1.25).max(0.1);
    let hi = (hi * 1.25).max(lo * 10.0);
    let mut ticks: Vec<(f64, String)> = DURATION_TICKS
        .iter()
        .filter(|(v, _)| *v >= lo && *v <= hi)
        .map(|(v, l)| (*v, l.to_string()))
        .collect();
    if ticks.len() > 8 {
        // Keep the decade-like ones so labels do not crowd.
        let keep = [
            "1s", "10s", "1m", "10m", "1h", "6h", "1d", "1w", "30d", "1y",
        ];
        ticks.retain(|(_, l)| keep.contains(&l.as_str()));
    }
    Axis {
        lo,
        hi,
        log: true,
        label: label.into(),
        ticks,
    }
}

pub fn series(name: &str, color: usize, points: Vec<(f64, f64)>, step: bool) -> Series {
    Series {
        name: name.into(),
        color: PALETTE[color % PALETTE.len()].into(),
        points,
        step,
        dashed: false,
        band: Vec::new(),
    }
}

/// The end of the time axis: the makespan, or the last sample when nothing completed.
fn horizon(o: &Outcome) -> u64 {
    let last_sample = o.samples.last().map_or(0, |s| s.time);
    let last_segment = o.segments.iter().map(|s| s.end).max().unwrap_or(0);
    o.makespan.max(last_sample).max(last_segment)
}

/// Utilisation and queue charts over time.
fn time_charts(w: &Workload, o: &Outcome) -> (String, String, bool) {
    let end_s = time_to_s(horizon(o));
    let (unit, unit_name) = time_unit(end_s);
    let total = w.cluster.total_gpus.max(1) as f64;
    let mut util: Vec<(f64, f64)> = Vec::with_capacity(o.samples.len() + 1);
    let mut queue: Vec<(f64, f64)> = Vec::with_capacity(o.samples.len() + 1);
    if o.samples.first().is_some_and(|s| s.time > 0) {
        util.push((0.0, 0.0));
        queue.push((0.0, 0.0));
    }
    for s in &o.samples {
        let t = time_to_s(s.time) / unit;
        util.push((t, s.busy_gpus as f64 * 100.0 / total));
        queue.push((t, s.queued as f64));
    }
    let (util, averaged) = step_points(&util, end_s / unit);
    let (queue, _) = step_points(&queue, end_s / unit);
    let running: Vec<(f64, f64)> = {
        let mut r: Vec<(f64, f64)> = Vec::new();
        if o.samples.first().is_some_and(|s| s.time > 0) {
            r.push((0.0, 0.0));
        }
        r.extend(
            o.samples
                .iter()
                .map(|s| (time_to_s(s.time) / unit, s.running as f64)),
        );
        step_points(&r, end_s / unit).0
    };
    let x = Axis::linear(0.0, end_s / unit, &format!("simulated time ({unit_name})"));
    let util_chart = LineChart {
        title: "GPU utilisation over time".into(),
        x: x.clone(),
        y: Axis::linear(0.0, 100.0, "busy GPUs (% of the cluster)"),
        series: vec![series("busy GPUs %", 0, util, true)],
        width: WIDTH,
        height: 230.0,
    };
    let qmax = queue
        .iter()
        .chain(&running)
        .map(|p| p.1)
        .fold(1.0, f64::max);
    let queue_chart = LineChart {
        title: "Queue length over time".into(),
        x,
        y: Axis::linear(0.0, qmax, "jobs"),
        series: vec![
            series("waiting", 1, queue, true),
            series("running", 2, running, true),
        ],
        width: WIDTH,
        height: 230.0,
    };
    (util_chart.render(), queue_chart.render(), averaged)
}

/// JCT and wait CDFs, one line per job kind with data.
fn cdf_charts(w: &Workload, o: &Outcome) -> (String, String) {
    // One line per job kind present: training, inference, then any other kind by name.
    let mut kinds: Vec<&'static str> = w.jobs.iter().map(|j| j.kind.as_str()).collect();
    let rank = |k: &str| match k {
        "training" => 0,
        "inference" => 1,
        _ => 2,
    };
    kinds.sort_by(|a, b| (rank(a), a).cmp(&(rank(b), b)));
    kinds.dedup();
    let mut jct: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut wait: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for (job, out) in w.jobs.iter().zip(&o.jobs) {
        let k = kinds
            .iter()
            .position(|&k| k == job.kind.as_str())
            .unwrap_or(0);
        if let Some(end) = out.end {
            jct[k].push(time_to_s(end.saturating_sub(job.submit)));
        }
        if let Some(start) = out.start {
            wait[k].push(time_to_s(start.saturating_sub(job.submit)));
        }
    }
    let positive = jct.iter().flatten().copied().filter(|v| *v > 0.0);
    let lo = positive.clone().fold(f64::INFINITY, f64::min);
    let hi = positive.fold(0.0, f64::max);
    let (lo, hi) = if lo.is_finite() {
        (lo, hi)
    } else {
        (1.0, 10.0)
    };
    let wmax = wait.iter().flatten().copied().fold(0.0, f64::max);
    let (unit, unit_name) = time_unit(wmax);
    let y = Axis::linear(0.0, 100.0, "% of jobs at or below x");
    let mut jct_series = Vec::new();
    let mut wait_series = Vec::new();
    for (k, kind) in kinds.iter().enumerate() {
        let n = jct[k].len();
        if n > 0 {
            let name = format!("{} ({n} {})", kind, if n == 1 { "job" } else { "jobs" });
            jct_series.push(series(&name, k, cdf_points(&mut jct[k]), true));
        }
        let n = wait[k].len();
        if n > 0 {
            let mut pts = cdf_points(&mut wait[k]);
            pts.iter_mut().for_each(|p| p.0 /= unit);
            let name = format!("{} ({n} {})", kind, if n == 1 { "job" } else { "jobs" });
            wait_series.push(series(&name, k, pts, true));
        }
    }
    let jct_chart = LineChart {
        title: "Job completion time CDF per job kind".into(),
        x: duration_log_axis(lo, hi, "JCT, submit to end (log scale)"),
        y: y.clone(),
        series: jct_series,
        width: HALF_WIDTH,
        height: 300.0,
    };
    let wait_chart = LineChart {
        title: "Wait CDF per job kind".into(),
        x: Axis::linear(
            0.0,
            (wmax / unit).max(1.0),
            &format!("wait, submit to first start ({unit_name})"),
        ),
        y,
        series: wait_series,
        width: HALF_WIDTH,
        height: 300.0,
    };
    (jct_chart.render(), wait_chart.render())
}

/// Occupancy heat map rows: consecutive domains of one pool grouped so there are at most about
/// [`HEAT_MAX_ROWS`] rows, each with `cols` busy fractions over `0..horizon`.
pub fn occupancy_rows(w: &Workload, o: &Outcome, cols: usize) -> Vec<HeatRow> {
    let c = &w.cluster;
    let group = c.num_domains().div_ceil(HEAT_MAX_ROWS).max(1) as u32;
    let mut rows = Vec::new();
    let mut row_of_domain = vec![0usize; c.num_domains()];
    let mut capacity = Vec::new();
    for p in &c.pools {
        let mut d = 0;
        while d < p.domains {
            let n = group.min(p.domains - d);
            for k in 0..n {
                row_of_domain[(p.first_domain + d + k) as usize] = rows.len();
            }
            // Long pool names are shortened in the label (the tooltip has the whole name).
            let short: String = if p.name.chars().count() > 16 {
                p.name.chars().take(15).chain(['…']).collect()
            } else {
                p.name.clone()
            };
            let (label, title) = if n == 1 {
                (
                    format!("{short} d{d}"),
                    format!("pool {}, NVLink domain {d}", p.name),
                )
            } else {
                (
                    format!("{short} d{d}-{}", d + n - 1),
                    format!("pool {}, NVLink domains {d} to {}", p.name, d + n - 1),
                )
            };
            rows.push(HeatRow {
                label,
                title,
                values: vec![0.0; cols],
                rule_above: d == 0,
            });
            capacity.push(n as f64 * p.domain_gpus() as f64);
            d += n;
        }
    }
    let end = horizon(o) as f64;
    if end <= 0.0 || cols == 0 {
        return rows;
    }
    let bw = end / cols as f64;
    for seg in &o.segments {
        let (s, e) = (seg.start as f64, seg.end as f64);
        if e <= s {
            continue;
        }
        let b0 = ((s / bw) as usize).min(cols - 1);
        let b1 = ((e / bw) as usize).min(cols - 1);
        for &(d, gpus) in &seg.domains {
            let Some(&r) = row_of_domain.get(d as usize) else {
                continue;
            };
            for b in b0..=b1 {
                let lo = s.max(b as f64 * bw);
                let hi = e.min((b + 1) as f64 * bw);
                if hi > lo {
                    rows[r].values[b] += gpus as f64 * (hi - lo);
                }
            }
        }
    }
    for (row, cap) in rows.iter_mut().zip(&capacity) {
        for v in &mut row.values {
            *v /= cap * bw;
        }
    }
    rows
}

/// The headline table.
fn summary_tables(r: &Report) -> String {
    let s = &r.summary;
    let j = &s.jobs;
    let mut t = String::from("<div class=\"grid\">\n<table>\n");
    let rows: [(&str, String); 9] = [
        ("makespan", human_s(s.makespan_s)),
        (
            "GPU utilisation",
            format!("{:.1} %", s.gpu_utilization * 100.0),
        ),
        ("jobs submitted", j.submitted.to_string()),
        ("completed", j.completed.to_string()),
        ("unschedulable", j.unschedulable.to_string()),
        (
            "training / inference",
            format!("{} / {}", j.training, j.inference),
        ),
        (
            "backfilled / preemptions",
            format!("{} / {}", j.backfilled, j.preemptions),
        ),
        (
            "gangs split beyond the fewest domains",
            s.training_gangs_split.to_string(),
        ),
        ("longest queue", s.max_queue_length.to_string()),
    ];
    for (k, v) in rows {
        let _ = writeln!(
            t,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            esc(k),
            esc(&v)
        );
    }
    t += "</table>\n<table>\n<tr><th></th><th class=\"n\">mean</th><th class=\"n\">p50</th>\
          <th class=\"n\">p90</th><th class=\"n\">p99</th><th class=\"n\">max</th></tr>\n";
    let stat_row = |t: &mut String, name: &str, st: &Stats, secs: bool| {
        let f = |v: f64| if secs { human_s(v) } else { format!("{v:.2}") };
        let _ = writeln!(
            t,
            "<tr><th>{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(name),
            f(st.mean),
            f(st.p50),
            f(st.p90),
            f(st.p99),
            f(st.max)
        );
    };
    stat_row(&mut t, "JCT", &s.jct_s, true);
    stat_row(&mut t, "wait", &s.wait_s, true);
    stat_row(
        &mut t,
        "domains per gang",
        &s.training_domains_spanned,
        false,
    );
    t += "</table>\n</div>";
    t
}

/// One line of the latency plots: name, TTFT samples, TPOT samples (seconds).
type LatencyLine = (String, Vec<f64>, Vec<f64>);

/// Request-level TTFT and TPOT CDFs per inference service (all services as one line past 8); `None` when
/// no service was served request by request, so the page never shows an empty or made-up plot.
fn inference_latency_section(report: &Report) -> Option<String> {
    let inf = report.inference.as_ref()?;
    let mut lines: Vec<LatencyLine> = if inf.per_service.len() <= 8 {
        inf.per_service
            .iter()
            .map(|s| {
                (
                    format!("{} ({})", s.id, s.model),
                    s.outcome.latencies.ttft_s.clone(),
                    s.outcome.latencies.tpot_s.clone(),
                )
            })
            .collect()
    } else {
        let all = |f: &dyn Fn(&crate::engine::serving::traffic::Latencies) -> &Vec<f64>| {
            inf.per_service
                .iter()
                .flat_map(|s| f(&s.outcome.latencies).iter().copied())
                .collect::<Vec<f64>>()
        };
        vec![(
            format!("all {} services", inf.per_service.len()),
            all(&|l| &l.ttft_s),
            all(&|l| &l.tpot_s),
        )]
    };
    lines.retain(|(_, t, _)| !t.is_empty());
    if lines.is_empty() {
        return None;
    }
    let chart = |title: &str, label: &str, pick: &dyn Fn(&LatencyLine) -> Vec<f64>| {
        let mut series_list = Vec::new();
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for (k, line) in lines.iter().enumerate() {
            let mut v: Vec<f64> = pick(line).into_iter().filter(|x| *x > 0.0).collect();
            if v.is_empty() {
                continue;
            }
            let pts = cdf_points(&mut v);
            lo = lo.min(pts.first().map_or(lo, |p| p.0));
            hi = hi.max(pts.last().map_or(hi, |p| p.0));
            series_list.push(series(&line.0, k, pts, true));
        }
        LineChart {
            title: title.into(),
            x: latency_log_axis(lo, hi, label),
            y: Axis::linear(0.0, 100.0, "% of requests at or below x"),
            series: series_list,
            width: HALF_WIDTH,
            height: 300.0,
        }
        .render()
    };
    let ttft = chart(
        "Time to first token CDF per service",
        "TTFT (log scale)",
        &|l| l.1.clone(),
    );
    let tpot = chart(
        "Time per output token CDF per service",
        "TPOT (log scale)",
        &|l| l.2.clone(),
    );
    Some(section(
        "inference",
        "Inference: request latency",
        &format!(
            "{} requests over {} services; SLO met by {:.1} %; TTFT p50 {:.3} s, p99 {:.3} s; TPOT p50 {:.1} ms, p99 {:.1} ms",
            inf.requests,
            inf.services,
            inf.slo_attainment * 100.0,
            inf.ttft_s.p50,
            inf.ttft_s.p99,
            inf.tpot_s.p50 * 1e3,
            inf.tpot_s.p99 * 1e3
        ),
        &format!("<div class=\"grid\"><div class=\"half\">{ttft}</div><div class=\"half\">{tpot}</div></div>"),
    ))
}

/// A log axis of latencies in seconds, ticks from 1 ms to 10 min.
fn latency_log_axis(lo: f64, hi: f64, label: &str) -> Axis {
    const TICKS: [(f64, &str); 8] = [
        (0.001, "1ms"),
        (0.01, "10ms"),
        (0.1, "100ms"),
        (1.0, "1s"),
        (10.0, "10s"),
        (60.0, "1m"),
        (600.0, "10m"),
        (3600.0, "1h"),
    ];
    let lo = if lo.is_finite() {
        (lo / 1.25).max(1e-4)
    } else {
        1e-3
    };
    let hi = (hi * 1.25).max(lo * 10.0);
    Axis {
        lo,
        hi,
        log: true,
        label: label.into(),
        ticks: TICKS
            .iter()
            .filter(|(v, _)| *v >= lo && *v <= hi)
            .map(|(v, l)| (*v, l.to_string()))
            .collect(),
    }
}

/// report.html for one run: headline table, utilisation and queue over time, JCT and wait CDFs per job kind,
/// and occupancy per NVLink domain. Deterministic: only `report.run` differs between identical runs.
pub fn report_html(w: &Workload, o: &Outcome, report: &Report) -> String {
    let sc = &report.scheduler;
    let pools: Vec<String> = report
        .cluster
        .pools
        .iter()
        .map(|p| format!("{} ({} x{}, {} GPUs)", p.name, p.preset, p.domains, p.gpus))
        .collect();
    let mut body = format!(
        "<h1>{}</h1>\n<p class=\"sub\">seed {} &middot; {} GPUs in {} NVLink domains: {} &middot; queue {}{}{}, \
         placement {}</p>\n",
        esc(&report.workload),
        report.seed,
        report.cluster.total_gpus,
        report.cluster.domains,
        esc(&pools.join(", ")),
        esc(&enum_name(&sc.queue)),
        sc.backfill.label(),
        if sc.preemption { " + preemption" } else { "" },
        esc(&enum_name(&sc.placement)),
    );
    body += &section(
        "summary",
        "Summary",
        "Headline numbers of the run (the same as report.json). JCT is submit to end; wait is submit to \
         first start; a gang is split when it spans more NVLink domains than the fewest it could fit in.",
        &summary_tables(report),
    );
    let (util, queue, averaged) = time_charts(w, o);
    let avg_note = if averaged {
        " Long run: each step is the time-weighted mean of 1/1000 of the run."
    } else {
        ""
    };
    body += &section(
        "utilisation",
        "GPU utilisation and queue length over time",
        &format!(
            "Top: share of the cluster's GPUs held by running jobs. Bottom: jobs waiting to start and jobs \
             running. Both are sampled after every scheduling round.{avg_note}"
        ),
        &format!("{util}\n{queue}"),
    );
    let (jct, wait) = cdf_charts(w, o);
    body += &section(
        "cdf",
        "Job completion time and wait, CDF per job kind",
        "For each x, the share of jobs at or below it: left, JCT (submit to end) of completed jobs, log \
         scale; right, wait (submit to first start) of started jobs, where a line starting above 0 % is the \
         share that started on arrival. Lines further left are better.",
        &format!("<div class=\"grid\"><div class=\"half\">{jct}</div><div class=\"half\">{wait}</div></div>"),
    );
    let rows = occupancy_rows(w, o, HEAT_COLUMNS);
    let grouped = w.cluster.num_domains() > HEAT_MAX_ROWS;
    let end_s = time_to_s(horizon(o));
    let (unit, unit_name) = time_unit(end_s);
    let heat = HeatMap {
        title: "Occupancy per NVLink domain over time".into(),
        x: Axis::linear(0.0, end_s / unit, &format!("simulated time ({unit_name})")),
        rows,
        width: WIDTH,
    };
    body += &section(
        "occupancy",
        "Occupancy per pool and NVLink domain",
        &format!(
            "Busy fraction of each NVLink domain{} in {HEAT_COLUMNS} time columns: white is idle, dark \
             blue is full. Lines separate pools. Horizontal stripes of light cells next to dark ones \
             show fragmentation.",
            if grouped {
                " (consecutive domains grouped into one row)"
            } else {
                ""
            }
        ),
        &heat.render(),
    );
    if let Some(s) = inference_latency_section(report) {
        body += &s;
    }
    if let Some(s) = sharing_section(w, o) {
        body += &s;
    }
    if let Some(s) = failures_section(w, o) {
        body += &s;
    }
    let run = &report.run;
    let _ = writeln!(
        body,
        "<footer>ultrasched {} &middot; placement kernel: {} ({}) &middot; simulated in {:.2} s wall time &middot; \
         {} scheduling rounds, {} kernel calls</footer>",
        esc(&run.version),
        esc(&run.backend),
        esc(&run.adapter),
        run.wall_s,
        report.engine.rounds,
        report.engine.kernel_calls
    );
    page(&format!("ultrasched report: {}", report.workload), &body)
}

/// How the fleet was shared over time: GPUs by use (stacked: inference, then training on top, then free up
/// to the total), each autoscaled service's replicas and request rate, and its SLO attainment per hour.
fn sharing_section(w: &Workload, o: &Outcome) -> Option<String> {
    crate::engine::cluster::metrics::sharing_report(w, o)?;
    let end_s = time_to_s(horizon(o));
    let (unit, unit_name) = time_unit(end_s);
    let x = Axis::linear(0.0, end_s / unit, &format!("simulated time ({unit_name})"));
    let (mut inf, mut busy) = (vec![(0.0, 0.0)], vec![(0.0, 0.0)]);
    for s in &o.samples {
        let t = time_to_s(s.time) / unit;
        inf.push((t, s.inference_gpus as f64));
        busy.push((t, s.busy_gpus as f64));
    }
    let total = w.cluster.total_gpus as f64;
    let gpus = LineChart {
        title: "GPUs by use over time (stacked)".into(),
        x: x.clone(),
        y: Axis::linear(0.0, total, "GPUs"),
        series: vec![
            series("inference", 3, step_points(&inf, end_s / unit).0, true),
            series(
                "inference + training",
                0,
                step_points(&busy, end_s / unit).0,
                true,
            ),
            series(
                "fleet (above the line: free)",
                7,
                vec![(0.0, total), (end_s / unit, total)],
                false,
            ),
        ],
        width: WIDTH,
        height: 260.0,
    };
    let mut replicas = Vec::new();
    let mut rate = Vec::new();
    let mut slo = Vec::new();
    for (k, run) in o.services.iter().enumerate() {
        let job = &w.jobs[run.job];
        let name = job.id.as_str();
        let pts: Vec<(f64, f64)> = run
            .timeline
            .iter()
            .map(|&(t, n)| (time_to_s(t) / unit, f64::from(n)))
            .collect();
        replicas.push(series(name, k, pts, true));
        // Requests sent and SLO attainment per hour of arrival.
        let hours = ((run.end - run.start) as f64 / 3.6e9).ceil().max(1.0) as usize;
        let (mut sent, mut met) = (vec![0u64; hours], vec![0u64; hours]);
        let target = job.serving.as_ref().map(|s| s.slo);
        for r in run.result.requests.iter().filter(|r| !r.cancelled) {
            let h = ((r.arrival_us as f64 / 3.6e9) as usize).min(hours - 1);
            sent[h] += 1;
            met[h] += u64::from(target.is_some_and(|t| r.meets(t)));
        }
        let at = |h: usize| (time_to_s(run.start) + (h as f64 + 0.5) * 3600.0) / unit;
        rate.push(series(
            name,
            k,
            (0..hours)
                .map(|h| (at(h), sent[h] as f64 / 3600.0))
                .collect(),
            false,
        ));
        slo.push(series(
            name,
            k,
            (0..hours)
                .map(|h| {
                    let v = if sent[h] > 0 {
                        met[h] as f64 * 100.0 / sent[h] as f64
                    } else {
                        f64::NAN
                    };
                    (at(h), v)
                })
                .collect(),
            false,
        ));
    }
    let ymax = |v: &[crate::output::svg::Series]| {
        v.iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| y.is_finite())
            .fold(1.0, f64::max)
    };
    let charts = [
        LineChart {
            title: "Replicas per autoscaled service".into(),
            x: x.clone(),
            y: Axis::linear(0.0, ymax(&replicas), "replicas (serving or starting)"),
            series: replicas,
            width: WIDTH,
            height: 220.0,
        },
        LineChart {
            title: "Traffic per service (requests sent per second, hourly)".into(),
            x: x.clone(),
            y: Axis::linear(0.0, ymax(&rate), "requests / s"),
            series: rate,
            width: WIDTH,
            height: 220.0,
        },
        LineChart {
            title: "SLO attainment per hour of arrival".into(),
            x,
            y: Axis::linear(0.0, 100.0, "requests meeting both SLOs (%)"),
            series: slo,
            width: WIDTH,
            height: 220.0,
        },
    ];
    let mut content = gpus.render();
    for c in &charts {
        if !c.series.is_empty() {
            content.push('\n');
            content += &c.render();
        }
    }
    Some(section(
        "sharing",
        "Sharing the fleet between training and inference",
        &format!(
            "Policy {}: GPUs held by inference services at the bottom, training and RL jobs on top, free              GPUs above up to the fleet; then each autoscaled service's replicas, its traffic and the share              of its requests that met both SLOs, by hour of arrival.",
            w.scheduler.sharing.as_str()
        ),
        &content,
    ))
}

/// Node failures over time (cumulative job interruptions, by cause) and the effective training time of
/// every completed training job, lowest first.
fn failures_section(w: &Workload, o: &Outcome) -> Option<String> {
    use crate::domain::failures::Cause;
    let f = o.failures.as_ref()?;
    let end_s = time_to_s(horizon(o));
    let (unit, unit_name) = time_unit(end_s);
    let x = Axis::linear(0.0, end_s / unit, &format!("simulated time ({unit_name})"));
    let mut by_cause: Vec<Vec<(f64, f64)>> = vec![vec![(0.0, 0.0)]; Cause::ALL.len()];
    let mut count = [0u32; 5];
    for &(t, c, n) in &f.timeline {
        count[c.index()] += n;
        by_cause[c.index()].push((time_to_s(t) / unit, f64::from(count[c.index()])));
    }
    let top = count.iter().copied().max().unwrap_or(0).max(1);
    let over_time = LineChart {
        title: "Job interruptions by node failures (cumulative, by cause)".into(),
        x,
        y: Axis::linear(0.0, f64::from(top), "interruptions"),
        series: Cause::ALL
            .iter()
            .zip(by_cause)
            .enumerate()
            .map(|(k, (c, mut pts))| {
                pts.push((end_s / unit, f64::from(count[c.index()])));
                series(c.as_str(), k, pts, true)
            })
            .collect(),
        width: WIDTH,
        height: 240.0,
    };
    let mut ett: Vec<f64> = crate::engine::cluster::metrics::effective_training_times(w, o)
        .into_iter()
        .flatten()
        .map(|e| e * 100.0)
        .collect();
    ett.sort_by(f64::total_cmp);
    let n = ett.len().max(1) as f64;
    let lowest = ett.first().copied().unwrap_or(100.0);
    let per_job = LineChart {
        title: "Effective training time per job, lowest first".into(),
        x: Axis::linear(0.0, 100.0, "completed training jobs (%)"),
        y: Axis::linear(
            lowest.min(90.0).floor(),
            100.0,
            "effective training time (%)",
        ),
        series: vec![series(
            "jobs",
            0,
            ett.iter()
                .enumerate()
                .map(|(i, &e)| ((i as f64 + 0.5) * 100.0 / n, e))
                .collect(),
            false,
        )],
        width: WIDTH,
        height: 220.0,
    };
    Some(section(
        "failures",
        "Failures and effective training time",
        "Every job a node failure stopped, counted by cause as it happened; then each completed training \
         job's effective training time (GPU time held less work lost since its last checkpoint, restarts and \
         checkpoint writes, over its GPUs x wall time), lowest first.",
        &format!("{}\n{}", over_time.render(), per_job.render()),
    ))
}

/// Columns of a fragmentation-study table (arrived % of cluster capacity).
const FRAG_TABLE_COLUMNS: [usize; 5] = [90, 100, 110, 120, 130];

/// The fragmentation study as one self-contained page: allocation ratio (%) against arrived workload (% of
/// cluster GPU capacity), one line per policy. Column i of a curve is i % arrived; a non-finite value is a
/// gap. `reference` curves (e.g. the published ones) are dashed, in the colour of the policy of the same
/// name.
pub fn frag_study_html(
    title: &str,
    curves: &[(String, Vec<f64>)],
    reference: Option<&[(String, Vec<f64>)]>,
) -> String {
    let points = |c: &[f64]| -> Vec<(f64, f64)> {
        c.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect()
    };
    let mut lines: Vec<Series> = curves
        .iter()
        .enumerate()
        .map(|(k, (name, c))| series(name, k, points(c), false))
        .collect();
    for (k, (name, c)) in reference.unwrap_or_default().iter().enumerate() {
        let color = curves
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or(curves.len() + k);
        let mut s = series(&format!("{name} (reference)"), color, points(c), false);
        s.dashed = true;
        lines.push(s);
    }
    let xmax = lines
        .iter()
        .map(|s| s.points.len().saturating_sub(1))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let ymax = lines
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(100.0, f64::max);
    let chart = LineChart {
        title: "GPU allocation ratio against arrived workload".into(),
        x: Axis::linear(0.0, xmax, "arrived workload (% of cluster GPU capacity)"),
        y: Axis::linear(0.0, ymax, "GPUs allocated (%)"),
        series: lines,
        width: WIDTH,
        height: 420.0,
    };
    let mut table = String::from("<table>\n<tr><th>policy</th>");
    for c in FRAG_TABLE_COLUMNS {
        let _ = write!(table, "<th class=\"n\">at {c} %</th>");
    }
    table += "</tr>\n";
    let all = curves.iter().map(|c| (c, "")).chain(
        reference
            .unwrap_or_default()
            .iter()
            .map(|c| (c, " (reference)")),
    );
    for ((name, c), suffix) in all {
        let _ = write!(table, "<tr><th>{}{suffix}</th>", esc(name));
        for col in FRAG_TABLE_COLUMNS {
            let cell = c
                .get(col)
                .filter(|v| v.is_finite())
                .map_or("&ndash;".to_string(), |v| format!("{v:.2}"));
            let _ = write!(table, "<td class=\"n\">{cell}</td>");
        }
        table += "</tr>\n";
    }
    table += "</table>";
    let mut body = format!("<h1>{}</h1>\n", esc(title));
    body += &section(
        "allocation",
        "Allocation ratio",
        "Share of the cluster's GPUs allocated as the workload arrives (x: GPUs requested so far, in % of \
         the cluster). Where a line falls below the others, its policy fragmented the cluster and turned \
         tasks away earlier. Dashed lines are reference curves.",
        &chart.render(),
    );
    body += &section(
        "table",
        "Allocation ratio at high load",
        "Allocation ratio (%) at a few arrived levels; a dash where the curve has no value.",
        &table,
    );
    page(title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_points_extend_to_the_end_and_average_long_series() {
        let (p, avg) = step_points(&[(0.0, 1.0), (2.0, 3.0)], 10.0);
        assert_eq!((p, avg), (vec![(0.0, 1.0), (2.0, 3.0), (10.0, 3.0)], false));
        // 4000 alternating points: every bucket averages to 0.5, and the mean over time is kept.
        let long: Vec<(f64, f64)> = (0..4000).map(|i| (i as f64, (i % 2) as f64)).collect();
        let (p, avg) = step_points(&long, 4000.0);
        assert!(avg);
        assert_eq!(p.len(), STEP_BUCKETS + 1);
        assert!(
            p.iter().all(|&(_, v)| (v - 0.5).abs() < 1e-9),
            "{:?}",
            &p[..3]
        );
        assert_eq!(step_points(&[], 5.0).0, vec![]);
    }

    #[test]
    fn cdf_points_end_at_100_percent_and_stay_small() {
        assert_eq!(
            cdf_points(&mut [3.0, 1.0, 2.0]),
            vec![
                (1.0, 0.0),
                (1.0, 100.0 / 3.0),
                (2.0, 200.0 / 3.0),
                (3.0, 100.0)
            ]
        );
        let mut many: Vec<f64> = (0..5000).map(f64::from).collect();
        let p = cdf_points(&mut many);
        assert!(p.len() <= MAX_CDF_POINTS + 1);
        assert_eq!(p.last(), Some(&(4999.0, 100.0)));
        assert!(cdf_points(&mut []).is_empty());
    }

    #[test]
    fn duration_axis_keeps_few_readable_ticks() {
        let a = duration_log_axis(30.0, 200000.0, "jct");
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["1m", "10m", "1h", "6h", "1d"]);
        assert!(a.log && a.lo > 0.0);
    }

    #[test]
    fn frag_study_page_draws_each_policy_and_reference() {
        let curve: Vec<f64> = (0..=130).map(|i| (i as f64).min(95.0)).collect();
        let mut gap = curve.clone();
        gap[120] = f64::NAN;
        let curves = vec![
            ("FGD".to_string(), curve.clone()),
            ("BestFit".to_string(), gap),
        ];
        let reference = vec![("FGD".to_string(), curve)];
        let html = frag_study_html("openb <default>", &curves, Some(&reference));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<h1>openb &lt;default&gt;</h1>"));
        assert_eq!(html.matches("<svg").count(), 1);
        // Policy lines + legend swatches: 3 series, reference dashed in FGD's colour.
        assert_eq!(html.matches("stroke-dasharray").count(), 2);
        assert_eq!(
            html.matches(&format!("stroke=\"{}\" stroke-width=\"1.8\"", PALETTE[0]))
                .count(),
            2
        );
        assert!(html.contains("<th>BestFit</th><td class=\"n\">90.00</td><td class=\"n\">95.00</td><td class=\"n\">95.00</td><td class=\"n\">&ndash;</td>"));
        // Self-contained: no scripts, and the only URL is the SVG namespace.
        assert!(!html.contains("<script"));
        assert_eq!(
            html.matches("http").count(),
            html.matches("http://www.w3.org/2000/svg").count()
        );
        assert_eq!(
            html,
            frag_study_html("openb <default>", &curves, Some(&reference))
        );
    }
}
