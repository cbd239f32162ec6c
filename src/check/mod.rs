//! `ultrasched check`: an independent checker of a finished run. It recomputes, from the output files and
//! the workload alone, what a correct schedule must satisfy, and names the first violation.
//!
//! It shares no code with the engine: it imports only the typed workload (jobs, pool shapes) and the error
//! type (tests/layers.rs enforces that), does its own topology arithmetic (pool -> domain -> rack -> node),
//! parses the files itself, and decides on integer microseconds. What it checks:
//! - the files: one jobs.csv row per workload job, in order; placement rows that name known jobs, pools,
//!   domains and nodes; segments numbered from 0, each with one start and end, in time order, not overlapping;
//! - capacity: at no instant does a node hold more GPUs than it has (segments hold `[start, end)`);
//! - each job: starts at or after its submit time (jobs.csv agrees with its first segment), completed jobs end
//!   exactly once (at the end of their last segment), unschedulable jobs never ran and fit no pool even when
//!   empty; preemptions + resizes + interruptions (by node failures) = segments - 1;
//! - each gang of each segment: the GPUs its job asked for, on an acceptable GPU model, inside one group of its
//!   `required` level (domain, rack or pool); an autoscaled service holds 1..=max_replicas replica gangs, an
//!   elastic job min_gpus..=gpus in whole tensor-parallel groups;
//! - power and contracts: no site above its power cap at any instant; nothing but an autoscaled service on
//!   on-demand capacity before `spill_after_s`;
//! - report.json: job counts, makespan, GPU utilisation, busy cost and the cost by contract equal to the
//!   ones recomputed here.

use crate::domain::cluster::{LEVEL_DOMAIN, LEVEL_RACK};
use crate::domain::workload::{Job, JobKind, Time, Workload};
use crate::error::{InputError, Location};
use std::collections::HashMap;

/// The files of one run, as text.
#[derive(Debug, Clone, Copy)]
pub struct RunFiles<'a> {
    /// report.json.
    pub report_json: &'a str,
    /// jobs.csv.
    pub jobs_csv: &'a str,
    /// placements.csv.
    pub placements_csv: &'a str,
}

/// Why a check did not pass.
#[derive(Debug)]
pub enum CheckError {
    /// A file cannot be read as the format it should have (exit code 2).
    Malformed(InputError),
    /// The files are well formed but the schedule is wrong (exit code 1): the first violation found.
    Violation(String),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::Malformed(e) => write!(f, "{e}"),
            CheckError::Violation(v) => write!(f, "violation: {v}"),
        }
    }
}

impl From<InputError> for CheckError {
    fn from(e: InputError) -> Self {
        CheckError::Malformed(e)
    }
}

fn violation<T>(msg: impl Into<String>) -> Result<T, CheckError> {
    Err(CheckError::Violation(msg.into()))
}

/// What was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Jobs.
    pub jobs: usize,
    /// Jobs that completed.
    pub completed: usize,
    /// Segments (a job's stretches on GPUs).
    pub segments: usize,
    /// Placement rows.
    pub rows: usize,
    /// Most GPUs any node held at once.
    pub peak_node_gpus: u32,
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ok: {} jobs ({} completed), {} segments, {} placement rows; every node within capacity \
             (peak {} GPUs on one node); report.json agrees",
            self.jobs, self.completed, self.segments, self.rows, self.peak_node_gpus
        )
    }
}

/// A pool's shape, as the checker numbers it.
struct PoolShape<'a> {
    name: &'a str,
    gpu_model: usize,
    gpus_per_node: u32,
    nodes_per_domain: u32,
    domains: u32,
    domains_per_rack: u32,
    usd_per_gpu_hour: f64,
    /// Index of the pool's first node in the checker's own flat numbering.
    first_node: usize,
    /// Its site (index of the workload's sites), if any.
    site: Option<usize>,
    /// Paid per GPU-hour used (else for the whole run).
    on_demand: bool,
    /// Power per idle and per busy GPU, W.
    idle_w: f64,
    busy_w: f64,
}

