//! Inference services as the cluster engine ran them, served request by request: each service's traffic is
//! drawn for the time it actually ran and simulated on the replicas it actually got (their pool's GPU model,
//! `gpus_per_replica` as the tensor-parallel group). Pure: no I/O.
//!
//! A service whose replicas landed in pools of different GPU models is served with the GPU model of its
//! first replica (a documented simplification); a preempted service is served from its first start to its
//! end.

pub mod sim;
pub mod traffic;

use crate::domain::workload::{time_to_s, Workload};
use crate::engine::cluster::metrics::{merge_sorted, Stats};
use crate::engine::cluster::sharing::{autoscale_of, ServiceRun};
use crate::engine::cluster::Outcome;
use crate::engine::serving::traffic::{
    check_traffic, outcome, serve_placed, Latencies, ServeOutcome,
};
use crate::error::InputError;
use rayon::prelude::*;
use serde::Serialize;

/// `f` of every item, in item order, computed on the pool's threads longest first: the items in
/// decreasing `cost` (ties: item order) go to whichever thread is free next, so a few long services do
/// not end up behind each other on one core while another idles (rayon's halving split of the list
/// could). Which thread ran what never changes a result.
fn longest_first<T: Sync, R: Send>(
    items: &[T],
    cost: impl Fn(&T) -> f64,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let mut order: Vec<(f64, usize)> = items.iter().map(&cost).zip(0..).collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let workers = rayon::current_num_threads().clamp(1, items.len().max(1));
    rayon::scope(|s| {
        for _ in 0..workers {
            s.spawn(|_| {
                while let Some(&(_, i)) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = f(&items[i]);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// One served service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    /// Job id.
    pub id: String,
    /// Model served.
    pub model: String,
    /// GPU model of its replicas.
    pub gpu: String,
    /// Replicas x GPUs per replica.
    pub replicas: u32,
    /// GPUs per replica (tensor parallel).
    pub gpus_per_replica: u32,
    /// When it started and ended in the cluster, seconds.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
    /// Price of its GPUs while it ran, USD.
    pub cost_usd: f64,
    /// Request-level results.
    #[serde(flatten)]
    pub outcome: ServeOutcome,
}

/// `inference` in report.json: every served request of every service together.
#[derive(Debug, Clone, Serialize)]
pub struct InferenceReport {
    /// Services served.
    pub services: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests completed.
    pub completed: u64,
    /// Time to first token, seconds.
    pub ttft_s: Stats,
    /// Time per output token, seconds.
    pub tpot_s: Stats,
    /// End to end, seconds.
    pub e2e_s: Stats,
    /// Completed requests meeting both of their service's SLOs / requests sent.
    pub slo_attainment: f64,
    /// Output tokens produced.
    pub output_tokens: u64,
    /// Price of the services' GPUs while they ran, USD.
    pub cost_usd: f64,
    /// That price per million output tokens.
    pub usd_per_million_output_tokens: f64,
    /// Energy of the replicas (request-level power model), MWh.
    pub energy_mwh: f64,
    /// Per service.
    pub per_service: Vec<ServiceReport>,
}

pub use traffic::service_seed;

/// Refuses a workload whose services would exceed the traffic limits (requests, prompt blocks) over their
/// whole lifetime, before the cluster runs: seconds of counting instead of minutes of simulation first.
pub fn check_limits(w: &Workload) -> Result<(), InputError> {
    let checks: Vec<Result<(), InputError>> = w
        .jobs
        .par_iter()
        .enumerate()
        .filter_map(|(i, j)| j.serving.as_deref().map(|s| (i, j, s)))
        .map(|(i, j, spec)| check_traffic(spec, j.duration, service_seed(w.seed, i)))
        .collect();
    checks.into_iter().collect()
}

/// The report of an autoscaled service the engine served live.
fn live_report(w: &Workload, o: &Outcome, run: &ServiceRun) -> Option<ServiceReport> {
    let job = &w.jobs[run.job];
    let spec = job.serving.as_deref()?;
    let gpu = crate::domain::catalog::GPU_MODELS.get(run.gpu_model)?;
    let res = &run.result;
    // What its GPUs cost while held, and their idle power whenever held but not powered by a replica.
    let (mut gpu_us, mut usd) = (0u128, 0.0);
    for seg in o.segments.iter().filter(|s| s.job as usize == run.job) {
        for &(d, g) in &seg.domains {
            let us = u128::from(seg.end - seg.start) * u128::from(g);
            gpu_us += us;
            usd += us as f64 / 3.6e9 * w.cluster.pool_of(d).usd_per_gpu_hour;
        }
    }
    let powered: u128 = res
        .replicas
        .iter()
        .map(|r| u128::from(r.powered_us) * u128::from(job.gpus))
        .sum();
    let idle_j = crate::perf::inference::PowerFractions::default().idle
        * gpu.power_w
        * gpu_us.saturating_sub(powered) as f64
        / 1e6;
    let peak = run.timeline.iter().map(|&(_, n)| n).max().unwrap_or(0);
    Some(ServiceReport {
        id: job.id.clone(),
        model: spec.model.name.clone(),
        gpu: gpu.id.to_string(),
        replicas: peak,
        gpus_per_replica: job.gpus,
        start_s: time_to_s(run.start),
        end_s: time_to_s(run.end),
        cost_usd: usd,
        outcome: outcome(spec, res, &run.after, idle_j),
    })
}

/// Serves every inference service with a `serving` spec that ran; `None` when there is none. Autoscaled
/// services were served live by the engine ([`Outcome::services`]); the others are served here.
pub fn serve_services(w: &Workload, o: &Outcome) -> Result<Option<InferenceReport>, InputError> {
    let c = &w.cluster;
    let live: Vec<ServiceReport> = o
        .services
        .iter()
        .filter_map(|run| live_report(w, o, run))
        .collect();
    let ran: Vec<(usize, u64, u64, usize, Vec<u32>)> = w
        .jobs
        .iter()
        .enumerate()
        .filter(|(_, j)| j.serving.is_some() && autoscale_of(j).is_none())
        .filter_map(|(i, _)| {
            let out = &o.jobs[i];
            let first = o.segments.iter().find(|s| s.job as usize == i)?;
            let pool = c.domain_pool[first.domains.first()?.0 as usize] as usize;
            // The NVLink domain of every replica (its first node's), in the job's replica order.
            let domains = first
                .gangs
                .iter()
                .map(|g| g.first().map_or(0, |&(node, _)| c.domain_of_node(node)))
                .collect();
            Some((i, out.start?, out.end?, pool, domains))
        })
        .collect();
    if ran.is_empty() && live.is_empty() {
        return Ok(None);
    }
    let served: Vec<Result<ServiceReport, InputError>> = longest_first(
        &ran,
        |(i, start, end, ..)| {
            let traffic = w.jobs[*i].serving.as_deref().map(|s| &s.traffic);
            traffic.map_or(0.0, |t| t.expected_tokens(end.saturating_sub(*start)))
        },
        |(i, start, end, pool, domains)| {
            let (i, start, end, pool) = (*i, *start, *end, *pool);
            let job = &w.jobs[i];
            let spec = job.serving.as_deref().ok_or_else(|| {
                InputError::new(
                    &job.id,
                    crate::error::Location::File,
                    "service without serving spec",
                )
            })?;
            let p = &c.pools[pool];
            let outcome = serve_placed(
                spec,
                p.preset.model(),
                job.gpus,
                domains,
                start,
                end,
                service_seed(w.seed, i),
            )?;
            let hours = time_to_s(end - start) / 3600.0;
            Ok(ServiceReport {
                id: job.id.clone(),
                model: spec.model.name.clone(),
                gpu: p.preset.model().id.to_string(),
                replicas: job.replicas,
                gpus_per_replica: job.gpus,
                start_s: time_to_s(start),
                end_s: time_to_s(end),
                cost_usd: job.total_gpus() as f64 * hours * p.usd_per_gpu_hour,
                outcome,
            })
        },
    );
    let mut per_service = served.into_iter().collect::<Result<Vec<_>, _>>()?;
    per_service.extend(live);
    // Workload order, whichever way a service was served.
    let order: std::collections::HashMap<&str, usize> = w
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id.as_str(), i))
        .collect();
    per_service.sort_by_key(|s| order.get(s.id.as_str()).copied());
    let (mut requests, mut completed, mut met, mut tokens, mut cost, mut joules) =
        (0, 0, 0, 0, 0.0, 0.0);
    for s in &per_service {
        requests += s.outcome.requests;
        completed += s.outcome.completed;
        met += s.outcome.latencies.slo_met;
        tokens += s.outcome.output_tokens;
        cost += s.cost_usd;
        joules += s.outcome.energy_j;
    }
    // Each service's latencies are sorted: three merges of up to 10^7 values, on the cores there are.
    let merged = |pick: fn(&Latencies) -> &Vec<f64>| {
        let runs: Vec<&[f64]> = per_service
            .iter()
            .map(|s| pick(&s.outcome.latencies).as_slice())
            .collect();
        Stats::of_sorted(&merge_sorted(&runs))
    };
    let ((ttft_s, tpot_s), e2e_s) = rayon::join(
        || rayon::join(|| merged(|l| &l.ttft_s), || merged(|l| &l.tpot_s)),
        || merged(|l| &l.e2e_s),
    );
    Ok(Some(InferenceReport {
        services: per_service.len() as u64,
        requests,
        completed,
        ttft_s,
        tpot_s,
        e2e_s,
        slo_attainment: if requests > 0 {
            met as f64 / requests as f64
        } else {
            0.0
        },
        output_tokens: tokens,
        cost_usd: cost,
        usd_per_million_output_tokens: if tokens > 0 {
            cost / tokens as f64 * 1e6
        } else {
            0.0
        },
        energy_mwh: joules / 3.6e9,
        per_service,
    }))
}
