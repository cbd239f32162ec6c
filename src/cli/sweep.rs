//! `sweep`, `sweep merge` and `sweep-task`: the I/O of a sweep (the plan, runs and summaries themselves are
//! in `output::sweep`). A sweep directory holds `sweep.json` (the plan), `runs/run-NNNNNN.json` (one result
//! per run, written atomically: a run whose file exists is done), the summaries, and, for a cluster,
//! `sweep.sbatch` (a Slurm job array) or `sweep-job.json` (a Kubernetes Indexed Job).

use crate::error::InputError;
use crate::kernel::placement::select::{open_backend, BackendChoice};
use crate::output::progress::Progress;
use crate::output::sweep::{
    parse_seeds, run_one, summarize_sweep, summary_csv, summary_json, summary_markdown, sweep_html,
    Axis, Plan, RunResult, Summary,
};
use anyhow::Context;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Arguments of `sweep`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    /// `sweep merge DIR`: summarise whatever runs have finished and list the missing ones.
    #[command(subcommand)]
    pub command: Option<SweepCommand>,
    /// The workload file.
    #[arg(required = true)]
    pub file: Option<PathBuf>,
    /// An axis: AXIS=V1,V2,... (queue, backfill, placement, sharing, spill_after_s, load, pool.<name>);
    /// repeat for more axes. The first varies slowest.
    #[arg(long = "grid", value_name = "AXIS=VALUES")]
    pub grid: Vec<String>,
    /// Seeds: A..B (inclusive) or A,B,C (default: the workload's seed).
    #[arg(long, value_name = "SEEDS")]
    pub seeds: Option<String>,
    /// The sweep directory (created; a sweep already there resumes).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
    /// Runs per Slurm array task or Kubernetes index.
    #[arg(long, default_value_t = 1)]
    pub chunk: usize,
    /// Write DIR/sweep.sbatch (a Slurm job array of `ultrasched sweep-task DIR INDEX`) instead of running.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: submit with sbatch, wait for the array (squeue) with a progress bar, then merge.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
    /// Array tasks (or Kubernetes pods) at once.
    #[arg(long, default_value_t = 16)]
    pub max_parallel: usize,
    /// With --slurm: the cluster's MaxArraySize (Slurm's default is 1001): more tasks are refused before
    /// anything is written (raise --chunk).
    #[arg(long, default_value_t = 1001)]
    pub max_array_size: usize,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm time limit per task (e.g. 01:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// Slurm account.
    #[arg(long)]
    pub account: Option<String>,
    /// Write DIR/sweep-job.json (a Kubernetes Indexed Job; JOB_COMPLETION_INDEX is the task) instead of
    /// running.
    #[arg(long, conflicts_with = "slurm")]
    pub k8s: bool,
    /// With --k8s: the container image (it must hold `ultrasched` on its PATH).
    #[arg(long, default_value = "ultrasched:latest")]
    pub image: String,
    /// With --k8s: the PersistentVolumeClaim mounted at DIR (it must hold the workload at the same path).
    #[arg(long, default_value = "ultrasched-sweep")]
    pub pvc: String,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `sweep merge`.
#[derive(Debug, clap::Subcommand)]
pub enum SweepCommand {
    /// Summarise the finished runs of DIR and list the missing ones.
    Merge {
        /// The sweep directory.
        dir: PathBuf,
    },
}

/// Arguments of `sweep-task`.
#[derive(Debug, clap::Args)]
pub struct SweepTaskArgs {
    /// The sweep directory (with its sweep.json).
    pub dir: PathBuf,
    /// The task: runs INDEX x chunk up to the next chunk.
    pub index: usize,
}

/// Most completions of a Kubernetes Indexed Job.
const K8S_MAX_COMPLETIONS: usize = 100_000;

fn flag_error(flag: &str, msg: impl Into<String>) -> anyhow::Error {
    InputError::field("command line", flag, msg).into()
}

/// `ultrasched sweep ...`.
pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    if let Some(SweepCommand::Merge { dir }) = &args.command {
        let summary = merge(dir)?;
        report_missing(&summary);
        return Ok(());
    }
    let (Some(file), Some(dir)) = (&args.file, &args.out) else {
        return Err(flag_error("FILE and --out", "are required"));
    };
    let axes = args
        .grid
        .iter()
        .map(|g| Axis::parse(g).map_err(|e| flag_error("--grid", e)))
        .collect::<anyhow::Result<Vec<Axis>>>()?;
    let file_abs = std::fs::canonicalize(file).map_err(|e| {
        InputError::new(
            file.display().to_string(),
            crate::error::Location::File,
            format!("cannot read: {e}"),
        )
    })?;
    // Fail fast, with the loader's located message, before anything is written: the first combination
    // with the file's own seed (which is also the default seed list).
    let (mut ov, mut ed) = Default::default();
    for a in &axes {
        a.apply(&a.values[0], &mut ov, &mut ed)
            .map_err(|e| flag_error("--grid", e))?;
    }
    let w = crate::input::workload::load_edited(&file_abs, ov, &ed)?;
    crate::engine::serving::check_limits(&w)?;
    let seeds = match &args.seeds {
        Some(s) => parse_seeds(s).map_err(|e| flag_error("--seeds", e))?,
        None => vec![w.seed],
    };
    let plan = Plan::new(file_abs.display().to_string(), axes, seeds, args.chunk)
        .map_err(|e| flag_error("--grid/--seeds", e))?;
    // What the cluster would refuse, refused now.
    if args.slurm {
        if plan.tasks() > args.max_array_size {
            return Err(flag_error(
                "--chunk",
                format!(
                    "{} runs in chunks of {} make {} array tasks, above MaxArraySize {}; allowed: a chunk of \
                     at least {}",
                    plan.len(),
                    plan.chunk,
                    plan.tasks(),
                    args.max_array_size,
                    plan.len().div_ceil(args.max_array_size.max(1))
                ),
            ));
        }
        for (flag, v) in [
            ("--partition", &args.partition),
            ("--time", &args.time),
            ("--account", &args.account),
        ] {
            if let Some(v) = v {
                slurm_value(flag, v)?;
            }
        }
    }
    if args.k8s && plan.tasks() > K8S_MAX_COMPLETIONS {
        return Err(flag_error(
            "--chunk",
            format!(
                "{} runs in chunks of {} make {} completions, above the {K8S_MAX_COMPLETIONS} an Indexed Job \
                 allows; allowed: a chunk of at least {}",
                plan.len(),
                plan.chunk,
                plan.tasks(),
                plan.len().div_ceil(K8S_MAX_COMPLETIONS)
            ),
        ));
    }
    for a in plan.axes.iter().filter(|a| a.name.starts_with("pool.")) {
        for v in &a.values {
            let mut ov = crate::input::workload::Overrides::default();
            let mut ed = crate::input::workload::Edits::default();
            a.apply(v, &mut ov, &mut ed)
                .map_err(|e| flag_error("--grid", e))?;
            crate::input::workload::load_edited(&file_abs, ov, &ed)?;
        }
    }
    std::fs::create_dir_all(dir.join("runs"))
        .with_context(|| format!("cannot create {}", dir.join("runs").display()))?;
    let plan_path = dir.join("sweep.json");
    let text = serde_json::to_string_pretty(&plan)? + "\n";
    if let Ok(old) = std::fs::read_to_string(&plan_path) {
        if old != text {
            return Err(flag_error(
                "--out",
                format!(
                    "{} holds a different sweep (its sweep.json differs); use another directory",
                    dir.display()
                ),
            ));
        }
    }
    write_atomic(&plan_path, &text)?;
    let dir = std::fs::canonicalize(dir)?;
    if args.slurm {
        let sbatch = dir.join("sweep.sbatch");
        write_atomic(&sbatch, &sbatch_script(&plan, &dir, args)?)?;
        std::fs::create_dir_all(dir.join("logs"))?;
        if !args.submit {
            eprintln!(
                "wrote {} ({} array tasks for {} runs); submit with: sbatch {}; then: ultrasched sweep merge {}",
                sbatch.display(),
                plan.tasks(),
                plan.len(),
                sbatch.display(),
                dir.display()
            );
            return Ok(());
        }
        submit_and_wait(&plan, &dir, &sbatch, args.quiet)?;
    } else if args.k8s {
        let manifest = dir.join("sweep-job.json");
        write_atomic(&manifest, &k8s_manifest(&plan, &dir, args))?;
        eprintln!(
            "wrote {} ({} indexed completions for {} runs); apply with: kubectl apply -f {}; then: ultrasched \
             sweep merge {}",
            manifest.display(),
            plan.tasks(),
            plan.len(),
            manifest.display(),
            dir.display()
        );
        return Ok(());
    } else {
        run_local(&plan, &dir, args.quiet)?;
    }
    let summary = merge(&dir)?;
    print!("{}", summary_markdown(&summary));
    report_missing(&summary);
    if summary.missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} runs have no result", summary.missing.len())
    }
}

