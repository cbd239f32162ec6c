//! The command line: parses arguments, loads inputs, runs the core, writes reports. All I/O of the program
//! happens here and in the loaders it calls. One file per larger command.

pub mod check;
pub mod frag_study;
pub mod replay_inference;
pub mod sweep;

use crate::domain::catalog::{GPU_MODELS, PRESETS};
use crate::domain::workload::time_to_s;
use crate::domain::workload::{Backfill, PlacementPolicy, QueuePolicy};
use crate::input::workload::{self, Overrides};
use crate::kernel::placement::select::{open_backend, BackendChoice};
use crate::output::compare::{run_grid, CompareFormat, Grid};
use crate::output::html::report_html;
use crate::output::progress::Progress;
use crate::output::report::human_s;
use crate::output::report::{jobs_csv, placements_csv, Report, RunInfo};
use crate::output::timeline::trace_json;
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// ultrasched: simulate where AI training and inference jobs run on UltraServer-style GPU clusters, and what
/// each scheduling and placement decision costs.
///
/// Start with `ultrasched run workloads/quickstart.toml`. `ultrasched presets` lists the cluster building
/// blocks; `ultrasched validate FILE` checks a workload without running it.
#[derive(Debug, Parser)]
#[command(name = "ultrasched", version, about, long_about, max_term_width = 110)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workload file (TOML, or JSON when it ends in .json) and print what happened.
    ///
    /// Example: ultrasched run workloads/gb200-training.toml --queue fifo --placement first-fit --out out/
    Run(RunArgs),
    /// Check a finished run independently of the engine: per-node capacity at every instant, each job once,
    /// starts after submit, GPU models, topology levels, preemptions, and report.json's totals, recomputed
    /// from DIR/placements.csv, DIR/jobs.csv and the workload. Exits 1 naming the first violation.
    ///
    /// Example: ultrasched run workloads/quickstart.toml --out out/ && ultrasched check out/
    Check(check::CheckArgs),
    /// Check a workload file without running it; prints what it holds.
    Validate {
        /// The workload file.
        file: PathBuf,
    },
    /// List the cluster presets (the units pools are built from) with their figures.
    Presets,
    /// Reproduce the FGD (USENIX ATC'23) GPU-sharing fragmentation study on an Alibaba openb trace.
    ///
    /// Example: ultrasched frag-study --nodes workloads/traces/openb/openb_node_list_gpu_node.csv
    /// --pods workloads/traces/openb/openb_pod_list_default.csv --seed 42..51 --csv out/alloc.csv
    FragStudy(frag_study::FragStudyArgs),
    /// Run one workload under every queue x placement x seed combination (in parallel) and print one
    /// table of headline metrics, each run against the first.
    ///
    /// Example: ultrasched compare workloads/gb200-training.toml --queue fifo,sjf --placement first-fit,topology-pack
    Compare(CompareArgs),
    /// Time the placement kernel on both backends (CPU twin and WGSL on the GPU adapter) on the same seeded
    /// random batch, and check that they agree.
    ///
    /// Example: ultrasched bench-kernel --jobs 16384 --candidates 8192 --reps 5
    BenchKernel(BenchKernelArgs),
    /// Replay an LLM request trace on serving replicas (roofline model, continuous batching, routing).
    ///
    /// Example: ultrasched replay-inference --trace azure:workloads/traces/azure-llm-2023/AzureLLMInferenceTrace_code.csv
    /// --model llama-2-70b --gpu h100 --tp 8 --replicas 2
    ReplayInference(crate::cli::replay_inference::ReplayArgs),
    /// Run a grid of axes x seeds (locally on every core, as a Slurm job array, or as a Kubernetes Indexed
    /// Job) and summarise each combination with a mean and a 95 % confidence interval over seeds. A sweep
    /// resumes where it stopped; `sweep merge DIR` summarises what has finished.
    ///
    /// Example: ultrasched sweep workloads/quickstart.toml --grid queue=fifo,sjf --grid load=0.5,1,1.5
    /// --seeds 1..10 --out sweep/
    Sweep(sweep::SweepArgs),
    /// Run one task of a sweep (a Slurm array task or Kubernetes index): its chunk of runs.
    SweepTask(sweep::SweepTaskArgs),
}

