//! `frag-study`: the command-line edge of the fragmentation study (reads files, runs `study`, writes CSVs).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{InputError, Location};

use crate::engine::fgd::engine::Draws;
use crate::engine::fgd::policy::Policy;
use crate::engine::fgd::study::{
    allocation_csv, frag_csv, last_column, study, study_on_gpu, summary,
};
use crate::engine::fgd::trace::Trace;
use crate::input::fgd_replay::load_draws;
use crate::input::openb::{load_nodes, load_pods};
use crate::kernel::node_score::gpu::GpuNodeScorer;

/// Which node-score backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The GPU kernel when a hardware adapter exists, else the CPU (a software adapter such as lavapipe is
    /// used only with `gpu`).
    Auto,
    /// The CPU scorer (experiments in parallel).
    Cpu,
    /// The GPU kernel (shaders/node_score.wgsl; the scored experiments of the grid in lockstep, Random on the
    /// CPU); an error without an adapter.
    Gpu,
}

/// Arguments of `frag-study`: reproduce the FGD paper's fragmentation study on an openb trace.
#[derive(clap::Args, Clone, Debug)]
pub struct FragStudyArgs {
    /// Node list CSV (sn,cpu_milli,memory_mib,gpu,model), e.g. workloads/traces/openb/openb_node_list_gpu_node.csv.
    #[arg(long, value_name = "NODES.csv")]
    pub nodes: PathBuf,
    /// Pod list CSV (name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]); its stem names the workload.
    #[arg(long, value_name = "PODS.csv")]
    pub pods: PathBuf,
    /// Policy to run; repeat for several [default: all six].
    #[arg(long = "policy", value_name = "P", value_enum)]
    pub policies: Vec<Policy>,
    /// Seed, or an inclusive range such as 42..51; repeatable [default: 42].
    #[arg(long = "seed", value_name = "S", value_parser = parse_seeds)]
    pub seeds: Vec<Vec<u64>>,
    /// Tune-up factor: pods are added until their GPU demand reaches this multiple of capacity.
    #[arg(long, default_value_t = 1.3, value_name = "X")]
    pub tune: f64,
    /// Output: allocation-ratio CSV (workload,sc_policy,tune,seed,total_gpus,0..130).
    #[arg(long, value_name = "OUT.csv")]
    pub csv: PathBuf,
    /// Output: fragmentation-ratio CSV (same columns without total_gpus).
    #[arg(long, value_name = "OUT2.csv")]
    pub frag_csv: Option<PathBuf>,
    /// Output: a self-contained HTML page plotting the mean allocation ratio against arrived workload per
    /// policy (with --reference, the published curves dashed beside them).
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// Published allocation curves to plot with --html, e.g.
    /// workloads/traces/fgd-reference/allo_discrete_default.csv.
    #[arg(long, value_name = "REF.csv", requires = "html")]
    pub reference: Option<PathBuf>,
    /// Replay the original's pod order (one name per line) instead of the RNG; `{seed}` in the path is replaced
    /// by each seed.
    #[arg(long, value_name = "FILE", requires = "node_names")]
    pub pod_order: Option<String>,
    /// Replay the original's node tie-break names (`<rank>-<node>` per line); `{seed}` is replaced by each seed.
    #[arg(long, value_name = "FILE", requires = "pod_order")]
    pub node_names: Option<String>,
    /// Node-score backend: auto (a hardware GPU if present, else cpu), cpu, or gpu (any adapter, software
    /// included: WGPU_BACKEND=vulkan picks Mesa lavapipe on a machine without a GPU).
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
}