/// `ultrasched sweep-task DIR INDEX`: one array task's runs, each skipped when its result exists.
pub fn task(args: &SweepTaskArgs) -> anyhow::Result<()> {
    let plan = read_plan(&args.dir)?;
    if args.index >= plan.tasks() {
        return Err(flag_error(
            "INDEX",
            format!("{}: allowed: 0 to {}", args.index, plan.tasks() - 1),
        ));
    }
    for i in plan.task_runs(args.index) {
        run_and_write(&plan, &args.dir, i)?;
    }
    Ok(())
}

fn result_path(dir: &Path, index: usize) -> PathBuf {
    dir.join("runs").join(format!("run-{index:06}.json"))
}

/// Runs `index` unless its result exists; writes the result atomically.
fn run_and_write(plan: &Plan, dir: &Path, index: usize) -> anyhow::Result<bool> {
    let path = result_path(dir, index);
    if read_result(&path).is_some() {
        return Ok(false);
    }
    let (mut backend, _) = open_backend(BackendChoice::Cpu, false)?;
    let r = run_one(plan, index, backend.as_mut()).with_context(|| format!("run {index}"))?;
    write_atomic(&path, &(serde_json::to_string_pretty(&r)? + "\n"))?;
    Ok(true)
}

fn read_result(path: &Path) -> Option<RunResult> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn read_plan(dir: &Path) -> anyhow::Result<Plan> {
    let path = dir.join("sweep.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        InputError::new(
            path.display().to_string(),
            crate::error::Location::File,
            format!("cannot read: {e} (is this a sweep directory?)"),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        InputError::new(
            path.display().to_string(),
            crate::error::Location::LineCol(e.line(), e.column()),
            format!("is not a sweep plan: {e}"),
        )
        .into()
    })
}