/// Arguments of `bench-kernel`.
#[derive(Debug, clap::Args)]
pub struct BenchKernelArgs {
    /// Pending jobs in the batch (1..=1048576).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub jobs: u32,
    /// Candidate domains in the batch (0..=4194304).
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u32).range(0..=4_194_304))]
    pub candidates: u32,
    /// Placement policy whose cost is timed.
    #[arg(long, value_enum, default_value_t = PlacementPolicy::TopologyPack)]
    pub policy: PlacementPolicy,
    /// Repetitions; medians are reported (1..=1000).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reps: u32,
    /// Seed of the random batch.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also time calls of 1, 2, 4, .. --jobs jobs against --candidates on both backends and report where
    /// the GPU starts to win (and the crossover `--backend auto` would measure).
    #[arg(long)]
    pub crossover: bool,
}

/// Arguments of `compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The workload file.
    pub file: PathBuf,
    /// Queue policies, comma-separated (default: the workload's).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub queue: Vec<QueuePolicy>,
    /// Placement policies, comma-separated (default: the workload's).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub placement: Vec<PlacementPolicy>,
    /// Backfill modes, comma-separated (default: the workload's).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub backfill: Vec<Backfill>,
    /// Sharing policies, comma-separated (default: the workload's).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub sharing: Vec<crate::domain::workload::Sharing>,
    /// `scheduler.spill_after_s` values in seconds, comma-separated (default: the workload's).
    #[arg(long, value_delimiter = ',', value_parser = parse_seconds, value_name = "SECONDS")]
    pub spill_after: Vec<f64>,
    /// Seeds: --seed 1,2,3 or --seed 1 2 3 (default: the workload's).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub seed: Vec<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
    pub format: CompareFormat,
    /// Placement kernel of every run (compare runs the CPU twin for now).
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Output format of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable summary.
    Table,
    /// report.json on stdout.
    Json,
}

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The workload file.
    pub file: PathBuf,
    /// Also write DIR/report.json, DIR/jobs.csv, DIR/placements.csv and DIR/report.html (the directory is
    /// created).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Override the workload's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the queue policy.
    #[arg(long, value_enum)]
    pub queue: Option<QueuePolicy>,
    /// Override the placement policy.
    #[arg(long, value_enum)]
    pub placement: Option<PlacementPolicy>,
    /// Override the backfill mode.
    #[arg(long, value_enum)]
    pub backfill: Option<Backfill>,
    /// Override how autoscaled services and training share the fleet.
    #[arg(long, value_enum)]
    pub sharing: Option<crate::domain::workload::Sharing>,
    /// Override `scheduler.spill_after_s`: seconds a job waits before on-demand pools open to it.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub spill_after: Option<f64>,
    /// Placement kernel: auto takes a GPU adapter when one exists (WGPU_BACKEND, WGPU_ADAPTER_NAME choose
    /// one), else the CPU twin. Both make the same decisions.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Run both kernels every round and stop at the first pair where they differ.
    #[arg(long)]
    pub verify: bool,
    /// Also write the run as a timeline (Chrome trace JSON: open in ui.perfetto.dev or chrome://tracing).
    #[arg(long, value_name = "FILE.json")]
    pub trace_out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Parses the command line and runs it.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run_workload(&args),
        Command::Validate { file } => validate(&file),
        Command::Check(args) => check::run(&args),
        Command::Presets => {
            print!("{}", presets_table());
            Ok(())
        }
        Command::Compare(args) => compare(&args),
        Command::BenchKernel(args) => bench_kernel(&args),
        Command::FragStudy(args) => crate::cli::frag_study::run(&args),
        Command::ReplayInference(args) => crate::cli::replay_inference::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::SweepTask(args) => sweep::task(&args),
    }
}

