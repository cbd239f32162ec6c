//! The modelled cluster: GPU -> node -> NVLink domain -> rack/block -> pool, and its free-GPU state.
//!
//! Topology is fixed at build time; [`ClusterState`] holds what changes (free GPUs per node, and the sums per
//! domain, rack and pool kept in step). Domains are numbered globally; pools own contiguous ranges of domains,
//! racks contiguous ranges inside a pool.

use crate::domain::catalog::Preset;

/// The widest topology group a gang may span: it stays inside one NVLink domain...
/// (the placement kernel reads these codes as they are: shaders/placement_cost.wgsl mirrors them)
pub const LEVEL_DOMAIN: u32 = 0;
/// ...inside one rack/block of domains...
pub const LEVEL_RACK: u32 = 1;
/// ...or anywhere in its pool.
pub const LEVEL_POOL: u32 = 2;
/// A job's preferred level when it states no preference.
pub const LEVEL_NONE: u32 = 3;

/// One homogeneous pool of a preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Pool name from the workload.
    pub name: String,
    /// The system shape.
    pub preset: Preset,
    /// Provider label (for reports).
    pub provider: String,
    /// First global domain index.
    pub first_domain: u32,
    /// NVLink domains in the pool.
    pub domains: u32,
    /// Domains per rack/block.
    pub domains_per_rack: u32,
    /// First global rack index.
    pub first_rack: u32,
    /// Price, USD per GPU-hour.
    pub usd_per_gpu_hour: f64,
    /// Power per idle GPU, W.
    pub idle_w: f64,
    /// Power per busy GPU, W.
    pub busy_w: f64,
    /// The site it stands in (index of `Cluster::sites`), if any: its power counts against that cap.
    pub site: Option<u32>,
    /// How its capacity is paid for.
    pub contract: Contract,
    /// On-demand only: microseconds from placement to useful work (GPUs held and paid meanwhile).
    pub startup_us: u64,
}

/// How a pool's capacity is bought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Contract {
    /// Paid for the whole run at its price, used or not.
    #[default]
    Committed,
    /// Paid per GPU-hour used; a job goes there only when committed capacity cannot take it and it has
    /// waited `spill_after_s`.
    OnDemand,
}

impl Contract {
    /// The name in workload files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Contract::Committed => "committed",
            Contract::OnDemand => "on-demand",
        }
    }
}

/// A site: a building whose power, not its chips, is the limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Name from the workload.
    pub name: String,
    /// Facility power cap, W (IT power x PUE may not exceed it); `None`: no cap.
    pub power_cap_w: Option<f64>,
    /// Power usage effectiveness: facility power over IT power.
    pub pue: f64,
}

impl Pool {
    /// GPUs in the pool.
    pub fn gpus(&self) -> u64 {
        self.domains as u64 * self.preset.domain_gpus() as u64
    }
    /// GPUs per domain.
    pub fn domain_gpus(&self) -> u32 {
        self.preset.domain_gpus()
    }
    /// Busy power above idle per GPU, W.
    pub fn busy_w_extra(&self) -> f64 {
        (self.busy_w - self.idle_w).max(0.0)
    }

    /// What makes two gated pools interchangeable to a job's mask.
    pub fn class_key(&self) -> (usize, Option<u32>, bool, u64, u64) {
        (
            self.preset.gpu_model,
            self.site,
            self.contract == Contract::OnDemand,
            self.busy_w.to_bits(),
            self.idle_w.to_bits(),
        )
    }

    /// GPUs per rack (the last rack of a pool may be smaller).
    pub fn rack_gpus(&self) -> u64 {
        self.domains_per_rack.min(self.domains) as u64 * self.domain_gpus() as u64
    }
}

