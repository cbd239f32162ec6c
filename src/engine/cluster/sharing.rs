//! One fleet shared by training and autoscaled inference, on the engine's clock (`[scheduler] sharing`).
//!
//! An inference service with `[jobs.serving] autoscale` is served request by request *inside* the run: its
//! [`LiveSim`] advances with the cluster, and every `eval_period_s` the service looks at its load:
//!
//! - **desired replicas** = outstanding requests / `target_outstanding`, rounded up; with
//!   `target_ttft_p90_s`, one more than now while the TTFT p90 of the last `slo_window_s` is above it (one
//!   fewer at half of it); the larger of the two, within `[min_replicas, max_replicas]`;
//! - **scale up**: a draining replica is taken back first; otherwise a new replica gang is placed by the
//!   placement kernel (the service's GPU models, one domain) and serves after its cold start. Under `static`
//!   it comes from the service's own reserve (it was placed with `max_replicas` gangs, idle or not); under
//!   `loan` from free capacity, else reclaimed from training: the NVLink domain where stopping running
//!   training or RL jobs frees enough GPUs at the least cost (GPU-time lost since their last checkpoint
//!   plus restart cost, then the fewest jobs, then the lowest domain) has its victims preempted first;
//!   under `elastic`, elastic training jobs are shrunk (whole tensor-parallel groups, not below
//!   `min_gpus`) before anything is preempted, by the same cost rule. A scale-up that finds no room waits for
//!   the next evaluation.
//! - **scale down**: only `cooldown_s` after the last change; a starting replica is cancelled first, else
//!   the highest serving one drains (takes no new requests) and returns its GPUs at the first evaluation
//!   after its last request finished.
//!
//! Shrunk elastic jobs grow back to their size after a round, when their pool has the GPUs free and no
//! service waits for capacity. A resize restarts the job from its last checkpoint, as a preemption does.
//! Live services are never preempted by training. A service without `autoscale` keeps its replicas and is
//! served after the run (`engine::serving`), with the same numbers as a live run of fixed replicas.

use super::{Engine, Event};
use crate::domain::cluster::Allocation;
use crate::domain::traffic::ServeAutoscale;
use crate::domain::workload::{JobKind, Sharing, Time, Workload};
use crate::engine::serving::sim::{After, LiveSim, SimConfig, SimResult};
use crate::kernel::placement::KernelError;
use std::collections::BTreeMap;

/// The workload as the engine places it, when it has autoscaled services: each starts with
/// `max_replicas` gangs under `static` (its reserve), else its `replicas` clamped into the range.
pub fn placed_workload(w: &Workload) -> Option<Workload> {
    if !w.jobs.iter().any(|j| autoscale_of(j).is_some()) {
        return None;
    }
    let mut placed = w.clone();
    for j in &mut placed.jobs {
        if let Some(a) = autoscale_of(j) {
            j.replicas = match w.scheduler.sharing {
                Sharing::Static => a.max_replicas,
                _ => initial_replicas(j.replicas, &a),
            };
        }
    }
    Some(placed)
}

/// A job's autoscale spec (inference with `[jobs.serving] autoscale`).
pub fn autoscale_of(j: &crate::domain::workload::Job) -> Option<ServeAutoscale> {
    j.serving.as_ref().and_then(|s| s.autoscale)
}

/// Replicas a service serves with at its start.
pub fn initial_replicas(replicas: u32, a: &ServeAutoscale) -> u32 {
    replicas.clamp(a.min_replicas, a.max_replicas)
}

/// The cheapest domain to free so far: (lost GPU-time, jobs touched, domain) and what to do there.
type Best<T> = Option<((u128, usize, u32), Vec<T>)>;

/// Replicas a service wants now (`up` serve or start): the larger of what its targets ask, within its range.
/// Outstanding target: ceil(outstanding / target). TTFT target: one more replica while the window's p90 is
/// above it, one fewer when it is at most half of it, else as many as now (no requests in the window: as
/// many as now).
fn desired(sim: &mut LiveSim, a: &ServeAutoscale, now: u64, up: u32) -> u32 {
    let mut want = 0u64;
    if let Some(t) = a.target_outstanding {
        want = sim.outstanding().div_ceil(u64::from(t.max(1)));
    }
    if let Some(target) = a.target_ttft_p90_us {
        let slo = match sim.ttft_p90(now, a.slo_window_us) {
            Some((p90, _)) if p90 > target => u64::from(up) + 1,
            Some((p90, _)) if 2 * p90 <= target => u64::from(up).saturating_sub(1),
            _ => u64::from(up),
        };
        want = want.max(slo);
    }
    want.clamp(u64::from(a.min_replicas), u64::from(a.max_replicas)) as u32
}

