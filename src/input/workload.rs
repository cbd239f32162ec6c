//! From the file as written ([`spec::WorkloadFile`]) to the typed, validated [`Workload`] of the domain:
//! cross-field checks, command-line overrides, generated jobs. Every error names the file and the field.

use crate::domain::catalog::Preset;
use crate::domain::cluster::{Cluster, Contract, Pool, Site};
use crate::domain::workload::{Backfill, Las, PlacementPolicy, QueuePolicy};
use crate::error::InputError;
use spec::{ContractName, WorkloadFile, MAX_GPUS, MAX_JOBS};
use std::collections::HashSet;

use super::generate;
pub use super::parse::Format;
use super::parse::{strip_json_position, toml_error, with_path};
use super::spec;
use super::value::first_duplicate;
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
    /// `--backfill`.
    pub backfill: Option<Backfill>,
    /// `--sharing`.
    pub sharing: Option<crate::domain::workload::Sharing>,
    /// `--spill-after`, seconds.
    pub spill_after_s: Option<f64>,
}

/// Reads the request traces that services' `traffic = { kind = "trace", file, format }` name, relative to
/// the workload file, into their specs (each file once). Errors name the field and the file.
fn load_request_traces(spec: &mut WorkloadFile, dir: &Path, file: &str) -> Result<(), InputError> {
    use crate::domain::traffic::TraceRequest;
    use crate::input::traffic::TraceFormatName;
    let mut cache: std::collections::HashMap<(String, bool), std::sync::Arc<Vec<TraceRequest>>> =
        Default::default();
    let jobs = spec
        .jobs
        .iter_mut()
        .enumerate()
        .filter_map(|(i, j)| j.serving.as_mut().map(|s| (format!("jobs[{i}]"), s)));
    let gens = spec
        .generators
        .iter_mut()
        .enumerate()
        .filter_map(|(i, g)| g.serving.as_mut().map(|s| (format!("generators[{i}]"), s)));
    for (at, serving) in jobs.chain(gens) {
        let t = &mut serving.traffic;
        let (Some(name), Some(format)) = (t.file.clone(), t.format) else {
            continue;
        };
        let key = (name.clone(), format == TraceFormatName::Azure);
        if let Some(r) = cache.get(&key) {
            t.loaded = Some(r.clone());
            continue;
        }
        let p = dir.join(&name);
        let label = p.display().to_string();
        let field = format!("{at}.serving.traffic.file");
        let text = std::fs::read(&p)
            .map_err(|e| InputError::field(file, &field, format!("cannot read `{label}`: {e}")))
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| {
                    InputError::field(file, &field, format!("`{label}` is not UTF-8 text"))
                })
            })?;
        let fmt = match format {
            TraceFormatName::Azure => super::requests::TraceFormat::Azure,
            TraceFormatName::Mooncake => super::requests::TraceFormat::Mooncake,
        };
        let mut reqs = super::requests::parse(&text, &label, fmt)?;
        // Arrival order (stable), times from the first request.
        reqs.sort_by_key(|r| r.arrival_us);
        let first = reqs.first().map_or(0, |r| r.arrival_us);
        let loaded: Vec<TraceRequest> = reqs
            .into_iter()
            .map(|r| TraceRequest {
                arrival_us: r.arrival_us - first,
                prompt_tokens: r.prompt_tokens,
                output_tokens: r.output_tokens,
                hash_ids: r.hash_ids,
            })
            .collect();
        let loaded = std::sync::Arc::new(loaded);
        cache.insert(key, loaded.clone());
        t.loaded = Some(loaded);
    }
    Ok(())
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
    load_edited(path, ov, &Edits::default())
}

/// Changes to a workload file before it is built: what a sweep varies besides the policies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edits {
    /// Multiplies every generator's `rate_per_hour` (the offered load).
    pub load: Option<f64>,
    /// Sets the `count` of pools by name.
    pub pool_counts: Vec<(String, u32)>,
}