impl PoolShape<'_> {
    fn domain_gpus(&self) -> u64 {
        self.gpus_per_node as u64 * self.nodes_per_domain as u64
    }
    /// Gangs of `g` GPUs an empty pool holds at once, each inside one group of `level`.
    fn gangs_that_fit(&self, level: u32, g: u32) -> u64 {
        let g = g.max(1) as u64;
        let dg = self.domain_gpus();
        match level {
            LEVEL_DOMAIN => self.domains as u64 * (dg / g),
            LEVEL_RACK => {
                let per = self.domains_per_rack.max(1) as u64;
                let full_racks = self.domains as u64 / per;
                let rest = self.domains as u64 % per;
                full_racks * (per * dg / g) + rest * dg / g
            }
            _ => self.domains as u64 * dg / g,
        }
    }
}

fn shapes(w: &Workload) -> Vec<PoolShape<'_>> {
    let mut first_node = 0usize;
    w.cluster
        .pools
        .iter()
        .map(|p| {
            let s = PoolShape {
                name: &p.name,
                gpu_model: p.preset.gpu_model,
                gpus_per_node: p.preset.gpus_per_node,
                nodes_per_domain: p.preset.nodes_per_domain,
                domains: p.domains,
                domains_per_rack: p.domains_per_rack,
                usd_per_gpu_hour: p.usd_per_gpu_hour,
                first_node,
                site: p.site.map(|s| s as usize),
                on_demand: p.contract == crate::domain::cluster::Contract::OnDemand,
                idle_w: p.idle_w,
                busy_w: p.busy_w,
            };
            first_node += p.domains as usize * p.preset.nodes_per_domain as usize;
            s
        })
        .collect()
}

/// Seconds as written by the reports (a decimal with at most six fractional digits) to microseconds, exactly.
fn parse_s(text: &str) -> Option<Time> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || frac.len() > 6 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: Time = int.parse().ok()?;
    let mut micros: Time = 0;
    for b in frac.bytes().chain(std::iter::repeat(b'0')).take(6) {
        micros = micros * 10 + (b - b'0') as Time;
    }
    whole.checked_mul(1_000_000)?.checked_add(micros)
}

/// A CSV file with a header, read into records with named columns.
struct Table<'a> {
    file: &'a str,
    columns: HashMap<String, usize>,
    rows: Vec<csv::StringRecord>,
}

impl<'a> Table<'a> {
    fn read(file: &'a str, text: &str, required: &[&str]) -> Result<Table<'a>, InputError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let header = rdr
            .headers()
            .map_err(|e| InputError::new(file, Location::File, format!("cannot read: {e}")))?
            .clone();
        let columns: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_string(), i))
            .collect();
        for c in required {
            if !columns.contains_key(*c) {
                return Err(InputError::new(
                    file,
                    Location::File,
                    format!(
                        "no column `{c}` in the header (needs: {})",
                        required.join(", ")
                    ),
                ));
            }
        }
        let mut rows = Vec::new();
        for (i, r) in rdr.records().enumerate() {
            let r = r.map_err(|e| {
                InputError::new(
                    file,
                    Location::Row(i + 1, None),
                    format!("cannot read: {e}"),
                )
            })?;
            rows.push(r);
        }
        Ok(Table {
            file,
            columns,
            rows,
        })
    }

    fn get(&self, row: usize, col: &str) -> &str {
        self.rows[row].get(self.columns[col]).unwrap_or("")
    }

    fn bad(&self, row: usize, col: &str, what: &str) -> InputError {
        InputError::new(
            self.file,
            Location::Row(row + 1, Some(col.to_string())),
            format!("`{}`: expected {what}", self.get(row, col)),
        )
    }

    fn time(&self, row: usize, col: &str) -> Result<Time, InputError> {
        parse_s(self.get(row, col)).ok_or_else(|| {
            self.bad(
                row,
                col,
                "seconds (digits, at most six after the decimal point)",
            )
        })
    }

    fn opt_time(&self, row: usize, col: &str) -> Result<Option<Time>, InputError> {
        if self.get(row, col).is_empty() {
            Ok(None)
        } else {
            self.time(row, col).map(Some)
        }
    }

    fn num<T: std::str::FromStr>(&self, row: usize, col: &str) -> Result<T, InputError> {
        self.get(row, col)
            .parse()
            .map_err(|_| self.bad(row, col, "a non-negative integer"))
    }
}

