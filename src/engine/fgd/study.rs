//! The (policy x seed) grid, run in parallel, and writers for the published CSV layouts. No I/O: the writers
//! return strings; the caller writes them once everything has succeeded.

use crate::error::{InputError, Location};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::kernel::node_score::gpu::{GpuNodeScorer, LockstepExperiment, LockstepGrid};
use crate::kernel::node_score::{CpuNodeScorer, NodeScoreBackend, POLICY_FGD};

use super::engine::{
    curves, order_and_ranks, ranked_nodes, replay_placements, run, Draws, Outcome,
};
use super::policy::Policy;
use super::trace::Trace;

/// One (policy, seed) experiment's published row and a few totals.
#[derive(Clone, Debug, PartialEq)]
pub struct StudyRow {
    /// Workload label (pod file stem).
    pub workload: String,
    /// Policy.
    pub policy: Policy,
    /// Tune-up factor (1.3 in the paper).
    pub tune: f64,
    /// Seed.
    pub seed: u64,
    /// GPUs in the cluster.
    pub total_gpus: u32,
    /// Allocation ratio (%) per column 0..=round(100*tune).
    pub alloc: Vec<Option<f64>>,
    /// Fragmentation ratio (%) per column.
    pub frag: Vec<Option<f64>>,
    /// Pods attempted.
    pub attempted: usize,
    /// Pods placed.
    pub placed: usize,
    /// Wall time of this experiment.
    pub wall: Duration,
}

/// Last column of the curves for a tune-up factor (130 for 1.3).
pub fn last_column(tune: f64) -> usize {
    (tune * 100.0).round().max(0.0) as usize
}

/// Runs every (policy, seed) pair in parallel. A seed in `draws` replays the original's draws instead of the
/// project's RNG (Random still uses the seed). Rows come back sorted by (policy, seed).
pub fn study(
    trace: &Trace,
    policies: &[Policy],
    seeds: &[u64],
    tune: f64,
    draws: &BTreeMap<u64, Draws>,
) -> Vec<StudyRow> {
    let jobs: Vec<(Policy, u64)> = policies
        .iter()
        .flat_map(|&p| seeds.iter().map(move |&s| (p, s)))
        .collect();
    let columns = last_column(tune);
    let mut rows: Vec<StudyRow> = jobs
        .par_iter()
        .map(|&(policy, seed)| {
            experiment(
                trace,
                policy,
                seed,
                tune,
                draws,
                columns,
                &mut CpuNodeScorer::new(),
            )
        })
        .collect();
    rows.sort_by_key(|r| (r.policy, r.seed));
    rows
}

/// Like `study`, on one GPU node scorer: the scored policies' experiments run in lockstep on the device (all
/// of them at once, placements read back at the end: `GpuNodeScorer::lockstep`), each row's wall time the
/// grid's share; Random draws its nodes and needs no scores, so its experiments run on the CPU. A grid the
/// device cannot take, or a device error, sends the experiments through `best_node` one pod at a time instead
/// (the GPU scorer falls back to the CPU for what it cannot decide).
pub fn study_on_gpu(
    trace: &Trace,
    policies: &[Policy],
    seeds: &[u64],
    tune: f64,
    draws: &BTreeMap<u64, Draws>,
    gpu: &mut GpuNodeScorer,
) -> Vec<StudyRow> {
    let columns = last_column(tune);
    let pairs: Vec<(Policy, u64)> = policies
        .iter()
        .flat_map(|&p| seeds.iter().map(move |&s| (p, s)))
        .collect();
    let mut rows: Vec<StudyRow> = Vec::with_capacity(pairs.len());
    let mut one_by_one: Vec<(Policy, u64)> = Vec::new();
    let mut scored: Vec<(Policy, u64, Vec<usize>, Vec<u32>)> = Vec::new();
    for &(policy, seed) in &pairs {
        if policy.kernel_id().is_some() {
            let (order, ranks) = order_and_ranks(trace, seed, tune, draws.get(&seed));
            scored.push((policy, seed, order, ranks));
        } else {
            rows.push(experiment(
                trace,
                policy,
                seed,
                tune,
                draws,
                columns,
                &mut CpuNodeScorer::new(),
            ));
        }
    }
    let start = Instant::now();
    let experiments: Vec<LockstepExperiment> = scored
        .iter()
        .map(|(policy, _, order, ranks)| LockstepExperiment {
            policy: policy.kernel_id().unwrap_or(POLICY_FGD),
            nodes: ranked_nodes(trace, ranks),
            order: order.iter().map(|&i| i as u32).collect(),
        })
        .collect();
    let grid = LockstepGrid {
        pods: &trace.pods,
        typical: &trace.typical,
        experiments: &experiments,
    };
    match gpu.lockstep(&grid) {
        Ok(Some(run)) => {
            let wall = start.elapsed() / scored.len().max(1) as u32;
            for ((policy, seed, order, ranks), placed) in scored.iter().zip(run.placements) {
                let placed: Vec<Option<(usize, u32)>> = placed
                    .into_iter()
                    .map(|p| p.map(|(n, m)| (n as usize, m)))
                    .collect();
                match replay_placements(trace, order, ranks, &placed) {
                    Ok(out) => rows.push(row(trace, *policy, *seed, tune, columns, &out, wall)),
                    Err(e) => {
                        gpu.note_error(format!("lockstep {} seed {seed}: {e}", policy.label()));
                        one_by_one.push((*policy, *seed));
                    }
                }
            }
        }
        Ok(None) | Err(_) => one_by_one.extend(scored.iter().map(|x| (x.0, x.1))),
    }
    for (policy, seed) in one_by_one {
        rows.push(experiment(trace, policy, seed, tune, draws, columns, gpu));
    }
    rows.sort_by_key(|r| (r.policy, r.seed));
    rows
}