/// A live service while it runs.
pub struct ServiceLive {
    sim: LiveSim,
    start: Time,
    /// Gang of each replica slot of the simulation.
    gang: Vec<Option<Allocation>>,
    /// `static`: reserved gangs no replica uses.
    spare: Vec<Allocation>,
    /// The service as one replica, for placing a scale-up.
    unit: crate::domain::workload::Job,
    autoscale: ServeAutoscale,
    cold_start: Time,
    last_change: Time,
    /// A scale-up found no room since then.
    wanted_since: Option<Time>,
    /// (cluster time, replicas serving or starting) at the start and every change.
    timeline: Vec<(Time, u32)>,
    after: Vec<Option<After>>,
    gpu_model: usize,
}

/// A live service as it ran.
#[derive(Debug, Clone)]
pub struct ServiceRun {
    /// Job index.
    pub job: usize,
    /// Cluster start and end.
    pub start: Time,
    /// End of its lifetime.
    pub end: Time,
    /// Catalog index of its replicas' GPU model (its first replica's).
    pub gpu_model: usize,
    /// (cluster time, replicas serving or starting).
    pub timeline: Vec<(Time, u32)>,
    /// The request-level run (times from the service start).
    pub result: SimResult,
    /// Session dependencies of its requests (empty for open-loop traffic).
    pub after: Vec<Option<After>>,
}

/// Capacity taken from training for inference scale-ups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reclaims {
    /// Scale-ups that preempted or shrank training.
    pub count: u64,
    /// Training jobs preempted by them.
    pub preempted: u64,
    /// Elastic jobs shrunk by them.
    pub shrunk: u64,
    /// Per reclaim: from the evaluation that first wanted the replica until it served, microseconds.
    pub latencies: Vec<Time>,
}