fn run_workload(args: &RunArgs) -> anyhow::Result<()> {
    let ov = Overrides {
        seed: args.seed,
        queue: args.queue,
        placement: args.placement,
        backfill: args.backfill,
        sharing: args.sharing,
        spill_after_s: args.spill_after,
    };
    let w = workload::load(&args.file, ov)?;
    // Every limit before the run: a service whose traffic exceeds one is refused now, not after the
    // cluster simulation.
    crate::engine::serving::check_limits(&w)?;
    let (mut backend, note) = open_backend(args.backend, args.verify)?;
    eprintln!("{note}");
    let started = Instant::now();
    let mut bar = Progress::new(w.jobs.len() as u64, "jobs", args.quiet);
    let outcome = crate::engine::cluster::simulate_with(&w, backend.as_mut(), &mut |p| {
        bar.set(p.jobs_done, || {
            format!("simulated {}", human_s(time_to_s(p.time)))
        })
    });
    bar.finish();
    let outcome = outcome.context("simulation stopped")?;
    let cluster_s = started.elapsed().as_secs_f64();
    // Request-level serving of the inference services, on the replicas and times the engine gave them.
    let inference = crate::engine::serving::serve_services(&w, &outcome)?;
    let wall_s = started.elapsed().as_secs_f64();

    let run = RunInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        backend: backend.name().to_string(),
        adapter: backend.adapter(),
        wall_s,
        cluster_s,
        serving_s: wall_s - cluster_s,
        kernel_usage: backend.usage(),
        workload_file: args.file.display().to_string(),
    };
    let report = Report::new(&w, &outcome, run).with_inference(inference);
    // Everything is built before anything is written, and written together at the end.
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    if let Some(dir) = &args.out {
        files.push((dir.join("report.json"), report.to_json()));
        files.push((dir.join("jobs.csv"), jobs_csv(&w, &outcome)));
        files.push((dir.join("placements.csv"), placements_csv(&w, &outcome)));
        files.push((dir.join("report.html"), report_html(&w, &outcome, &report)));
    }
    if let Some(path) = &args.trace_out {
        files.push((path.clone(), trace_json(&w, &outcome)));
    }
    write_files(&files)?;
    let text = match args.format {
        Format::Table => report.to_table(),
        Format::Json => report.to_json(),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

/// Writes `text` to a temporary file next to `path` (creating its directory), then renames it over `path`.
pub(crate) fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// Writes each file to a temporary name first, then renames, so a failure leaves no partial report.
pub fn write_outputs(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let mut temps = Vec::new();
    for (name, body) in files {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body).with_context(|| format!("cannot write {}", tmp.display()))?;
        temps.push((tmp, dir.join(name)));
    }
    for (tmp, dst) in temps {
        std::fs::rename(&tmp, &dst).with_context(|| format!("cannot write {}", dst.display()))?;
    }
    Ok(())
}

fn bench_kernel(args: &BenchKernelArgs) -> anyhow::Result<()> {
    // Bounded so a typo cannot start hours of work: 2^36 pairs is about half a minute on two cores.
    let pairs = args.jobs as u64 * args.candidates as u64;
    if pairs > 1 << 36 {
        return Err(crate::error::InputError::new(
            "--jobs/--candidates",
            crate::error::Location::File,
            format!(
                "{pairs} pairs is too many: jobs x candidates must be at most 2^36 (68719476736)"
            ),
        )
        .into());
    }
    let cfg = crate::kernel::placement::bench::BenchConfig {
        jobs: args.jobs as usize,
        candidates: args.candidates as usize,
        policy: crate::kernel::placement::policy_id(args.policy),
        reps: args.reps as usize,
        seed: args.seed,
        crossover: args.crossover,
    };
    let report = crate::kernel::placement::bench::run(&cfg)?;
    let text = match args.format {
        Format::Table => report.to_table(),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    std::io::stdout().write_all(text.as_bytes())?;
    if !report.agree {
        anyhow::bail!("the CPU twin and the GPU kernel disagree on this batch");
    }
    Ok(())
}

/// Writes files (creating their directories) to temporary names next to them first, then renames them all,
/// so a failure leaves no partial output.
pub fn write_files(files: &[(PathBuf, String)]) -> anyhow::Result<()> {
    let mut temps = Vec::new();
    for (dst, body) in files {
        let dir = match dst.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
        let name = dst
            .file_name()
            .with_context(|| format!("{} is not a file name", dst.display()))?;
        let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
        if let Err(e) = std::fs::write(&tmp, body) {
            for (t, _) in &temps {
                let _ = std::fs::remove_file(t);
            }
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("cannot write {}", tmp.display()));
        }
        temps.push((tmp, dst));
    }
    for (tmp, dst) in temps {
        std::fs::rename(&tmp, dst).with_context(|| format!("cannot write {}", dst.display()))?;
    }
    Ok(())
}

