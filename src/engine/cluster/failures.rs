//! Node failures on the engine's clock (`[failures]`, model and defaults in `domain::failures`).
//!
//! - **When and where.** Every GPU fails at the rate of each cause, independently and memorylessly, so the
//!   cluster as a whole fails at `total GPUs x rate`: the engine draws the gap to the next failure from that
//!   exponential, its cause in proportion to the causes' rates and its GPU uniformly (seeded from the
//!   workload's seed, stream 7). A failure that lands on a node already down is dropped (the thinning that
//!   makes the rate count up GPUs only). The draws never depend on the schedule, so two policies compared on
//!   one workload and seed see the same failures.
//!   With `weibull_shape = k` each node instead has its own clock: its time to failure is Weibull with shape
//!   k and the mean the rates give its GPUs, renewed from the end of each repair (a heap of the nodes'
//!   next failures); below 1 new nodes fail early, above 1 they wear out.
//! - **What stops.** Every job holding GPUs on the node is interrupted: it keeps the work of its last
//!   checkpoint, loses the rest, and pays the restart time (`restart_s`) on all its GPUs. A `software`
//!   failure (repair 0) restarts the jobs in place. A hardware failure takes the node out for its cause's
//!   repair time: an interrupted job moves its slice to a spare node of the same domain (or rack) and
//!   restarts there, staying in its NVLink domain; without a spare it goes back to the queue and is placed
//!   again like any waiting job.
//! - **Spares.** `spare_nodes_per_domain` (or `_per_rack`) nodes of each group are held back from
//!   placement. A spare that replaced a failed node becomes an ordinary node; the repaired node becomes
//!   the group's spare.
//! - **Live autoscaled services** move a failed replica's slice to a spare; without one, the replica keeps
//!   its GPUs until the service releases them (the request-level simulation cannot lose a replica mid-run),
//!   and the node's GPUs go out of service as they are released.

use super::{Engine, Event};
use crate::domain::cluster::{Allocation, Cluster, ClusterState};
use crate::domain::failures::{Cause, Failures};
use crate::domain::workload::Time;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The RNG stream of failure draws.
const STREAM: u64 = 7;

/// What failures did over a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailureStats {
    /// Node failures by cause (index of `Cause::ALL`), whether or not a job was on the node.
    pub node_failures: [u64; 5],
    /// Job interruptions by cause: one per job stopped by a failure.
    pub interruptions: [u64; 5],
    /// GPU-microseconds lost to failures: work since the last checkpoint plus restart time.
    pub lost_gpu_time: u128,
    /// Of it, restart time.
    pub restart_gpu_time: u128,
    /// Interrupted jobs that moved to a spare node and stayed where they were.
    pub spare_swaps: u64,
    /// Interrupted jobs that went back to the queue.
    pub requeued: u64,
    /// (time, cause, jobs interrupted) of every failure that interrupted a job.
    pub timeline: Vec<(Time, Cause, u32)>,
}

/// Nodes' next failures, earliest first: (time, node).
type NextFailures = std::collections::BinaryHeap<std::cmp::Reverse<(Time, u32)>>;

/// A node out for repair.
#[derive(Debug, Clone, Copy)]
struct Down {
    /// GPUs of the node this hold has taken out of the cluster state.
    held: u32,
}

/// The failure process while the engine runs.
pub(super) struct FailureState {
    model: Failures,
    rng: ChaCha8Rng,
    /// Failures per microsecond over the whole cluster.
    rate_per_us: f64,
    /// The next failure.
    pub(super) next: Time,
    down: BTreeMap<u32, Down>,
    /// Spare nodes per group (domain or rack), ascending.
    spares: Vec<Vec<u32>>,
    /// Spares each group should hold.
    per_group: u32,
    by_rack: bool,
    /// The empty cluster with the spares held back: what a job can ever use.
    pub(super) base: ClusterState,
    pub(super) stats: FailureStats,
    /// With `weibull_shape`: each node's next failure, earliest first, and each node's Weibull scale (us).
    weibull: Option<(NextFailures, Vec<f64>)>,
}