/// One placement row.
#[derive(Debug, Clone, Copy)]
struct Placed {
    job: usize,
    segment: u32,
    gang: u32,
    start: Time,
    end: Time,
    pool: usize,
    domain: u32,
    node: u32,
    gpus: u32,
    /// File row (1 = header).
    row: usize,
}

/// One segment, assembled from its rows.
#[derive(Debug, Clone, Copy)]
struct Seg {
    start: Time,
    end: Time,
    row: usize,
}

/// Checks a run. `w` is the workload the run was made from (with the run's seed).
pub fn check(w: &Workload, files: RunFiles<'_>) -> Result<Checked, CheckError> {
    let pools = shapes(w);
    let pool_index: HashMap<&str, usize> =
        pools.iter().enumerate().map(|(i, p)| (p.name, i)).collect();
    let job_index: HashMap<&str, usize> = w
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id.as_str(), i))
        .collect();

    // ---- placements.csv -------------------------------------------------------------------------------
    let pt = Table::read(
        "placements.csv",
        files.placements_csv,
        &[
            "job", "segment", "gang", "start_s", "end_s", "pool", "domain", "node", "gpus",
        ],
    )?;
    let mut placed = Vec::with_capacity(pt.rows.len());
    for r in 0..pt.rows.len() {
        let job = *job_index
            .get(pt.get(r, "job"))
            .ok_or_else(|| pt.bad(r, "job", "the id of a job of the workload"))?;
        let pool = *pool_index
            .get(pt.get(r, "pool"))
            .ok_or_else(|| pt.bad(r, "pool", "the name of a pool of the workload"))?;
        let p = Placed {
            job,
            segment: pt.num(r, "segment")?,
            gang: pt.num(r, "gang")?,
            start: pt.time(r, "start_s")?,
            end: pt.time(r, "end_s")?,
            pool,
            domain: pt.num(r, "domain")?,
            node: pt.num(r, "node")?,
            gpus: pt.num(r, "gpus")?,
            row: r + 2,
        };
        let shape = &pools[pool];
        if p.domain >= shape.domains {
            return Err(pt
                .bad(
                    r,
                    "domain",
                    &format!("a domain of pool `{}` (0..{})", shape.name, shape.domains),
                )
                .into());
        }
        if p.node >= shape.nodes_per_domain {
            return Err(pt
                .bad(
                    r,
                    "node",
                    &format!(
                        "a node of a `{}` domain (0..{})",
                        shape.name, shape.nodes_per_domain
                    ),
                )
                .into());
        }
        if p.gpus == 0 {
            return Err(pt.bad(r, "gpus", "at least 1").into());
        }
        if p.end < p.start {
            return violation(format!(
                "placements.csv row {}: segment of job `{}` ends before it starts",
                p.row, w.jobs[job].id
            ));
        }
        placed.push(p);
    }

    // Segments of each job, and the rows of each (job, segment, gang).
    let mut segs: Vec<Vec<Seg>> = vec![Vec::new(); w.jobs.len()];
    let mut gangs: HashMap<(usize, u32, u32), Vec<Placed>> = HashMap::new();
    for p in &placed {
        let list = &mut segs[p.job];
        let id = &w.jobs[p.job].id;
        match list.get(p.segment as usize) {
            Some(s) => {
                if (s.start, s.end) != (p.start, p.end) {
                    return violation(format!(
                        "placements.csv row {}: segment {} of job `{id}` has a different start or end \
                         than in row {}",
                        p.row, p.segment, s.row
                    ));
                }
            }
            None if p.segment as usize == list.len() => list.push(Seg {
                start: p.start,
                end: p.end,
                row: p.row,
            }),
            None => {
                return violation(format!(
                    "placements.csv row {}: job `{id}` has segment {} before segment {}",
                    p.row,
                    p.segment,
                    list.len()
                ))
            }
        }
        gangs
            .entry((p.job, p.segment, p.gang))
            .or_default()
            .push(*p);
    }

    // ---- every gang: size, GPU model, topology level -----------------------------------------------------
    for (j, job) in w.jobs.iter().enumerate() {
        let autoscale = job.serving.as_ref().and_then(|s| s.autoscale);
        for (k, _) in segs[j].iter().enumerate() {
            let mut expected = expected_gangs(job);
            if let Some(a) = autoscale {
                // An autoscaled service holds between one and max_replicas replica gangs at a time.
                let held = gangs
                    .keys()
                    .filter(|&&(jj, kk, _)| jj == j && kk == k as u32)
                    .count();
                if held == 0 || held > a.max_replicas as usize {
                    return violation(format!(
                        "job `{}` segment {k}: {held} replicas, outside 1..={} (max_replicas)",
                        job.id, a.max_replicas
                    ));
                }
                expected = vec![expected[0]; held];
            }
            if let (Some(e), Some(rows)) = (job.elastic, gangs.get(&(j, k as u32, 0))) {
                // An elastic job runs on min_gpus..=gpus, in whole tensor-parallel groups.
                let got: u32 = rows.iter().map(|p| p.gpus).sum();
                if got < e.min_gpus
                    || got > job.gpus
                    || (got != job.gpus && !got.is_multiple_of(e.step.max(1)))
                {
                    return violation(format!(
                        "job `{}` segment {k}: elastic gang holds {got} GPUs; allowed {}..={} in steps of {}",
                        job.id, e.min_gpus, job.gpus, e.step
                    ));
                }
                expected[0].gpus = got;
            }
            for (g, want) in expected.iter().enumerate() {
                let Some(rows) = gangs.get(&(j, k as u32, g as u32)) else {
                    return violation(format!(
                        "job `{}` segment {k}: gang {g} ({} GPUs) has no GPUs",
                        job.id, want.gpus
                    ));
                };
                let got: u64 = rows.iter().map(|p| p.gpus as u64).sum();
                if got != want.gpus as u64 {
                    return violation(format!(
                        "job `{}` segment {k}: gang {g} holds {got} GPUs, the job asked for {}",
                        job.id, want.gpus
                    ));
                }
                let first = rows[0];
                for p in rows {
                    let shape = &pools[p.pool];
                    if (want.model_mask >> shape.gpu_model) & 1 == 0 {
                        return violation(format!(
                            "placements.csv row {}: job `{}` runs on pool `{}`, whose GPU model it does \
                             not accept",
                            p.row, job.id, shape.name
                        ));
                    }
                    let rack = |q: &Placed| q.domain / pools[q.pool].domains_per_rack.max(1);
                    let same = p.pool == first.pool
                        && match want.required {
                            LEVEL_DOMAIN => p.domain == first.domain,
                            LEVEL_RACK => rack(p) == rack(&first),
                            _ => true,
                        };
                    if !same {
                        let level = match want.required {
                            LEVEL_DOMAIN => "NVLink domain",
                            LEVEL_RACK => "rack",
                            _ => "pool",
                        };
                        return violation(format!(
                            "job `{}` segment {k}: gang {g} spans more than one {level} (rows {} and {}), \
                             but its `required` level is the {level}",
                            job.id, first.row, p.row
                        ));
                    }
                }
            }
            let extra = gangs
                .keys()
                .filter(|&&(jj, kk, g)| jj == j && kk == k as u32 && g as usize >= expected.len())
                .count();
            if extra > 0 {
                return violation(format!(
                    "job `{}` segment {k}: {extra} more gangs than the {} it has",
                    job.id,
                    expected.len()
                ));
            }
        }
        // Segments in time order, not overlapping.
        for pair in segs[j].windows(2) {
            if pair[1].start < pair[0].end {
                return violation(format!(
                    "job `{}`: a segment starts (placements.csv row {}) before the previous one ended",
                    job.id, pair[1].row
                ));
            }
        }
    }

    // ---- node capacity: a sweep over start and end instants ----------------------------------------------
    let total_nodes: usize = pools
        .iter()
        .map(|p| p.domains as usize * p.nodes_per_domain as usize)
        .sum();
    let node_of = |p: &Placed| {
        pools[p.pool].first_node
            + p.domain as usize * pools[p.pool].nodes_per_domain as usize
            + p.node as usize
    };
    // (time, 0 = release before 1 = take at the same instant, row index)
    let mut events: Vec<(Time, u8, usize)> = Vec::with_capacity(placed.len() * 2);
    for (i, p) in placed.iter().enumerate() {
        if p.end > p.start {
            events.push((p.start, 1, i));
            events.push((p.end, 0, i));
        }
    }
    events.sort_unstable();
    let mut used = vec![0u32; total_nodes];
    let mut peak = 0u32;
    for &(t, kind, i) in &events {
        let p = &placed[i];
        let n = node_of(p);
        if kind == 0 {
            used[n] -= p.gpus;
            continue;
        }
        used[n] += p.gpus;
        peak = peak.max(used[n]);
        let cap = pools[p.pool].gpus_per_node;
        if used[n] > cap {
            return violation(format!(
                "at {} s node {} of domain {} of pool `{}` holds {} GPUs, more than its {cap} \
                 (placements.csv row {}, job `{}`)",
                fmt_us(t),
                p.node,
                p.domain,
                pools[p.pool].name,
                used[n],
                p.row,
                w.jobs[p.job].id
            ));
        }
    }

    // ---- jobs.csv ---------------------------------------------------------------------------------------
    let jt = Table::read(
        "jobs.csv",
        files.jobs_csv,
        &[
            "id",
            "submit_s",
            "start_s",
            "end_s",
            "preemptions",
            "resizes",
            "interruptions",
            "state",
        ],
    )?;
    if jt.rows.len() != w.jobs.len() {
        return violation(format!(
            "jobs.csv has {} rows; the workload has {} jobs (each must end exactly once)",
            jt.rows.len(),
            w.jobs.len()
        ));
    }
    let (mut completed, mut unschedulable, mut preemptions, mut makespan) = (0, 0, 0u64, 0);
    for (j, job) in w.jobs.iter().enumerate() {
        if jt.get(j, "id") != job.id {
            return violation(format!(
                "jobs.csv row {}: job `{}` where the workload's job {j} is `{}` (missing or twice)",
                j + 2,
                jt.get(j, "id"),
                job.id
            ));
        }
        let submit = jt.time(j, "submit_s")?;
        if submit != job.submit {
            return violation(format!(
                "jobs.csv row {}: job `{}` submitted at {} s; the workload says {} s",
                j + 2,
                job.id,
                fmt_us(submit),
                fmt_us(job.submit)
            ));
        }
        let (start, end) = (jt.opt_time(j, "start_s")?, jt.opt_time(j, "end_s")?);
        let s = &segs[j];
        let pre: u64 = jt.num(j, "preemptions")?;
        let resizes: u64 = jt.num(j, "resizes")?;
        let interrupted: u64 = jt.num(j, "interruptions")?;
        preemptions += pre;
        match jt.get(j, "state") {
            "completed" => {
                completed += 1;
                let (Some(start), Some(end), Some(first), Some(last)) =
                    (start, end, s.first(), s.last())
                else {
                    return violation(format!(
                        "job `{}` is completed but has no start, end or placement",
                        job.id
                    ));
                };
                if first.start < job.submit {
                    return violation(format!(
                        "job `{}` starts at {} s, before it was submitted at {} s",
                        job.id,
                        fmt_us(first.start),
                        fmt_us(job.submit)
                    ));
                }
                if start != first.start || end != last.end {
                    return violation(format!(
                        "job `{}`: jobs.csv says {}..{} s, its segments {}..{} s",
                        job.id,
                        fmt_us(start),
                        fmt_us(end),
                        fmt_us(first.start),
                        fmt_us(last.end)
                    ));
                }
                if pre + resizes + interrupted != s.len() as u64 - 1 {
                    return violation(format!(
                        "job `{}`: {pre} preemptions, {resizes} resizes and {interrupted} interruptions but {} \
                         segments",
                        job.id,
                        s.len()
                    ));
                }
                makespan = makespan.max(end);
            }
            "unschedulable" => {
                unschedulable += 1;
                if !s.is_empty() || start.is_some() {
                    return violation(format!("job `{}` is unschedulable but ran", job.id));
                }
                if fits_empty(&pools, job) {
                    return violation(format!(
                        "job `{}` is unschedulable, but it fits the empty cluster",
                        job.id
                    ));
                }
            }
            _ => return Err(jt.bad(j, "state", "`completed` or `unschedulable`").into()),
        }
    }

    // ---- report.json ------------------------------------------------------------------------------------
    let report: serde_json::Value = serde_json::from_str(files.report_json).map_err(|e| {
        InputError::new(
            "report.json",
            Location::LineCol(e.line(), e.column()),
            format!("not JSON: {e}"),
        )
    })?;
    let num = |path: &[&str]| -> Result<f64, CheckError> {
        let mut v = &report;
        for k in path {
            v = &v[*k];
        }
        v.as_f64().ok_or_else(|| {
            CheckError::Malformed(InputError::field(
                "report.json",
                path.join("."),
                "a number is required here",
            ))
        })
    };
    let total_gpus: u64 = pools
        .iter()
        .map(|p| p.domains as u64 * p.domain_gpus())
        .sum();
    let mut busy: u128 = 0;
    let mut busy_usd = 0.0f64;
    for p in &placed {
        let gpu_us = p.gpus as u128 * (p.end - p.start) as u128;
        busy += gpu_us;
        busy_usd += gpu_us as f64 / 3.6e9 * pools[p.pool].usd_per_gpu_hour;
    }
    let expect_eq = |what: &str, got: f64, want: f64, rel: f64| -> Result<(), CheckError> {
        if (got - want).abs() <= rel * want.abs().max(1e-12) {
            Ok(())
        } else {
            violation(format!(
                "report.json {what} is {got}; recomputed from the segments: {want}"
            ))
        }
    };
    expect_eq(
        "cluster.total_gpus",
        num(&["cluster", "total_gpus"])?,
        total_gpus as f64,
        0.0,
    )?;
    expect_eq(
        "summary.jobs.completed",
        num(&["summary", "jobs", "completed"])?,
        completed as f64,
        0.0,
    )?;
    expect_eq(
        "summary.jobs.unschedulable",
        num(&["summary", "jobs", "unschedulable"])?,
        unschedulable as f64,
        0.0,
    )?;
    expect_eq(
        "summary.jobs.preemptions",
        num(&["summary", "jobs", "preemptions"])?,
        preemptions as f64,
        0.0,
    )?;
    expect_eq(
        "summary.makespan_s",
        num(&["summary", "makespan_s"])?,
        makespan as f64 / 1e6,
        1e-12,
    )?;
    let capacity = total_gpus as f64 * makespan as f64;
    let util = if capacity > 0.0 {
        (busy as f64 / capacity).min(1.0)
    } else {
        0.0
    };
    expect_eq(
        "summary.gpu_utilization",
        num(&["summary", "gpu_utilization"])?,
        util,
        1e-9,
    )?;
    expect_eq(
        "summary.cost_usd_busy",
        num(&["summary", "cost_usd_busy"])?,
        busy_usd,
        1e-9,
    )?;

    check_capacity(w, &pools, &placed, makespan, &report)?;

    Ok(Checked {
        jobs: w.jobs.len(),
        completed,
        segments: segs.iter().map(Vec::len).sum(),
        rows: placed.len(),
        peak_node_gpus: peak,
    })
}