impl Edits {
    /// Applies the edits to a parsed file; errors name the field.
    pub fn apply(&self, spec: &mut WorkloadFile, file: &str) -> Result<(), InputError> {
        if let Some(load) = self.load {
            if !(load > 0.0 && load <= 1e3) {
                return Err(InputError::field(
                    file,
                    "load",
                    format!("{load}: allowed: a factor above 0 and at most 1000"),
                ));
            }
            for (i, g) in spec.generators.iter_mut().enumerate() {
                let rate = g.rate_per_hour.0 * load;
                if rate > 1e9 {
                    return Err(InputError::field(
                        file,
                        format!("generators[{i}].rate_per_hour"),
                        format!("{rate} after load {load}: allowed: at most 1e9"),
                    ));
                }
                g.rate_per_hour.0 = rate;
            }
        }
        for (name, count) in &self.pool_counts {
            let names: Vec<String> = spec
                .cluster
                .pools
                .iter()
                .enumerate()
                .map(|(i, p)| pool_name(p, i))
                .collect();
            let Some(i) = names.iter().position(|n| n == name) else {
                return Err(InputError::field(
                    file,
                    format!("pool.{name}"),
                    format!("no pool is named `{name}`; allowed: {}", names.join(", ")),
                ));
            };
            if *count == 0 {
                return Err(InputError::field(
                    file,
                    format!("pool.{name}"),
                    "0: allowed: a count of at least 1",
                ));
            }
            spec.cluster.pools[i].count.0 = *count;
        }
        Ok(())
    }
}

/// A pool's name as the workload gives it, or `<preset>-<index>` (custom pools: `custom-<index>`), as
/// `build_with` names it.
fn pool_name(p: &spec::PoolSpec, i: usize) -> String {
    p.name.clone().unwrap_or_else(|| {
        let id = p.preset.as_ref().map_or("custom", |preset| preset.0.id);
        format!("{id}-{i}")
    })
}