impl FailureState {
    pub(super) fn new(model: Failures, cluster: &Cluster, seed: u64) -> FailureState {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(STREAM);
        let rate_per_us = model.rate_per_gpu_hour() * cluster.total_gpus as f64 / 3.6e9;
        let by_rack = model.spare_nodes_per_rack > 0;
        let per_group = model.spare_nodes_per_domain.max(model.spare_nodes_per_rack);
        let groups = if by_rack {
            cluster.rack_pool.len()
        } else {
            cluster.num_domains()
        };
        let mut base = ClusterState::new(cluster);
        let mut spares = vec![Vec::new(); groups];
        for (g, list) in spares.iter_mut().enumerate() {
            let nodes = group_nodes(cluster, by_rack, g as u32);
            let k = per_group.min(nodes.len() as u32);
            for n in nodes.end - k..nodes.end {
                base.take(cluster, &vec![(n, node_gpus(cluster, n))]);
                list.push(n);
            }
        }
        let mut s = FailureState {
            model,
            rng,
            rate_per_us,
            next: 0,
            down: BTreeMap::new(),
            spares,
            per_group,
            by_rack,
            base,
            stats: FailureStats::default(),
            weibull: None,
        };
        match model.weibull_shape {
            Some(shape) => {
                // Per node: mean time to failure 1 / (rate x its GPUs), scale = mean / gamma(1 + 1/k).
                let g = crate::domain::failures::gamma(1.0 + 1.0 / shape);
                let rate = model.rate_per_gpu_hour();
                let scales: Vec<f64> = (0..cluster.total_nodes)
                    .map(|n| {
                        let per_us = rate * node_gpus(cluster, n) as f64 / 3.6e9;
                        if per_us > 0.0 {
                            1.0 / per_us / g
                        } else {
                            f64::INFINITY
                        }
                    })
                    .collect();
                let mut heap = std::collections::BinaryHeap::new();
                for n in 0..cluster.total_nodes {
                    let t = s.weibull_after(0, scales[n as usize], shape);
                    if t < Time::MAX {
                        heap.push(std::cmp::Reverse((t, n)));
                    }
                }
                s.next = heap.peek().map_or(Time::MAX, |r| r.0 .0);
                s.weibull = Some((heap, scales));
            }
            None => s.next = s.gap(0),
        }
        s
    }

    /// A Weibull time to failure after `now`: `scale x (-ln(1 - u))^(1/shape)`, at least 1 us.
    fn weibull_after(&mut self, now: Time, scale: f64, shape: f64) -> Time {
        if !scale.is_finite() {
            return Time::MAX;
        }
        let u: f64 = self.rng.random::<f64>();
        let t = (scale * (-(1.0 - u).ln()).powf(1.0 / shape))
            .ceil()
            .max(1.0);
        if t >= (Time::MAX - now) as f64 {
            Time::MAX
        } else {
            now + t as Time
        }
    }

    /// The instant of the failure after `now`.
    fn gap(&mut self, now: Time) -> Time {
        if self.rate_per_us <= 0.0 {
            return Time::MAX;
        }
        let u: f64 = self.rng.random::<f64>();
        let gap = (-(1.0 - u).ln() / self.rate_per_us).ceil().max(1.0);
        if gap >= (Time::MAX - now) as f64 {
            Time::MAX
        } else {
            now + gap as Time
        }
    }