/// Runs the missing runs on every core, with a progress bar.
fn run_local(plan: &Plan, dir: &Path, quiet: bool) -> anyhow::Result<()> {
    let todo: Vec<usize> = (0..plan.len())
        .filter(|&i| read_result(&result_path(dir, i)).is_none())
        .collect();
    let done0 = (plan.len() - todo.len()) as u64;
    let bar = std::sync::Mutex::new((done0, Progress::new(plan.len() as u64, "runs", quiet)));
    let results: Vec<anyhow::Result<bool>> = todo
        .par_iter()
        .map(|&i| {
            let r = run_and_write(plan, dir, i);
            if let Ok(mut b) = bar.lock() {
                b.0 += 1;
                let done = b.0;
                b.1.set(done, String::new);
            }
            r
        })
        .collect();
    if let Ok(b) = bar.lock() {
        b.1.finish();
    }
    for r in results {
        r?;
    }
    Ok(())
}

/// Reads every result of `dir` and writes the summaries (atomically, together).
pub fn merge(dir: &Path) -> anyhow::Result<Summary> {
    let plan = read_plan(dir)?;
    let results: Vec<RunResult> = (0..plan.len())
        .filter_map(|i| read_result(&result_path(dir, i)))
        .collect();
    let summary = summarize_sweep(&plan, &results);
    crate::cli::write_files(&[
        (dir.join("summary.csv"), summary_csv(&summary)),
        (dir.join("summary.md"), summary_markdown(&summary)),
        (dir.join("summary.json"), summary_json(&summary)),
        (dir.join("sweep.html"), sweep_html(&summary)),
    ])?;
    Ok(summary)
}