/// Power caps, the spill threshold and the bill by contract, from the placement rows: at no instant does a
/// site draw more than its cap (every GPU of its pools at idle power, the held ones at busy power, times
/// its PUE); no job but an autoscaled service runs on on-demand capacity before it has waited
/// `spill_after_s`; report.json's `cost_by_contract` is the committed pools over the makespan plus the
/// on-demand GPU-hours used, at their prices.
fn check_capacity(
    w: &Workload,
    pools: &[PoolShape<'_>],
    placed: &[Placed],
    makespan: Time,
    report: &serde_json::Value,
) -> Result<(), CheckError> {
    let sites = &w.cluster.sites;
    // Held GPUs per pool as rows start and end; at one instant every change applies before the check.
    let mut deltas: Vec<(Time, usize, i64)> = Vec::new();
    for p in placed {
        if pools[p.pool].site.is_some() {
            deltas.push((p.start, p.pool, p.gpus as i64));
            deltas.push((p.end, p.pool, -(p.gpus as i64)));
        }
        let job = &w.jobs[p.job];
        let service = job.serving.as_ref().is_some_and(|s| s.autoscale.is_some());
        if pools[p.pool].on_demand && !service && p.start < job.submit + w.scheduler.spill_after {
            return violation(format!(
                "job `{}` runs on on-demand pool `{}` at {} s, before it has waited spill_after_s ({} s after \
                 its submission at {} s)",
                job.id,
                pools[p.pool].name,
                fmt_us(p.start),
                fmt_us(w.scheduler.spill_after),
                fmt_us(job.submit)
            ));
        }
    }
    if !sites.is_empty() {
        deltas.sort_unstable_by_key(|&(t, p, _)| (t, p));
        let mut held = vec![0i64; pools.len()];
        let mut i = 0;
        while i < deltas.len() {
            let t = deltas[i].0;
            while i < deltas.len() && deltas[i].0 == t {
                held[deltas[i].1] += deltas[i].2;
                i += 1;
            }
            for (k, site) in sites.iter().enumerate() {
                let Some(cap) = site.power_cap_w else {
                    continue;
                };
                let it: f64 = pools
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.site == Some(k))
                    .map(|(q, p)| {
                        let gpus = p.domains as f64 * p.domain_gpus() as f64;
                        let busy = held[q] as f64;
                        (gpus - busy) * p.idle_w + busy * p.busy_w
                    })
                    .sum();
                if it * site.pue > cap * (1.0 + 1e-9) {
                    return violation(format!(
                        "site `{}` draws {:.6} MW at {} s, above its {} MW cap",
                        site.name,
                        it * site.pue / 1e6,
                        fmt_us(t),
                        cap / 1e6
                    ));
                }
            }
        }
    }
    // The bill by contract.
    let Some(by_contract) = report.get("cost_by_contract") else {
        return Err(CheckError::Malformed(InputError::field(
            "report.json",
            "cost_by_contract",
            "is required",
        )));
    };
    let hours = makespan as f64 / 3.6e9;
    let committed: f64 = pools
        .iter()
        .filter(|p| !p.on_demand)
        .map(|p| p.domains as f64 * p.domain_gpus() as f64 * hours * p.usd_per_gpu_hour)
        .sum();
    let on_demand: f64 = placed
        .iter()
        .filter(|p| pools[p.pool].on_demand)
        .map(|p| p.gpus as f64 * (p.end - p.start) as f64 / 3.6e9 * pools[p.pool].usd_per_gpu_hour)
        .sum();
    for (key, want, present) in [
        ("committed", committed, pools.iter().any(|p| !p.on_demand)),
        ("on-demand", on_demand, pools.iter().any(|p| p.on_demand)),
    ] {
        let got = by_contract.get(key).and_then(|v| v.as_f64());
        match (got, present) {
            (None, false) => {}
            (Some(got), true) if (got - want).abs() <= 1e-9 * want.abs().max(1.0) => {}
            _ => {
                return violation(format!(
                    "report.json cost_by_contract.{key} is {got:?}; recomputed from the segments: {want}"
                ))
            }
        }
    }
    Ok(())
}

