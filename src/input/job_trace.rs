//! `[[job_traces]]`: a user's own job list as CSV with a header. Required columns `id, submit_s, duration_s,
//! gpus`; optional `priority, tenant, gpu_model, kind` (`training`, the default, or `inference`: one replica
//! of `gpus` serving for `duration_s`). `columns = { id = "job_id", ... }` maps other header names; columns
//! not named are ignored; `limit` keeps the first N data rows.
//!
//! Parsing works on text plus a file label (pure); the workload loader reads the file. Errors name the file,
//! the data row (1-based, header excluded) and the column, and say what is allowed.

use super::spec::{JobTraceSpec, MAX_GPUS, MAX_JOBS};
use crate::domain::catalog;
use crate::domain::cluster::LEVEL_POOL;
use crate::domain::workload::{time_from_s, Job, JobKind, Time};
use crate::error::{InputError, Location};

/// The logical columns, in the order of [`Columns::names`].
const REQUIRED: [&str; 4] = ["id", "submit_s", "duration_s", "gpus"];
const OPTIONAL: [&str; 4] = ["priority", "tenant", "gpu_model", "kind"];

/// Longest duration or latest submit time a trace row may give, seconds (about 31.7 years).
pub const MAX_TRACE_S: f64 = 1e9;

/// Column index of each logical column in the header (`None`: absent, optional only).
struct Columns {
    idx: [Option<usize>; 8],
    names: [String; 8],
}