fn report_missing(s: &Summary) {
    let total = s.combinations.len() * s.seeds.len();
    if s.missing.is_empty() {
        eprintln!("all {total} runs merged");
    } else {
        let shown: Vec<String> = s.missing.iter().take(20).map(|i| i.to_string()).collect();
        eprintln!(
            "{} of {total} runs missing: {}{}",
            s.missing.len(),
            shown.join(", "),
            if s.missing.len() > 20 { ", ..." } else { "" }
        );
    }
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!(
        "tmp.{}.{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// A word for a POSIX shell: single-quoted.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A Slurm option value: no newlines (each `#SBATCH` line is one option).
fn slurm_value(flag: &str, v: &str) -> anyhow::Result<String> {
    if v.is_empty() || v.contains(['\n', '\r']) || v.contains(char::is_whitespace) {
        return Err(flag_error(flag, format!("`{v}`: allowed: one word")));
    }
    Ok(v.to_string())
}

/// `DIR/sweep.sbatch`: a job array of `sweep-task`, throttled by --max-parallel.
pub fn sbatch_script(plan: &Plan, dir: &Path, args: &SweepArgs) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("cannot find the ultrasched binary")?;
    let mut s = String::from("#!/bin/bash\n#SBATCH --job-name=ultrasched-sweep\n");
    s += &format!(
        "#SBATCH --array=0-{}%{}\n",
        plan.tasks() - 1,
        args.max_parallel.max(1)
    );
    s += &format!("#SBATCH --output={}/logs/task-%a.out\n", dir.display());
    s += "#SBATCH --cpus-per-task=1\n";
    for (flag, v) in [
        ("partition", &args.partition),
        ("time", &args.time),
        ("account", &args.account),
    ] {
        if let Some(v) = v {
            s += &format!(
                "#SBATCH --{flag}={}\n",
                slurm_value(&format!("--{flag}"), v)?
            );
        }
    }
    s += &format!(
        "# {} runs of {} in {} tasks of {}\nset -euo pipefail\nexec {} sweep-task {} \"$SLURM_ARRAY_TASK_ID\"\n",
        plan.len(),
        plan.workload,
        plan.tasks(),
        plan.chunk,
        sh_quote(&exe.display().to_string()),
        sh_quote(&dir.display().to_string())
    );
    Ok(s)
}

/// `DIR/sweep-job.json`: a Kubernetes Indexed Job, one completion per task.
pub fn k8s_manifest(plan: &Plan, dir: &Path, args: &SweepArgs) -> String {
    let dir = dir.display().to_string();
    let v = serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": "ultrasched-sweep", "labels": { "app": "ultrasched-sweep" } },
        "spec": {
            "completionMode": "Indexed",
            "completions": plan.tasks(),
            "parallelism": args.max_parallel.max(1).min(plan.tasks()),
            "backoffLimit": plan.tasks().max(6),
            "template": {
                "metadata": { "labels": { "app": "ultrasched-sweep" } },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "sweep-task",
                        "image": args.image,
                        "command": ["sh", "-c", "exec ultrasched sweep-task \"$SWEEP_DIR\" \"$JOB_COMPLETION_INDEX\""],
                        "env": [{ "name": "SWEEP_DIR", "value": dir }],
                        "resources": { "requests": { "cpu": "1" } },
                        "volumeMounts": [{ "name": "sweep", "mountPath": dir }]
                    }],
                    "volumes": [{ "name": "sweep", "persistentVolumeClaim": { "claimName": args.pvc } }]
                }
            }
        }
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// Submits the array, waits for it with a progress bar (results counted on disk, squeue for the end),
/// and returns when no task is left in the queue.
fn submit_and_wait(plan: &Plan, dir: &Path, sbatch: &Path, quiet: bool) -> anyhow::Result<()> {
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(sbatch)
        .output()
        .context("cannot run sbatch (is Slurm installed and on PATH?)")?;
    if !out.status.success() {
        anyhow::bail!(
            "sbatch failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let job = stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if job.is_empty() || !job.chars().all(|c| c.is_ascii_digit()) {
        anyhow::bail!("sbatch printed no job id: `{}`", stdout.trim());
    }
    eprintln!("submitted Slurm job array {job} ({} tasks)", plan.tasks());
    let mut bar = Progress::new(plan.len() as u64, "runs", quiet);
    let count = || {
        (0..plan.len())
            .filter(|&i| result_path(dir, i).exists())
            .count() as u64
    };
    loop {
        bar.set(count(), || format!("job {job}"));
        let q = std::process::Command::new("squeue")
            .args(["-h", "-j", &job, "-o", "%i %T"])
            .output()
            .context("cannot run squeue")?;
        let listed = String::from_utf8_lossy(&q.stdout);
        // Finished arrays leave the queue (squeue then prints nothing, or, once purged, fails on the id).
        if !q.status.success() || listed.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    bar.set(count(), String::new);
    bar.finish();
    Ok(())
}
