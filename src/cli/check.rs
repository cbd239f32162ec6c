//! `ultrasched check DIR`: reads the files a `run --out DIR` wrote and the workload it ran, and hands them to
//! the independent checker ([`crate::check`]). Exit 0 when every check passes, 1 naming the first
//! violation, 2 when a file is missing or malformed.

use crate::check::{check, CheckError, RunFiles};
use crate::error::{InputError, Location};
use crate::input::workload::{self, Overrides};
use std::path::{Path, PathBuf};

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A directory written by `run --out` (report.json, jobs.csv, placements.csv).
    pub dir: PathBuf,
    /// The workload file of the run (default: the one recorded in report.json's `run.workload_file`).
    #[arg(long, value_name = "FILE")]
    pub workload: Option<PathBuf>,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        InputError::new(
            path.display().to_string(),
            Location::File,
            format!("cannot read: {e} (is this a directory written by `run --out`?)"),
        )
        .into()
    })
}

/// Runs `check`.
pub fn run(args: &CheckArgs) -> anyhow::Result<()> {
    let report = read(&args.dir.join("report.json"))?;
    let jobs = read(&args.dir.join("jobs.csv"))?;
    let placements = read(&args.dir.join("placements.csv"))?;
    let file = args.dir.join("report.json").display().to_string();
    let v: serde_json::Value = serde_json::from_str(&report).map_err(|e| {
        InputError::new(
            &file,
            Location::LineCol(e.line(), e.column()),
            format!("not JSON: {e}"),
        )
    })?;
    let workload_file = match &args.workload {
        Some(p) => p.clone(),
        None => match v["run"]["workload_file"].as_str() {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => {
                return Err(InputError::field(
                    &file,
                    "run.workload_file",
                    "is missing: pass the workload with --workload FILE",
                )
                .into())
            }
        },
    };
    let seed = v["seed"].as_u64().ok_or_else(|| {
        InputError::field(&file, "seed", "a non-negative integer is required here")
    })?;
    // The seed decides the generated jobs; policies do not change them.
    let w = workload::load(
        &workload_file,
        Overrides {
            seed: Some(seed),
            ..Default::default()
        },
    )?;
    let files = RunFiles {
        report_json: &report,
        jobs_csv: &jobs,
        placements_csv: &placements,
    };
    match check(&w, files) {
        Ok(done) => {
            println!("{}: {done}", args.dir.display());
            Ok(())
        }
        Err(CheckError::Malformed(mut e)) => {
            e.file = args.dir.join(&e.file).display().to_string();
            Err(e.into())
        }
        Err(CheckError::Violation(v)) => {
            Err(anyhow::anyhow!("{}: violation: {v}", args.dir.display()))
        }
    }
}