/// The fixed shape of the cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Pools in workload order.
    pub pools: Vec<Pool>,
    /// Pool of each domain.
    pub domain_pool: Vec<u32>,
    /// Global rack of each domain.
    pub domain_rack: Vec<u32>,
    /// First global node of each domain (nodes of a domain are contiguous).
    pub domain_first_node: Vec<u32>,
    /// Pool of each rack.
    pub rack_pool: Vec<u32>,
    /// First global domain of each rack (domains of a rack are contiguous).
    pub rack_first_domain: Vec<u32>,
    /// Total GPUs.
    pub total_gpus: u64,
    /// Total nodes.
    pub total_nodes: u32,
    /// Sites pools stand in.
    pub sites: Vec<Site>,
    /// The code the placement kernel sees as each pool's "GPU model": the GPU model itself, unless some
    /// pool is on-demand or under a power cap; then one code per distinct (GPU model, site, contract,
    /// power), so a job's mask can close pools the cap or the contract shuts (at most 32 codes).
    pub pool_class: Vec<u32>,
    /// Pools are gated by power or contract (`pool_class` codes are classes, not GPU models).
    pub gated: bool,
}

/// A gang's GPUs: (global node, GPUs taken there), in allocation order.
pub type Allocation = Vec<(u32, u32)>;

impl Cluster {
    /// Builds the topology from pools whose `first_domain`/`first_rack` are filled in here.
    pub fn new(pools: Vec<Pool>) -> Cluster {
        Cluster::with_sites(pools, Vec::new())
    }

    /// Most kernel codes of gated pools (the kernel's model mask has 32 bits).
    pub const MAX_CLASSES: usize = 32;