/// [`load`] with `edits` applied to the file before it is built.
pub fn load_edited(path: &Path, ov: Overrides, edits: &Edits) -> anyhow::Result<Workload> {
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
    let mut spec = parse_str(&text, &file, Format::of(path))?;
    edits.apply(&mut spec, &file)?;
    let dir = path.parent().unwrap_or(Path::new(""));
    load_request_traces(&mut spec, dir, &file)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("workload");
    // Job traces are read here, relative to the workload file; parsing and checks stay in `build_with`.
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut traces = Vec::with_capacity(spec.job_traces.len());
    for t in &spec.job_traces {
        let p = dir.join(&t.path);
        let label = p.display().to_string();
        let bytes = std::fs::read(&p).map_err(|e| {
            InputError::field(
                &file,
                format!("job_traces[{}].path", traces.len()),
                format!("cannot read `{label}`: {e}"),
            )
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            InputError::new(
                &label,
                Location::File,
                format!(
                    "is not UTF-8 text (invalid byte at offset {}); expected a CSV job trace",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        traces.push(TraceText { file: label, text });
    }
    Ok(build_with(spec, &file, stem, ov, &traces)?)
}

/// The text of one `[[job_traces]]` file, as read by [`load`].
#[derive(Debug, Clone)]
pub struct TraceText {
    /// The file, as shown in messages.
    pub file: String,
    /// Its contents.
    pub text: String,
}

/// GPUs one node of a custom pool may hold.
pub const MAX_GPUS_PER_NODE: u32 = 1_000_000;

/// The system shape of pool `i`: its catalog preset, or a custom shape (`gpu`, `gpus_per_node`,
/// `nodes_per_domain`) with the GPU model's figures and 400 Gbit/s of scale-out per GPU (P5's EFA rate).
fn pool_shape(p: &spec::PoolSpec, i: usize, file: &str) -> Result<Preset, InputError> {
    let field = |f: &str| format!("cluster.pools[{i}].{f}");
    let custom = [
        ("gpu", p.gpu.is_some()),
        ("gpus_per_node", p.gpus_per_node.is_some()),
        ("nodes_per_domain", p.nodes_per_domain.is_some()),
    ];
    match (p.preset, p.gpu, p.gpus_per_node) {
        (Some(preset), _, _) => {
            if let Some((f, _)) = custom.iter().find(|(_, set)| *set) {
                return Err(InputError::field(
                    file,
                    field(f),
                    format!(
                        "a pool has either `preset` or a custom shape (`gpu`, `gpus_per_node`, \
                         `nodes_per_domain`), not both; preset `{}` fixes the shape",
                        preset.0.id
                    ),
                ));
            }
            Ok(*preset.0)
        }
        (None, Some(gpu), Some(per_node)) => {
            let nodes = p.nodes_per_domain.map_or(1, |c| c.0);
            if per_node.0 > MAX_GPUS_PER_NODE {
                return Err(InputError::field(
                    file,
                    field("gpus_per_node"),
                    format!(
                        "{} GPUs in one node; allowed: 1 ..= {MAX_GPUS_PER_NODE}",
                        per_node.0
                    ),
                ));
            }
            let domain = per_node.0 as u64 * nodes as u64;
            if domain > MAX_GPUS {
                return Err(InputError::field(
                    file,
                    field("nodes_per_domain"),
                    format!("one domain would hold {domain} GPUs; at most {MAX_GPUS} are allowed"),
                ));
            }
            Ok(Preset {
                id: "custom",
                description: "a custom pool",
                gpu_model: gpu.0,
                gpus_per_node: per_node.0,
                nodes_per_domain: nodes,
                domains_per_rack: 1,
                scaleout_gbps_per_domain: 400.0 * domain as f64,
            })
        }
        (None, None, _) => Err(InputError::field(
            file,
            field("preset"),
            format!(
                "is missing: give a catalog preset (allowed: {}) or a custom shape with `gpu` and \
                 `gpus_per_node`",
                crate::domain::catalog::preset_names()
            ),
        )),
        (None, Some(_), None) => Err(InputError::field(
            file,
            field("gpus_per_node"),
            "is missing: a custom pool (with `gpu`) needs `gpus_per_node` (1 ..= 1000000)",
        )),
    }
}

/// Checks what spans several fields, applies overrides, draws generated jobs. A workload with
/// `[[job_traces]]` needs their texts: use [`load`] or [`build_with`].
pub fn build(
    spec: WorkloadFile,
    file: &str,
    default_name: &str,
    ov: Overrides,
) -> Result<Workload, InputError> {
    build_with(spec, file, default_name, ov, &[])
}

/// [`build`] with the texts of the workload's job traces, in `[[job_traces]]` order.
pub fn build_with(
    spec: WorkloadFile,
    file: &str,
    default_name: &str,
    ov: Overrides,
    traces: &[TraceText],
) -> Result<Workload, InputError> {
    if traces.len() != spec.job_traces.len() {
        return Err(InputError::field(
            file,
            format!("job_traces[{}].path", traces.len()),
            "cannot be read: job traces are read relative to a workload file, and this workload was not \
             loaded from one",
        ));
    }
    let seed = ov.seed.unwrap_or(spec.seed);
    // Cluster.
    if spec.cluster.pools.is_empty() {
        return Err(InputError::field(
            file,
            "cluster.pools",
            "needs at least one pool",
        ));
    }
    let sites = sites(&spec, file)?;
    let mut total: u64 = 0;
    let mut names = HashSet::new();
    let mut pools = Vec::new();
    for (i, p) in spec.cluster.pools.iter().enumerate() {
        let preset = pool_shape(p, i, file)?;
        let gpus = p.count.0 as u64 * preset.domain_gpus() as u64;
        total += gpus;
        if total > MAX_GPUS {
            return Err(InputError::field(
                file,
                format!("cluster.pools[{i}].count"),
                format!("the cluster would hold {total} GPUs; at most {MAX_GPUS} are allowed"),
            ));
        }
        let name = pool_name(p, i);
        if !names.insert(name.clone()) {
            return Err(InputError::field(
                file,
                format!("cluster.pools[{i}].name"),
                format!("pool name `{name}` is used twice"),
            ));
        }
        pools.push(Pool {
            name,
            preset,
            provider: p.provider.clone().unwrap_or_else(|| "aws".into()),
            first_domain: 0,
            domains: p.count.0,
            domains_per_rack: p.domains_per_rack.map_or(preset.domains_per_rack, |c| c.0),
            first_rack: 0,
            usd_per_gpu_hour: p
                .usd_per_gpu_hour
                .map_or(preset.model().usd_per_gpu_hour, |x| x.0),
            idle_w: p.idle_w.map_or(preset.model().idle_w, |x| x.0),
            busy_w: p.busy_w.map_or(preset.model().power_w, |x| x.0),
            site: match &p.site {
                Some(name) => Some(sites.iter().position(|s| &s.name == name).ok_or_else(|| {
                    let known: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
                    InputError::field(
                        file,
                        format!("cluster.pools[{i}].site"),
                        format!(
                            "`{name}` is not a [[sites]] name; allowed: {}",
                            if known.is_empty() {
                                "none (add a [[sites]] entry)".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    )
                })? as u32),
                None => None,
            },
            contract: match p.contract {
                Some(ContractName::OnDemand) => Contract::OnDemand,
                _ => Contract::Committed,
            },
            startup_us: match (p.startup_s, p.contract) {
                (Some(t), Some(ContractName::OnDemand)) => time_from_s(t.0),
                (Some(_), _) => {
                    return Err(InputError::field(
                        file,
                        format!("cluster.pools[{i}].startup_s"),
                        "belongs to on-demand pools (contract = \"on-demand\")",
                    ))
                }
                (None, _) => 0,
            },
        });
    }
    let cluster = Cluster::with_sites(pools, sites);
    check_power(&cluster, file)?;

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
    let backfill = ov.backfill.unwrap_or(s.backfill.0);
    let mut las = Las::default();
    if let Some(t) = &s.las_thresholds_gpu_s {
        let field = "scheduler.las_thresholds_gpu_s";
        if t.is_empty() || t.len() > Las::MAX_THRESHOLDS {
            return Err(InputError::field(
                file,
                field,
                format!(
                    "has {} entries; allowed: 1 to {} thresholds (GPU-seconds, ascending)",
                    t.len(),
                    Las::MAX_THRESHOLDS
                ),
            ));
        }
        for (k, v) in t.iter().enumerate() {
            if v.0 <= 0.0 || (k > 0 && v.0 <= t[k - 1].0) {
                return Err(InputError::field(
                    file,
                    format!("{field}[{k}]"),
                    format!(
                        "{}: allowed: above 0 and above the threshold before it",
                        v.0
                    ),
                ));
            }
            las.thresholds[k] = (v.0 * 1e6).round() as u128;
        }
        las.len = t.len();
    }
    for (name, &weight) in &s.tenants {
        if !(weight.is_finite() && weight > 0.0 && weight <= 1e6) {
            return Err(InputError::field(
                file,
                format!("scheduler.tenants.{name}"),
                format!("{weight}: allowed: a weight above 0 and at most 1e6"),
            ));
        }
    }
    let scheduler = Scheduler {
        queue,
        backfill,
        // Greedy is list scheduling over the whole queue unless a depth is set.
        backfill_depth: s.backfill_depth.map_or(
            if backfill == Backfill::Greedy {
                u32::MAX
            } else {
                256
            },
            |c| c.0,
        ),
        preemption: s.preemption,
        restart_cost: time_from_s(s.restart_cost_s.map_or(300.0, |x| x.0)),
        placement: ov.placement.unwrap_or(s.placement),
        las,
        sharing: ov.sharing.unwrap_or(s.sharing),
        spill_after: time_from_s(
            ov.spill_after_s
                .unwrap_or(s.spill_after_s.map_or(0.0, |x| x.0)),
        ),
    };

    let failures = match &spec.failures {
        Some(f) => Some(failures(f, &cluster, file)?),
        None => None,
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
        jobs.push(super::job::explicit_job(
            j,
            i,
            file,
            &cluster,
            failures.as_ref(),
        )?);
    }
    for (t, text) in spec.job_traces.iter().zip(traces) {
        let rows = super::job_trace::parse(&text.text, &text.file, t)?;
        if jobs.len() as u64 + generated + rows.len() as u64 > MAX_JOBS {
            return Err(InputError::new(
                &text.file,
                Location::File,
                format!("the workload would hold more than {MAX_JOBS} jobs; set `limit`"),
            ));
        }
        jobs.extend(rows);
    }
    for (gi, g) in spec.generators.iter().enumerate() {
        generate::draw(g, gi, seed, file, &cluster, failures.as_ref(), &mut jobs)?;
    }
    if let Some((_, i)) = first_duplicate(jobs.iter().map(|j| j.id.as_str())) {
        return Err(InputError::field(
            file,
            format!("jobs[{i}].id"),
            format!("job id `{}` is used twice", jobs[i].id),
        ));
    }
    // Stable: equal submit times keep declaration order.
    jobs.sort_by_key(|j| j.submit);
    let tenant_weights = spec.scheduler.tenants.clone();
    Ok(Workload {
        name: spec.name.unwrap_or_else(|| default_name.to_string()),
        seed,
        cluster,
        scheduler,
        jobs,
        tenant_weights,
        failures,
    })
}

/// `[[sites]]`: names unique, PUE 1.2 unless given.
fn sites(spec: &WorkloadFile, file: &str) -> Result<Vec<Site>, InputError> {
    let mut out: Vec<Site> = Vec::new();
    for (i, s) in spec.sites.iter().enumerate() {
        if s.name.is_empty() || out.iter().any(|o| o.name == s.name) {
            return Err(InputError::field(
                file,
                format!("sites[{i}].name"),
                format!("`{}`: allowed: a name no other site has", s.name),
            ));
        }
        out.push(Site {
            name: s.name.clone(),
            power_cap_w: s.power_cap_mw.map(|m| m.0 * 1e6),
            pue: s.pue.map_or(1.2, |p| p.0),
        });
    }
    Ok(out)
}

/// A capped site must hold its pools idle, and gated pools must fit the kernel's 32 mask bits.
fn check_power(cluster: &Cluster, file: &str) -> Result<(), InputError> {
    let idle = cluster.site_power_w(&crate::domain::cluster::ClusterState::new(cluster), &[]);
    for (k, site) in cluster.sites.iter().enumerate() {
        if let Some(cap) = site.power_cap_w {
            if idle[k] > cap {
                return Err(InputError::field(
                    file,
                    format!("sites[{k}].power_cap_mw"),
                    format!(
                        "{} MW is below what the site's pools draw idle ({:.3} MW with PUE {}); allowed: at \
                         least that",
                        cap / 1e6,
                        idle[k] / 1e6,
                        site.pue
                    ),
                ));
            }
        }
    }
    if cluster.gated && cluster.classes() > Cluster::MAX_CLASSES {
        return Err(InputError::field(
            file,
            "cluster.pools",
            format!(
                "with power caps or on-demand pools, pools differing in GPU model, site, contract or power \
                 make at most {} classes; these make more",
                Cluster::MAX_CLASSES
            ),
        ));
    }
    Ok(())
}

/// `[failures]`: the Llama 3 defaults with the causes the file names overridden; spares must leave every
/// domain (or rack) a node to place on.
fn failures(
    f: &super::spec::FailuresSpec,
    cluster: &Cluster,
    file: &str,
) -> Result<crate::domain::failures::Failures, InputError> {
    use crate::domain::failures::{Cause, Failures};
    let mut out = Failures::default();
    let allowed = Cause::ALL.map(Cause::as_str).join(", ");
    let cause = |table: &str, name: &str| {
        Cause::parse(name).ok_or_else(|| {
            InputError::field(
                file,
                format!("failures.{table}.{name}"),
                format!("unknown cause `{name}`; allowed: {allowed}"),
            )
        })
    };
    for (name, r) in &f.rates_per_gpu_hour {
        out.rates_per_gpu_hour[cause("rates_per_gpu_hour", name)?.index()] = r.0;
    }
    for (name, s) in &f.repair_s {
        out.repair[cause("repair_s", name)?.index()] = time_from_s(s.0);
    }
    if let Some(r) = f.restart_s {
        out.restart = time_from_s(r.0);
    }
    let (dom, rack) = (
        f.spare_nodes_per_domain.unwrap_or(0),
        f.spare_nodes_per_rack.unwrap_or(0),
    );
    if dom > 0 && rack > 0 {
        return Err(InputError::field(
            file,
            "failures.spare_nodes_per_rack",
            "set spare_nodes_per_domain or spare_nodes_per_rack, not both",
        ));
    }
    for p in &cluster.pools {
        let per_domain = p.preset.nodes_per_domain;
        if dom >= per_domain {
            return Err(InputError::field(
                file,
                "failures.spare_nodes_per_domain",
                format!(
                    "{dom}: pool `{}` has {per_domain} node(s) per NVLink domain; allowed: fewer than that \
                     (or spare_nodes_per_rack)",
                    p.name
                ),
            ));
        }
        // The smallest rack of the pool (the last may be partial).
        let full = p.domains_per_rack.max(1).min(p.domains);
        let last = match p.domains % p.domains_per_rack.max(1) {
            0 => full,
            r => r,
        };
        let nodes = full.min(last) * per_domain;
        if rack >= nodes {
            return Err(InputError::field(
                file,
                "failures.spare_nodes_per_rack",
                format!(
                    "{rack}: pool `{}` has a rack of {nodes} node(s); allowed: fewer than that",
                    p.name
                ),
            ));
        }
    }
    out.spare_nodes_per_domain = dom;
    out.spare_nodes_per_rack = rack;
    out.weibull_shape = f.weibull_shape.map(|k| k.0);
    Ok(out)
}
