//! The discrete-event engine. No I/O, no wgpu: it gets a validated [`Workload`] and a `&mut dyn CostBackend`
//! and returns an [`Outcome`].
//!
//! Events are ordered by (time, sequence), so equal times are first-in-first-out and a run is reproducible
//! from its seed. All events of one instant are applied, then one scheduling round runs:
//! 1. Pending jobs are walked in queue order ([`queue`]). The head window is scored in one kernel call; a
//!    placement changes the cluster, so the rest of the window is scored again before it is used. Every
//!    decision is therefore exactly the sequential one, whichever backend ran.
//! 2. The first job that does not fit (with priority preemption, it may first evict lower-priority jobs)
//!    blocks the queue: without backfill the round ends there. Under `greedy` every later job that fits now
//!    starts, with no reservation. Under `easy` the blocked head gets a reservation: its shadow time (the
//!    earliest instant it fits if running jobs end as planned) and the cluster as it will be then. A later
//!    job starts now if it fits and either ends by the shadow time or leaves the reservation intact (the head
//!    still fits the shadow-time cluster with this job's GPUs taken), so the head is never delayed and holds
//!    back only capacity it could use.

pub mod failures;
pub mod metrics;
pub mod placement;
pub mod queue;
pub mod sharing;

use crate::domain::cluster::{distinct_nodes, Allocation, ClusterState, Contract, LEVEL_POOL};
use crate::domain::workload::{Backfill, Job, QueuePolicy, Time, Workload};
use crate::kernel::placement::{CostBackend, KernelError};
use placement::{job_record, Gate, KernelStats, Scratch};
use queue::Pending;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Units of work per RL step (remaining work of an RL job counts millionths of a step).
pub const WORK_PER_STEP: Time = 1_000_000;

/// Jobs scored per kernel call at the head of the queue.
pub const WINDOW: usize = 32;

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Ran to completion.
    Completed,
    /// Can never fit the cluster (too large, or no pool of its GPU model).
    Unschedulable,
}

/// What happened to one job (indexed like `Workload::jobs`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    /// Final state.
    pub state: JobState,
    /// First start.
    pub start: Option<Time>,
    /// Completion.
    pub end: Option<Time>,
    /// Distinct NVLink domains of the last placement (all replicas).
    pub domains: u32,
    /// Distinct nodes of the last placement.
    pub nodes: u32,
    /// Times it was preempted.
    pub preemptions: u32,
    /// First reservation (shadow time) it was given as the blocked head under backfill.
    pub reserved: Option<Time>,
    /// Started by backfill (behind a blocked head).
    pub backfilled: bool,
    /// Run time of the last placement against the ideal placement (1 without a training model).
    pub slowdown: f64,
    /// RL jobs: where a step's time goes on the last placement.
    pub rl: Option<crate::perf::rl::RlBreakdown>,
    /// Times its GPUs changed without a preemption: an elastic job shrunk or grown, a service's replicas
    /// started or stopped.
    pub resizes: u32,
    /// GPU-microseconds of work lost to preemptions and resizes: the time since the last checkpoint and the
    /// restart cost, on the GPUs it held.
    pub lost_gpu_time: u128,
    /// GPU-microseconds spent writing checkpoints.
    pub checkpoint_gpu_time: u128,
    /// Times a node failure stopped it, by cause (index of `domain::failures::Cause::ALL`).
    pub interruptions: [u32; 5],
}

impl JobOutcome {
    /// Times a node failure stopped it.
    pub fn interruptions(&self) -> u32 {
        self.interruptions.iter().sum()
    }
}

/// One sample of the cluster over time, taken after every round that changed something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When.
    pub time: Time,
    /// GPUs held by running jobs.
    pub busy_gpus: u64,
    /// Of those, held by inference services.
    pub inference_gpus: u64,
    /// Jobs waiting.
    pub queued: u32,
    /// Jobs running.
    pub running: u32,
    /// Free GPUs in domains (of the head job's GPU models) too small for the head-of-queue gang's share of
    /// a domain: capacity fragmentation strands.
    pub stranded_gpus: u64,
}

/// GPUs per domain of a set of (node, GPUs) slices, by domain index.
fn gpus_per_domain<'a>(
    c: &crate::domain::cluster::Cluster,
    slices: impl Iterator<Item = &'a (u32, u32)>,
) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &(node, g) in slices {
        let d = c.domain_of_node(node);
        match out.iter_mut().find(|(x, _)| *x == d) {
            Some(e) => e.1 += g,
            None => out.push((d, g)),
        }
    }
    out.sort_unstable();
    out
}

/// A placement's consequences.
struct PlacementCost {
    per_domain: Vec<(u32, u32)>,
    /// Run time per unit of remaining work.
    factor: f64,
    /// Run time of the remaining work.
    run: Time,
    /// Against the ideal placement.
    slowdown: f64,
    rl: Option<crate::perf::rl::RlBreakdown>,
}

/// One stretch of a job holding GPUs: from a start to its finish or preemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Job index.
    pub job: u32,
    /// When it started.
    pub start: Time,
    /// When it released its GPUs.
    pub end: Time,
    /// GPUs held per NVLink domain, by domain index.
    pub domains: Vec<(u32, u32)>,
    /// The gangs held: the training gang or each replica, then async rollout replicas; (node, GPUs) each.
    pub gangs: Vec<Allocation>,
}

/// The blocked head's reservation under EASY backfill.
struct Reservation {
    head: usize,
    /// When the head fits if running jobs end as planned.
    shadow: Time,
    /// The cluster at the shadow time: running jobs that end by then are gone, jobs backfilled past it stay.
    at_shadow: Shadow,
}

/// The cluster at a reservation's shadow time. A head that is a single pool-level gang fits exactly when
/// an acceptable pool has that many free GPUs ([`Engine::quick_fit`]), so its what-if needs only the free
/// GPUs per pool: a copy of a few numbers per round instead of every node's.
enum Shadow {
    /// Free GPUs per pool and in all, for a head [`Engine::quick_fit`] decides.
    Pools {
        pool_free: Vec<u64>,
        total_free: u64,
    },
    /// The whole what-if cluster, for any other head.
    Full(ClusterState),
}

