//! Times the placement cost kernel (CPU twin and, when an adapter exists, the GPU) on seeded random batches.
//!
//! `cargo run --release --example bench_kernel -- [JOBSxCANDIDATES ...] [--policy first-fit|best-fit|topology-pack]
//! [--reps N] [--seed S] [--json]`; default sizes: 1000x1000 4000x8000 16000x8000.

use anyhow::{bail, Context};
use ultrasched::kernel::placement::{
    bench, POLICY_BEST_FIT, POLICY_FIRST_FIT, POLICY_TOPOLOGY_PACK,
};

fn main() {
    if let Err(e) = run() {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let mut sizes = Vec::new();
    let (mut policy, mut reps, mut seed, mut json) = (POLICY_TOPOLOGY_PACK, 5usize, 42u64, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--policy" => {
                policy = match args.next().as_deref() {
                    Some("first-fit") => POLICY_FIRST_FIT,
                    Some("best-fit") => POLICY_BEST_FIT,
                    Some("topology-pack") => POLICY_TOPOLOGY_PACK,
                    other => {
                        bail!("--policy takes first-fit, best-fit or topology-pack, not {other:?}")
                    }
                }
            }
            "--reps" => {
                reps = args
                    .next()
                    .context("--reps needs a number")?
                    .parse()
                    .context("--reps")?
            }
            "--seed" => {
                seed = args
                    .next()
                    .context("--seed needs a number")?
                    .parse()
                    .context("--seed")?
            }
            "--json" => json = true,
            size => {
                let (j, n) = size
                    .split_once('x')
                    .with_context(|| format!("size {size:?}: write JOBSxCANDIDATES"))?;
                sizes.push((j.parse().context("jobs")?, n.parse().context("candidates")?));
            }
        }
    }
    if sizes.is_empty() {
        sizes = vec![(1000, 1000), (4000, 8000), (16000, 8000)];
    }
    for (jobs, candidates) in sizes {
        let cfg = bench::BenchConfig {
            jobs,
            candidates,
            policy,
            reps,
            seed,
            crossover: false,
        };
        let report = bench::run(&cfg)?;
        if json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{}", report.to_table());
        }
    }
    Ok(())
}