    /// Draws the failure at `self.next`: (node, cause); and the one after.
    fn draw(&mut self, cluster: &Cluster) -> (u32, Cause) {
        let cause = self.draw_cause();
        if let Some((mut heap, scales)) = self.weibull.take() {
            // Weibull: the node whose clock ran out; its next failure counts from the end of its repair.
            let node = heap.pop().map_or(0, |r| r.0 .1);
            let from = self.next.saturating_add(self.model.repair[cause.index()]);
            let shape = self.model.weibull_shape.unwrap_or(1.0);
            let t = self.weibull_after(from, scales[node as usize], shape);
            if t < Time::MAX {
                heap.push(std::cmp::Reverse((t, node)));
            }
            self.next = heap.peek().map_or(Time::MAX, |r| r.0 .0);
            self.weibull = Some((heap, scales));
            return (node, cause);
        }
        let gpu = self.rng.random_range(0..cluster.total_gpus);
        self.next = self.gap(self.next);
        (node_of_gpu(cluster, gpu), cause)
    }

    /// A cause in proportion to the causes' rates.
    fn draw_cause(&mut self) -> Cause {
        let total: f64 = self.model.rate_per_gpu_hour();
        let mut x = self.rng.random::<f64>() * total;
        let mut cause = Cause::Software;
        for c in Cause::ALL {
            let r = self.model.rates_per_gpu_hour[c.index()];
            if r > 0.0 {
                cause = c;
                if x < r {
                    break;
                }
                x -= r;
            }
        }
        cause
    }

    fn group(&self, cluster: &Cluster, node: u32) -> usize {
        let d = cluster.domain_of_node(node);
        if self.by_rack {
            cluster.domain_rack[d as usize] as usize
        } else {
            d as usize
        }
    }

    /// Whether `node` is out for repair.
    pub(super) fn is_down(&self, node: u32) -> bool {
        self.down.contains_key(&node)
    }

    /// Whether spares are held back.
    pub(super) fn has_spares(&self) -> bool {
        self.per_group > 0
    }

    /// Nodes out for repair.
    pub(super) fn any_down(&self) -> bool {
        !self.down.is_empty()
    }
}

/// GPUs of one node.
fn node_gpus(c: &Cluster, node: u32) -> u32 {
    c.pool_of(c.domain_of_node(node)).preset.gpus_per_node
}

/// The global nodes of a domain or rack.
fn group_nodes(c: &Cluster, by_rack: bool, g: u32) -> std::ops::Range<u32> {
    let domains = if by_rack {
        let first = c.rack_first_domain[g as usize];
        let pool = &c.pools[c.rack_pool[g as usize] as usize];
        let end = (first + pool.domains_per_rack.max(1)).min(pool.first_domain + pool.domains);
        first..end
    } else {
        g..g + 1
    };
    let first = c.domain_first_node[domains.start as usize];
    let last = domains.end - 1;
    let npd = c.pool_of(last).preset.nodes_per_domain;
    first..c.domain_first_node[last as usize] + npd
}

/// The node of the `gpu`-th GPU of the cluster (pools in order, nodes in order).
fn node_of_gpu(c: &Cluster, mut gpu: u64) -> u32 {
    for p in &c.pools {
        if gpu < p.gpus() {
            let dg = p.domain_gpus() as u64;
            let d = p.first_domain + (gpu / dg) as u32;
            let within = (gpu % dg) as u32 / p.preset.gpus_per_node;
            return c.domain_first_node[d as usize] + within;
        }
        gpu -= p.gpus();
    }
    c.total_nodes.saturating_sub(1)
}