impl Shadow {
    fn total_free(&self) -> u64 {
        match self {
            Shadow::Pools { total_free, .. } => *total_free,
            Shadow::Full(s) => s.total_free,
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Per job, in workload order.
    pub jobs: Vec<JobOutcome>,
    /// Busy GPUs and queue length over time.
    pub samples: Vec<Sample>,
    /// Every placement, in start order.
    pub segments: Vec<Segment>,
    /// Time of the last completion (0 if none).
    pub makespan: Time,
    /// Integral of busy GPUs over time, GPU-microseconds.
    pub busy_gpu_time: u128,
    /// Scheduling rounds.
    pub rounds: u64,
    /// Kernel counters.
    pub kernel: KernelStats,
    /// Autoscaled services as served live, in workload order.
    pub services: Vec<sharing::ServiceRun>,
    /// Capacity reclaimed from training for inference.
    pub reclaims: sharing::Reclaims,
    /// What failures did (with `[failures]`).
    pub failures: Option<failures::FailureStats>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A running job ends (stale if its epoch changed since: it was preempted).
    Finish { job: u32, epoch: u32 },
    /// Under LAS, a running job's attained service reaches its queue's threshold (stale like `Finish`).
    Demote { job: u32, epoch: u32 },
    /// An autoscaled service evaluates its load (stale like `Finish`).
    Scale { job: u32, epoch: u32 },
    /// A failed node is back from repair.
    Repair { node: u32 },
    /// A waiting job has waited `spill_after_s`: on-demand capacity opens to it.
    Spill { job: u32 },
}

/// Per-job mutable state.
#[derive(Debug, Clone, Default)]
struct Live {
    remaining: Time,
    started_at: Time,
    epoch: u32,
    gangs: Vec<Allocation>,
    running: bool,
    segment: usize,
    /// When the current run ends.
    end: Time,
    /// Run time per unit of remaining work on the current placement: the slowdown for training (work in
    /// ideal microseconds), the step time in seconds for RL (work in millionths of a step).
    factor: f64,
    /// Service received in earlier segments, GPU-microseconds (LAS).
    attained: u128,
    /// LAS queue.
    level: u8,
    /// GPUs held now.
    held: u64,
    /// GPUs held now per pool, (pool, GPUs): what a pool-level what-if releases when the job ends.
    pool_gpus: Vec<(u32, u64)>,
    /// Start-up of the current placement on on-demand capacity: no work is done in its first microseconds.
    startup: Time,
}

/// Where a run stands, handed to the observer of [`simulate_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Simulated time reached.
    pub time: Time,
    /// Jobs that have ended (completed or found unschedulable).
    pub jobs_done: u64,
    /// Jobs in the workload.
    pub jobs_total: u64,
}

/// Instants simulated between two calls of the progress observer: rare enough to cost nothing, often
/// enough for a smooth bar (a large run simulates millions of instants).
pub const PROGRESS_EVERY: u64 = 512;

/// Runs a workload to the end.
pub fn simulate(w: &Workload, backend: &mut dyn CostBackend) -> Result<Outcome, KernelError> {
    simulate_with(w, backend, &mut |_| {})
}

/// Runs a workload to the end, calling `progress` every [`PROGRESS_EVERY`] instants and once at the end
/// (then `jobs_done == jobs_total`). The engine stays free of I/O: the caller decides what to show.
pub fn simulate_with(
    w: &Workload,
    backend: &mut dyn CostBackend,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, KernelError> {
    // Autoscaled services are placed with the replicas the sharing policy gives them at start.
    // Replicas each autoscaled service starts serving with, as the workload asks (the placed copy may
    // hold the static reserve instead).
    let initial: std::collections::BTreeMap<usize, u32> = w
        .jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| {
            sharing::autoscale_of(j).map(|a| (i, sharing::initial_replicas(j.replicas, &a)))
        })
        .collect();
    match sharing::placed_workload(w) {
        Some(placed) => Engine::new(&placed, backend, initial).run(progress),
        None => Engine::new(w, backend, initial).run(progress),
    }
}

struct Engine<'a> {
    w: &'a Workload,
    backend: &'a mut dyn CostBackend,
    state: ClusterState,
    events: BinaryHeap<Reverse<(Time, u64, Event)>>,
    seq: u64,
    next_arrival: usize,
    pending: Pending,
    live: Vec<Live>,
    out: Vec<JobOutcome>,
    scratch: Scratch,
    what_if: Scratch,
    samples: Vec<Sample>,
    segments: Vec<Segment>,
    now: Time,
    busy: u64,
    running: u32,
    busy_gpu_time: u128,
    rounds: u64,
    makespan: Time,
    jobs_done: u64,
    /// Capacity was released since the last round (a job ended or was preempted).
    freed: bool,
    /// A preemption this round freed GPUs that jobs walked earlier in the round may now use: the round runs
    /// again at the same instant.
    repeat_round: bool,
    /// Jobs queued since the last round.
    arrived: Vec<usize>,
    /// Reused buffers of `round`.
    order: Vec<(queue::Key, usize)>,
    started: Vec<usize>,
    /// `queue = "fair-share"`: tenants, their weights and the GPUs they hold.
    fair: Option<Fair>,
    /// Running jobs by (expected end, index).
    by_end: std::collections::BTreeSet<(Time, u32)>,
    /// GPUs held by inference jobs.
    inference_busy: u64,
    /// Autoscaled services while they run, by job index.
    services: std::collections::BTreeMap<usize, sharing::ServiceLive>,
    /// Finished autoscaled services.
    served: Vec<sharing::ServiceRun>,
    reclaims: sharing::Reclaims,
    /// Jobs of `sharing = "elastic"` running below their size.
    shrunk: std::collections::BTreeSet<usize>,
    /// Replicas each autoscaled service serves with at its start (the workload's, clamped).
    initial_replicas: std::collections::BTreeMap<usize, u32>,
    /// The service whose evaluation is running (out of `services` meanwhile).
    scaling: Option<usize>,
    /// `[failures]`: the failure process, nodes down and spares.
    failures: Option<failures::FailureState>,
    /// GPUs per pool taken from the start but drawing idle power (spares held back).
    idle_taken: Vec<u64>,
    /// Facility power of each site with nothing running, W.
    idle_site_w: Vec<f64>,
    /// Some pool is on-demand.
    on_demand: bool,
}

/// Weighted dominant share across tenants. A tenant's dominant share is the largest, over GPU models, of
/// the share of that model's GPUs its running jobs hold; divided by its weight, the lowest goes first
/// (ties: tenant name). Shares are recomputed after every start, so the order is the one DRF gives.
#[derive(Debug, Clone)]
struct Fair {
    /// Tenant of each job (index into `weight`, tenants in name order).
    tenant_of: Vec<u32>,
    weight: Vec<f64>,
    /// GPUs held, per tenant, per GPU model.
    used: Vec<Vec<u64>>,
    /// GPUs in the cluster per GPU model.
    total: Vec<u64>,
    /// This round's waiting jobs per tenant, FIFO, not yet walked.
    queues: Vec<std::collections::VecDeque<(queue::Key, usize)>>,
}

impl Fair {
    fn new(w: &Workload) -> Fair {
        let names: std::collections::BTreeSet<&str> =
            w.jobs.iter().map(|j| j.tenant.as_str()).collect();
        let index: std::collections::BTreeMap<&str, u32> = names
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, i as u32))
            .collect();
        let models = w
            .cluster
            .pools
            .iter()
            .map(|p| p.preset.gpu_model + 1)
            .max()
            .unwrap_or(0);
        let mut total = vec![0u64; models];
        for p in &w.cluster.pools {
            total[p.preset.gpu_model] += p.gpus();
        }
        Fair {
            tenant_of: w.jobs.iter().map(|j| index[j.tenant.as_str()]).collect(),
            weight: names
                .iter()
                .map(|&n| w.tenant_weights.get(n).copied().unwrap_or(1.0))
                .collect(),
            used: vec![vec![0; models]; names.len()],
            total,
            queues: vec![Default::default(); names.len()],
        }
    }

    /// Tenant `t`'s dominant share over its weight.
    fn share(&self, t: usize) -> f64 {
        let dominant = self.used[t]
            .iter()
            .zip(&self.total)
            .filter(|(_, &n)| n > 0)
            .map(|(&u, &n)| u as f64 / n as f64)
            .fold(0.0, f64::max);
        dominant / self.weight[t]
    }

    /// Adds a job's GPUs to its tenant (or, with `add` false, takes them away).
    fn hold(
        &mut self,
        c: &crate::domain::cluster::Cluster,
        j: usize,
        gangs: &[Allocation],
        add: bool,
    ) {
        let t = self.tenant_of[j] as usize;
        for &(node, n) in gangs.iter().flatten() {
            let m = c.pool_of(c.domain_of_node(node)).preset.gpu_model;
            if add {
                self.used[t][m] += n as u64;
            } else {
                self.used[t][m] -= n as u64;
            }
        }
    }

    /// The next job to walk: the head of the waiting tenant with the lowest weighted share.
    fn next(&mut self) -> Option<(queue::Key, usize)> {
        let t = (0..self.queues.len())
            .filter(|&t| !self.queues[t].is_empty())
            .min_by(|&a, &b| self.share(a).total_cmp(&self.share(b)).then(a.cmp(&b)))?;
        self.queues[t].pop_front()
    }
}