fn experiment(
    trace: &Trace,
    policy: Policy,
    seed: u64,
    tune: f64,
    draws: &BTreeMap<u64, Draws>,
    columns: usize,
    backend: &mut dyn NodeScoreBackend,
) -> StudyRow {
    let start = Instant::now();
    let out = run(trace, policy, seed, tune, draws.get(&seed), backend);
    row(trace, policy, seed, tune, columns, &out, start.elapsed())
}

fn row(
    trace: &Trace,
    policy: Policy,
    seed: u64,
    tune: f64,
    columns: usize,
    out: &Outcome,
    wall: Duration,
) -> StudyRow {
    let (alloc, frag) = curves(&out.events, trace.total_gpus, columns);
    StudyRow {
        workload: trace.workload.clone(),
        policy,
        tune,
        seed,
        total_gpus: trace.total_gpus,
        alloc,
        frag,
        attempted: out.attempted,
        placed: out.placed,
        wall,
    }
}

/// A float as Python's `repr` writes it for the values here (`12.0`, `0.25`, `14.015918367346941`).
pub fn py_float(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

fn write_csv(
    rows: &[StudyRow],
    with_total: bool,
    values: impl Fn(&StudyRow) -> &[Option<f64>],
) -> String {
    let columns = rows.iter().map(|r| values(r).len()).max().unwrap_or(0);
    let mut s = String::from("workload,sc_policy,tune,seed");
    if with_total {
        s.push_str(",total_gpus");
    }
    for c in 0..columns {
        let _ = write!(s, ",{c}");
    }
    s.push('\n');
    for r in rows {
        let _ = write!(
            s,
            "{},{},{},{}",
            r.workload,
            r.policy.label(),
            r.tune,
            r.seed
        );
        if with_total {
            let _ = write!(s, ",{}", r.total_gpus);
        }
        for c in 0..columns {
            s.push(',');
            if let Some(Some(v)) = values(r).get(c) {
                s.push_str(&py_float(*v));
            }
        }
        s.push('\n');
    }
    s
}

/// The allocation CSV: `workload,sc_policy,tune,seed,total_gpus,0,1,...,130`.
pub fn allocation_csv(rows: &[StudyRow]) -> String {
    write_csv(rows, true, |r| &r.alloc)
}

/// The fragmentation-ratio CSV: `workload,sc_policy,tune,seed,0,1,...,130`.
pub fn frag_csv(rows: &[StudyRow]) -> String {
    write_csv(rows, false, |r| &r.frag)
}

/// Per policy: mean over seeds of the last allocation column, and the summed wall time.
pub fn summary(rows: &[StudyRow]) -> Vec<(Policy, usize, f64, Duration)> {
    let mut by: BTreeMap<Policy, (usize, f64, Duration)> = BTreeMap::new();
    for r in rows {
        let e = by.entry(r.policy).or_default();
        e.0 += 1;
        e.1 += r.alloc.last().copied().flatten().unwrap_or(f64::NAN);
        e.2 += r.wall;
    }
    by.into_iter()
        .map(|(p, (n, sum, wall))| (p, n, sum / n as f64, wall))
        .collect()
}

/// Mean allocation curve per policy over its seeds (NaN where a column has no value), in policy order.
pub fn mean_curves(rows: &[StudyRow]) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(Policy, Vec<(f64, u32)>)> = Vec::new();
    for r in rows {
        let idx = match out.iter().position(|(p, _)| *p == r.policy) {
            Some(i) => i,
            None => {
                out.push((r.policy, vec![(0.0, 0); r.alloc.len()]));
                out.len() - 1
            }
        };
        for (acc, v) in out[idx].1.iter_mut().zip(&r.alloc) {
            if let Some(v) = v {
                acc.0 += v;
                acc.1 += 1;
            }
        }
    }
    out.sort_by_key(|(p, _)| p.label());
    out.into_iter()
        .map(|(p, cols)| {
            let mean = cols
                .iter()
                .map(|&(s, n)| if n > 0 { s / n as f64 } else { f64::NAN })
                .collect();
            (p.label().to_string(), mean)
        })
        .collect()
}