/// The gangs a job holds while it runs, in placements.csv order.
#[derive(Debug, Clone, Copy)]
struct WantGang {
    gpus: u32,
    model_mask: u32,
    required: u32,
}

fn expected_gangs(job: &Job) -> Vec<WantGang> {
    let main = WantGang {
        gpus: job.gpus,
        model_mask: job.model_mask,
        required: job.required,
    };
    let replicas = match job.kind {
        JobKind::Inference => job.replicas,
        JobKind::Training | JobKind::Rl => job.replicas.max(1),
    };
    let mut v = vec![main; replicas as usize];
    if let Some(r) = job.rollout {
        v.extend(std::iter::repeat_n(
            WantGang {
                gpus: r.gpus,
                model_mask: r.model_mask,
                required: r.required,
            },
            r.count as usize,
        ));
    }
    v
}

/// Whether a job's gangs fit the empty cluster (each gang inside one group of its level, on acceptable
/// pools; main gangs and rollout gangs counted separately, and all of them together no more GPUs than
/// the pools either kind may use hold).
fn fits_empty(pools: &[PoolShape<'_>], job: &Job) -> bool {
    let count = |gpus: u32, mask: u32, level: u32| -> u64 {
        pools
            .iter()
            .filter(|p| (mask >> p.gpu_model) & 1 == 1)
            .map(|p| p.gangs_that_fit(level, gpus))
            .sum()
    };
    count(job.gpus, job.model_mask, job.required) >= job.replicas as u64
        && job.rollout.is_none_or(|r| {
            let held: u64 = pools
                .iter()
                .filter(|p| ((job.model_mask | r.model_mask) >> p.gpu_model) & 1 == 1)
                .map(|p| p.domain_gpus() * p.domains as u64)
                .sum();
            let wanted = job.gpus as u64 * job.replicas as u64 + r.gpus as u64 * r.count as u64;
            count(r.gpus, r.model_mask, r.required) >= r.count as u64 && wanted <= held
        })
}

fn fmt_us(t: Time) -> String {
    let s = format!("{}.{:06}", t / 1_000_000, t % 1_000_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_exactly_to_microseconds() {
        assert_eq!(parse_s("0"), Some(0));
        assert_eq!(parse_s("12.5"), Some(12_500_000));
        assert_eq!(parse_s("3.000001"), Some(3_000_001));
        assert_eq!(parse_s("1.0000001"), None);
        assert_eq!(parse_s("-1"), None);
        assert_eq!(parse_s(""), None);
        assert_eq!(parse_s("1e3"), None);
        assert_eq!(fmt_us(12_500_000), "12.5");
        assert_eq!(fmt_us(3_000_000), "3");
    }

    /// Found by mutation testing: nothing held the count of gangs an empty pool takes to its arithmetic.
    /// A pool of 5 domains of 2 nodes x 4 GPUs (8 per domain, 40 in all), 3 domains per rack: one full
    /// rack (24 GPUs) and a rack of the 2 domains left (16 GPUs). Counted by hand.
    #[test]
    fn gangs_that_fit_an_empty_pool_by_hand() {
        use crate::domain::cluster::LEVEL_POOL;
        let p = PoolShape {
            name: "p",
            gpu_model: 0,
            gpus_per_node: 4,
            nodes_per_domain: 2,
            domains: 5,
            domains_per_rack: 3,
            usd_per_gpu_hour: 1.0,
            first_node: 0,
            site: None,
            on_demand: false,
            idle_w: 0.0,
            busy_w: 0.0,
        };
        assert_eq!(p.domain_gpus(), 8);
        // Inside one domain: floor(8 / 3) = 2 per domain, 5 domains.
        assert_eq!(p.gangs_that_fit(LEVEL_DOMAIN, 3), 10);
        assert_eq!(p.gangs_that_fit(LEVEL_DOMAIN, 8), 5);
        assert_eq!(p.gangs_that_fit(LEVEL_DOMAIN, 9), 0);
        // Inside one rack: floor(24 / 10) = 2 in the full rack, floor(16 / 10) = 1 in the other.
        assert_eq!(p.gangs_that_fit(LEVEL_RACK, 10), 3);
        // 8 GPUs: 3 in the full rack, 2 in the other.
        assert_eq!(p.gangs_that_fit(LEVEL_RACK, 8), 5);
        // Anywhere in the pool: floor(40 / 10) = 4.
        assert_eq!(p.gangs_that_fit(LEVEL_POOL, 10), 4);
        assert_eq!(p.gangs_that_fit(LEVEL_POOL, 41), 0);
    }
}