impl<'a> Engine<'a> {
    fn new(
        w: &'a Workload,
        backend: &'a mut dyn CostBackend,
        initial_replicas: std::collections::BTreeMap<usize, u32>,
    ) -> Self {
        let n = w.jobs.len();
        let failures = w
            .failures
            .map(|f| failures::FailureState::new(f, &w.cluster, w.seed));
        let idle_taken: Vec<u64> = match &failures {
            Some(f) => w
                .cluster
                .pools
                .iter()
                .zip(&f.base.pool_free)
                .map(|(p, &free)| p.gpus() - free)
                .collect(),
            None => Vec::new(),
        };
        let idle_site_w = w.cluster.site_power_w(&ClusterState::new(&w.cluster), &[]);
        Engine {
            idle_taken,
            idle_site_w,
            on_demand: w
                .cluster
                .pools
                .iter()
                .any(|p| p.contract == Contract::OnDemand),
            w,
            backend,
            // Spares are held back from the start.
            state: failures
                .as_ref()
                .map_or_else(|| ClusterState::new(&w.cluster), |f| f.base.clone()),
            events: BinaryHeap::new(),
            seq: 0,
            next_arrival: 0,
            pending: Pending::new(w.scheduler.queue),
            live: w
                .jobs
                .iter()
                .map(|j| Live {
                    remaining: j
                        .rl
                        .as_ref()
                        .map_or(j.duration, |rl| rl.steps * WORK_PER_STEP),
                    factor: 1.0,
                    ..Default::default()
                })
                .collect(),
            out: vec![
                JobOutcome {
                    state: JobState::Completed,
                    start: None,
                    end: None,
                    domains: 0,
                    nodes: 0,
                    preemptions: 0,
                    reserved: None,
                    backfilled: false,
                    slowdown: 1.0,
                    rl: None,
                    resizes: 0,
                    lost_gpu_time: 0,
                    checkpoint_gpu_time: 0,
                    interruptions: [0; 5],
                };
                n
            ],
            scratch: Scratch::new(),
            what_if: Scratch::new(),
            samples: Vec::new(),
            segments: Vec::new(),
            now: 0,
            busy: 0,
            running: 0,
            busy_gpu_time: 0,
            rounds: 0,
            makespan: 0,
            jobs_done: 0,
            freed: false,
            repeat_round: false,
            arrived: Vec::new(),
            order: Vec::new(),
            started: Vec::new(),
            fair: (w.scheduler.queue == QueuePolicy::FairShare).then(|| Fair::new(w)),
            by_end: Default::default(),
            inference_busy: 0,
            services: Default::default(),
            served: Vec::new(),
            reclaims: Default::default(),
            shrunk: Default::default(),
            initial_replicas,
            scaling: None,
            failures,
        }
    }

    fn push(&mut self, t: Time, e: Event) {
        self.seq += 1;
        self.events.push(Reverse((t, self.seq, e)));
    }

    fn advance(&mut self, t: Time) {
        debug_assert!(t >= self.now);
        self.busy_gpu_time += self.busy as u128 * (t - self.now) as u128;
        self.now = t;
    }

    fn progress(&self) -> Progress {
        Progress {
            time: self.now,
            jobs_done: self.jobs_done,
            jobs_total: self.w.jobs.len() as u64,
        }
    }

    fn run(mut self, progress: &mut dyn FnMut(Progress)) -> Result<Outcome, KernelError> {
        let mut instants = 0u64;
        let total = self.w.jobs.len() as u64;
        loop {
            // The next instant: the earliest of the next arrival, the next event and the next failure.
            // Failures (and repairs) stop mattering once every job has ended.
            let next_failure = match &self.failures {
                Some(_) if self.jobs_done >= total => break,
                Some(f) => Some(f.next).filter(|&t| t < Time::MAX),
                None => None,
            };
            let next_arrival = self.w.jobs.get(self.next_arrival).map(|j| j.submit);
            let next_event = self.events.peek().map(|Reverse((t, _, _))| *t);
            let Some(t) = [next_arrival, next_event, next_failure]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            self.advance(t);
            // Finishes first (in sequence order), then arrivals in workload order.
            while let Some(Reverse((et, _, _))) = self.events.peek() {
                if *et != t {
                    break;
                }
                match self.events.pop() {
                    Some(Reverse((_, _, Event::Finish { job, epoch }))) => {
                        self.finish(job as usize, epoch)
                    }
                    Some(Reverse((_, _, Event::Demote { job, epoch }))) => {
                        self.demote(job as usize, epoch)
                    }
                    Some(Reverse((_, _, Event::Scale { job, epoch }))) => {
                        self.scale(job as usize, epoch)?
                    }
                    Some(Reverse((_, _, Event::Repair { node }))) => self.repair(node),
                    // Nothing to apply: the round after this instant sees the job's on-demand pools
                    // open (and walks the whole queue: a job that did not fit may fit now).
                    Some(Reverse((_, _, Event::Spill { .. }))) => self.freed = true,
                    None => break,
                }
            }
            // Then failures due now, in draw order.
            while self.failures.as_ref().is_some_and(|f| f.next == t) {
                self.fail_next();
            }
            while self.next_arrival < self.w.jobs.len()
                && self.w.jobs[self.next_arrival].submit == t
            {
                self.arrive(self.next_arrival)?;
                self.next_arrival += 1;
            }
            self.round()?;
            // After a preemption, jobs the walk had passed may fit in what the victims left over (bounded:
            // each repeat needs a further preemption to repeat again).
            let mut repeats = 0;
            while std::mem::take(&mut self.repeat_round) && repeats < 8 {
                self.round()?;
                repeats += 1;
            }
            self.grow_shrunk()?;
            self.sample();
            // With failures on, an idle cluster with nothing to come and nothing under repair will never
            // start what still waits (the failure process alone would loop forever).
            if self.failures.as_ref().is_some_and(|f| !f.any_down())
                && self.running == 0
                && self.next_arrival == self.w.jobs.len()
            {
                break;
            }
            instants += 1;
            if instants.is_multiple_of(PROGRESS_EVERY) {
                progress(self.progress());
            }
        }
        // Nothing left to happen: whatever still waits could never start (a safety net; arrival checks
        // already catch jobs larger than the cluster).
        for j in self.pending.drain() {
            self.out[j].state = JobState::Unschedulable;
            self.jobs_done += 1;
        }
        // Segments still open (none, as every start schedules its end) keep their gangs.
        for l in &mut self.live {
            if l.running {
                self.segments[l.segment].gangs = std::mem::take(&mut l.gangs);
            }
        }
        progress(self.progress());
        let mut kernel = self.scratch.stats;
        kernel.kernel_calls += self.what_if.stats.kernel_calls;
        kernel.pairs += self.what_if.stats.pairs;
        let mut services = std::mem::take(&mut self.served);
        services.sort_by_key(|s| s.job);
        Ok(Outcome {
            jobs: self.out,
            samples: self.samples,
            segments: self.segments,
            makespan: self.makespan,
            busy_gpu_time: self.busy_gpu_time,
            rounds: self.rounds,
            kernel,
            services,
            reclaims: self.reclaims,
            failures: self.failures.map(|f| f.stats),
        })
    }