impl Engine<'_> {
    /// The failure due now: interrupts the jobs on its node and takes the node out.
    pub(super) fn fail_next(&mut self) {
        let Some(fs) = self.failures.as_mut() else {
            return;
        };
        let (node, cause) = fs.draw(&self.w.cluster);
        if fs.is_down(node) {
            return;
        }
        fs.stats.node_failures[cause.index()] += 1;
        let repair = fs.model.repair[cause.index()];
        let group = fs.group(&self.w.cluster, node);
        let was_spare = match fs.spares[group].iter().position(|&n| n == node) {
            Some(i) => {
                fs.spares[group].remove(i);
                true
            }
            None => false,
        };
        let hit: Vec<usize> = {
            let mut v: Vec<usize> = self
                .by_end
                .iter()
                .map(|&(_, j)| j as usize)
                .filter(|&j| self.live[j].gangs.iter().flatten().any(|&(n, _)| n == node))
                .collect();
            v.sort_unstable();
            v
        };
        if !hit.is_empty() {
            fs.stats.timeline.push((self.now, cause, hit.len() as u32));
        }
        let c = &self.w.cluster;
        let gpn = node_gpus(c, node);
        // A spare node this failure's jobs move to (one node replaces one node).
        let mut spare: Option<u32> = None;
        for j in hit {
            if repair == 0 {
                self.interrupted(j, cause);
                let gangs = self.live[j].gangs.clone();
                self.restart_on(j, gangs);
                continue;
            }
            if spare.is_none() {
                spare = self.failures.as_mut().and_then(|fs| {
                    let s = (!fs.spares[group].is_empty()).then(|| fs.spares[group].remove(0));
                    if let Some(s) = s {
                        // The spare leaves the reserve: its GPUs become placeable, this job takes them.
                        self.state.release(&self.w.cluster, &vec![(s, gpn)]);
                    }
                    s
                });
            }
            match spare {
                Some(s) => {
                    let gangs: Vec<Allocation> = self.live[j]
                        .gangs
                        .iter()
                        .map(|g| {
                            g.iter()
                                .map(|&(n, k)| if n == node { (s, k) } else { (n, k) })
                                .collect()
                        })
                        .collect();
                    if let Some(fs) = self.failures.as_mut() {
                        fs.stats.spare_swaps += 1;
                    }
                    self.interrupted(j, cause);
                    self.restart_on(j, gangs);
                }
                None if self.services.contains_key(&j) => {}
                None => {
                    self.interrupted(j, cause);
                    self.requeue(j);
                }
            }
        }
        if repair == 0 {
            if was_spare {
                if let Some(fs) = self.failures.as_mut() {
                    fs.spares[group].push(node);
                    fs.spares[group].sort_unstable();
                }
            }
            return;
        }
        // The node goes out: whatever of it is free now (all of it, for a spare: already held back).
        let free = self.state.node_free[node as usize];
        if free > 0 {
            self.state.take(&self.w.cluster, &vec![(node, free)]);
            self.scratch.dirty = true;
        }
        let held = if was_spare { gpn } else { free };
        if let Some(fs) = self.failures.as_mut() {
            fs.down.insert(node, Down { held });
        }
        self.push(self.now.saturating_add(repair), Event::Repair { node });
    }

    /// A node is back: it refills its group's spares if they are short and it is whole, else its GPUs
    /// return to the cluster.
    pub(super) fn repair(&mut self, node: u32) {
        let c = &self.w.cluster;
        let Some(fs) = self.failures.as_mut() else {
            return;
        };
        let Some(d) = fs.down.remove(&node) else {
            return;
        };
        let group = fs.group(c, node);
        if fs.spares[group].len() < fs.per_group as usize && d.held == node_gpus(c, node) {
            fs.spares[group].push(node);
            fs.spares[group].sort_unstable();
            return;
        }
        if d.held > 0 {
            self.state.release(c, &vec![(node, d.held)]);
            self.scratch.dirty = true;
            self.freed = true;
        }
    }

    /// After `stop` released `gangs`: GPUs on nodes out for repair go out with them.
    pub(super) fn keep_down(&mut self, gangs: &[Allocation]) {
        let Some(fs) = self.failures.as_mut() else {
            return;
        };
        if !fs.any_down() {
            return;
        }
        for &(n, k) in gangs.iter().flatten() {
            if let Some(d) = fs.down.get_mut(&n) {
                self.state.take(&self.w.cluster, &vec![(n, k)]);
                d.held += k;
            }
        }
    }

    /// Counts an interruption of job `j` (it is stopped next).
    fn interrupted(&mut self, j: usize, cause: Cause) {
        self.out[j].interruptions[cause.index()] += 1;
        if let Some(fs) = self.failures.as_mut() {
            fs.stats.interruptions[cause.index()] += 1;
        }
    }

    /// The restart cost of a failure: the work kept by the last checkpoint plus `restart_s`.
    fn failure_cost(&mut self, j: usize) -> Time {
        let restart = self.failures.as_ref().map_or(0, |f| f.model.restart);
        let (remaining, lost) = self.stop_cost_with(j, restart);
        let held = self.live[j].held as u128;
        self.out[j].lost_gpu_time += lost;
        if let Some(fs) = self.failures.as_mut() {
            fs.stats.lost_gpu_time += lost;
            fs.stats.restart_gpu_time += restart as u128 * held;
        }
        remaining
    }

    /// Interrupted job `j` restarts now on `gangs` (its own, or with a spare for the failed node).
    fn restart_on(&mut self, j: usize, gangs: Vec<Allocation>) {
        if self.services.contains_key(&j) {
            // A live service keeps its clock and loses nothing but the move.
            self.move_to(j, gangs, true);
            return;
        }
        let remaining = self.failure_cost(j);
        self.stop(j);
        for g in &gangs {
            self.state.take(&self.w.cluster, g);
        }
        self.live[j].remaining = remaining;
        self.start(j, gangs);
    }

    /// Interrupted job `j` goes back to the queue with the work of its last checkpoint.
    fn requeue(&mut self, j: usize) {
        let remaining = self.failure_cost(j);
        self.stop(j);
        self.shrunk.remove(&j);
        self.live[j].remaining = remaining;
        if let Some(fs) = self.failures.as_mut() {
            fs.stats.requeued += 1;
        }
        self.pending.insert(&self.w.jobs[j], j, self.live[j].level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::preset;
    use crate::domain::cluster::Pool;

    fn cluster() -> Cluster {
        let pool = |id: &str, domains: u32, per_rack: u32| {
            let p = preset(id).unwrap();
            Pool {
                name: id.into(),
                preset: *p,
                provider: "aws".into(),
                first_domain: 0,
                domains,
                domains_per_rack: per_rack,
                first_rack: 0,
                usd_per_gpu_hour: 1.0,
                idle_w: 0.0,
                busy_w: 0.0,
                site: None,
                contract: Default::default(),
                startup_us: 0,
            }
        };
        Cluster::new(vec![pool("p5-h100", 5, 2), pool("p6e-gb200", 2, 1)])
    }

    #[test]
    fn gpus_map_to_their_nodes_across_pools() {
        let c = cluster();
        // 5 H100 nodes of 8 GPUs (nodes 0-4), then 2 domains of 18 four-GPU nodes (nodes 5-40).
        assert_eq!(node_of_gpu(&c, 0), 0);
        assert_eq!(node_of_gpu(&c, 39), 4);
        assert_eq!(node_of_gpu(&c, 40), 5);
        assert_eq!(node_of_gpu(&c, 40 + 72), 5 + 18);
        assert_eq!(node_of_gpu(&c, 40 + 143), 40);
        // Racks of the H100 pool: domains {0,1}, {2,3}, {4}.
        assert_eq!(group_nodes(&c, true, 2), 4..5);
        assert_eq!(group_nodes(&c, false, 6), 23..41);
    }

    #[test]
    fn spares_are_the_last_nodes_of_each_group_and_leave_the_base_state() {
        let c = cluster();
        let f = Failures {
            spare_nodes_per_rack: 1,
            ..Failures::default()
        };
        let s = FailureState::new(f, &c, 1);
        // Racks: {0,1}, {2,3}, {4} of H100, then one rack per GB200 domain.
        assert_eq!(
            s.spares,
            vec![vec![1], vec![3], vec![4], vec![22], vec![40]]
        );
        assert_eq!(s.base.total_free, c.total_gpus - 3 * 8 - 2 * 4);
    }

    #[test]
    fn draws_are_a_function_of_the_seed() {
        let c = cluster();
        let run = |seed| {
            let mut s = FailureState::new(Failures::default(), &c, seed);
            (0..50).map(|_| (s.next, s.draw(&c))).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