    /// [`Cluster::new`] with the sites pools name. More than [`Cluster::MAX_CLASSES`] distinct gated
    /// pool classes is a validation error of the caller's (classes past it can never be placed on).
    pub fn with_sites(mut pools: Vec<Pool>, sites: Vec<Site>) -> Cluster {
        let (
            mut domain_pool,
            mut domain_rack,
            mut domain_first_node,
            mut rack_pool,
            mut rack_first_domain,
        ) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut next_domain, mut next_rack, mut next_node, mut total_gpus) =
            (0u32, 0u32, 0u32, 0u64);
        for (pi, pool) in pools.iter_mut().enumerate() {
            pool.first_domain = next_domain;
            pool.first_rack = next_rack;
            let per_rack = pool.domains_per_rack.max(1);
            for d in 0..pool.domains {
                if d % per_rack == 0 {
                    rack_pool.push(pi as u32);
                    rack_first_domain.push(next_domain + d);
                    next_rack += 1;
                }
                domain_pool.push(pi as u32);
                domain_rack.push(next_rack - 1);
                domain_first_node.push(next_node);
                next_node += pool.preset.nodes_per_domain;
            }
            next_domain += pool.domains;
            total_gpus += pool.gpus();
        }
        let gated = pools.iter().any(|p| {
            p.contract == Contract::OnDemand
                || p.site
                    .is_some_and(|s| sites[s as usize].power_cap_w.is_some())
        });
        let pool_class = if gated {
            let keys: Vec<_> = pools.iter().map(Pool::class_key).collect();
            let mut distinct = keys.clone();
            distinct.sort_unstable();
            distinct.dedup();
            keys.iter()
                .map(|k| distinct.binary_search(k).unwrap_or(0) as u32)
                .collect()
        } else {
            pools.iter().map(|p| p.preset.gpu_model as u32).collect()
        };
        Cluster {
            sites,
            pool_class,
            gated,
            pools,
            domain_pool,
            domain_rack,
            domain_first_node,
            rack_pool,
            rack_first_domain,
            total_gpus,
            total_nodes: next_node,
        }
    }

    /// Number of NVLink domains.
    pub fn num_domains(&self) -> usize {
        self.domain_pool.len()
    }

    /// The pool a domain belongs to.
    pub fn pool_of(&self, domain: u32) -> &Pool {
        &self.pools[self.domain_pool[domain as usize] as usize]
    }

    /// The domain a node belongs to.
    pub fn domain_of_node(&self, node: u32) -> u32 {
        // Nodes are contiguous per domain, so the domain is the last one starting at or before `node`.
        (self
            .domain_first_node
            .partition_point(|&first| first <= node)
            - 1) as u32
    }

    /// The domains a gang anchored at `domain` may use under `level` (its domain, rack or pool).
    pub fn group(&self, domain: u32, level: u32) -> std::ops::Range<u32> {
        match level {
            LEVEL_DOMAIN => domain..domain + 1,
            LEVEL_RACK => {
                let r = self.domain_rack[domain as usize] as usize;
                let end = self
                    .rack_first_domain
                    .get(r + 1)
                    .copied()
                    .unwrap_or(self.num_domains() as u32);
                let pool = self.pool_of(domain);
                self.rack_first_domain[r]..end.min(pool.first_domain + pool.domains)
            }
            _ => {
                let pool = self.pool_of(domain);
                pool.first_domain..pool.first_domain + pool.domains
            }
        }
    }

    /// How many gangs of `gpus` GPUs pool `pool` holds at once when empty, each inside one group of `level`.
    pub fn gangs_that_fit(&self, pool: usize, level: u32, gpus: u32) -> u64 {
        let p = &self.pools[pool];
        let g = gpus as u64;
        match level {
            LEVEL_DOMAIN => p.domains as u64 * (p.domain_gpus() as u64 / g),
            LEVEL_RACK => {
                let dpr = p.domains_per_rack.max(1);
                let full = (p.domains / dpr) as u64 * ((dpr as u64 * p.domain_gpus() as u64) / g);
                full + ((p.domains % dpr) as u64 * p.domain_gpus() as u64) / g
            }
            _ => p.gpus() / g,
        }
    }

    /// Facility power of each site, W: every GPU of its pools at idle power, the GPUs `state` has taken at
    /// busy power (less `idle_taken[p]` per pool: spares held back), times the site's PUE.
    pub fn site_power_w(&self, state: &ClusterState, idle_taken: &[u64]) -> Vec<f64> {
        let mut it = vec![0.0f64; self.sites.len()];
        for (p, pool) in self.pools.iter().enumerate() {
            if let Some(s) = pool.site {
                let busy = pool
                    .gpus()
                    .saturating_sub(state.pool_free[p])
                    .saturating_sub(idle_taken.get(p).copied().unwrap_or(0));
                it[s as usize] +=
                    pool.gpus() as f64 * pool.idle_w + busy as f64 * pool.busy_w_extra();
            }
        }
        it.iter().zip(&self.sites).map(|(w, s)| w * s.pue).collect()
    }

    /// Whether every capped site is within its cap on `state` (see [`Cluster::site_power_w`]).
    pub fn within_power_caps(&self, state: &ClusterState, idle_taken: &[u64]) -> bool {
        self.site_power_w(state, idle_taken)
            .iter()
            .zip(&self.sites)
            .all(|(&w, s)| s.power_cap_w.is_none_or(|cap| w <= cap * (1.0 + 1e-12)))
    }

    /// Whether a gang of `gpus` busy GPUs more in pool `p` keeps its site within its cap, its site drawing
    /// `site_w` now.
    pub fn power_admits(&self, p: usize, gpus: u64, site_w: &[f64]) -> bool {
        let pool = &self.pools[p];
        let Some(s) = pool.site else { return true };
        let site = &self.sites[s as usize];
        site.power_cap_w.is_none_or(|cap| {
            site_w[s as usize] + gpus as f64 * pool.busy_w_extra() * site.pue <= cap * (1.0 + 1e-12)
        })
    }

    /// Distinct kernel codes in `pool_class`.
    pub fn classes(&self) -> usize {
        let mut c = self.pool_class.clone();
        c.sort_unstable();
        c.dedup();
        c.len()
    }

    /// Largest gang a pool can ever host within `level` (0 domain, 1 rack, 2 pool).
    pub fn max_gang(&self, pool: usize, level: u32) -> u64 {
        let p = &self.pools[pool];
        match level {
            LEVEL_DOMAIN => p.domain_gpus() as u64,
            LEVEL_RACK => p.rack_gpus(),
            _ => p.gpus(),
        }
    }
}

/// What changes: free GPUs at every level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterState {
    /// Free GPUs per node.
    pub node_free: Vec<u32>,
    /// Free GPUs per domain (sum of its nodes).
    pub domain_free: Vec<u32>,
    /// Free GPUs per rack.
    pub rack_free: Vec<u64>,
    /// Free GPUs per pool.
    pub pool_free: Vec<u64>,
    /// Free GPUs in the cluster.
    pub total_free: u64,
    /// One bit per domain, set while it has a free GPU (`domain_free > 0`): who walks only the domains
    /// with free GPUs ([`ClusterState::domains_with_free`]) skips 64 full domains per word.
    with_free: Vec<u64>,
}