    fn sample(&mut self) {
        let s = Sample {
            time: self.now,
            busy_gpus: self.busy,
            inference_gpus: self.inference_busy,
            queued: self.pending.len() as u32,
            running: self.running,
            stranded_gpus: self.stranded(),
        };
        match self.samples.last_mut() {
            Some(last) if last.time == s.time => *last = s,
            Some(last)
                if (
                    last.busy_gpus,
                    last.inference_gpus,
                    last.queued,
                    last.running,
                    last.stranded_gpus,
                ) == (
                    s.busy_gpus,
                    s.inference_gpus,
                    s.queued,
                    s.running,
                    s.stranded_gpus,
                ) => {}
            _ => self.samples.push(s),
        }
    }

    /// Free GPUs stranded for the head of the queue: in domains of an acceptable GPU model that have some
    /// free GPUs but fewer than the head's gang would take there (its size, or a whole domain).
    fn stranded(&self) -> u64 {
        let Some(head) = self.pending.iter().next() else {
            return 0;
        };
        let job = &self.w.jobs[head];
        let c = &self.w.cluster;
        // Only domains with a free GPU can strand any (on a busy fleet, a fraction of them).
        self.state
            .domains_with_free()
            .map(|d| {
                let pool = &c.pools[c.domain_pool[d] as usize];
                let free = self.state.domain_free[d];
                // What the head's gang would take there: its size, or a whole domain.
                let runs_here = (job.model_mask >> pool.preset.gpu_model) & 1 == 1;
                if runs_here && free < job.gpus.min(pool.domain_gpus()) {
                    free as u64
                } else {
                    0
                }
            })
            .sum()
    }

    /// What a placement of `j` on `gangs` means: GPUs per domain, run time (checkpoint stalls included),
    /// and why.
    fn placement_cost(&self, j: usize, gangs: &[Allocation]) -> PlacementCost {
        let mut c = self.compute_cost(j, gangs);
        if let Some(ck) = self.w.jobs[j].checkpoint {
            c.run = ck.wall(c.run);
        }
        c
    }

    /// [`Engine::placement_cost`] without checkpoints: the compute time of the remaining work.
    fn compute_cost(&self, j: usize, gangs: &[Allocation]) -> PlacementCost {
        let per_domain = gpus_per_domain(&self.w.cluster, gangs.iter().flatten());
        let remaining = self.live[j].remaining;
        let job = &self.w.jobs[j];
        let c = &self.w.cluster;
        let plain = |per_domain| PlacementCost {
            per_domain,
            factor: 1.0,
            run: remaining,
            slowdown: 1.0,
            rl: None,
        };
        if let Some(rl) = &job.rl {
            // The training gang is the first; async rollout replicas follow it.
            let train = gpus_per_domain(c, gangs[0].iter());
            let rollout = gpus_per_domain(c, gangs[1..].iter().flatten());
            let Some(&(t0, _)) = train.first() else {
                return plain(per_domain);
            };
            let train_preset = &c.pool_of(t0).preset;
            let counts: Vec<u32> = train.iter().map(|&(_, g)| g).collect();
            let place = rollout
                .first()
                .map(|&(r0, _)| crate::perf::rl::RolloutPlacement {
                    preset: &c.pool_of(r0).preset,
                    replicas: gangs.len() as u32 - 1,
                    same_domain: train.len() == 1
                        && rollout.len() == 1
                        && train[0].0 == rollout[0].0,
                });
            let ideal = crate::perf::training::ideal_split(train_preset, job.gpus);
            let (Some(b), Some(best)) = (
                crate::perf::rl::step(rl, train_preset, &counts, place),
                crate::perf::rl::step(rl, train_preset, &ideal, place),
            ) else {
                // Build-time checks keep rollouts off pools that cannot host them; this is unreachable.
                return plain(per_domain);
            };
            let run = ((remaining as f64) * b.step_s).ceil().max(1.0) as Time;
            return PlacementCost {
                per_domain,
                factor: b.step_s,
                run,
                slowdown: b.step_s / best.step_s,
                rl: Some(b),
            };
        }
        match (job.model, per_domain.first()) {
            (Some(model), Some(&(d0, _))) => {
                let preset = &c.pool_of(d0).preset;
                let counts: Vec<u32> = per_domain.iter().map(|&(_, g)| g).collect();
                let held: u32 = counts.iter().sum();
                // An elastic job below its size: its step at the GPUs it has against the ideal step at its
                // size (work is counted in ideal time at full size).
                let slowdown = if held < job.gpus {
                    let full = crate::perf::training::ideal_split(preset, job.gpus);
                    let ideal = crate::perf::training::step_time_s(&model, preset, &full);
                    let now = crate::perf::training::step_time_s(&model, preset, &counts);
                    if ideal > 0.0 {
                        (now / ideal).max(1.0)
                    } else {
                        1.0
                    }
                } else {
                    crate::perf::training::slowdown(&model, preset, &counts)
                };
                let run = (((remaining as f64) * slowdown).ceil() as Time).max(remaining);
                PlacementCost {
                    per_domain,
                    factor: slowdown,
                    run,
                    slowdown,
                    rl: None,
                }
            }
            (None, Some(_)) if job.elastic.is_some() => {
                // No model: throughput in proportion to the GPUs held.
                let held: u64 = per_domain.iter().map(|&(_, g)| g as u64).sum();
                let factor = job.gpus as f64 / held.max(1) as f64;
                let run = (((remaining as f64) * factor).ceil() as Time).max(remaining);
                PlacementCost {
                    per_domain,
                    factor,
                    run,
                    slowdown: factor,
                    rl: None,
                }
            }
            _ => plain(per_domain),
        }
    }

    /// True when the job fits an empty cluster (within its sites' power caps).
    fn could_ever_fit(&self, job: &Job) -> bool {
        let c = &self.w.cluster;
        let mut gangs = 0u64;
        for (pi, p) in c.pools.iter().enumerate() {
            if (job.model_mask >> p.preset.gpu_model) & 1 == 1
                && c.power_admits(pi, job.gpus as u64, &self.idle_site_w)
            {
                gangs += c.gangs_that_fit(pi, job.required, job.gpus);
            }
        }
        if gangs < job.replicas as u64 {
            return false;
        }
        // Async RL rollout replicas, counted on their own (a shared pool is re-checked at placement), and
        // then the whole job against the GPUs of the pools either part may use: a trainer and rollout
        // replicas that each fit but together outnumber those GPUs never start, and waiting would block
        // the queue behind them until the end.
        job.rollout.is_none_or(|g| {
            let fit: u64 = c
                .pools
                .iter()
                .enumerate()
                .filter(|&(pi, p)| {
                    (g.model_mask >> p.preset.gpu_model) & 1 == 1
                        && c.power_admits(pi, g.gpus as u64, &self.idle_site_w)
                })
                .map(|(pi, _)| c.gangs_that_fit(pi, g.required, g.gpus))
                .sum();
            let either = job.model_mask | g.model_mask;
            let room: u64 = c
                .pools
                .iter()
                .filter(|p| (either >> p.preset.gpu_model) & 1 == 1)
                .map(|p| p.gpus())
                .sum();
            fit >= g.count as u64 && room >= job.total_gpus()
        })
    }

    fn arrive(&mut self, j: usize) -> Result<(), KernelError> {
        let job = &self.w.jobs[j];
        let mut fits = self.could_ever_fit(job);
        // Spares are never placed on: the job must fit the cluster without them.
        if fits && self.failures.as_ref().is_some_and(|f| f.has_spares()) {
            let base = self.failures.as_ref().map(|f| f.base.clone());
            if let Some(base) = base {
                fits = self.fits_with(&base, j, true)?;
            }
        }
        if fits {
            self.pending.insert(&self.w.jobs[j], j, 0);
            self.arrived.push(j);
            let spill = self.w.scheduler.spill_after;
            if self.on_demand && spill > 0 {
                self.push(
                    self.now.saturating_add(spill),
                    Event::Spill { job: j as u32 },
                );
            }
        } else {
            self.out[j].state = JobState::Unschedulable;
            self.jobs_done += 1;
        }
        Ok(())
    }

