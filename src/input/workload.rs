//! From the file as written ([`spec::WorkloadFile`]) to the typed, validated [`Workload`] of the domain:
//! cross-field checks, command-line overrides, generated jobs. Every error names the file and the field.

use crate::domain::cluster::{Cluster, Pool};
use crate::domain::workload::{PlacementPolicy, QueuePolicy};
use crate::error::InputError;
use spec::{WorkloadFile, MAX_GPUS, MAX_JOBS};
use std::collections::HashSet;

use super::generate;
pub use super::parse::Format;
use super::parse::{strip_json_position, toml_error, with_path};
use super::spec;
use crate::domain::workload::{time_from_s, Scheduler, Workload};
use crate::error::Location;
use std::path::Path;

/// Overrides from the command line, applied before cross-field checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--queue`.
    pub queue: Option<QueuePolicy>,
    /// `--placement`.
    pub placement: Option<PlacementPolicy>,
}

/// Parses a workload file's text.
pub fn parse_str(text: &str, file: &str, format: Format) -> Result<WorkloadFile, InputError> {
    if text.trim().is_empty() {
        return Err(InputError::new(
            file,
            Location::File,
            "the file is empty; a workload needs at least a [cluster] with one pool",
        ));
    }
    match format {
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, &e, ""))?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                toml_error(text, file, e.inner(), &path)
            })
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let spec: WorkloadFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.inner();
                let msg = strip_json_position(&inner.to_string());
                InputError::new(
                    file,
                    Location::LineCol(inner.line(), inner.column()),
                    with_path(&msg, &path),
                )
            })?;
            de.end().map_err(|e| {
                InputError::new(
                    file,
                    Location::LineCol(e.line(), e.column()),
                    "trailing characters after the JSON document",
                )
            })?;
            Ok(spec)
        }
    }
}

/// Reads, parses and builds a workload file.
pub fn load(path: &Path, ov: Overrides) -> anyhow::Result<Workload> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(&file, Location::File, format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        InputError::new(
            &file,
            Location::File,
            format!(
                "is not UTF-8 text (invalid byte at offset {}); expected a TOML or JSON workload",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let spec = parse_str(&text, &file, Format::of(path))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("workload");
    Ok(build(spec, &file, stem, ov)?)
}

/// Checks what spans several fields, applies overrides, draws generated jobs.
pub fn build(
    spec: WorkloadFile,
    file: &str,
    default_name: &str,
    ov: Overrides,
) -> Result<Workload, InputError> {
    let seed = ov.seed.unwrap_or(spec.seed);
    // Cluster.
    if spec.cluster.pools.is_empty() {
        return Err(InputError::field(
            file,
            "cluster.pools",
            "needs at least one pool",
        ));
    }
    let mut total: u64 = 0;
    let mut names = HashSet::new();
    let mut pools = Vec::new();
    for (i, p) in spec.cluster.pools.iter().enumerate() {
        let gpus = p.count.0 as u64 * p.preset.0.domain_gpus() as u64;
        total += gpus;
        if total > MAX_GPUS {
            return Err(InputError::field(
                file,
                format!("cluster.pools[{i}].count"),
                format!("the cluster would hold {total} GPUs; at most {MAX_GPUS} are allowed"),
            ));
        }
        let name = p
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{i}", p.preset.0.id));
        if !names.insert(name.clone()) {
            return Err(InputError::field(
                file,
                format!("cluster.pools[{i}].name"),
                format!("pool name `{name}` is used twice"),
            ));
        }
        pools.push(Pool {
            name,
            preset: p.preset.0,
            provider: p.provider.clone().unwrap_or_else(|| "aws".into()),
            first_domain: 0,
            domains: p.count.0,
            domains_per_rack: p
                .domains_per_rack
                .map_or(p.preset.0.domains_per_rack, |c| c.0),
            first_rack: 0,
            usd_per_gpu_hour: p
                .usd_per_gpu_hour
                .map_or(p.preset.0.model().usd_per_gpu_hour, |x| x.0),
            idle_w: p.idle_w.map_or(p.preset.0.model().idle_w, |x| x.0),
            busy_w: p.busy_w.map_or(p.preset.0.model().power_w, |x| x.0),
        });
    }
    let cluster = Cluster::new(pools);

    // Scheduler.
    let s = &spec.scheduler;
    let queue = ov.queue.unwrap_or(s.queue);
    if s.preemption && queue != QueuePolicy::Priority {
        return Err(InputError::field(
            file,
            "scheduler.preemption",
            "needs queue = \"priority\" (preemption goes by priority)",
        ));
    }
    let scheduler = Scheduler {
        queue,
        backfill: s.backfill,
        backfill_depth: s.backfill_depth.map_or(256, |c| c.0),
        preemption: s.preemption,
        restart_cost: time_from_s(s.restart_cost_s.map_or(300.0, |x| x.0)),
        placement: ov.placement.unwrap_or(s.placement),
    };

    // Jobs.
    let generated: u64 = spec.generators.iter().map(|g| g.count.0 as u64).sum();
    if spec.jobs.len() as u64 + generated > MAX_JOBS {
        return Err(InputError::field(
            file,
            "generators",
            format!("the workload would hold more than {MAX_JOBS} jobs"),
        ));
    }
    let mut jobs = Vec::with_capacity(spec.jobs.len() + generated as usize);
    for (i, j) in spec.jobs.iter().enumerate() {
        jobs.push(super::job::explicit_job(j, i, file, &cluster)?);
    }
    for (gi, g) in spec.generators.iter().enumerate() {
        generate::draw(g, gi, seed, file, &cluster, &mut jobs)?;
    }
    let mut ids = HashSet::new();
    for (i, j) in jobs.iter().enumerate() {
        if !ids.insert(j.id.as_str()) {
            return Err(InputError::field(
                file,
                format!("jobs[{i}].id"),
                format!("job id `{}` is used twice", j.id),
            ));
        }
    }
    // Stable: equal submit times keep declaration order.
    jobs.sort_by_key(|j| j.submit);
    Ok(Workload {
        name: spec.name.unwrap_or_else(|| default_name.to_string()),
        seed,
        cluster,
        scheduler,
        jobs,
    })
}