/// Mean curve per `sc_policy` of a CSV in the published allocation layout
/// (`workload,sc_policy,tune,seed,total_gpus,0,1,...`), e.g. workloads/traces/fgd-reference/allo_discrete_default.csv.
pub fn published_means(text: &str, file: &str) -> Result<Vec<(String, Vec<f64>)>, InputError> {
    let mut lines = text.lines();
    let header = lines.next().ok_or_else(|| {
        InputError::new(
            file,
            Location::File,
            "is empty; expected the published allocation CSV layout",
        )
    })?;
    let cols: Vec<&str> = header.split(',').collect();
    if cols.len() < 6 || cols[1] != "sc_policy" || cols[4] != "total_gpus" {
        return Err(InputError::new(
            file,
            Location::Row(0, None),
            "header must be workload,sc_policy,tune,seed,total_gpus,0,1,...",
        ));
    }
    let mut sums: Vec<(String, usize, Vec<f64>)> = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != cols.len() {
            return Err(InputError::row(
                file,
                i + 1,
                None,
                format!("has {} fields, the header {}", f.len(), cols.len()),
            ));
        }
        let k = match sums.iter().position(|(p, _, _)| p == f[1]) {
            Some(k) => k,
            None => {
                sums.push((f[1].to_string(), 0, vec![0.0; cols.len() - 5]));
                sums.len() - 1
            }
        };
        sums[k].1 += 1;
        for (j, (acc, v)) in sums[k].2.iter_mut().zip(&f[5..]).enumerate() {
            let x: f64 = v.trim().parse().map_err(|_| {
                InputError::row(
                    file,
                    i + 1,
                    Some(cols[5 + j]),
                    format!("`{v}` is not a number"),
                )
            })?;
            if !x.is_finite() {
                return Err(InputError::row(
                    file,
                    i + 1,
                    Some(cols[5 + j]),
                    "must be a finite number",
                ));
            }
            *acc += x;
        }
    }
    Ok(sums
        .into_iter()
        .map(|(p, n, s)| (p, s.into_iter().map(|x| x / n as f64).collect()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float(12.0), "12.0");
        assert_eq!(py_float(0.25), "0.25");
        assert_eq!(py_float(14.015918367346941), "14.015918367346941");
        assert_eq!(last_column(1.3), 130);
    }

    #[test]
    fn csv_layouts() {
        let row = StudyRow {
            workload: "w".into(),
            policy: Policy::Fgd,
            tune: 1.3,
            seed: 42,
            total_gpus: 8,
            alloc: vec![Some(0.5), Some(1.0), None],
            frag: vec![Some(2.5), None, None],
            attempted: 3,
            placed: 2,
            wall: Duration::ZERO,
        };
        assert_eq!(
            allocation_csv(std::slice::from_ref(&row)),
            "workload,sc_policy,tune,seed,total_gpus,0,1,2\nw,06-FGD,1.3,42,8,0.5,1.0,\n"
        );
        assert_eq!(
            frag_csv(&[row]),
            "workload,sc_policy,tune,seed,0,1,2\nw,06-FGD,1.3,42,2.5,,\n"
        );
    }
}