/// `S` or `A..B` (inclusive).
fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{t}` is not a seed; expected N or A..B"))
    };
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b.trim_start_matches('='))?);
            if a > b || b - a > 100_000 {
                return Err(format!(
                    "`{s}`: expected A..B with A <= B (inclusive, at most 100,000 seeds)"
                ));
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![num(s)?]),
    }
}

/// The pod file's stem (`openb_pod_list_default`), the published `workload` label.
fn workload_name(pods: &Path) -> String {
    pods.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workload".into())
}

/// Runs the study the arguments describe, writes the CSVs and prints a per-policy summary to stdout.
pub fn run(args: &FragStudyArgs) -> anyhow::Result<()> {
    if !(args.tune.is_finite() && args.tune > 0.0 && args.tune <= 10.0) {
        return Err(InputError::new(
            "--tune",
            Location::File,
            format!("{} is out of range; expected 0 < X <= 10", args.tune),
        )
        .into());
    }
    let policies: Vec<Policy> = if args.policies.is_empty() {
        Policy::ALL.to_vec()
    } else {
        let mut p = args.policies.clone();
        p.sort();
        p.dedup();
        p
    };
    let mut seeds: Vec<u64> = args.seeds.iter().flatten().copied().collect();
    if seeds.is_empty() {
        seeds.push(42);
    }
    seeds.sort_unstable();
    seeds.dedup();

    // Read the reference before the long part, so a bad file fails fast.
    let reference = match &args.reference {
        Some(path) => {
            let label = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| {
                InputError::new(&label, Location::File, format!("cannot read: {e}"))
            })?;
            Some(crate::engine::fgd::study::published_means(&text, &label)?)
        }
        None => None,
    };
    let nodes = load_nodes(&args.nodes)?;
    let pods = load_pods(&args.pods)?;
    let trace = Trace::new(
        &workload_name(&args.pods),
        &nodes,
        &args.nodes.display().to_string(),
        &pods,
    )?;

    let mut draws: BTreeMap<u64, Draws> = BTreeMap::new();
    if let (Some(po), Some(nn)) = (&args.pod_order, &args.node_names) {
        let templated = po.contains("{seed}") && nn.contains("{seed}");
        if !templated && seeds.len() > 1 {
            return Err(InputError::new(
                "--pod-order",
                Location::File,
                "replay files belong to one seed: give one --seed, or put `{seed}` in both paths",
            )
            .into());
        }
        for &s in &seeds {
            let path = |t: &str| PathBuf::from(t.replace("{seed}", &s.to_string()));
            draws.insert(s, load_draws(&path(po), &path(nn), &trace)?);
        }
    }

    let mut gpu = match args.backend {
        BackendChoice::Cpu => None,
        BackendChoice::Gpu => match GpuNodeScorer::new() {
            Ok(g) => Some(g),
            Err(e) => {
                return Err(InputError::new(
                    "--backend",
                    Location::File,
                    format!("gpu: {e}; use --backend cpu"),
                )
                .into())
            }
        },
        BackendChoice::Auto => GpuNodeScorer::new().ok().filter(|g| !g.is_software()),
    };
    let start = Instant::now();
    let rows = match gpu.as_mut() {
        Some(g) => study_on_gpu(&trace, &policies, &seeds, args.tune, &draws, g),
        None => study(&trace, &policies, &seeds, args.tune, &draws),
    };
    let elapsed = start.elapsed();
    let backend_note = match &gpu {
        Some(g) => {
            let mut note = format!(
                "backend gpu ({}): {} pod(s) scored on the GPU, {} on the CPU",
                g.adapter(),
                g.gpu_calls(),
                g.fallbacks()
            );
            if let Some(e) = g.last_error() {
                note.push_str(&format!(" (last device error: {e})"));
            }
            note
        }
        None => "backend cpu".to_string(),
    };

    // Both files are built before either is written, so an error leaves no partial output.
    let alloc = allocation_csv(&rows);
    let frag = args.frag_csv.as_ref().map(|_| frag_csv(&rows));
    let html = args.html.as_ref().map(|_| {
        let title = format!(
            "FGD fragmentation study: {} (tune {}, {} seed(s))",
            trace.workload,
            args.tune,
            seeds.len()
        );
        crate::output::html::frag_study_html(
            &title,
            &crate::engine::fgd::study::mean_curves(&rows),
            reference.as_deref(),
        )
    });
    super::write_atomically(&args.csv, &alloc)?;
    if let (Some(path), Some(text)) = (&args.frag_csv, &frag) {
        super::write_atomically(path, text)?;
    }
    if let (Some(path), Some(text)) = (&args.html, &html) {
        super::write_atomically(path, text)?;
    }

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} nodes, {} GPUs, {} pods, tune {}, {} seed(s), {}; {}",
        trace.workload,
        trace.nodes.len(),
        trace.total_gpus,
        trace.pods.len(),
        args.tune,
        seeds.len(),
        if draws.is_empty() {
            "own RNG"
        } else {
            "replaying the original's draws"
        },
        backend_note
    )?;
    writeln!(
        out,
        "{:<18} {:>5} {:>17} {:>10}",
        "policy",
        "seeds",
        format!("alloc% @{}", last_column(args.tune)),
        "wall s"
    )?;
    for (policy, n, mean, wall) in summary(&rows) {
        writeln!(
            out,
            "{:<18} {:>5} {:>17.2} {:>10.2}",
            policy.label(),
            n,
            mean,
            wall.as_secs_f64()
        )?;
    }
    writeln!(
        out,
        "elapsed {:.2} s ({} experiments, {:.1} experiments/s, {} threads)",
        elapsed.as_secs_f64(),
        rows.len(),
        rows.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        rayon::current_num_threads()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: FragStudyArgs,
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn seeds_and_defaults() {
        let c = Cli::try_parse_from([
            "x", "--nodes", "n", "--pods", "p.csv", "--csv", "o", "--seed", "42..44", "--seed", "7",
        ])
        .unwrap();
        assert_eq!(c.args.seeds, vec![vec![42, 43, 44], vec![7]]);
        assert_eq!(c.args.tune, 1.3);
        assert_eq!(c.args.backend, BackendChoice::Auto);
        assert!(Cli::try_parse_from([
            "x", "--nodes", "n", "--pods", "p", "--csv", "o", "--seed", "5..1"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "x",
            "--nodes",
            "n",
            "--pods",
            "p",
            "--csv",
            "o",
            "--pod-order",
            "f"
        ])
        .is_err());
        assert_eq!(
            workload_name(Path::new("a/openb_pod_list_default.csv")),
            "openb_pod_list_default"
        );
    }
}