impl ClusterState {
    /// Everything free.
    pub fn new(cluster: &Cluster) -> ClusterState {
        let mut node_free = Vec::with_capacity(cluster.total_nodes as usize);
        let mut domain_free = Vec::with_capacity(cluster.num_domains());
        let mut rack_free = vec![0u64; cluster.rack_pool.len()];
        for (d, &pi) in cluster.domain_pool.iter().enumerate() {
            let preset = cluster.pools[pi as usize].preset;
            node_free.extend(std::iter::repeat_n(
                preset.gpus_per_node,
                preset.nodes_per_domain as usize,
            ));
            domain_free.push(preset.domain_gpus());
            rack_free[cluster.domain_rack[d] as usize] += preset.domain_gpus() as u64;
        }
        let pool_free = cluster.pools.iter().map(Pool::gpus).collect();
        let mut with_free = vec![0u64; domain_free.len().div_ceil(64)];
        for (d, &f) in domain_free.iter().enumerate() {
            if f > 0 {
                with_free[d / 64] |= 1 << (d % 64);
            }
        }
        ClusterState {
            with_free,
            node_free,
            domain_free,
            rack_free,
            pool_free,
            total_free: cluster.total_gpus,
        }
    }

    /// Takes `gpus` GPUs from `domain`, filling its nodes best-fit (fewest free that still hold the rest
    /// whole, else the fullest first; ties by node index). Returns the node slices taken.
    pub fn take_from_domain(
        &mut self,
        cluster: &Cluster,
        domain: u32,
        gpus: u32,
        alloc: &mut Allocation,
    ) {
        debug_assert!(gpus <= self.domain_free[domain as usize]);
        let first = cluster.domain_first_node[domain as usize];
        let n = cluster.pool_of(domain).preset.nodes_per_domain;
        let mut left = gpus;
        while left > 0 {
            // Best fit: the node with the fewest free GPUs that still holds all that is left ...
            let mut pick: Option<u32> = None;
            for node in first..first + n {
                let f = self.node_free[node as usize];
                if f >= left && pick.is_none_or(|p| f < self.node_free[p as usize]) {
                    pick = Some(node);
                }
            }
            // ... else the node with the most free GPUs, to touch as few nodes as possible.
            if pick.is_none() {
                for node in first..first + n {
                    let f = self.node_free[node as usize];
                    if f > 0 && pick.is_none_or(|p| f > self.node_free[p as usize]) {
                        pick = Some(node);
                    }
                }
            }
            let Some(node) = pick else { break };
            let take = left.min(self.node_free[node as usize]);
            self.node_free[node as usize] -= take;
            alloc.push((node, take));
            left -= take;
        }
        self.domain_free[domain as usize] -= gpus;
        self.mark(domain as usize);
        self.rack_free[cluster.domain_rack[domain as usize] as usize] -= gpus as u64;
        self.pool_free[cluster.domain_pool[domain as usize] as usize] -= gpus as u64;
        self.total_free -= gpus as u64;
    }

    /// Takes exactly the GPUs of an allocation (all of them must be free).
    pub fn take(&mut self, cluster: &Cluster, alloc: &Allocation) {
        for &(node, g) in alloc {
            let d = cluster.domain_of_node(node) as usize;
            debug_assert!(self.node_free[node as usize] >= g);
            self.node_free[node as usize] -= g;
            self.domain_free[d] -= g;
            self.mark(d);
            self.rack_free[cluster.domain_rack[d] as usize] -= g as u64;
            self.pool_free[cluster.domain_pool[d] as usize] -= g as u64;
            self.total_free -= g as u64;
        }
    }

    /// Keeps domain `d`'s bit in `with_free` in step with its free count.
    fn mark(&mut self, d: usize) {
        let bit = 1u64 << (d % 64);
        if self.domain_free[d] > 0 {
            self.with_free[d / 64] |= bit;
        } else {
            self.with_free[d / 64] &= !bit;
        }
    }