fn compare(args: &CompareArgs) -> anyhow::Result<()> {
    let grid = Grid {
        queues: args.queue.clone(),
        placements: args.placement.clone(),
        backfills: args.backfill.clone(),
        sharings: args.sharing.clone(),
        seeds: args.seed.clone(),
        spill_afters: args.spill_after.clone(),
    };
    let runs = grid.overrides().len() as u64;
    let bar = std::sync::Mutex::new((0u64, Progress::new(runs, "runs", args.quiet)));
    let result = run_grid(&args.file, &grid, args.backend, &|| {
        if let Ok(mut b) = bar.lock() {
            b.0 += 1;
            let done = b.0;
            b.1.set(done, String::new);
        }
    });
    if let Ok(b) = bar.lock() {
        b.1.finish();
    }
    let comparison = result?;
    std::io::stdout().write_all(args.format.export(&comparison).as_bytes())?;
    Ok(())
}

fn validate(file: &Path) -> anyhow::Result<()> {
    let w = workload::load(file, Overrides::default())?;
    crate::engine::serving::check_limits(&w)?;
    let training = w
        .jobs
        .iter()
        .filter(|j| j.kind == crate::domain::workload::JobKind::Training)
        .count();
    println!(
        "{}: ok: {} GPUs in {} pools ({} NVLink domains); {} jobs ({} training, {} inference); seed {}",
        file.display(),
        w.cluster.total_gpus,
        w.cluster.pools.len(),
        w.cluster.num_domains(),
        w.jobs.len(),
        training,
        w.jobs.len() - training,
        w.seed
    );
    Ok(())
}

/// The `presets` listing.
pub fn presets_table() -> String {
    let mut t = format!(
        "{:<18} {:<7} {:>6} {:>6} {:>7} {:>6} {:>9}  {}\n",
        "preset", "gpu", "node", "nodes", "domain", "rack", "EFA Gb/s", "description"
    );
    t += &format!(
        "{:<18} {:<7} {:>6} {:>6} {:>7} {:>6} {:>9}\n",
        "", "", "GPUs", "/dom", "GPUs", "doms", "/domain"
    );
    for p in PRESETS {
        t += &format!(
            "{:<18} {:<7} {:>6} {:>6} {:>7} {:>6} {:>9}  {}\n",
            p.id,
            p.model().id,
            p.gpus_per_node,
            p.nodes_per_domain,
            p.domain_gpus(),
            p.domains_per_rack,
            p.scaleout_gbps_per_domain,
            p.description
        );
    }
    t += "\ngpu models:\n";
    t += &format!(
        "{:<7} {:>7} {:>8} {:>9} {:>9} {:>7} {:>9}  {}\n",
        "id", "HBM GB", "HBM TB/s", "BF16 TF/s", "FP8 TF/s", "power W", "link GB/s", "name"
    );
    for m in GPU_MODELS {
        t += &format!(
            "{:<7} {:>7} {:>8} {:>9} {:>9} {:>7} {:>9}  {}\n",
            m.id,
            m.hbm_gb,
            m.hbm_tbps,
            m.bf16_tflops,
            m.fp8_tflops,
            m.power_w,
            m.scaleup_gbps,
            m.name
        );
    }
    t += "\nA pool counts units of one NVLink domain: `count = 16` of p6e-gb200 is 16 UltraServers (1,152 GPUs).\n";
    t
}

/// A `--spill-after` value: seconds from 0 to 10 years.
fn parse_seconds(v: &str) -> Result<f64, String> {
    let s: f64 = v
        .parse()
        .map_err(|_| format!("`{v}` is not a number of seconds"))?;
    if (0.0..=crate::input::spec::MAX_SECONDS).contains(&s) {
        Ok(s)
    } else {
        Err(format!(
            "{v}: allowed: seconds from 0 to 315360000 (10 years)"
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