impl Engine<'_> {
    /// A service with autoscale has started: its traffic is drawn and its simulation begins.
    pub(super) fn service_started(&mut self, j: usize) {
        if self.services.contains_key(&j) || self.scaling == Some(j) {
            return; // a replica change, not a start
        }
        let job = &self.w.jobs[j];
        let (Some(spec), Some(a)) = (job.serving.as_deref(), autoscale_of(job)) else {
            return;
        };
        let gangs = self.live[j].gangs.clone();
        let c = &self.w.cluster;
        let pool = gangs
            .first()
            .and_then(|g| g.first())
            .map_or(0, |&(node, _)| {
                c.domain_pool[c.domain_of_node(node) as usize] as usize
            });
        let preset = &c.pools[pool].preset;
        let gpu = preset.model();
        let duration = job.duration;
        let seed = crate::engine::serving::traffic::service_seed(self.w.seed, j);
        let generated = crate::engine::serving::traffic::generate_from(
            &spec.traffic,
            seed,
            self.now,
            0,
            duration,
        );
        let Ok(roof) = crate::engine::serving::traffic::service_model(spec, gpu, job.gpus) else {
            return; // the model fits every acceptable pool (checked when the workload was built)
        };
        let initial = self
            .initial_replicas
            .get(&j)
            .copied()
            .unwrap_or(gangs.len() as u32)
            .min(gangs.len() as u32)
            .max(1);
        let cfg = SimConfig {
            replicas: initial,
            router: spec.router,
            ..SimConfig::default()
        }
        .with_setup(&spec.setup);
        let Ok(mut sim) = LiveSim::new(
            generated.requests,
            generated.after.clone(),
            duration,
            roof,
            cfg,
        ) else {
            return;
        };
        if a.target_ttft_p90_us.is_some() {
            sim.track_ttft();
        }
        let mut unit = job.clone();
        unit.replicas = 1;
        unit.serving = None;
        let (used, spare) = gangs.split_at(initial as usize);
        let cold_start = a.cold_start_or(spec.model.weight_bytes(), job.gpus);
        self.services.insert(
            j,
            ServiceLive {
                sim,
                start: self.now,
                gang: used.iter().cloned().map(Some).collect(),
                spare: spare.to_vec(),
                unit,
                autoscale: a,
                cold_start,
                last_change: self.now,
                wanted_since: None,
                timeline: vec![(self.now, initial)],
                after: generated.after,
                gpu_model: preset.gpu_model,
            },
        );
        self.push_scale_tick(j, a.eval_period_us);
    }

    fn push_scale_tick(&mut self, j: usize, period: Time) {
        let at = self.now + period.max(1);
        if at < self.live[j].end {
            let epoch = self.live[j].epoch;
            self.push(
                at,
                Event::Scale {
                    job: j as u32,
                    epoch,
                },
            );
        }
    }

    /// A live service reached the end of its lifetime (its GPUs are already released).
    pub(super) fn service_ended(&mut self, j: usize) {
        let Some(svc) = self.services.remove(&j) else {
            return;
        };
        let mut timeline = svc.timeline;
        timeline.push((self.now, 0));
        self.served.push(ServiceRun {
            job: j,
            start: svc.start,
            end: self.now,
            gpu_model: svc.gpu_model,
            timeline,
            result: svc.sim.finish(),
            after: svc.after,
        });
    }

    /// A service's evaluation: scale up, or down after its cool-down.
    pub(super) fn scale(&mut self, j: usize, epoch: u32) -> Result<(), KernelError> {
        if self.live[j].epoch != epoch || !self.live[j].running {
            return Ok(());
        }
        let Some(mut svc) = self.services.remove(&j) else {
            return Ok(());
        };
        self.scaling = Some(j);
        let r = self.scale_service(j, &mut svc);
        self.scaling = None;
        let period = svc.autoscale.eval_period_us;
        self.services.insert(j, svc);
        self.push_scale_tick(j, period);
        r
    }

    fn scale_service(&mut self, j: usize, svc: &mut ServiceLive) -> Result<(), KernelError> {
        let now = self.now;
        let rel = now - svc.start;
        let owned = self.w.scheduler.sharing == Sharing::Static;
        svc.sim.advance(rel);
        let mut changed = false;
        // New gangs taken from the cluster for this service (loan, elastic).
        let mut fresh: Vec<Allocation> = Vec::new();
        for (slot, _) in svc.sim.take_drained() {
            if let Some(g) = svc.gang.get_mut(slot).and_then(Option::take) {
                svc.spare.push(g);
                changed = true;
            }
        }
        let a = svc.autoscale;
        let up = svc.sim.up();
        let want = desired(&mut svc.sim, &a, rel, up);
        if want > up {
            for _ in up..want {
                if svc.sim.undrain(rel).is_some() {
                    continue;
                }
                let got = if owned {
                    svc.spare.pop().map(|g| (g, false))
                } else {
                    svc.spare.clear();
                    self.take_replica(&svc.unit)?
                };
                let Some((g, reclaimed)) = got else {
                    svc.wanted_since.get_or_insert(now);
                    break;
                };
                if !owned {
                    fresh.push(g.clone());
                }
                let slot = svc.sim.start_replica(rel, rel + svc.cold_start);
                if svc.gang.len() <= slot {
                    svc.gang.resize(slot + 1, None);
                }
                svc.gang[slot] = Some(g);
                changed = true;
                if reclaimed {
                    self.reclaims.count += 1;
                    let since = svc.wanted_since.unwrap_or(now);
                    self.reclaims.latencies.push(now + svc.cold_start - since);
                }
            }
            if svc.sim.up() >= want {
                svc.wanted_since = None;
            }
            svc.last_change = now;
        } else {
            svc.wanted_since = None;
            if want < up && now >= svc.last_change + a.cooldown_us {
                for _ in want..up {
                    match svc.sim.stop_one(rel) {
                        Some((slot, true)) => {
                            if let Some(g) = svc.gang.get_mut(slot).and_then(Option::take) {
                                svc.spare.push(g);
                                changed = true;
                            }
                        }
                        Some((_, false)) => {}
                        None => break,
                    }
                }
                svc.last_change = now;
            }
        }
        let n = svc.sim.up();
        if svc.timeline.last().is_none_or(|&(_, m)| m != n) {
            svc.timeline.push((now, n));
        }
        if changed && !owned {
            // Returned gangs go back to the cluster; the service holds exactly its replicas' gangs.
            svc.spare.clear();
            for g in &fresh {
                self.state.release(&self.w.cluster, g);
            }
            let gangs: Vec<Allocation> = svc.gang.iter().flatten().cloned().collect();
            self.resize(j, gangs, true);
        }
        Ok(())
    }

    /// A gang for one more replica of a service (`unit`): free capacity, else reclaimed from training.
    /// Returns it (taken from the cluster state, not yet held by the service) and whether it was reclaimed.
    fn take_replica(
        &mut self,
        unit: &crate::domain::workload::Job,
    ) -> Result<Option<(Allocation, bool)>, KernelError> {
        if let Some(g) = self.place_unit(unit)? {
            return Ok(Some((g, false)));
        }
        let freed = (self.w.scheduler.sharing == Sharing::Elastic && self.shrink_for(unit))
            || self.preempt_training_for(unit);
        if !freed {
            return Ok(None);
        }
        Ok(self.place_unit(unit)?.map(|g| (g, true)))
    }

    /// Places `unit` on free GPUs (taken from the state; released again by the caller's resize).
    fn place_unit(
        &mut self,
        unit: &crate::domain::workload::Job,
    ) -> Result<Option<Allocation>, KernelError> {
        self.scratch.dirty = true;
        // A service scaling up cannot wait: on-demand capacity is open to it (after committed).
        let (first, spill) = self.gate_masks_with(&self.state, unit, self.on_demand);
        let placed = super::placement::place_job(
            &self.w.cluster,
            &mut self.state,
            self.backend,
            self.w.scheduler.placement,
            unit,
            None,
            &mut self.scratch,
            super::placement::Gate {
                first,
                spill,
                idle_taken: &self.idle_taken,
            },
        )?;
        self.scratch.dirty = true;
        let Some(mut gangs) = placed else {
            return Ok(None);
        };
        // Taken from the state; the caller gives it back just before its resize takes it for the service.
        Ok(Some(gangs.pop().unwrap_or_default()))
    }

    /// Domains that may host `unit`'s replica, with their free GPUs.
    fn unit_domains(&self, unit: &crate::domain::workload::Job) -> Vec<(u32, u32)> {
        let c = &self.w.cluster;
        let mut out = Vec::new();
        for p in &c.pools {
            if (unit.model_mask >> p.preset.gpu_model) & 1 == 0 || p.domain_gpus() < unit.gpus {
                continue;
            }
            for d in p.first_domain..p.first_domain + p.domains {
                out.push((d, self.state.domain_free[d as usize]));
            }
        }
        out
    }

    /// GPUs each running training or RL job (only elastic ones with `elastic_only`) holds per domain:
    /// domain -> [(job, GPUs there)].
    fn holders(&self, elastic_only: bool) -> BTreeMap<u32, Vec<(usize, u32)>> {
        let c = &self.w.cluster;
        let mut by: BTreeMap<u32, Vec<(usize, u32)>> = BTreeMap::new();
        for &(_, v) in &self.by_end {
            let v = v as usize;
            let job = &self.w.jobs[v];
            if job.kind == JobKind::Inference || (elastic_only && job.elastic.is_none()) {
                continue;
            }
            for &(node, g) in self.live[v].gangs.iter().flatten() {
                let list = by.entry(c.domain_of_node(node)).or_default();
                match list.iter_mut().find(|(x, _)| *x == v) {
                    Some(e) => e.1 += g,
                    None => list.push((v, g)),
                }
            }
        }
        by
    }

    /// The domain where `unit.gpus` can be freed at least cost, and what to take there: `take(job, GPUs it
    /// holds in the domain, GPUs still missing)` gives the (cost, GPUs freed) of using that job, or `None`.
    /// Jobs are used cheapest first until the domain's free GPUs and theirs hold the replica; domains
    /// compare by (total cost, jobs used, index).
    fn cheapest_domain(
        &self,
        unit: &crate::domain::workload::Job,
        elastic_only: bool,
        take: impl Fn(usize, u32, u32) -> Option<(u128, u32)>,
    ) -> Option<(u32, Vec<(usize, u32)>)> {
        let holders = self.holders(elastic_only);
        let mut best: Best<(usize, u32)> = None;
        for (d, free) in self.unit_domains(unit) {
            let Some(list) = holders.get(&d) else {
                continue;
            };
            let mut list: Vec<(u128, usize, u32)> = list
                .iter()
                .filter_map(|&(v, g)| {
                    let (cost, _) = take(v, g, unit.gpus)?;
                    Some((cost, v, g))
                })
                .collect();
            list.sort_unstable();
            let (mut have, mut cost, mut used) = (free, 0u128, Vec::new());
            for (_, v, g) in list {
                if have >= unit.gpus {
                    break;
                }
                let Some((c, freed)) = take(v, g, unit.gpus - have) else {
                    continue;
                };
                have += freed;
                cost += c;
                used.push((v, freed));
            }
            if have < unit.gpus {
                continue;
            }
            let key = (cost, used.len(), d);
            if best.as_ref().is_none_or(|b| key < b.0) {
                best = Some((key, used));
            }
        }
        best.map(|((_, _, d), used)| (d, used))
    }

    /// `loan`/`elastic`: preempts the training jobs of the domain where freeing `unit.gpus` costs least
    /// (lost GPU-time, then fewest jobs, then lowest domain). False when no domain can be freed.
    fn preempt_training_for(&mut self, unit: &crate::domain::workload::Job) -> bool {
        // A preempted job frees everything it holds in the domain.
        let Some((_, victims)) =
            self.cheapest_domain(unit, false, |v, g, _| Some((self.stop_cost(v).1, g)))
        else {
            return false;
        };
        for (v, _) in victims {
            self.evict(v);
            self.reclaims.preempted += 1;
        }
        true
    }

    /// `elastic`: shrinks elastic training jobs in the domain where `unit.gpus` can be freed at least cost,
    /// by whole tensor-parallel groups and not below their `min_gpus`. False when no domain can be freed so.
    fn shrink_for(&mut self, unit: &crate::domain::workload::Job) -> bool {
        // A shrunk job gives what is missing, rounded up to its step, at most what it may give there.
        let cut = |v: usize, g: u32, missing: u32| {
            let e = self.w.jobs[v].elastic?;
            let spare = self.live[v].held.saturating_sub(u64::from(e.min_gpus));
            let can = (g.min(spare as u32) / e.step) * e.step;
            let cut = (missing.div_ceil(e.step) * e.step).min(can);
            (cut > 0).then(|| (self.stop_cost(v).1, cut))
        };
        let Some((d, cuts)) = self.cheapest_domain(unit, true, cut) else {
            return false;
        };
        let c = &self.w.cluster;
        for (v, cut) in cuts {
            // Give back `cut` GPUs of domain `d`, from its highest nodes there.
            let mut gang: Allocation = self.live[v].gangs.first().cloned().unwrap_or_default();
            let mut left = cut;
            for k in (0..gang.len()).rev() {
                if left == 0 {
                    break;
                }
                let (node, g) = gang[k];
                if c.domain_of_node(node) != d {
                    continue;
                }
                let take = g.min(left);
                gang[k].1 -= take;
                left -= take;
            }
            gang.retain(|&(_, g)| g > 0);
            self.resize(v, vec![gang], false);
            self.shrunk.insert(v);
            self.reclaims.shrunk += 1;
        }
        true
    }

    /// After a round: shrunk elastic jobs take back their size where their pool has it free (and no service
    /// waits for capacity), filling the domains they already use first.
    pub(super) fn grow_shrunk(&mut self) -> Result<(), KernelError> {
        if self.shrunk.is_empty() || self.services.values().any(|s| s.wanted_since.is_some()) {
            return Ok(());
        }
        let c = &self.w.cluster;
        for v in self.shrunk.clone() {
            let job = &self.w.jobs[v];
            let want = (job.gpus as u64).saturating_sub(self.live[v].held) as u32;
            let gang = self.live[v].gangs.first().cloned().unwrap_or_default();
            let Some(&(n0, _)) = gang.first() else {
                continue;
            };
            let pool = c.domain_pool[c.domain_of_node(n0) as usize] as usize;
            if want == 0 || self.state.pool_free[pool] < want as u64 {
                continue;
            }
            // Domains it uses first (fewest domains), then the pool's others by index.
            let p = &c.pools[pool];
            let mut domains: Vec<u32> = gang.iter().map(|&(n, _)| c.domain_of_node(n)).collect();
            domains.dedup();
            domains.extend(p.first_domain..p.first_domain + p.domains);
            let mut state = self.state.clone();
            let mut extra: Allocation = Vec::new();
            let mut left = want;
            let mut seen = std::collections::BTreeSet::new();
            for d in domains {
                if left == 0 {
                    break;
                }
                if !seen.insert(d) {
                    continue;
                }
                let take = left.min(state.domain_free[d as usize]);
                if take > 0 {
                    state.take_from_domain(c, d, take, &mut extra);
                    left -= take;
                }
            }
            if left > 0 {
                continue;
            }
            let mut grown = gang;
            grown.extend(extra);
            grown.sort_unstable();
            let mut merged: Allocation = Vec::with_capacity(grown.len());
            for (n, g) in grown {
                match merged.last_mut() {
                    Some(last) if last.0 == n => last.1 += g,
                    _ => merged.push((n, g)),
                }
            }
            self.resize(v, vec![merged], false);
            self.shrunk.remove(&v);
        }
        Ok(())
    }
}