    fn finish(&mut self, j: usize, epoch: u32) {
        if self.live[j].epoch != epoch || !self.live[j].running {
            return; // preempted since this event was scheduled
        }
        self.stop(j);
        self.service_ended(j);
        self.live[j].remaining = 0;
        self.jobs_done += 1;
        self.out[j].end = Some(self.now);
        self.makespan = self.makespan.max(self.now);
    }

    /// Frees a running job's GPUs.
    fn stop(&mut self, j: usize) {
        let gangs = std::mem::take(&mut self.live[j].gangs);
        for g in &gangs {
            self.state.release(&self.w.cluster, g);
        }
        self.keep_down(&gangs);
        if let Some(f) = &mut self.fair {
            f.hold(&self.w.cluster, j, &gangs, false);
        }
        self.scratch.dirty = true;
        self.freed = true;
        let ran = (self.now - self.live[j].started_at) as u128;
        let held = self.live[j].held;
        self.live[j].attained += ran * held as u128;
        if let Some(c) = self.w.jobs[j].checkpoint {
            let (kept, _) = c.kept(self.worked(j));
            let written = kept / c.interval.max(1);
            self.out[j].checkpoint_gpu_time += (written * c.cost) as u128 * held as u128;
        }
        self.live[j].level = self.w.scheduler.las.level(self.live[j].attained);
        self.by_end.remove(&(self.live[j].end, j as u32));
        self.live[j].running = false;
        self.live[j].epoch += 1;
        // The segment gets its gangs when it closes: they do not change while it is open.
        let seg = &mut self.segments[self.live[j].segment];
        seg.end = self.now;
        seg.gangs = gangs;
        self.busy -= held;
        if self.w.jobs[j].kind == crate::domain::workload::JobKind::Inference {
            self.inference_busy -= held;
        }
        self.live[j].held = 0;
        self.live[j].pool_gpus.clear();
        self.running -= 1;
    }

    fn start(&mut self, j: usize, gangs: Vec<Allocation>) {
        if let Some(f) = &mut self.fair {
            f.hold(&self.w.cluster, j, &gangs, true);
        }
        let nodes = distinct_nodes(&gangs);
        let PlacementCost {
            per_domain,
            factor,
            run,
            slowdown,
            rl,
        } = self.placement_cost(j, &gangs);
        // On-demand capacity starts up before it works (the longest start-up of the pools it landed on).
        let c = &self.w.cluster;
        let startup = per_domain
            .iter()
            .map(|&(d, _)| c.pool_of(d).startup_us)
            .max()
            .unwrap_or(0);
        let run = run.saturating_add(startup);
        self.live[j].startup = startup;
        let mut pool_gpus: Vec<(u32, u64)> = Vec::new();
        for &(d, g) in &per_domain {
            let p = c.domain_pool[d as usize];
            match pool_gpus.iter_mut().find(|(q, _)| *q == p) {
                Some((_, n)) => *n += g as u64,
                None => pool_gpus.push((p, g as u64)),
            }
        }
        self.live[j].pool_gpus = pool_gpus;
        let domains = per_domain.len() as u32;
        self.live[j].segment = self.segments.len();
        self.segments.push(Segment {
            job: j as u32,
            start: self.now,
            end: self.now,
            domains: per_domain,
            // Filled by `stop` (or at the end of the run): no copy while the job runs.
            gangs: Vec::new(),
        });
        let o = &mut self.out[j];
        o.start.get_or_insert(self.now);
        o.domains = domains;
        o.nodes = nodes;
        o.slowdown = slowdown;
        o.rl = rl;
        let l = &mut self.live[j];
        l.factor = factor;
        l.end = self.now + run;
        self.by_end.insert((self.now + run, j as u32));
        l.gangs = gangs;
        l.running = true;
        l.started_at = self.now;
        let (end, epoch) = (l.end, l.epoch);
        let held: u64 = l.gangs.iter().flatten().map(|&(_, g)| g as u64).sum();
        debug_assert_eq!(held, l.pool_gpus.iter().map(|&(_, g)| g).sum::<u64>());
        l.held = held;
        self.busy += held;
        if self.w.jobs[j].kind == crate::domain::workload::JobKind::Inference {
            self.inference_busy += held;
        }
        self.running += 1;
        self.push(
            end,
            Event::Finish {
                job: j as u32,
                epoch,
            },
        );
        self.schedule_demotion(j);
        self.service_started(j);
    }

    /// Under LAS: when the running job `j` crosses its queue's threshold, a `Demote` event (none in the
    /// last queue, or when it ends first).
    fn schedule_demotion(&mut self, j: usize) {
        let las = &self.w.scheduler.las;
        let l = &self.live[j];
        if self.w.scheduler.queue != QueuePolicy::Las || l.level as usize >= las.len {
            return;
        }
        let gpus = self.w.jobs[j].total_gpus().max(1) as u128;
        let ran = (self.now - l.started_at) as u128;
        let have = l.attained + ran * gpus;
        let need = las.thresholds[l.level as usize].saturating_sub(have);
        let at = self.now + need.div_ceil(gpus) as Time;
        if at < l.end {
            let epoch = l.epoch;
            self.push(
                at,
                Event::Demote {
                    job: j as u32,
                    epoch,
                },
            );
        }
    }

    /// A running job reached its LAS threshold: it moves down a queue (and may now be preempted).
    fn demote(&mut self, j: usize, epoch: u32) {
        if self.live[j].epoch != epoch || !self.live[j].running {
            return;
        }
        let gpus = self.w.jobs[j].total_gpus() as u128;
        let l = &mut self.live[j];
        let have = l.attained + (self.now - l.started_at) as u128 * gpus;
        l.level = self.w.scheduler.las.level(have);
        self.freed = true; // the queue order changed: a full round
        self.schedule_demotion(j);
    }

    /// Whether the round may preempt: priority preemption, or LAS (preemptive by design).
    fn preemptive(&self) -> bool {
        self.w.scheduler.preemption || self.w.scheduler.queue == QueuePolicy::Las
    }

    /// Preemption rank: a running job of lower rank than a blocked job may be evicted for it.
    fn rank(&self, j: usize) -> i64 {
        match self.w.scheduler.queue {
            QueuePolicy::Las => -(self.live[j].level as i64),
            _ => self.w.jobs[j].priority as i64,
        }
    }

    /// Scores the jobs at `positions` of `order` on the current state.
    fn score_window(
        &mut self,
        order: &[(queue::Key, usize)],
        positions: &[usize],
    ) -> Result<(), KernelError> {
        let mut jobs = std::mem::take(&mut self.scratch.jobs);
        jobs.clear();
        jobs.extend(positions.iter().map(|&p| {
            let j = order[p].1;
            job_record(&self.w.jobs[j], self.gate_masks(&self.state, j).0 .0)
        }));
        let s = &mut self.scratch;
        s.jobs = jobs;
        s.refresh(&self.w.cluster, &self.state);
        self.backend.best_candidates_resident(
            crate::kernel::placement::policy_id(self.w.scheduler.placement),
            &s.jobs,
            &mut s.candidates,
            &mut s.winners,
        )?;
        if s.winners.len() != s.jobs.len() {
            return Err(KernelError::Device(format!(
                "backend returned {} winners for {} jobs",
                s.winners.len(),
                s.jobs.len()
            )));
        }
        s.stats.kernel_calls += 1;
        s.stats.pairs += (s.jobs.len() * s.live()) as u64;
        s.winners_to_domains();
        Ok(())
    }