impl Columns {
    fn find(
        header: &csv::StringRecord,
        spec: &JobTraceSpec,
        file: &str,
    ) -> Result<Columns, InputError> {
        let mapped = |logical: &str| -> String {
            spec.columns
                .as_ref()
                .and_then(|m| m.get(logical).cloned())
                .unwrap_or_else(|| logical.to_string())
        };
        if let Some(m) = &spec.columns {
            for k in m.keys() {
                if !REQUIRED.contains(&k.as_str()) && !OPTIONAL.contains(&k.as_str()) {
                    return Err(InputError::new(
                        file,
                        Location::Field(format!("columns.{k}")),
                        format!(
                            "unknown column `{k}`; allowed: {}",
                            REQUIRED
                                .iter()
                                .chain(OPTIONAL.iter())
                                .copied()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
        }
        let mut idx = [None; 8];
        let mut names: [String; 8] = Default::default();
        for (k, logical) in REQUIRED.iter().chain(OPTIONAL.iter()).enumerate() {
            let name = mapped(logical);
            idx[k] = header.iter().position(|h| h.trim() == name);
            if k < REQUIRED.len() && idx[k].is_none() {
                return Err(InputError::new(
                    file,
                    Location::LineCol(1, 1),
                    format!(
                        "the header has no column `{name}` (for `{logical}`); required: {}; found: {}",
                        REQUIRED.map(mapped).join(", "),
                        header.iter().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            names[k] = name;
        }
        Ok(Columns { idx, names })
    }
}

/// Parses a job trace.
pub fn parse(text: &str, file: &str, spec: &JobTraceSpec) -> Result<Vec<Job>, InputError> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header = rd
        .headers()
        .map_err(|e| {
            InputError::new(
                file,
                Location::LineCol(1, 1),
                format!("cannot read the header: {e}"),
            )
        })?
        .clone();
    if header.is_empty() {
        return Err(InputError::new(
            file,
            Location::File,
            "the file is empty; a job trace needs a header with id, submit_s, duration_s, gpus",
        ));
    }
    let cols = Columns::find(&header, spec, file)?;
    let limit = spec.limit.map_or(u64::MAX, |c| c.0 as u64);
    let mut jobs = Vec::new();
    let mut rec = csv::StringRecord::new();
    let mut row = 0usize;
    loop {
        if row as u64 >= limit {
            break;
        }
        let more = rd.read_record(&mut rec).map_err(|e| {
            InputError::new(file, Location::Row(row + 1, None), format!("not CSV: {e}"))
        })?;
        if !more {
            break;
        }
        row += 1;
        if row as u64 > MAX_JOBS {
            return Err(InputError::new(
                file,
                Location::Row(row, None),
                format!("more than {MAX_JOBS} jobs; set `limit` to take the first rows"),
            ));
        }
        let at = |k: usize| -> Location { Location::Row(row, Some(cols.names[k].clone())) };
        let cell =
            |k: usize| -> Option<&str> { cols.idx[k].and_then(|i| rec.get(i)).map(str::trim) };
        let err = |k: usize, msg: String| InputError::new(file, at(k), msg);
        let id = cell(0).unwrap_or_default();
        if id.is_empty() {
            return Err(err(0, "is empty; every job needs an id".into()));
        }
        let seconds = |k: usize, min_exclusive: bool| -> Result<Time, InputError> {
            let s = cell(k).unwrap_or_default();
            let v: f64 = s
                .parse()
                .map_err(|_| err(k, format!("`{s}`: expected a number of seconds")))?;
            let ok =
                v.is_finite() && v <= MAX_TRACE_S && if min_exclusive { v > 0.0 } else { v >= 0.0 };
            if !ok {
                let range = if min_exclusive {
                    "above 0"
                } else {
                    "0 or more"
                };
                return Err(err(
                    k,
                    format!("`{s}`: allowed: {range} and at most {MAX_TRACE_S:e} seconds"),
                ));
            }
            Ok(time_from_s(v))
        };
        let submit = seconds(1, false)?;
        let duration = seconds(2, true)?.max(1);
        let g = cell(3).unwrap_or_default();
        let gpus: u64 = g.parse().map_err(|_| {
            err(
                3,
                format!("`{g}`: expected a whole number of GPUs (1 or more)"),
            )
        })?;
        if gpus == 0 || gpus > MAX_GPUS {
            return Err(err(3, format!("`{g}`: allowed: 1 ..= {MAX_GPUS} GPUs")));
        }
        let priority = match cell(4) {
            None | Some("") => 0,
            Some(s) => s
                .parse::<i32>()
                .map_err(|_| err(4, format!("`{s}`: expected a whole number")))?,
        };
        let tenant = match cell(5) {
            None | Some("") => "default".to_string(),
            Some(s) => s.to_string(),
        };
        let model_mask = match cell(6) {
            None | Some("") => u32::MAX,
            Some(s) => match catalog::gpu_model_index(s) {
                Some(m) => 1 << m,
                None => {
                    return Err(err(
                        6,
                        format!(
                            "unknown GPU model `{s}`; allowed: {}",
                            catalog::gpu_model_names()
                        ),
                    ))
                }
            },
        };
        let kind = match cell(7) {
            None | Some("") | Some("training") => JobKind::Training,
            Some("inference") => JobKind::Inference,
            Some(s) => return Err(err(7, format!("`{s}`: allowed: training, inference"))),
        };
        jobs.push(Job {
            id: id.to_string(),
            kind,
            gpus: gpus as u32,
            replicas: 1,
            duration,
            submit,
            priority,
            tenant,
            model_mask,
            required: LEVEL_POOL,
            preferred: crate::domain::cluster::LEVEL_NONE,
            model: None,
            rl: None,
            rollout: None,
            serving: None,
            elastic: None,
            checkpoint: None,
        });
    }
    if let Some((first, i)) = super::value::first_duplicate(jobs.iter().map(|j| j.id.as_str())) {
        return Err(InputError::new(
            file,
            Location::Row(i + 1, Some(cols.names[0].clone())),
            format!(
                "job id `{}` is used twice in this trace (first in row {})",
                jobs[i].id,
                first + 1
            ),
        ));
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spec(columns: &[(&str, &str)], limit: Option<u32>) -> JobTraceSpec {
        JobTraceSpec {
            path: "t.csv".into(),
            columns: (!columns.is_empty()).then(|| {
                columns
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>()
            }),
            limit: limit.map(super::super::value::Count),
        }
    }

    #[test]
    fn rows_become_pool_level_jobs_with_exact_times() {
        let t = "id,submit_s,duration_s,gpus,extra\na,0,10,8,x\nb,5,1.5,1,y\n";
        let j = parse(t, "t.csv", &spec(&[], None)).unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(
            (j[1].submit, j[1].duration, j[1].gpus),
            (5_000_000, 1_500_000, 1)
        );
        assert_eq!(
            (j[0].required, j[0].model_mask, j[0].kind),
            (LEVEL_POOL, u32::MAX, JobKind::Training)
        );
    }

    #[test]
    fn columns_map_other_names_and_limit_keeps_the_first_rows() {
        let t = "job_id,submit_time,duration,num_gpu\nx,1,2,3\ny,1,2,3\nz,1,2,3\n";
        let s = spec(
            &[
                ("id", "job_id"),
                ("submit_s", "submit_time"),
                ("duration_s", "duration"),
                ("gpus", "num_gpu"),
            ],
            Some(2),
        );
        let j = parse(t, "t.csv", &s).unwrap();
        assert_eq!(
            j.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
    }

    #[test]
    fn bad_rows_name_the_row_and_column() {
        let cases = [
            (
                "id,submit_s,duration_s,gpus\na,0,10,0\n",
                "row 1, column `gpus`",
            ),
            (
                "id,submit_s,duration_s,gpus\na,0,10,1\nb,-1,10,1\n",
                "row 2, column `submit_s`",
            ),
            (
                "id,submit_s,duration_s,gpus\na,0,0,1\n",
                "row 1, column `duration_s`",
            ),
            (
                "id,submit_s,duration_s,gpus\na,0,1,1\na,0,1,1\n",
                "row 2, column `id`",
            ),
            (
                "id,submit_s,duration_s,gpus,gpu_model\na,0,1,1,v100x\n",
                "column `gpu_model`",
            ),
            ("id,submit_s,gpus\na,0,1\n", "no column `duration_s`"),
            ("id,submit_s,duration_s,gpus\na,0,1\n", "row 1"),
        ];
        for (text, want) in cases {
            let e = parse(text, "t.csv", &spec(&[], None))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("t.csv") && e.contains(want),
                "{text:?}: `{e}` lacks `{want}`"
            );
        }
    }
}