    /// The domains with a free GPU, in index order.
    pub fn domains_with_free(&self) -> impl Iterator<Item = usize> + '_ {
        self.with_free.iter().enumerate().flat_map(|(w, &bits)| {
            let mut left = bits;
            std::iter::from_fn(move || {
                (left != 0).then(|| {
                    let b = left.trailing_zeros() as usize;
                    left &= left - 1;
                    w * 64 + b
                })
            })
        })
    }

    /// Returns an allocation's GPUs.
    pub fn release(&mut self, cluster: &Cluster, alloc: &Allocation) {
        for &(node, g) in alloc {
            let d = cluster.domain_of_node(node) as usize;
            self.node_free[node as usize] += g;
            self.domain_free[d] += g;
            self.mark(d);
            self.rack_free[cluster.domain_rack[d] as usize] += g as u64;
            self.pool_free[cluster.domain_pool[d] as usize] += g as u64;
            self.total_free += g as u64;
        }
    }
}

/// Distinct domains and nodes an allocation touches.
pub fn span(cluster: &Cluster, alloc: &Allocation) -> (u32, u32) {
    let mut domains: Vec<u32> = alloc
        .iter()
        .map(|&(n, _)| cluster.domain_of_node(n))
        .collect();
    domains.sort_unstable();
    domains.dedup();
    (
        domains.len() as u32,
        distinct_nodes(std::slice::from_ref(alloc)),
    )
}

/// Distinct nodes a placement's gangs touch (most placements are one slice: no set is built).
pub fn distinct_nodes(gangs: &[Allocation]) -> u32 {
    let slices: usize = gangs.iter().map(Vec::len).sum();
    if slices <= 1 {
        return slices as u32;
    }
    let mut nodes: Vec<u32> = gangs.iter().flatten().map(|&(n, _)| n).collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::preset;

    fn pool(id: &str, domains: u32, per_rack: u32) -> Pool {
        Pool {
            name: id.into(),
            preset: *preset(id).unwrap(),
            provider: "aws".into(),
            first_domain: 0,
            domains,
            domains_per_rack: per_rack,
            first_rack: 0,
            usd_per_gpu_hour: 1.0,
            idle_w: 100.0,
            busy_w: 1000.0,
            site: None,
            contract: Contract::Committed,
            startup_us: 0,
        }
    }

    #[test]
    fn topology_numbers_domains_racks_and_nodes() {
        let c = Cluster::new(vec![pool("p5-h100", 5, 2), pool("p6e-gb200", 2, 1)]);
        assert_eq!(c.num_domains(), 7);
        assert_eq!(c.total_gpus, 5 * 8 + 2 * 72);
        assert_eq!(c.domain_rack, [0, 0, 1, 1, 2, 3, 4]);
        assert_eq!(c.total_nodes, 5 + 36);
        assert_eq!(c.domain_of_node(4), 4);
        assert_eq!(c.domain_of_node(5), 5);
        assert_eq!(c.domain_of_node(22), 5);
        assert_eq!(c.domain_of_node(23), 6);
        assert_eq!(c.pools[1].first_domain, 5);
        assert_eq!(c.group(3, LEVEL_RACK), 2..4);
        assert_eq!(
            c.group(4, LEVEL_RACK),
            4..5,
            "the last rack of a pool is partial"
        );
        assert_eq!(c.group(6, LEVEL_POOL), 5..7);
        assert_eq!(
            c.gangs_that_fit(0, LEVEL_RACK, 12),
            2,
            "two full racks of 16 GPUs hold one 12-GPU gang each; the partial rack of 8 none"
        );
        assert_eq!(c.gangs_that_fit(1, LEVEL_DOMAIN, 16), 2 * 4);
    }

    #[test]
    fn take_and_release_keep_every_level_in_step() {
        let c = Cluster::new(vec![pool("p6e-gb200", 2, 2)]);
        let mut s = ClusterState::new(&c);
        let mut a = Allocation::new();
        s.take_from_domain(&c, 1, 6, &mut a);
        // Best fit inside the domain: one full 4-GPU node, then 2 from a fresh node.
        assert_eq!(a, [(18, 4), (19, 2)]);
        assert_eq!(s.domain_free, [72, 66]);
        assert_eq!(s.rack_free, [138]);
        let mut b = Allocation::new();
        s.take_from_domain(&c, 1, 2, &mut b);
        assert_eq!(b, [(19, 2)], "the half-used node is the tightest fit");
        assert_eq!(span(&c, &a), (1, 2));
        s.release(&c, &a);
        s.release(&c, &b);
        assert_eq!(s, ClusterState::new(&c));
    }
}