    /// Necessary for `j` to fit now, in O(pools): each gang fits the free GPUs of one acceptable pool, and
    /// all of them the acceptable pools together. Behind a blocked job most of the queue fails this.
    fn may_fit_now(&self, j: usize) -> bool {
        let job = &self.w.jobs[j];
        let (mut sum, mut max) = (0u64, 0u64);
        for (p, pool) in self.w.cluster.pools.iter().enumerate() {
            if (job.model_mask >> pool.preset.gpu_model) & 1 == 1 {
                sum += self.state.pool_free[p];
                max = max.max(self.state.pool_free[p]);
            }
        }
        max >= job.gpus as u64 && sum >= job.gpus as u64 * job.replicas as u64
    }

    /// EASY, in O(1): `j` cannot start now without delaying the reservation, wherever it would go: it
    /// cannot end by the shadow time (its run is at least its remaining work) and its GPUs, taken from the
    /// shadow-time cluster, would leave fewer free GPUs than the head needs. Exactly the cases
    /// `keeps_reservation` refuses by its first two tests, decided before any scoring.
    fn breaks_reservation(&self, reservation: &Option<Reservation>, j: usize) -> bool {
        let Some(r) = reservation else {
            return false;
        };
        let job = &self.w.jobs[j];
        if job.rl.is_some() {
            return false; // RL work is counted in steps, not time
        }
        self.now.saturating_add(self.live[j].remaining) > r.shadow
            && r.at_shadow.total_free() < self.w.jobs[r.head].total_gpus() + job.total_gpus()
    }

    /// Extends the lazily fetched queue order to hold position `i`; false when the queue is shorter.
    /// `complete` says `order` already holds every job the round considers. `skipped` keeps the first key
    /// of a waiting job that the walk leaves out (it cannot fit), so later jobs count as backfilled.
    /// `by_size` lets greedy leave out size classes larger than any pool's free GPUs (not while a job that
    /// does not fit may still preempt).
    fn fetch(
        &mut self,
        order: &mut Vec<(queue::Key, usize)>,
        i: usize,
        complete: &mut bool,
        skipped: &mut Option<queue::Key>,
        by_size: bool,
    ) -> bool {
        if *complete {
            return i < order.len();
        }
        if let Some(f) = &mut self.fair {
            // One at a time: the next tenant depends on what started before it.
            while i >= order.len() {
                match f.next() {
                    Some(e) => order.push(e),
                    None => return false,
                }
            }
            return true;
        }
        while i >= order.len() {
            let before = order.len();
            let last = order.last().map(|&(k, _)| k);
            if self.w.scheduler.backfill == Backfill::Greedy && by_size {
                // Greedy skips whatever does not fit, so a gang larger than every pool's free GPUs
                // need not be walked at all (free GPUs only shrink during a round).
                let most_free = self.state.pool_free.iter().copied().max().unwrap_or(0);
                if let Some(k) = self
                    .pending
                    .next_after_up_to(last, WINDOW, most_free, order)
                {
                    *skipped = Some(skipped.map_or(k, |s| s.min(k)));
                }
            } else {
                self.pending.next_after(last, WINDOW, order);
            }
            // A short batch ends the queue for this round: without preemption nothing joins the queue
            // during a round, and the gang sizes greedy admits only shrink. Later positions need no
            // further lookups (the last one, past the end, was a whole lookup of its own).
            if order.len() - before < WINDOW && !self.preemptive() {
                *complete = true;
            }
            if order.len() == before {
                return false;
            }
        }
        true
    }

    fn round(&mut self) -> Result<(), KernelError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.rounds += 1;
        let sched = self.w.scheduler;
        // No waiting gang fits the free GPUs of any pool: nothing can start. Without EASY (whose round
        // records the head's reservation) and without preemption the round has nothing else to do.
        if sched.backfill != Backfill::Easy && !self.preemptive() {
            let most_free = self.state.pool_free.iter().copied().max().unwrap_or(0);
            if self
                .pending
                .min_gpus()
                .is_some_and(|g| g as u64 > most_free)
            {
                self.freed = false;
                self.arrived.clear();
                return Ok(());
            }
        }
        // Queue order, fetched lazily: a long queue is not walked past the point where the round stops.
        let mut order = std::mem::take(&mut self.order);
        let mut started = std::mem::take(&mut self.started);
        order.clear();
        started.clear();
        // Greedy list scheduling without preemption tries every pending job each round, and a job that did
        // not fit does not fit on less: when nothing was released since the last round (the free GPUs of
        // every node only shrank), only the jobs queued since then can start. Walking just them, in queue
        // order, gives the same schedule as walking the whole queue.
        let mut complete = sched.backfill == Backfill::Greedy
            && !self.preemptive()
            && !self.freed
            && self.fair.is_none();
        if complete {
            order.extend(
                self.arrived
                    .iter()
                    .map(|&j| (self.pending.key(&self.w.jobs[j], j, self.live[j].level), j)),
            );
            order.sort_unstable();
        }
        // Under greedy, the first waiting job this round leaves unwalked (it cannot fit): jobs after it in
        // queue order that start are backfilled, as if the walk had visited it and found it blocked.
        let mut skipped: Option<queue::Key> = if complete {
            self.pending.first_except(&order)
        } else {
            None
        };
        self.freed = false;
        self.arrived.clear();
        if let Some(f) = &mut self.fair {
            f.queues.iter_mut().for_each(|q| q.clear());
            for (k, j) in self.pending.iter_keys() {
                f.queues[f.tenant_of[j] as usize].push_back((k, j));
            }
        }
        // Positions of `order` scored by the last kernel call, valid while `fresh`; `next` walks them.
        let (mut window, mut next, mut fresh) = (Vec::<usize>::new(), 0usize, false);
        // A job did not fit this round (and, under easy, the reservation it got).
        let mut blocked = false;
        let mut reservation: Option<Reservation> = None;
        let mut scanned_behind = 0u32;
        let mut i = 0;
        // Until a job blocks, a job that does not fit may still preempt: under greedy the walk then
        // leaves out no size class (a gang larger than the free GPUs is exactly the one that preempts).
        while self.fetch(
            &mut order,
            i,
            &mut complete,
            &mut skipped,
            blocked || !self.preemptive(),
        ) {
            if blocked {
                if scanned_behind >= sched.backfill_depth || self.state.total_free == 0 {
                    break;
                }
                scanned_behind += 1;
                if !self.may_fit_now(order[i].1)
                    || self.breaks_reservation(&reservation, order[i].1)
                {
                    i += 1;
                    continue;
                }
            }
            if !(fresh && next < window.len() && window[next] == i) {
                // Before a job blocks, a placement makes the rest of any window stale, so one job is scored
                // at a time; behind a blocked job most jobs do not fit and a batch stays exact.
                window.clear();
                window.push(i);
                // (Not under fair share: which job comes next depends on what starts before it.)
                if blocked && self.fair.is_none() {
                    let mut p = i + 1;
                    while window.len() < WINDOW
                        && self.fetch(&mut order, p, &mut complete, &mut skipped, true)
                    {
                        if self.may_fit_now(order[p].1)
                            && !self.breaks_reservation(&reservation, order[p].1)
                        {
                            window.push(p);
                        }
                        p += 1;
                    }
                }
                self.score_window(&order, &window)?;
                (next, fresh) = (0, true);
            }
            let winner = self.scratch.winners[next];
            next += 1;
            let j = order[i].1;
            let job = &self.w.jobs[j];
            let (first, spill) = self.gate_masks(&self.state, j);
            if winner.is_feasible() || spill.is_some() {
                let placed = placement::place_job(
                    &self.w.cluster,
                    &mut self.state,
                    self.backend,
                    sched.placement,
                    job,
                    winner.is_feasible().then_some(winner),
                    &mut self.scratch,
                    Gate {
                        // The window's winner already says whether committed capacity takes the job
                        // (it was scored with these masks on this state): infeasible, go to the spill.
                        first: if winner.is_feasible() { first } else { (0, 0) },
                        spill,
                        idle_taken: &self.idle_taken,
                    },
                )?;
                fresh = false;
                if let Some(gangs) = placed {
                    if !self.keeps_reservation(&mut reservation, j, &gangs)? {
                        for g in &gangs {
                            self.state.release(&self.w.cluster, g);
                        }
                        self.scratch.dirty = true;
                        i += 1;
                        continue;
                    }
                    self.out[j].backfilled = blocked || skipped.is_some_and(|k| k < order[i].0);
                    self.start(j, gangs);
                    started.push(j);
                    i += 1;
                    continue;
                }
            }
            // The job does not fit now.
            if !blocked {
                if self.preemptive() && self.preempt_for(j)? {
                    fresh = false;
                    self.repeat_round = i > 0;
                    started.push(j);
                    i += 1;
                    continue;
                }
                blocked = true;
                match sched.backfill {
                    Backfill::None => break,
                    Backfill::Greedy => {}
                    Backfill::Easy => {
                        let r = self.reservation(j)?;
                        self.out[j].reserved.get_or_insert(r.shadow);
                        reservation = Some(r);
                    }
                }
            }
            i += 1;
        }
        for &j in &started {
            self.pending.remove(&self.w.jobs[j], j);
        }
        self.order = order;
        self.started = started;
        Ok(())
    }

    /// EASY: whether starting `j` on `gangs` now leaves the head's reservation intact: it ends by the shadow
    /// time, or the head still fits the shadow-time cluster with these GPUs taken (then they stay taken
    /// there for later jobs). Always true without a reservation.
    fn keeps_reservation(
        &mut self,
        reservation: &mut Option<Reservation>,
        j: usize,
        gangs: &[Allocation],
    ) -> Result<bool, KernelError> {
        let Some(r) = reservation else {
            return Ok(true);
        };
        let run = self.placement_cost(j, gangs).run;
        if self.now.saturating_add(run) <= r.shadow {
            return Ok(true);
        }
        let w = self.w;
        let head = &w.jobs[r.head];
        if let Shadow::Pools {
            pool_free,
            total_free,
        } = &mut r.at_shadow
        {
            // The same test on the pool counts alone: these GPUs stay taken at the shadow time.
            let c = &w.cluster;
            let mut after = pool_free.clone();
            let mut total = *total_free;
            for &(node, g) in gangs.iter().flatten() {
                after[c.domain_pool[c.domain_of_node(node) as usize] as usize] -= g as u64;
                total -= g as u64;
            }
            if total < head.total_gpus() || self.quick_fit(&after, head) != Some(true) {
                return Ok(false);
            }
            (*pool_free, *total_free) = (after, total);
            return Ok(true);
        }
        let Shadow::Full(full) = &r.at_shadow else {
            unreachable!("pool-level shadows returned above")
        };
        let mut at_shadow = full.clone();
        for g in gangs {
            at_shadow.take(&self.w.cluster, g);
        }
        if at_shadow.total_free < head.total_gpus() || !self.fits(&at_shadow, r.head)? {
            return Ok(false);
        }
        if let Some(r) = reservation {
            r.at_shadow = Shadow::Full(at_shadow);
        }
        Ok(true)
    }

    /// Whether job `j` would fit `state` (a what-if cluster, left unchanged) on the pools open to it now.
    fn fits(&mut self, state: &ClusterState, j: usize) -> Result<bool, KernelError> {
        self.fits_with(state, j, false)
    }

    /// [`Engine::fits`]; with `ever`, on every pool it could be given (on-demand ones too).
    fn fits_with(
        &mut self,
        state: &ClusterState,
        j: usize,
        ever: bool,
    ) -> Result<bool, KernelError> {
        let job = &self.w.jobs[j];
        if let Some(fit) = self.fits_quick(state, job) {
            return Ok(fit);
        }
        let (first, spill) = self.gate_masks_with(state, job, ever || self.may_spill(j));
        self.what_if.dirty = true;
        let placed = placement::place_job(
            &self.w.cluster,
            &mut state.clone(),
            self.backend,
            self.w.scheduler.placement,
            job,
            None,
            &mut self.what_if,
            Gate {
                first,
                spill,
                idle_taken: &self.idle_taken,
            },
        )?;
        Ok(placed.is_some())
    }

    /// Whether job `j` may use on-demand capacity now: it has waited `spill_after_s` since it was submitted.
    fn may_spill(&self, j: usize) -> bool {
        self.on_demand
            && self.now
                >= self.w.jobs[j]
                    .submit
                    .saturating_add(self.w.scheduler.spill_after)
    }

    /// Microseconds of the current placement of `j` spent working (after its start-up).
    fn worked(&self, j: usize) -> Time {
        (self.now - self.live[j].started_at).saturating_sub(self.live[j].startup)
    }

    /// The kernel masks of job `j` on `state` now (see [`Gate`]).
    fn gate_masks(&self, state: &ClusterState, j: usize) -> ((u32, u32), Option<(u32, u32)>) {
        self.gate_masks_with(state, &self.w.jobs[j], self.may_spill(j))
    }

    /// The kernel masks of `job` on `state`: committed pools of its GPU models whose site can take one more
    /// of its gangs, and with `spill` the open on-demand pools too. Its GPU models when nothing is gated.
    fn gate_masks_with(
        &self,
        state: &ClusterState,
        job: &Job,
        spill: bool,
    ) -> ((u32, u32), Option<(u32, u32)>) {
        let c = &self.w.cluster;
        let rollout = job.rollout;
        if !c.gated {
            return ((job.model_mask, rollout.map_or(0, |g| g.model_mask)), None);
        }
        let site_w = c.site_power_w(state, &self.idle_taken);
        let (mut first, mut all) = ((0u32, 0u32), (0u32, 0u32));
        for (p, pool) in c.pools.iter().enumerate() {
            let on_demand = pool.contract == Contract::OnDemand;
            if on_demand && !spill {
                continue;
            }
            let bit = 1u32.checked_shl(c.pool_class[p]).unwrap_or(0);
            let model = pool.preset.gpu_model;
            let admits = |mask: u32, gpus: u32| {
                (mask >> model) & 1 == 1 && c.power_admits(p, gpus as u64, &site_w)
            };
            if admits(job.model_mask, job.gpus) {
                all.0 |= bit;
                if !on_demand {
                    first.0 |= bit;
                }
            }
            if rollout.is_some_and(|g| admits(g.model_mask, g.gpus)) {
                all.1 |= bit;
                if !on_demand {
                    first.1 |= bit;
                }
            }
        }
        (first, spill.then_some(all))
    }

    /// The kernel's answer without the kernel, where it is exact: a single gang that may use any GPUs of a
    /// pool (`required` = pool) is feasible exactly when an acceptable pool has that many GPUs free (the
    /// kernel's feasibility rule; then the pool's free GPUs always hold it). `None` for other jobs.
    fn fits_quick(&self, state: &ClusterState, job: &Job) -> Option<bool> {
        self.quick_fit(&state.pool_free, job)
    }

    /// [`Engine::fits_quick`] on the free GPUs per pool alone.
    fn quick_fit(&self, pool_free: &[u64], job: &Job) -> Option<bool> {
        if !self.decided_by_pools(job) {
            return None;
        }
        Some(self.w.cluster.pools.iter().enumerate().any(|(p, pool)| {
            (job.model_mask >> pool.preset.gpu_model) & 1 == 1 && pool_free[p] >= job.gpus as u64
        }))
    }

    /// Whether `job`'s what-if fit depends only on the free GPUs per pool ([`Engine::fits_quick`]).
    fn decided_by_pools(&self, job: &Job) -> bool {
        job.replicas == 1
            && job.rollout.is_none()
            && job.required == LEVEL_POOL
            && !self.w.cluster.gated
    }

    /// The blocked head's reservation: the earliest end time of running jobs after which it fits (all jobs
    /// ending at that instant released), and the cluster then. `Time::MAX` when it fits only a cluster this
    /// round's running jobs never leave: no limit on what may start.
    fn reservation(&mut self, head: usize) -> Result<Reservation, KernelError> {
        let w = self.w;
        let job = &w.jobs[head];
        if self.decided_by_pools(job) {
            return Ok(self.pool_reservation(head));
        }
        let mut state = self.state.clone();
        // Running jobs in end order, read a step at a time (a long running set is not copied per round).
        let mut last: Option<(Time, u32)> = None;
        loop {
            let next = |after: Option<(Time, u32)>| {
                use std::ops::Bound::{Excluded, Unbounded};
                let lower = after.map_or(Unbounded, Excluded);
                self.by_end.range((lower, Unbounded)).next().copied()
            };
            let Some((end, _)) = next(last) else {
                break;
            };
            while let Some((t, j)) = next(last).filter(|&(t, _)| t == end) {
                for g in &self.live[j as usize].gangs {
                    state.release(&w.cluster, g);
                }
                last = Some((t, j));
            }
            // Cheap necessary condition before asking the kernel.
            if state.total_free >= job.total_gpus() && self.fits(&state, head)? {
                return Ok(Reservation {
                    head,
                    shadow: end,
                    at_shadow: Shadow::Full(state),
                });
            }
        }
        Ok(Reservation {
            head,
            shadow: Time::MAX,
            at_shadow: Shadow::Full(state),
        })
    }

    /// [`Engine::reservation`] for a head whose fit the free GPUs per pool decide: the same walk over the
    /// running jobs in end order, releasing each one's GPUs per pool instead of per node.
    fn pool_reservation(&self, head: usize) -> Reservation {
        let job = &self.w.jobs[head];
        let mut pool_free = self.state.pool_free.clone();
        let mut total_free = self.state.total_free;
        let mut ends = self.by_end.iter().peekable();
        while let Some(end) = ends.peek().map(|e| e.0) {
            while let Some(&(_, j)) = ends.next_if(|e| e.0 == end) {
                for &(p, g) in &self.live[j as usize].pool_gpus {
                    pool_free[p as usize] += g;
                    total_free += g;
                }
            }
            if total_free >= job.total_gpus() && self.quick_fit(&pool_free, job) == Some(true) {
                return Reservation {
                    head,
                    shadow: end,
                    at_shadow: Shadow::Pools {
                        pool_free,
                        total_free,
                    },
                };
            }
        }
        Reservation {
            head,
            shadow: Time::MAX,
            at_shadow: Shadow::Pools {
                pool_free,
                total_free,
            },
        }
    }

    /// The work a running job keeps if stopped now, in work units: all it did, or, with checkpoints, what
    /// its last checkpoint saved; plus the restart cost (time, turned into work for RL) and the GPU-time lost.
    fn stop_cost(&self, v: usize) -> (Time, u128) {
        self.stop_cost_with(v, self.w.scheduler.restart_cost)
    }

    /// [`Engine::stop_cost`] with a restart time of `restart_cost`.
    fn stop_cost_with(&self, v: usize, restart_cost: Time) -> (Time, u128) {
        let elapsed = self.worked(v);
        let l = &self.live[v];
        let (compute, lost_wall) = match self.w.jobs[v].checkpoint {
            Some(c) => c.kept(elapsed),
            None => (elapsed, 0),
        };
        let done = (compute as f64 / l.factor).floor() as Time;
        let restart = if self.w.jobs[v].rl.is_some() {
            (restart_cost as f64 / l.factor).ceil() as Time
        } else {
            restart_cost
        };
        let remaining = l.remaining - done.min(l.remaining) + restart;
        let lost = (lost_wall + restart_cost) as u128 * l.held as u128;
        (remaining, lost)
    }

    /// Preempts running job `v`: it goes back to the queue with the work of [`Engine::stop_cost`].
    fn evict(&mut self, v: usize) {
        let (remaining, lost) = self.stop_cost(v);
        self.stop(v);
        self.shrunk.remove(&v);
        self.live[v].remaining = remaining;
        self.out[v].preemptions += 1;
        self.out[v].lost_gpu_time += lost;
        self.pending.insert(&self.w.jobs[v], v, self.live[v].level);
    }

    /// Restarts running job `v` on `gangs` now (GPUs not yet taken): an elastic resize or a service's
    /// replica change. Training keeps the work of [`Engine::stop_cost`]; a service loses nothing.
    fn resize(&mut self, v: usize, gangs: Vec<Allocation>, service: bool) {
        self.move_to(v, gangs, service);
        self.out[v].resizes += 1;
    }

    /// [`Engine::resize`] without counting a resize (a failure's move counts as an interruption).
    fn move_to(&mut self, v: usize, gangs: Vec<Allocation>, service: bool) {
        let (remaining, lost) = if service {
            (self.live[v].end.saturating_sub(self.now), 0)
        } else {
            self.stop_cost(v)
        };
        let epoch = self.live[v].epoch;
        self.stop(v);
        for g in &gangs {
            self.state.take(&self.w.cluster, g);
        }
        self.live[v].remaining = remaining;
        self.out[v].lost_gpu_time += lost;
        self.start(v, gangs);
        if service {
            // A service keeps its clock: its remaining lifetime gives the same end, and with its epoch
            // back, its pending `Finish` and scale ticks stay valid (the one `start` pushed is stale).
            self.live[v].epoch = epoch;
        }
    }

    /// Priority preemption: evicts lower-priority jobs (lowest priority first, then the most recently
    /// started) until `head` fits; evicts nothing if even all of them would not make room.
    fn preempt_for(&mut self, head: usize) -> Result<bool, KernelError> {
        let job = &self.w.jobs[head];
        let head_rank = self.rank(head);
        let mut victims: Vec<usize> = (0..self.live.len())
            .filter(|&j| {
                self.live[j].running && self.rank(j) < head_rank && !self.services.contains_key(&j)
            })
            .collect();
        victims.sort_by_key(|&j| (self.rank(j), Reverse(self.live[j].started_at), j));
        let mut state = self.state.clone();
        let mut needed = None;
        for (k, &v) in victims.iter().enumerate() {
            for g in &self.live[v].gangs {
                state.release(&self.w.cluster, g);
            }
            if state.total_free >= job.total_gpus() && self.fits(&state, head)? {
                needed = Some(k + 1);
                break;
            }
        }
        let Some(n) = needed else { return Ok(false) };
        for &v in &victims[..n] {
            self.evict(v);
        }
        let (first, spill) = self.gate_masks(&self.state, head);
        let placed = placement::place_job(
            &self.w.cluster,
            &mut self.state,
            self.backend,
            self.w.scheduler.placement,
            job,
            None,
            &mut self.scratch,
            Gate {
                first,
                spill,
                idle_taken: &self.idle_taken,
            },
        )?;
        match placed {
            Some(gangs) => {
                self.start(head, gangs);
                Ok(true)
            }
            None => Err(KernelError::Device(
                "preemption made room on a copy but not on the cluster".into(),
            )),
        }
    }
}
