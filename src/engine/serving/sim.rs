//! Request-level discrete-event simulation of LLM serving replicas. Pure: no I/O.
//!
//! A replica is one tensor-parallel group running one model copy (its speed comes from a [`ServiceModel`]).
//! Requests arrive, a [`Router`] sends each to a replica, and each replica runs continuous batching:
//!
//! - **Admission**: waiting requests are admitted in arrival order (first-come-first-served, no skipping, so
//!   a long request is never starved) while the batch is below `max_batch` and the request's KV cache fits.
//!   A request reserves its whole final KV footprint (prompt + output tokens) when admitted, so a running
//!   request never has to be preempted; real engines allocate page by page and preempt instead, which admits
//!   a little more at the price of recomputation.
//! - **Iterations** (vLLM's default, prefill-first schedule): when a replica is free it runs either one
//!   prefill of all requests admitted now, or, when none can be admitted, one decode step of the running batch
//!   (one token for every running request). Prefill and decode are never mixed in one iteration (no chunked
//!   prefill), so a prefill stalls decoding for its duration: this is the interference Splitwise and DistServe
//!   measure.
//! - **Prefix cache** (Mooncake's `hash_ids`, one id per 512-token prompt block): a replica keeps the blocks
//!   of finished requests until space is needed (least recently used first). A new request whose leading
//!   blocks are cached skips prefill for them and pins them instead of storing a copy.
//! - **Times**: TTFT = first token - arrival (the end of its prefill), E2E = last token - arrival,
//!   TPOT = (E2E - TTFT) / (output tokens - 1), undefined for one-token outputs.
//!
//! - **Sessions** (closed loop, [`simulate_closed_loop`]): a request may depend on an earlier one
//!   ([`After`]): it arrives `delay_us` after its parent finished (an agent's tool call, a user typing), so
//!   arrivals depend on simulated completions. A session's later call repeats the earlier context under the
//!   same leading `hash_ids`; no special router is needed to keep it together: [`Router::KvAware`] sends it
//!   to the replica that still caches that prefix (unless that replica is more than `kv_load_slack` requests
//!   busier than the least loaded), while round-robin and least-outstanding scatter it.
//!
//! Determinism: time is integer microseconds, events are ordered by (time, insertion sequence), ties in
//! routing go to the lowest replica index. Same input, same output, bit for bit.

use crate::domain::traffic::{Admission, Router, Slo};
use crate::engine::cluster::metrics::Stats;
use crate::error::{InputError, Location};
use crate::perf::inference::Chunk;
use crate::perf::inference::{PowerFractions, ServiceModel};
use crate::perf::kv_transfer::KvTransfer;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};

mod first_blocks;
use first_blocks::FirstBlocks;

/// One inference request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Arrival time, microseconds from the start of the trace.
    pub arrival_us: u64,
    /// Prompt (context) tokens.
    pub prompt_tokens: u32,
    /// Tokens to generate (0 is served as 1: the prefill always yields one token).
    pub output_tokens: u32,
    /// Hashes of the prompt's blocks (`block_tokens` each) in order; equal ids mean a shared prefix.
    pub hash_ids: Vec<u64>,
}

/// A request released only when an earlier request of its session has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct After {
    /// Index of the request it waits for (must be below its own index, so chains cannot loop).
    pub parent: usize,
    /// Time from the parent's last token to this request's arrival (tool run, user think time), microseconds.
    pub delay_us: u64,
}

/// Scale the number of replicas with load.
///
/// Up: after an arrival, when the outstanding requests exceed `target_outstanding` per replica (running or
/// starting), one more replica starts and takes traffic `scale_up_delay_us` later. Down: when a replica
/// is idle and the rest would stay at or below half the target, it stops (highest index first) and its
/// prefix cache is lost. Requests already routed stay where they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Autoscale {
    /// Replicas never go below this (at least 1).
    pub min_replicas: u32,
    /// Nor above this.
    pub max_replicas: u32,
    /// Outstanding requests per replica that trigger a scale-up.
    pub target_outstanding: u32,
    /// Time from the decision until a new replica serves (model load), microseconds.
    pub scale_up_delay_us: u64,
}

/// How the replicas are set up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimConfig {
    /// Replicas at the start (clamped into the autoscale range when there is one).
    pub replicas: u32,
    /// Routing policy.
    pub router: Router,
    /// Most requests in one replica's batch (vLLM's `max_num_seqs`).
    pub max_batch: u32,
    /// Tokens per prefix block (Mooncake: 512).
    pub block_tokens: u32,
    /// Keep finished requests' prompt blocks for reuse.
    pub prefix_caching: bool,
    /// KV-aware routing considers replicas at most this many outstanding requests above the least loaded,
    /// so a popular prefix cannot pull all traffic onto one replica.
    pub kv_load_slack: u32,
    /// Optional autoscaling.
    pub autoscale: Option<Autoscale>,
    /// Power while idle / in prefill / in decode, as fractions of board power.
    pub power: PowerFractions,
    /// KV allocation and admission rule.
    pub admission: Admission,
    /// Most prompt tokens prefilled in one iteration (vLLM's `max_num_batched_tokens`); a longer prompt
    /// is prefilled alone. With `chunk_size`, the chunk budget replaces it.
    pub max_tokens_in_batch: u32,
    /// Tokens per KV page under paged admission (vLLM's `block_size`).
    pub block_size: u32,
    /// Fraction of KV pages a new request must leave free when admitted (vLLM's watermark).
    pub watermark: f64,
    /// Sarathi-style chunked prefill: every iteration carries all decodes plus prefill chunks, at most
    /// this many tokens in all. Paged admission only.
    pub chunk_size: Option<u32>,
    /// Prefill/decode disaggregation (paged admission, no autoscaling): the first replicas only prefill,
    /// the rest only decode.
    pub disaggregation: Option<Disaggregation>,
}

/// Prefill/decode disaggregation (Splitwise, DistServe): replicas `0..prefill_replicas` run prompts only;
/// when a prompt is done its KV moves to one of the next `decode_replicas` replicas, which produce every
/// output token. A one-token output finishes on its prefill replica.
///
/// - **Routing**: arrivals go to prefill replicas by the service's router; a finished prompt goes to the
///   decode replica with the fewest outstanding requests, ties to one in the prefill replica's NVLink
///   domain, then the lowest index.
/// - **KV copy**: `transfer` gives its time, over NVLink when both replicas are in one domain
///   (`domains`), else over EFA. A prefill replica sends one copy at a time (its links are shared), in the
///   order prompts finish; its pages are freed when the copy starts (the prefix cache keeps the prompt
///   blocks as usual).
/// - **First token**: when the KV has arrived (the decode replica streams every token), so TTFT includes
///   the copy; `RequestOutcome::kv_transfer_us` is the wait for the link plus the copy.
/// - **Decode replicas** admit arrived KV first come first served into the running batch, no prefill,
///   under the same page rule as any replica; a request they preempt is recomputed on them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disaggregation {
    /// Replicas that only prefill (the first ones).
    pub prefill_replicas: u32,
    /// Replicas that only decode (the rest).
    pub decode_replicas: u32,
    /// NVLink domain of every replica, prefill replicas first.
    pub domains: Vec<u32>,
    /// The KV copy's cost.
    pub transfer: KvTransfer,
}

/// Most replicas of a disaggregated service (both pools together).
pub const MAX_DISAGGREGATED_REPLICAS: u64 = 100_000;

impl Disaggregation {
    /// `prefill` replicas of `prefill_tp` GPUs and `decode` of `decode_tp`, laid onto NVLink domains of
    /// `domain_gpus` GPUs by `placement` (a replica starts a new domain when the current one has no room
    /// for it; one larger than a domain takes whole domains and counts as in its first).
    pub fn packed(
        (prefill, prefill_tp): (u32, u32),
        (decode, decode_tp): (u32, u32),
        domain_gpus: u32,
        placement: crate::domain::traffic::PdPlacement,
        transfer: KvTransfer,
    ) -> Disaggregation {
        use crate::domain::traffic::PdPlacement;
        let dg = domain_gpus.max(1);
        let n = (prefill + decode) as usize;
        // Replica indices in packing order.
        let order: Vec<usize> = match placement {
            PdPlacement::Apart => (0..n).collect(),
            PdPlacement::Together => {
                let (p, d) = (prefill as usize, decode as usize);
                let mut o = Vec::with_capacity(n);
                for k in 0..p.max(d) {
                    if k < p {
                        o.push(k);
                    }
                    if k < d {
                        o.push(p + k);
                    }
                }
                o
            }
        };
        let mut domains = vec![0u32; n];
        let (mut domain, mut used) = (0u32, 0u32);
        for (k, &i) in order.iter().enumerate() {
            let is_decode = i >= prefill as usize;
            if placement == PdPlacement::Apart && is_decode && k == prefill as usize && used > 0 {
                domain += 1;
                used = 0;
            }
            let tp = if is_decode { decode_tp } else { prefill_tp }.max(1);
            if used > 0 && used + tp > dg {
                domain += 1;
                used = 0;
            }
            domains[i] = domain;
            if tp >= dg {
                domain += tp.div_ceil(dg);
                used = 0;
            } else {
                used += tp;
            }
        }
        Disaggregation {
            prefill_replicas: prefill,
            decode_replicas: decode,
            domains,
            transfer,
        }
    }
}

impl Default for SimConfig {
    /// One replica, round-robin, vLLM's scheduler as Vidur configures it (batches of 128, 4,096 prompt
    /// tokens per iteration, 16-token pages, 1 % watermark, no chunking), 512-token prefix blocks, caching on.
    fn default() -> Self {
        SimConfig {
            replicas: 1,
            router: Router::RoundRobin,
            max_batch: 128,
            block_tokens: 512,
            prefix_caching: true,
            kv_load_slack: 8,
            autoscale: None,
            power: PowerFractions::default(),
            admission: Admission::Paged,
            max_tokens_in_batch: 4096,
            block_size: 16,
            watermark: 0.01,
            chunk_size: None,
            disaggregation: None,
        }
    }
}

impl SimConfig {
    /// These settings with a service's scheduler (`max_batch`, admission, token budget, pages, chunks).
    pub fn with_setup(self, s: &crate::domain::traffic::ReplicaSetup) -> SimConfig {
        SimConfig {
            max_batch: s.max_batch,
            admission: s.admission,
            max_tokens_in_batch: s.max_tokens_in_batch,
            block_size: s.block_size,
            chunk_size: s.chunk_size,
            ..self
        }
    }

    /// Checks the settings; errors name the flag to change.
    pub fn validate(&self) -> Result<(), InputError> {
        let flag = |f: &str, m: &str| Err(InputError::new(f, Location::File, m));
        if self.max_batch == 0 {
            return flag("--max-batch", "must be at least 1");
        }
        if self.block_tokens == 0 {
            return flag("block_tokens", "must be at least 1");
        }
        if self.max_tokens_in_batch == 0 {
            return flag("--max-tokens-in-batch", "must be at least 1");
        }
        if self.block_size == 0 {
            return flag("--block-size", "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.watermark) {
            return flag("--watermark", "must be a fraction in [0, 1)");
        }
        if self.chunk_size == Some(0) {
            return flag("--chunk-size", "must be at least 1");
        }
        if self.chunk_size.is_some() && self.admission == Admission::Reserve {
            return flag(
                "--chunk-size",
                "chunked prefill needs paged admission (--admission paged)",
            );
        }
        if let Some(d) = &self.disaggregation {
            if d.prefill_replicas == 0 || d.decode_replicas == 0 {
                return flag(
                    "--prefill-replicas",
                    "disaggregated serving needs at least 1 prefill and 1 decode replica",
                );
            }
            if self.admission == Admission::Reserve {
                return flag(
                    "--admission",
                    "disaggregated serving needs paged admission (--admission paged)",
                );
            }
            if self.autoscale.is_some() {
                return flag(
                    "--max-replicas",
                    "disaggregated serving runs fixed pools; autoscaling is not available with it",
                );
            }
            let n = u64::from(d.prefill_replicas) + u64::from(d.decode_replicas);
            if n > MAX_DISAGGREGATED_REPLICAS {
                return flag(
                    "--decode-replicas",
                    &format!("prefill + decode replicas must be at most {MAX_DISAGGREGATED_REPLICAS}, found {n}"),
                );
            }
            if u64::from(self.replicas) != n || d.domains.len() as u64 != n {
                return flag(
                    "--replicas",
                    &format!(
                        "with disaggregation, replicas ({}) and replica domains ({}) must both equal \
                         prefill + decode replicas ({n})",
                        self.replicas,
                        d.domains.len()
                    ),
                );
            }
        }
        match self.autoscale {
            None if self.replicas == 0 => flag("--replicas", "must be at least 1"),
            Some(a) if a.min_replicas == 0 => flag("--replicas", "must be at least 1"),
            Some(a) if a.max_replicas < a.min_replicas => flag(
                "--max-replicas",
                "must be at least --replicas (autoscaling runs between the two)",
            ),
            Some(a) if a.target_outstanding == 0 => {
                flag("--target-outstanding", "must be at least 1")
            }
            _ => Ok(()),
        }
    }
}

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RequestOutcome {
    /// Replica that served it (`None`: rejected, its KV cache can never fit one replica).
    pub replica: Option<u32>,
    /// Arrival, microseconds.
    pub arrival_us: u64,
    /// First token (end of its prefill), microseconds.
    pub first_token_us: Option<u64>,
    /// Last token, microseconds.
    pub done_us: Option<u64>,
    /// Output tokens produced.
    pub output_tokens: u32,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Prompt tokens whose KV came from the prefix cache (not prefilled).
    pub cached_tokens: u32,
    /// Times it was preempted (its KV freed) and recomputed.
    pub preemptions: u32,
    /// Disaggregated serving: the replica that ran its prompt (`replica` is the one that decoded it).
    pub prefill_replica: Option<u32>,
    /// Disaggregated serving: from the end of its prompt until its KV was on the decode replica (the wait
    /// for the prefill replica's link plus the copy), microseconds.
    pub kv_transfer_us: Option<u64>,
    /// Never sent: a session call whose parent was rejected or never sent, or that would have arrived at or
    /// after the horizon. Not counted in summaries.
    pub cancelled: bool,
}

impl RequestOutcome {
    /// Time to first token, microseconds.
    pub fn ttft_us(&self) -> Option<u64> {
        self.first_token_us.map(|t| t - self.arrival_us)
    }

    /// End-to-end latency, microseconds.
    pub fn e2e_us(&self) -> Option<u64> {
        self.done_us.map(|t| t - self.arrival_us)
    }

    /// Time per output token after the first, microseconds; `None` for one-token outputs or unfinished ones.
    pub fn tpot_us(&self) -> Option<f64> {
        let (first, done) = (self.first_token_us?, self.done_us?);
        (self.output_tokens > 1).then(|| (done - first) as f64 / f64::from(self.output_tokens - 1))
    }

    /// Finished within both targets (a one-token output has no TPOT and meets that target).
    pub fn meets(&self, slo: Slo) -> bool {
        match self.ttft_us() {
            Some(ttft) if self.done_us.is_some() => {
                ttft <= slo.ttft_us && self.tpot_us().is_none_or(|t| t <= slo.tpot_us as f64)
            }
            _ => false,
        }
    }
}

/// Per-replica totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ReplicaStats {
    /// Requests it finished.
    pub requests: u64,
    /// Time spent in prefill iterations, microseconds.
    pub prefill_us: u64,
    /// Time spent in decode steps, microseconds.
    pub decode_us: u64,
    /// Time it was starting or serving (what it costs), microseconds.
    pub powered_us: u64,
    /// Prompt tokens prefilled.
    pub prefill_tokens: u64,
    /// Prompt tokens served from its prefix cache.
    pub cached_tokens: u64,
    /// Requests it preempted (paged admission).
    pub preemptions: u64,
    /// Most KV pages in use at once (paged admission).
    pub peak_pages: u64,
    /// GPUs of the replica.
    pub gpus: u32,
    /// Disaggregated serving: KV copies it sent (prefill replicas).
    pub kv_sent: u64,
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimResult {
    /// One per request, in input order.
    pub requests: Vec<RequestOutcome>,
    /// Time of the last event, microseconds.
    pub end_us: u64,
    /// One per replica slot (the autoscale maximum when autoscaling).
    pub replicas: Vec<ReplicaStats>,
    /// (time, serving replicas) at the start and at every change.
    pub active_timeline: Vec<(u64, u32)>,
    /// GPUs per replica (of a prefill replica when disaggregated; [`ReplicaStats::gpus`] has each).
    pub gpus_per_replica: u32,
    /// Energy of all powered replicas, joules.
    pub energy_j: f64,
    /// KV pages still held by requests when the run ended (0 unless requests were left unfinished).
    pub kv_pages_held_at_end: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Request (index) arrives.
    Arrival(usize),
    /// A request's KV (first index) has reached its decode replica (second).
    KvArrive(usize, usize),
    /// Replica's iteration ends (stale unless the id is the replica's current iteration).
    IterationDone(usize, u64),
    /// Replica may start an iteration (queued behind same-instant arrivals so they batch together).
    Kick(usize),
    /// A starting replica begins serving.
    Ready(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    Off,
    Starting,
    Serving,
    /// Serving what it holds, routed nothing new; off when it has finished them ([`LiveSim::drain`]).
    Draining,
}

/// The speed model of a run: borrowed for a one-shot run, owned by a [`LiveSim`].
enum Model<'a> {
    Borrowed(&'a dyn ServiceModel),
    Owned(Box<dyn ServiceModel + Send>),
}

impl<'a> std::ops::Deref for Model<'a> {
    type Target = dyn ServiceModel + 'a;
    fn deref(&self) -> &Self::Target {
        match self {
            Model::Borrowed(m) => *m,
            Model::Owned(m) => m.as_ref(),
        }
    }
}

#[derive(Debug)]
enum Iteration {
    Prefill(Vec<usize>),
    /// Paged admission: prefill chunks (request, tokens) and, when `decodes`, one decode step of every
    /// running request.
    Batch {
        chunks: Vec<(usize, u64)>,
        decodes: bool,
    },
    /// Decode steps back to back (see `start_iteration`): `steps` of them, from `start`, with `kv` KV tokens
    /// and `n` sequences at the first; `max_steps` bounded the run when it started; `us` is its length.
    Decode {
        steps: u32,
        start: u64,
        kv: u64,
        n: usize,
        max_steps: u32,
        us: u64,
    },
}

#[derive(Debug, Default)]
struct Block {
    refs: u32,
    stamp: u64,
}

/// Blocks held in one replica's KV cache: pinned by running requests, or kept for reuse (the LRU set).
#[derive(Debug)]
struct PrefixCache {
    /// By block hash (already uniform 64-bit hashes, so FxHash; nothing iterates this map in an order that
    /// could reach a result).
    blocks: rustc_hash::FxHashMap<u64, Block>,
    /// Unpinned blocks, least recently used first, as (stamp, hash), one entry for every stamp from `base`
    /// to `clock`: stamps only grow, so push order is stamp order, and the entry of stamp `s` sits at
    /// `s - base`. An entry whose block was pinned again is marked dead in place (stamp 0) and skipped
    /// when it comes up, so neither a pin nor an eviction searches for it.
    lru: VecDeque<(u64, u64)>,
    /// Stamp of `lru`'s front entry.
    base: u64,
    /// Unpinned blocks held (the live entries of `lru`).
    idle: u64,
    clock: u64,
    /// Dead entries `lru` may hold beyond as many as the live ones before it is compacted: `slack`, or
    /// `per_block` a block held when that is more (see `compact`).
    slack: u64,
    per_block: u64,
}

/// See [`PrefixCache::census`].
struct Census {
    new_blocks: u64,
    idle_hits: u64,
    hits: u64,
}

impl Default for PrefixCache {
    fn default() -> PrefixCache {
        PrefixCache::with_slack(1024, 2)
    }
}

/// The distinct values of `ids`, sorted: `ids` itself when it is already strictly increasing (as hash ids
/// usually are), else a sorted copy without repeats.
fn distinct(ids: &[u64]) -> std::borrow::Cow<'_, [u64]> {
    if ids.windows(2).all(|w| w[0] < w[1]) {
        return std::borrow::Cow::Borrowed(ids);
    }
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    std::borrow::Cow::Owned(v)
}

impl PrefixCache {
    fn with_slack(slack: u64, per_block: u64) -> PrefixCache {
        PrefixCache {
            blocks: rustc_hash::FxHashMap::default(),
            lru: VecDeque::new(),
            base: 1,
            idle: 0,
            clock: 0,
            slack,
            per_block,
        }
    }

    /// Leading blocks of `ids` present.
    fn prefix_hits(&self, ids: &[u64]) -> usize {
        ids.iter()
            .take_while(|h| self.blocks.contains_key(h))
            .count()
    }

    /// `prefix_hits(ids)` when it is more than `beat`, else `None`. A prefix longer than `beat` blocks
    /// holds block `ids[beat]`, so one lookup of that block rules most caches out before the walk.
    fn prefix_hits_over(&self, ids: &[u64], beat: usize) -> Option<usize> {
        if !ids.get(beat).is_some_and(|h| self.blocks.contains_key(h)) {
            return None;
        }
        Some(self.prefix_hits(ids)).filter(|&hits| hits > beat)
    }

    /// What admitting a request with blocks `ids` finds here: its distinct blocks not held (to be added),
    /// the held unpinned ones (no longer evictable once pinned), and its leading blocks held (the prefix
    /// hits). One lookup a block when `ids` has no repeats.
    fn census(&self, ids: &[u64]) -> Census {
        let unique = distinct(ids);
        let (mut new_blocks, mut idle_hits) = (0u64, 0u64);
        let mut first_miss = None;
        for (k, h) in unique.iter().enumerate() {
            match self.blocks.get(h) {
                None => {
                    new_blocks += 1;
                    first_miss.get_or_insert(k);
                }
                Some(b) if b.refs == 0 => idle_hits += 1,
                Some(_) => {}
            }
        }
        let hits = match unique {
            std::borrow::Cow::Borrowed(_) => first_miss.unwrap_or(ids.len()),
            std::borrow::Cow::Owned(_) => self.prefix_hits(ids),
        };
        Census {
            new_blocks,
            idle_hits,
            hits: hits as u64,
        }
    }

    /// Marks the `lru` entry of an unpinned block's `stamp` dead.
    fn bury(lru: &mut VecDeque<(u64, u64)>, base: u64, stamp: u64) {
        let entry = &mut lru[(stamp - base) as usize];
        debug_assert_eq!(entry.0, stamp);
        entry.0 = 0;
    }

    fn pin(&mut self, ids: &[u64]) {
        for &h in ids {
            let b = self.blocks.entry(h).or_default();
            if b.refs == 0 && b.stamp != 0 {
                Self::bury(&mut self.lru, self.base, b.stamp);
                self.idle -= 1;
                b.stamp = 0;
            }
            b.refs += 1;
        }
    }

    /// Releases `ids`; tail blocks get the older stamps, so eviction eats prefixes from their ends.
    fn unpin(&mut self, ids: &[u64], keep: bool) {
        for &h in ids.iter().rev() {
            let Some(b) = self.blocks.get_mut(&h) else {
                continue;
            };
            b.refs = b.refs.saturating_sub(1);
            if b.refs == 0 {
                if keep {
                    if b.stamp == 0 {
                        self.idle += 1;
                    } else {
                        // Released again while unpinned: it moves to the back.
                        Self::bury(&mut self.lru, self.base, b.stamp);
                    }
                    self.clock += 1;
                    b.stamp = self.clock;
                    self.lru.push_back((b.stamp, h));
                } else {
                    self.blocks.remove(&h);
                }
            }
        }
        if self.lru.len() as u64 > 2 * self.idle + self.slack_now() {
            self.compact();
        }
    }

    fn slack_now(&self) -> u64 {
        self.slack.max(self.per_block * self.blocks.len() as u64)
    }

    /// Drops the dead entries of `lru` and restamps the live ones in their order: one lookup each, and a
    /// compaction follows at least `idle + 2 * blocks` deaths by default (`idle <= blocks`), so at most a
    /// third of a lookup a death, while `lru` stays within a few entries a block held.
    fn compact(&mut self) {
        let blocks = &mut self.blocks;
        let mut clock = self.clock;
        self.lru.retain_mut(|(stamp, h)| {
            if *stamp == 0 {
                return false;
            }
            clock += 1;
            *stamp = clock;
            if let Some(b) = blocks.get_mut(h) {
                b.stamp = clock;
            }
            true
        });
        self.base = self.clock + 1;
        self.clock = clock;
    }

    /// Evicts least recently used unpinned blocks until `blocks` are freed (or none are left).
    fn evict(&mut self, mut blocks: u64) {
        while blocks > 0 {
            let Some((stamp, h)) = self.lru.pop_front() else {
                return;
            };
            self.base += 1;
            if stamp == 0 {
                continue; // dead
            }
            let removed = self.blocks.remove(&h);
            debug_assert!(removed.is_some_and(|b| b.refs == 0 && b.stamp == stamp));
            self.idle -= 1;
            blocks -= 1;
        }
    }

    fn clear(&mut self) {
        self.blocks.retain(|_, b| b.refs > 0);
        self.lru.clear();
        self.base = self.clock + 1;
        self.idle = 0;
    }
}

/// What a replica runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Prompts and output tokens (no disaggregation).
    Both,
    /// Prompts only; finished prompts' KV goes to a decode replica.
    Prefill,
    /// Output tokens of prompts prefilled elsewhere (and recomputations of its own preempted requests).
    Decode,
}

#[derive(Debug)]
struct Replica {
    power: Power,
    role: Role,
    /// Disaggregated prefill replica: when its link is free for the next KV copy.
    link_free_at: u64,
    powered_since: u64,
    waiting: VecDeque<usize>,
    running: Vec<usize>,
    /// Paged admission: admitted requests whose prompt is not all computed yet (admission order).
    prefilling: Vec<usize>,
    /// Paged admission: KV pages held by requests (outside the prefix cache's blocks).
    pages: u64,
    iteration: Option<Iteration>,
    /// Id of the current iteration's `IterationDone` event.
    iteration_id: u64,
    kicked: bool,
    /// Requests routed here and not finished.
    outstanding: u64,
    /// KV tokens reserved outside the block cache (outputs, and prompts without hash ids).
    own_tokens: u64,
    cache: PrefixCache,
    stats: ReplicaStats,
    /// When a starting replica serves (its `Ready` event counts only at this time).
    ready_at: u64,
}

impl Replica {
    fn new(power: Power, role: Role) -> Replica {
        Replica {
            power,
            role,
            link_free_at: 0,
            ready_at: 0,
            powered_since: 0,
            waiting: VecDeque::new(),
            running: Vec::new(),
            prefilling: Vec::new(),
            pages: 0,
            iteration: None,
            iteration_id: u64::MAX,
            kicked: false,
            outstanding: 0,
            own_tokens: 0,
            cache: PrefixCache::default(),
            stats: ReplicaStats::default(),
        }
    }
}

/// Per-request progress.
#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    generated: u32,
    /// Output tokens it will produce (at least 1).
    target: u32,
    /// Paged admission: tokens the current prefill must cover (the prompt, plus the output so far when
    /// recomputing after a preemption), and how many of them are in the KV cache (cached or computed).
    todo: u64,
    prefilled: u64,
    /// Paged admission: KV pages it holds.
    pages: u64,
    /// Disaggregated serving: its KV has arrived at a decode replica and waits to join the running batch.
    kv_ready: bool,
}

/// [`Sim::ids`] from the fields it reads, for callers that borrow another field of the `Sim` beside it.
fn cached_ids(reqs: &[Request], prefix_caching: bool, q: usize) -> &[u64] {
    if prefix_caching {
        &reqs[q].hash_ids
    } else {
        &[]
    }
}

struct Sim<'a> {
    reqs: std::borrow::Cow<'a, [Request]>,
    service: Model<'a>,
    /// Disaggregated serving: the decode replicas' model (the prefill ones use `service`).
    decode_service: Option<Model<'a>>,
    cfg: SimConfig,
    capacity: u64,
    /// KV capacity of a decode replica (disaggregated serving; else `capacity`).
    decode_capacity: u64,
    block: u64,
    replicas: Vec<Replica>,
    out: Vec<RequestOutcome>,
    progress: Vec<Progress>,
    /// Events by (time, event, push order): at one instant arrivals come first (by request index), then
    /// iteration ends (by replica), kicks, and replicas becoming ready. The order does not depend on when
    /// an event was pushed, so how decode runs are cut into events cannot change a result.
    heap: BinaryHeap<Reverse<(u64, Event, u64)>>,
    seq: u64,
    /// Iterations started so far (ids of `Event::IterationDone`).
    iterations: u64,
    rr: usize,
    timeline: Vec<(u64, u32)>,
    /// Dependencies, one per request (empty: none).
    after: std::borrow::Cow<'a, [Option<After>]>,
    /// (parent, child) pairs sorted, to find what a finished request releases.
    children: Vec<(usize, usize)>,
    /// Dependent requests arriving at or after this time are never sent.
    horizon_us: u64,
    /// Requests with a known arrival (no parent), by (arrival, index); `next` is the first not yet arrived.
    order: Vec<usize>,
    next: usize,
    /// Time of the last event applied.
    now: u64,
    /// Draining replicas that went off, with when: the cluster engine collects them ([`LiveSim`]).
    drained: Vec<(usize, u64)>,
    /// Recent (first token time, TTFT), kept only for a live run with an SLO target ([`LiveSim::ttft_p90`]).
    ttfts: Option<VecDeque<(u64, u64)>>,
    /// The router's index: replicas that take new requests (serving, not decode-only), by index, and the
    /// same by (outstanding, index). Rebuilt after a power change (rare), kept as loads change.
    routable: Vec<u32>,
    by_load: BTreeSet<(u64, u32)>,
    /// Per replica: in `routable`.
    is_routable: Vec<bool>,
    /// Kv-aware routing with prefix caching: which replicas may hold each request's first block (`None`
    /// when the workload's ids do not allow the index; the router then asks every replica).
    first_blocks: Option<FirstBlocks>,
    /// A power change since the index was built.
    routing_dirty: bool,
}

/// Simulates `requests` (any order; served by arrival, ties in input order) on replicas whose speed is
/// `service`. Errors only for invalid settings.
pub fn simulate_replicas(
    requests: &[Request],
    service: &dyn ServiceModel,
    cfg: &SimConfig,
) -> Result<SimResult, InputError> {
    simulate_closed_loop(requests, &[], u64::MAX, service, cfg)
}

/// Like [`simulate_replicas`], with sessions: `after` is empty (no dependencies) or holds one entry per
/// request. A request with `Some(After { parent, delay_us })` ignores its `arrival_us` and arrives `delay_us`
/// after `parent` finished, unless that is at or after `horizon_us`; a request whose parent never finished
/// is never sent (its outcome is `cancelled`). Requests without a parent arrive at `arrival_us` whatever
/// the horizon. Errors for invalid settings or dependencies.
pub fn simulate_closed_loop(
    requests: &[Request],
    after: &[Option<After>],
    horizon_us: u64,
    service: &dyn ServiceModel,
    cfg: &SimConfig,
) -> Result<SimResult, InputError> {
    let mut sim = Sim::new(
        std::borrow::Cow::Borrowed(requests),
        std::borrow::Cow::Borrowed(after),
        horizon_us,
        Model::Borrowed(service),
        None,
        cfg.clone(),
    )?;
    sim.run_until(u64::MAX);
    let now = sim.now;
    Ok(sim.finish(now))
}

/// Like [`simulate_closed_loop`], disaggregated ([`Disaggregation`], required in `cfg`): prefill replicas
/// run on `prefill`, decode replicas on `decode`.
pub fn simulate_disaggregated(
    requests: &[Request],
    after: &[Option<After>],
    horizon_us: u64,
    prefill: &dyn ServiceModel,
    decode: &dyn ServiceModel,
    cfg: &SimConfig,
) -> Result<SimResult, InputError> {
    if cfg.disaggregation.is_none() {
        return Err(InputError::new(
            "--prefill-replicas",
            Location::File,
            "a disaggregated run needs prefill and decode replicas",
        ));
    }
    let mut sim = Sim::new(
        std::borrow::Cow::Borrowed(requests),
        std::borrow::Cow::Borrowed(after),
        horizon_us,
        Model::Borrowed(prefill),
        Some(Model::Borrowed(decode)),
        cfg.clone(),
    )?;
    sim.run_until(u64::MAX);
    let now = sim.now;
    Ok(sim.finish(now))
}

impl<'a> Sim<'a> {
    fn new(
        requests: std::borrow::Cow<'a, [Request]>,
        after: std::borrow::Cow<'a, [Option<After>]>,
        horizon_us: u64,
        service: Model<'a>,
        decode_service: Option<Model<'a>>,
        cfg: SimConfig,
    ) -> Result<Sim<'a>, InputError> {
        cfg.validate()?;
        if cfg.disaggregation.is_some() != decode_service.is_some() {
            return Err(InputError::new(
                "--decode-replicas",
                Location::File,
                "disaggregated serving needs a decode model, and only it has one",
            ));
        }
        if !after.is_empty() && after.len() != requests.len() {
            return Err(InputError::new(
                "after",
                Location::File,
                format!(
                    "expected one entry per request ({}) or none, found {}",
                    requests.len(),
                    after.len()
                ),
            ));
        }
        let mut children = Vec::new();
        for (q, a) in after.iter().enumerate() {
            if let Some(a) = a {
                if a.parent >= q {
                    return Err(InputError::field(
                        "after",
                        format!("after[{q}].parent"),
                        format!(
                            "must name an earlier request (below {q}), found {}",
                            a.parent
                        ),
                    ));
                }
                children.push((a.parent, q));
            }
        }
        // Already sorted by child; sort by parent so a finished request finds its children by binary search.
        children.sort_unstable();
        let (slots, initial) = match cfg.autoscale {
            Some(a) => (
                a.max_replicas,
                cfg.replicas.clamp(a.min_replicas, a.max_replicas),
            ),
            None => (cfg.replicas, cfg.replicas),
        };
        let prefill = cfg.disaggregation.as_ref().map(|d| d.prefill_replicas);
        let decode_model = decode_service.as_deref().unwrap_or(&*service);
        let replicas = (0..slots)
            .map(|i| {
                let power = if i < initial {
                    Power::Serving
                } else {
                    Power::Off
                };
                let (role, gpus) = match prefill {
                    None => (Role::Both, service.gpus()),
                    Some(p) if i < p => (Role::Prefill, service.gpus()),
                    Some(_) => (Role::Decode, decode_model.gpus()),
                };
                let mut r = Replica::new(power, role);
                r.stats.gpus = gpus;
                r
            })
            .collect();
        let decode_capacity = decode_model.kv_capacity_tokens();
        let out: Vec<RequestOutcome> = requests
            .iter()
            .enumerate()
            .map(|(q, r)| RequestOutcome {
                arrival_us: r.arrival_us,
                prompt_tokens: r.prompt_tokens,
                // Cleared when the parent releases it.
                cancelled: after.get(q).is_some_and(Option::is_some),
                ..RequestOutcome::default()
            })
            .collect();
        let mut order: Vec<usize> = (0..requests.len()).filter(|&q| !out[q].cancelled).collect();
        order.sort_by_key(|&i| (requests[i].arrival_us, i));
        let first_blocks = (cfg.router == Router::KvAware && cfg.prefix_caching)
            .then(|| FirstBlocks::build(requests.iter().map(|r| r.hash_ids.as_slice())))
            .flatten();
        Ok(Sim {
            capacity: service.kv_capacity_tokens(),
            decode_capacity,
            decode_service,
            block: u64::from(cfg.block_tokens),
            progress: requests
                .iter()
                .map(|r| Progress {
                    target: r.output_tokens.max(1),
                    ..Progress::default()
                })
                .collect(),
            reqs: requests,
            service,
            cfg,
            replicas,
            out,
            heap: BinaryHeap::new(),
            seq: 0,
            iterations: 0,
            rr: 0,
            timeline: vec![(0, initial)],
            after,
            children,
            horizon_us,
            order,
            next: 0,
            now: 0,
            drained: Vec::new(),
            ttfts: None,
            routable: Vec::new(),
            by_load: BTreeSet::new(),
            is_routable: Vec::new(),
            first_blocks,
            routing_dirty: true,
        })
    }

    /// Applies every event at or before `limit`, in order. Known arrivals come from the sorted `order`
    /// list, not the heap (which holds only what the run creates): the next event is the smaller
    /// (time, event) of the two, the heap's order exactly.
    fn run_until(&mut self, limit: u64) {
        loop {
            let listed = self
                .order
                .get(self.next)
                .map(|&q| (self.reqs[q].arrival_us, Event::Arrival(q)));
            let queued = self.heap.peek().map(|Reverse((t, ev, _))| (*t, *ev));
            let (t, ev) = match (listed, queued) {
                (Some(l), Some(h)) if l < h => l,
                (Some(l), None) => l,
                (_, Some(h)) => h,
                (None, None) => return,
            };
            if t > limit {
                return;
            }
            if matches!(listed, Some(l) if l == (t, ev)) {
                self.next += 1;
            } else {
                self.heap.pop();
            }
            self.now = t;
            match ev {
                Event::Arrival(q) => self.arrive(q, t),
                Event::KvArrive(q, r) => self.kv_arrive(q, r, t),
                Event::IterationDone(r, id) => {
                    if self.replicas[r].iteration_id == id {
                        self.iteration_done(r, t)
                    }
                }
                Event::Kick(r) => {
                    self.replicas[r].kicked = false;
                    self.start_iteration(r, t);
                }
                Event::Ready(r) => {
                    let rep = &mut self.replicas[r];
                    if rep.power != Power::Starting || rep.ready_at != t {
                        continue; // cancelled (or restarted later) since
                    }
                    rep.power = Power::Serving;
                    self.routing_dirty = true;
                    self.record_active(t);
                    if !self.replicas[r].waiting.is_empty() && !self.replicas[r].kicked {
                        self.replicas[r].kicked = true;
                        self.push(t, Event::Kick(r));
                    }
                    self.maybe_scale_down(t);
                }
            }
        }
    }

    /// The speed model of replica `r`.
    fn model(&self, r: usize) -> &dyn ServiceModel {
        match (&self.decode_service, self.replicas[r].role) {
            (Some(m), Role::Decode) => &**m,
            _ => &*self.service,
        }
    }

    /// KV capacity of replica `r`, tokens.
    fn capacity(&self, r: usize) -> u64 {
        match self.replicas[r].role {
            Role::Decode => self.decode_capacity,
            _ => self.capacity,
        }
    }

    fn push(&mut self, t: u64, ev: Event) {
        self.heap.push(Reverse((t, ev, self.seq)));
        self.seq += 1;
    }

    /// Hash ids the cache works with (none when caching is off: the prompt is then private KV).
    fn ids(&self, q: usize) -> &[u64] {
        cached_ids(&self.reqs, self.cfg.prefix_caching, q)
    }

    /// KV tokens a request holds outside shared blocks: its output, plus any prompt not covered by blocks.
    fn own_tokens(&self, q: usize) -> u64 {
        let r = &self.reqs[q];
        let in_blocks = self.ids(q).len() as u64 * self.block;
        u64::from(self.progress[q].target) + u64::from(r.prompt_tokens).saturating_sub(in_blocks)
    }

    fn record_active(&mut self, t: u64) {
        let n = self
            .replicas
            .iter()
            .filter(|r| r.power == Power::Serving)
            .count() as u32;
        self.timeline.push((t, n));
    }

    fn arrive(&mut self, q: usize, t: u64) {
        let unique = distinct(self.ids(q));
        if self.own_tokens(q) + unique.len() as u64 * self.block
            > self.capacity.min(self.decode_capacity)
        {
            return; // can never fit one replica's KV cache: rejected (replica stays None)
        }
        let r = self.route(q);
        self.out[q].replica = Some(r as u32);
        self.cut_decode_run(r, t);
        self.add_outstanding(r, 1);
        let rep = &mut self.replicas[r];
        rep.waiting.push_back(q);
        if rep.iteration.is_none() && !rep.kicked {
            rep.kicked = true;
            self.push(t, Event::Kick(r));
        }
        self.maybe_scale_up(t);
    }

    /// Changes replica `r`'s outstanding requests by `delta`, keeping the router's index.
    fn add_outstanding(&mut self, r: usize, delta: i64) {
        let old = self.replicas[r].outstanding;
        let new = old.checked_add_signed(delta).unwrap_or(0);
        self.replicas[r].outstanding = new;
        if !self.routing_dirty && self.by_load.remove(&(old, r as u32)) {
            self.by_load.insert((new, r as u32));
        }
    }

    /// Rebuilds the router's index if a power change made it stale. The replicas a request may go to:
    /// the serving ones that take prompts (not decode-only); when none serves (a live service between its
    /// replicas may have only starting ones), those not off, where the request waits; else replica 0.
    fn refresh_routing(&mut self) {
        if !self.routing_dirty {
            return;
        }
        let n = self.replicas.len();
        let serving = |x: &Replica| x.power == Power::Serving && x.role != Role::Decode;
        self.routable = (0..n as u32)
            .filter(|&r| serving(&self.replicas[r as usize]))
            .collect();
        if self.routable.is_empty() {
            self.routable = (0..n as u32)
                .filter(|&r| self.replicas[r as usize].power != Power::Off)
                .collect();
        }
        if self.routable.is_empty() {
            self.routable.push(0);
        }
        self.is_routable.clear();
        self.is_routable.resize(n, false);
        for &r in &self.routable {
            if let Some(x) = self.is_routable.get_mut(r as usize) {
                *x = true;
            }
        }
        self.by_load = self
            .routable
            .iter()
            .map(|&r| {
                (
                    self.replicas.get(r as usize).map_or(0, |x| x.outstanding),
                    r,
                )
            })
            .collect();
        self.routing_dirty = false;
    }

    /// The replica a new request goes to. Round robin cycles over the routable replicas in index order;
    /// least-outstanding takes the fewest outstanding requests (ties: lowest index); kv-aware, among the
    /// replicas within `kv_load_slack` of the least loaded, the longest cached prefix (ties: fewer
    /// outstanding, then lowest index). Each reads the index, so a request costs O(log replicas), plus the
    /// prefix lookups of the replicas within the slack under kv-aware.
    fn route(&mut self, q: usize) -> usize {
        self.refresh_routing();
        debug_assert!(self.by_load.iter().map(|&(_, r)| r).eq({
            let mut v = self.routable.clone();
            v.sort_by_key(|&r| {
                (
                    self.replicas.get(r as usize).map_or(0, |x| x.outstanding),
                    r,
                )
            });
            v
        }));
        match self.cfg.router {
            Router::RoundRobin => {
                let r = self.routable[self.rr % self.routable.len()] as usize;
                self.rr += 1;
                r
            }
            Router::LeastOutstanding => self.by_load.first().map_or(0, |&(_, r)| r as usize),
            Router::KvAware => {
                let (least, first) = self.by_load.first().map_or((0, 0), |&(l, r)| (l, r));
                let limit = least + u64::from(self.cfg.kv_load_slack);
                if let Some(fb) = self.first_blocks.as_mut() {
                    // Only a replica holding the first block has a cached prefix (>= 1 block): ask those
                    // within the slack for the longest (ties: fewer outstanding, then lowest index), and
                    // when none has one, the least loaded takes it, as the walk below decides.
                    let ids: &[u64] = &self.reqs[q].hash_ids;
                    let replicas = &self.replicas;
                    let (one, others) = fb.holders(q, |r| {
                        replicas[r as usize].cache.blocks.contains_key(&ids[0])
                    });
                    let mut best: Option<(Reverse<usize>, u64, u32)> = None;
                    for r in one.into_iter().chain(others.iter().copied()) {
                        let rep = &replicas[r as usize];
                        if !self.is_routable[r as usize] || rep.outstanding > limit {
                            continue;
                        }
                        let cand = (Reverse(rep.cache.prefix_hits(ids)), rep.outstanding, r);
                        if best.is_none_or(|b| cand < b) {
                            best = Some(cand);
                        }
                    }
                    return best.map_or(first, |(_, _, r)| r) as usize;
                }
                let ids = self.ids(q);
                // In (load, index) order, so the first replica with the most hits wins the ties.
                let mut best: Option<(usize, u32)> = None;
                for &(load, r) in &self.by_load {
                    if load > limit {
                        break;
                    }
                    let cache = &self.replicas[r as usize].cache;
                    let hits = match best {
                        None => Some(cache.prefix_hits(ids)),
                        Some((h, _)) => cache.prefix_hits_over(ids, h),
                    };
                    if let Some(hits) = hits {
                        best = Some((hits, r));
                        if hits == ids.len() {
                            break; // nothing beats a whole-prefix hit at the lowest load
                        }
                    }
                }
                best.map_or(0, |(_, r)| r as usize)
            }
        }
    }

    /// Admits `q` on replica `r` if its KV fits (evicting cached blocks if needed); returns cached tokens.
    fn try_admit(&mut self, r: usize, q: usize) -> Option<u64> {
        let own = self.own_tokens(q);
        let block = self.block;
        let prompt = u64::from(self.reqs[q].prompt_tokens);
        let rep = &self.replicas[r];
        let Census {
            new_blocks,
            idle_hits,
            hits,
        } = rep.cache.census(self.ids(q));
        let used = rep.own_tokens + rep.cache.blocks.len() as u64 * block;
        let free = self.capacity.saturating_sub(used);
        let need = own + new_blocks * block;
        let evictable = (rep.cache.idle - idle_hits) * block;
        if need > free + evictable {
            return None;
        }
        self.pin_blocks(r, q, need, free);
        self.replicas[r].own_tokens += own;
        Some((hits * block).min(prompt))
    }

    /// Admission of `q` on replica `r`, once it fits: pins its blocks (and files `r` as a holder of its
    /// first block for the router), then, when the `need` tokens are more than the `free` ones, evicts
    /// idle blocks to cover the rest (never the ones just pinned).
    fn pin_blocks(&mut self, r: usize, q: usize, need: u64, free: u64) {
        // Borrowed from `self.reqs` beside `self.replicas` (`Sim::ids` would borrow all of `self`).
        let ids = cached_ids(&self.reqs, self.cfg.prefix_caching, q);
        let cache = &mut self.replicas[r].cache;
        cache.pin(ids);
        if let Some(fb) = self.first_blocks.as_mut() {
            fb.pinned(q, r);
        }
        if need > free {
            cache.evict((need - free).div_ceil(self.block));
        }
    }

    fn start_iteration(&mut self, r: usize, t: u64) {
        if self.replicas[r].iteration.is_some()
            || matches!(self.replicas[r].power, Power::Starting | Power::Off)
        {
            return;
        }
        if self.cfg.admission == Admission::Paged {
            return self.start_paged(r, t);
        }
        let max_batch = self.cfg.max_batch as usize;
        let mut batch = Vec::new();
        let mut new_tokens = 0u64;
        while let Some(&q) = self.replicas[r].waiting.front() {
            if self.replicas[r].running.len() + batch.len() >= max_batch {
                break;
            }
            let Some(cached) = self.try_admit(r, q) else {
                break; // first-come-first-served: nobody overtakes a request that does not fit yet
            };
            self.replicas[r].waiting.pop_front();
            // The last prompt token is always computed: it yields the first output token.
            let prompt = u64::from(self.reqs[q].prompt_tokens);
            let cached = cached.min(prompt.saturating_sub(1));
            self.out[q].cached_tokens = cached as u32;
            new_tokens += prompt - cached;
            batch.push(q);
        }
        let rep = &mut self.replicas[r];
        let dur = if !batch.is_empty() {
            let chunks: Vec<Chunk> = batch
                .iter()
                .map(|&q| {
                    let cached = u64::from(self.out[q].cached_tokens);
                    Chunk {
                        new: u64::from(self.reqs[q].prompt_tokens) - cached,
                        ctx: cached,
                        last: true,
                    }
                })
                .collect();
            let d = self.service.iteration_us(&chunks, 0, 0);
            rep.stats.prefill_us += d;
            rep.stats.prefill_tokens += new_tokens;
            rep.stats.cached_tokens += batch
                .iter()
                .map(|&q| u64::from(self.out[q].cached_tokens))
                .sum::<u64>();
            rep.iteration = Some(Iteration::Prefill(batch));
            d
        } else if !rep.running.is_empty() {
            return self.start_decode_run(r, t);
        } else {
            return;
        };
        self.iterations += 1;
        let id = self.iterations;
        self.replicas[r].iteration_id = id;
        self.push(t + dur, Event::IterationDone(r, id));
    }

    /// Starts decode steps back to back on replica `r` (see below); under paged admission the run is also
    /// bounded by the free KV pages, preempting the newest requests when not even one step fits.
    fn start_decode_run(&mut self, r: usize, t: u64) {
        let rep = &self.replicas[r];
        if rep.running.is_empty() {
            return;
        }
        {
            let kv: u64 = rep
                .running
                .iter()
                .map(|&q| {
                    u64::from(self.reqs[q].prompt_tokens) + u64::from(self.progress[q].generated)
                })
                .sum();
            // Decode steps run back to back as one event while nothing can change this replica's batch:
            // until the first request finishes; a request routed here meanwhile cuts the run at the first
            // step boundary at or after its arrival (`cut_decode_run`), where it is admitted. Each step's
            // time is still computed alone, so timings equal the step-by-step ones. Autoscaling looks at
            // every iteration end, so it keeps single steps.
            let n = rep.running.len();
            let until_done = rep
                .running
                .iter()
                .map(|&q| {
                    self.progress[q]
                        .target
                        .saturating_sub(self.progress[q].generated)
                })
                .min()
                .unwrap_or(1)
                .max(1);
            let mut max_steps = if self.cfg.autoscale.is_some() {
                1
            } else {
                until_done
            };
            if self.cfg.admission == Admission::Paged {
                max_steps = self.fit_decode(r, max_steps);
                if max_steps == 0 {
                    return; // everything was preempted (cannot happen: one request alone always fits)
                }
            }
            // Preemption may have shrunk the batch.
            let rep = &self.replicas[r];
            let (kv, n) = if self.cfg.admission == Admission::Paged {
                (self.context(&rep.running), rep.running.len())
            } else {
                (kv, n)
            };
            // Without `until` the run has exactly `max_steps` steps: the pages `fit_decode` took are all used.
            let (d, steps) = self.model(r).decode_run_us(kv, n, max_steps, None);
            let rep = &mut self.replicas[r];
            rep.stats.decode_us += d;
            rep.iteration = Some(Iteration::Decode {
                steps,
                start: t,
                kv,
                n,
                max_steps,
                us: d,
            });
            self.iterations += 1;
            let id = self.iterations;
            self.replicas[r].iteration_id = id;
            self.push(t + d, Event::IterationDone(r, id));
        }
    }

    /// KV context (prompt + output so far) of `qs`, tokens.
    fn context(&self, qs: &[usize]) -> u64 {
        qs.iter()
            .map(|&q| u64::from(self.reqs[q].prompt_tokens) + u64::from(self.progress[q].generated))
            .sum()
    }

    /// KV tokens of `q` outside the shared prefix blocks once it has `generated` output tokens (the slot
    /// of the token a decode step processes included).
    fn own_kv(&self, q: usize, generated: u32) -> u64 {
        let in_blocks = self.ids(q).len() as u64 * self.block;
        u64::from(self.reqs[q].prompt_tokens).saturating_sub(in_blocks) + u64::from(generated)
    }

    /// Pages `q` needs to hold when it has `generated` output tokens.
    fn need_pages(&self, q: usize, generated: u32) -> u64 {
        self.own_kv(q, generated)
            .div_ceil(u64::from(self.cfg.block_size))
    }

    /// Tokens of replica `r`'s KV cache free now, and how many more evicting idle prefix blocks frees.
    fn free_tokens(&self, r: usize) -> (u64, u64) {
        let rep = &self.replicas[r];
        let used =
            rep.pages * u64::from(self.cfg.block_size) + rep.cache.blocks.len() as u64 * self.block;
        (
            self.capacity(r).saturating_sub(used),
            rep.cache.idle * self.block,
        )
    }

    /// Sets `q`'s pages to `pages` (growing evicts idle prefix blocks as needed; the caller checked room).
    fn set_pages(&mut self, r: usize, q: usize, pages: u64) {
        let held = self.progress[q].pages;
        if pages > held {
            let (free, _) = self.free_tokens(r);
            let need = (pages - held) * u64::from(self.cfg.block_size);
            if need > free {
                self.replicas[r]
                    .cache
                    .evict((need - free).div_ceil(self.block));
            }
        }
        let rep = &mut self.replicas[r];
        rep.pages = rep.pages + pages - held;
        rep.stats.peak_pages = rep.stats.peak_pages.max(rep.pages);
        self.progress[q].pages = pages;
    }

    /// Largest number of decode steps (at most `max_steps`) whose pages fit replica `r`, allocating them;
    /// while not even one fits, the newest request is preempted. Returns 0 only if nothing is left running.
    fn fit_decode(&mut self, r: usize, max_steps: u32) -> u32 {
        let page = u64::from(self.cfg.block_size);
        loop {
            let running = self.replicas[r].running.clone();
            if running.is_empty() {
                return 0;
            }
            let (free, evictable) = self.free_tokens(r);
            let avail = (free + evictable) / page;
            let extra = |k: u32| -> u64 {
                running
                    .iter()
                    .map(|&q| {
                        let g = self.progress[q].generated + k - 1;
                        self.need_pages(q, g).saturating_sub(self.progress[q].pages)
                    })
                    .sum()
            };
            if extra(1) <= avail {
                // Largest k in [1, max_steps] with extra(k) <= avail (extra grows with k).
                let (mut lo, mut hi) = (1u32, max_steps.max(1));
                while lo < hi {
                    let mid = lo + (hi - lo).div_ceil(2);
                    if extra(mid) <= avail {
                        lo = mid;
                    } else {
                        hi = mid - 1;
                    }
                }
                for &q in &running {
                    let want = self.need_pages(q, self.progress[q].generated + lo - 1);
                    if want > self.progress[q].pages {
                        self.set_pages(r, q, want);
                    }
                }
                return lo;
            }
            self.preempt_newest(r);
        }
    }

    /// After a decode run of `steps` was cut short, frees the pages of the steps not run.
    fn trim_pages(&mut self, r: usize, steps: u32) {
        let running = self.replicas[r].running.clone();
        for q in running {
            let want = self
                .need_pages(q, self.progress[q].generated + steps.max(1) - 1)
                .max(self.need_pages(q, self.progress[q].generated));
            if want < self.progress[q].pages {
                self.set_pages(r, q, want);
            }
        }
    }

    /// Preempts the newest (latest arrival, then highest index) admitted request of replica `r`: its pages
    /// and prefix pins are released and it waits at the front of the queue to be recomputed.
    fn preempt_newest(&mut self, r: usize) {
        let rep = &self.replicas[r];
        let Some(&q) = rep
            .running
            .iter()
            .chain(rep.prefilling.iter())
            .max_by_key(|&&q| (self.out[q].arrival_us, q))
        else {
            return;
        };
        self.set_pages(r, q, 0);
        let keep = self.cfg.prefix_caching;
        // The request's ids, borrowed beside `self.replicas` (`Sim::ids` would borrow all of `self`).
        let ids: &[u64] = if self.cfg.prefix_caching {
            &self.reqs[q].hash_ids
        } else {
            &[]
        };
        let rep = &mut self.replicas[r];
        rep.cache.unpin(ids, keep);
        rep.running.retain(|&x| x != q);
        rep.prefilling.retain(|&x| x != q);
        rep.waiting.push_front(q);
        rep.stats.preemptions += 1;
        self.out[q].preemptions += 1;
        self.progress[q].prefilled = 0;
        self.progress[q].todo = 0;
    }

    /// Paged admission: admits `q` on replica `r` if its prompt's pages (and new prefix blocks) fit while
    /// leaving the watermark free; returns the prompt tokens found in the prefix cache.
    fn try_admit_paged(&mut self, r: usize, q: usize) -> Option<u64> {
        let page = u64::from(self.cfg.block_size);
        let Census {
            new_blocks,
            idle_hits,
            hits,
        } = self.replicas[r].cache.census(self.ids(q));
        let pages = self.need_pages(q, self.progress[q].generated);
        let (free, evictable) = self.free_tokens(r);
        let avail = free + evictable.saturating_sub(idle_hits * self.block);
        let need = pages * page + new_blocks * self.block;
        let watermark = ((self.capacity(r) / page) as f64 * self.cfg.watermark) as u64 * page;
        if need + watermark > avail {
            return None;
        }
        self.pin_blocks(r, q, need, free);
        self.set_pages(r, q, pages);
        Some(hits * self.block)
    }

    /// One iteration under paged admission (vLLM's scheduler). Without chunking: a prefill of the waiting
    /// requests admitted now (first come first served, up to `max_batch` admitted requests and
    /// `max_tokens_in_batch` new tokens), else decode steps of the running batch. With `chunk_size`: every
    /// iteration carries one decode step of every running request plus prefill chunks (unfinished prompts
    /// first, then new admissions) up to `chunk_size` tokens in all.
    fn start_paged(&mut self, r: usize, t: u64) {
        if self.replicas[r].role == Role::Decode {
            self.admit_arrived_kv(r);
        }
        let chunked = self.cfg.chunk_size.map(u64::from);
        let budget = chunked.unwrap_or(u64::from(self.cfg.max_tokens_in_batch));
        let mut decodes = false;
        let mut used = 0u64;
        let mut chunks: Vec<(usize, u64)> = Vec::new();
        let preempted = self.replicas[r].stats.preemptions;
        if chunked.is_some() {
            if !self.replicas[r].running.is_empty() && self.fit_decode(r, 1) > 0 {
                decodes = true;
                used = self.replicas[r].running.len() as u64;
            }
            if self.replicas[r].stats.preemptions > preempted {
                used = budget; // as vLLM: no new prefills in an iteration that had to preempt
            }
            for q in self.replicas[r].prefilling.clone() {
                if used >= budget {
                    break;
                }
                let left = self.progress[q].todo - self.progress[q].prefilled;
                let take = left.min(budget - used);
                chunks.push((q, take));
                used += take;
            }
        }
        let max_batch = self.cfg.max_batch as usize;
        while let Some(&q) = self.replicas[r].waiting.front() {
            let rep = &self.replicas[r];
            if rep.running.len() + rep.prefilling.len() >= max_batch
                || used >= budget
                || self.progress[q].kv_ready
            {
                break; // (arrived KV that does not fit yet waits; nobody overtakes it)
            }
            // Tokens to compute: the prompt, plus the output so far when recomputing after a preemption;
            // the last one always (it yields the next token).
            let todo =
                u64::from(self.reqs[q].prompt_tokens) + u64::from(self.progress[q].generated);
            let hits = rep.cache.prefix_hits(self.ids(q)) as u64 * self.block;
            let cached = hits
                .min(u64::from(self.reqs[q].prompt_tokens))
                .min(todo.saturating_sub(1));
            let new = todo - cached;
            if chunked.is_none() && !chunks.is_empty() && used + new > budget {
                break; // the token budget is full (a longer prompt runs alone)
            }
            if self.try_admit_paged(r, q).is_none() {
                break; // first come first served: nobody overtakes a request that does not fit yet
            }
            let rep = &mut self.replicas[r];
            rep.waiting.pop_front();
            rep.prefilling.push(q);
            rep.stats.cached_tokens += cached;
            if self.progress[q].generated == 0 {
                self.out[q].cached_tokens = cached as u32;
            }
            self.progress[q].todo = todo;
            self.progress[q].prefilled = cached;
            let take = if chunked.is_some() {
                new.min(budget - used)
            } else {
                new
            };
            chunks.push((q, take));
            used += take;
        }
        if chunks.is_empty() {
            // Nothing to prefill: decode steps back to back (in chunked mode the first step's pages are
            // already held).
            return self.start_decode_run(r, t);
        }
        let shape: Vec<Chunk> = chunks
            .iter()
            .map(|&(q, n)| Chunk {
                new: n,
                ctx: self.progress[q].prefilled,
                last: self.progress[q].prefilled + n >= self.progress[q].todo,
            })
            .collect();
        let (n, kv) = if decodes {
            let running = &self.replicas[r].running;
            (running.len() as u64, self.context(running))
        } else {
            (0, 0)
        };
        let d = self.model(r).iteration_us(&shape, n, kv);
        let rep = &mut self.replicas[r];
        rep.stats.prefill_us += d;
        rep.stats.prefill_tokens += shape.iter().map(|c| c.new).sum::<u64>();
        rep.iteration = Some(Iteration::Batch { chunks, decodes });
        self.iterations += 1;
        let id = self.iterations;
        self.replicas[r].iteration_id = id;
        self.push(t + d, Event::IterationDone(r, id));
    }

    /// A request routed to replica `r` at `t` joins at the first decode step boundary at or after `t`: a
    /// decode run in progress is cut there (the same steps, so the same times, as if runs had stopped at
    /// every arrival of the service).
    fn cut_decode_run(&mut self, r: usize, t: u64) {
        let Some(Iteration::Decode {
            steps,
            start,
            kv,
            n,
            max_steps,
            us,
        }) = self.replicas[r].iteration
        else {
            return;
        };
        if start + us <= t {
            return; // ends at or before t anyway
        }
        let (d, s) = self
            .model(r)
            .decode_run_us(kv, n, max_steps, Some(t.saturating_sub(start)));
        if s >= steps {
            return;
        }
        if self.cfg.admission == Admission::Paged {
            self.trim_pages(r, s);
        }
        let rep = &mut self.replicas[r];
        rep.stats.decode_us -= us - d;
        rep.iteration = Some(Iteration::Decode {
            steps: s,
            start,
            kv,
            n,
            max_steps,
            us: d,
        });
        self.iterations += 1;
        let id = self.iterations;
        rep.iteration_id = id;
        self.push(start + d, Event::IterationDone(r, id));
    }

    fn iteration_done(&mut self, r: usize, t: u64) {
        match self.replicas[r].iteration.take() {
            Some(Iteration::Prefill(batch)) => {
                for q in batch {
                    self.progress[q].generated = 1;
                    self.prefilled(r, q, t);
                }
            }
            Some(Iteration::Batch { chunks, decodes }) => {
                if decodes {
                    self.decoded(r, 1, t);
                }
                for (q, n) in chunks {
                    let p = &mut self.progress[q];
                    p.prefilled += n;
                    if p.prefilled < p.todo {
                        continue; // more chunks to come
                    }
                    p.generated += 1;
                    self.replicas[r].prefilling.retain(|&x| x != q);
                    self.prefilled(r, q, t);
                }
            }
            Some(Iteration::Decode { steps, .. }) => self.decoded(r, steps, t),
            None => {}
        }
        self.start_iteration(r, t);
        self.turn_off_if_drained(r, t);
        self.maybe_scale_down(t);
    }

    /// `q`'s prompt is in the KV cache and its next token out (at `t`): its first token unless it was
    /// recomputed after a preemption; it finishes or joins the running batch.
    fn prefilled(&mut self, r: usize, q: usize, t: u64) {
        if self.replicas[r].role == Role::Prefill {
            self.out[q].prefill_replica = Some(r as u32);
            if self.progress[q].generated < self.progress[q].target {
                return self.hand_off(r, q, t);
            }
        }
        if self.out[q].first_token_us.is_none() {
            self.first_token(q, t);
        }
        if self.progress[q].generated >= self.progress[q].target {
            self.complete(r, q, t);
        } else {
            self.replicas[r].running.push(q);
        }
    }

    /// `q`'s first token is out at `t`: recorded, and seen by the TTFT window (autoscaling) if any.
    fn first_token(&mut self, q: usize, t: u64) {
        self.out[q].first_token_us = Some(t);
        if let Some(ttfts) = &mut self.ttfts {
            ttfts.push_back((t, t - self.out[q].arrival_us));
        }
    }

    /// Disaggregated serving: `q`'s prompt is done on prefill replica `r` at `t`; its KV is copied to the
    /// least loaded decode replica (ties: one in `r`'s NVLink domain, then the lowest index) when `r`'s link
    /// is free, and `r` lets go of it now.
    fn hand_off(&mut self, r: usize, q: usize, t: u64) {
        let Some(dis) = &self.cfg.disaggregation else {
            return;
        };
        let home = dis.domains[r];
        let first = dis.prefill_replicas as usize;
        let d = (first..self.replicas.len())
            .min_by_key(|&i| (self.replicas[i].outstanding, dis.domains[i] != home, i))
            .unwrap_or(first);
        // The prompt (and any output recomputed after a preemption); the newest token's KV is not made yet.
        let tokens = self.context(&[q]) - 1;
        let start = t.max(self.replicas[r].link_free_at);
        let arrive = start + dis.transfer.us(tokens, dis.domains[d] == home);
        self.set_pages(r, q, 0);
        let keep = self.cfg.prefix_caching;
        // The request's ids, borrowed beside `self.replicas` (`Sim::ids` would borrow all of `self`).
        let ids: &[u64] = if self.cfg.prefix_caching {
            &self.reqs[q].hash_ids
        } else {
            &[]
        };
        let rep = &mut self.replicas[r];
        rep.cache.unpin(ids, keep);
        rep.link_free_at = arrive;
        rep.stats.kv_sent += 1;
        self.add_outstanding(r, -1);
        self.add_outstanding(d, 1);
        let out = &mut self.out[q];
        out.replica = Some(d as u32);
        out.kv_transfer_us = Some(arrive - t);
        self.push(arrive, Event::KvArrive(q, d));
    }

    /// `q`'s KV reached decode replica `r` at `t`: its first token is out, and it waits to join the batch
    /// (at the first decode step boundary at or after `t`).
    fn kv_arrive(&mut self, q: usize, r: usize, t: u64) {
        self.first_token(q, t);
        self.progress[q].kv_ready = true;
        self.cut_decode_run(r, t);
        let rep = &mut self.replicas[r];
        rep.waiting.push_back(q);
        if rep.iteration.is_none() && !rep.kicked {
            rep.kicked = true;
            self.push(t, Event::Kick(r));
        }
    }

    /// Decode replica `r` admits arrived KV at the head of its queue (first come first served) straight
    /// into the running batch while the batch cap and the pages allow.
    fn admit_arrived_kv(&mut self, r: usize) {
        while let Some(&q) = self.replicas[r].waiting.front() {
            let rep = &self.replicas[r];
            if !self.progress[q].kv_ready
                || rep.running.len() + rep.prefilling.len() >= self.cfg.max_batch as usize
                || self.try_admit_paged(r, q).is_none()
            {
                return;
            }
            self.progress[q].kv_ready = false;
            let rep = &mut self.replicas[r];
            rep.waiting.pop_front();
            rep.running.push(q);
        }
    }

    /// Every running request of replica `r` produced `steps` more tokens by `t`; the finished ones complete.
    fn decoded(&mut self, r: usize, steps: u32, t: u64) {
        let running = std::mem::take(&mut self.replicas[r].running);
        let mut still = Vec::with_capacity(running.len());
        for q in running {
            self.progress[q].generated += steps;
            if self.progress[q].generated >= self.progress[q].target {
                self.complete(r, q, t);
            } else {
                still.push(q);
            }
        }
        self.replicas[r].running = still;
    }

    /// A draining replica that has finished everything it held goes off.
    fn turn_off_if_drained(&mut self, r: usize, t: u64) {
        let rep = &mut self.replicas[r];
        if rep.power == Power::Draining && rep.outstanding == 0 && rep.iteration.is_none() {
            rep.power = Power::Off;
            self.routing_dirty = true;
            rep.stats.powered_us += t - rep.powered_since;
            rep.cache.clear();
            self.drained.push((r, t));
        }
    }

    fn complete(&mut self, r: usize, q: usize, t: u64) {
        self.out[q].done_us = Some(t);
        self.out[q].output_tokens = self.progress[q].generated;
        let own = self.own_tokens(q);
        let keep = self.cfg.prefix_caching;
        if self.cfg.admission == Admission::Paged {
            self.set_pages(r, q, 0);
        }
        // The request's ids, borrowed beside `self.replicas` (`Sim::ids` would borrow all of `self`).
        let ids: &[u64] = if self.cfg.prefix_caching {
            &self.reqs[q].hash_ids
        } else {
            &[]
        };
        let rep = &mut self.replicas[r];
        if self.cfg.admission == Admission::Reserve {
            rep.own_tokens -= own;
        }
        rep.cache.unpin(ids, keep);
        rep.stats.requests += 1;
        self.add_outstanding(r, -1);
        self.release_children(q, t);
    }

    /// Schedules the arrivals of the requests waiting for `q`, which finished at `t`.
    fn release_children(&mut self, q: usize, t: u64) {
        let from = self.children.partition_point(|&(p, _)| p < q);
        let to = self.children.partition_point(|&(p, _)| p <= q);
        for k in from..to {
            let c = self.children[k].1;
            let Some(a) = self.after[c] else {
                continue;
            };
            let arrival = t.saturating_add(a.delay_us);
            if arrival < self.horizon_us {
                self.out[c].arrival_us = arrival;
                self.out[c].cancelled = false;
                self.push(arrival, Event::Arrival(c));
            }
        }
    }

    fn maybe_scale_up(&mut self, t: u64) {
        let Some(a) = self.cfg.autoscale else {
            return;
        };
        let up = self
            .replicas
            .iter()
            .filter(|r| r.power != Power::Off)
            .count() as u64;
        let load: u64 = self.replicas.iter().map(|r| r.outstanding).sum();
        if load <= u64::from(a.target_outstanding) * up || up >= u64::from(a.max_replicas) {
            return;
        }
        if let Some(i) = self.replicas.iter().position(|r| r.power == Power::Off) {
            let rep = &mut self.replicas[i];
            rep.power = Power::Starting;
            self.routing_dirty = true;
            rep.powered_since = t;
            rep.ready_at = t + a.scale_up_delay_us;
            self.push(t + a.scale_up_delay_us, Event::Ready(i));
        }
    }

    /// Stops idle replicas, highest index first, while the others stay at or below half the target each.
    fn maybe_scale_down(&mut self, t: u64) {
        let Some(a) = self.cfg.autoscale else {
            return;
        };
        loop {
            let serving = self
                .replicas
                .iter()
                .filter(|r| r.power == Power::Serving)
                .count() as u64;
            let load: u64 = self.replicas.iter().map(|r| r.outstanding).sum();
            // Half the target as hysteresis, so a replica is not stopped and restarted on every small wave.
            if serving <= u64::from(a.min_replicas)
                || 2 * load > u64::from(a.target_outstanding) * (serving - 1)
            {
                return;
            }
            let idle = self.replicas.iter().rposition(|r| {
                r.power == Power::Serving
                    && r.outstanding == 0
                    && r.iteration.is_none()
                    && !r.kicked
            });
            let Some(i) = idle else {
                return;
            };
            let rep = &mut self.replicas[i];
            rep.power = Power::Off;
            self.routing_dirty = true;
            rep.stats.powered_us += t - rep.powered_since;
            rep.cache.clear();
            self.record_active(t);
        }
    }

    fn finish(mut self, end: u64) -> SimResult {
        let gpus = self.service.gpus();
        let p = self.cfg.power;
        let mut energy = 0.0;
        for r in 0..self.replicas.len() {
            let watts = self.model(r).board_power_w() * f64::from(self.replicas[r].stats.gpus);
            let rep = &mut self.replicas[r];
            if rep.power != Power::Off {
                rep.stats.powered_us += end - rep.powered_since;
            }
            let s = &rep.stats;
            let idle = s.powered_us.saturating_sub(s.prefill_us + s.decode_us);
            energy += watts
                * (p.prefill * s.prefill_us as f64
                    + p.decode * s.decode_us as f64
                    + p.idle * idle as f64)
                / 1e6;
        }
        SimResult {
            requests: self.out,
            end_us: end,
            replicas: self.replicas.iter().map(|r| r.stats).collect(),
            active_timeline: self.timeline,
            gpus_per_replica: gpus,
            energy_j: energy,
            kv_pages_held_at_end: self.replicas.iter().map(|r| r.pages).sum(),
        }
    }
}

/// A serving run that the cluster engine advances on its own clock, starting and draining replicas as it
/// allocates GPUs to them. Times are microseconds from the service start. Advanced in one go, with the
/// replicas it starts with, it is exactly [`simulate_closed_loop`].
pub struct LiveSim {
    sim: Sim<'static>,
}

impl LiveSim {
    /// A run of `requests` (with `after` dependencies, as [`simulate_closed_loop`]) starting with
    /// `cfg.replicas` serving replicas; `cfg.autoscale` must be `None` (the engine scales).
    pub fn new(
        requests: Vec<Request>,
        after: Vec<Option<After>>,
        horizon_us: u64,
        service: Box<dyn ServiceModel + Send>,
        cfg: SimConfig,
    ) -> Result<LiveSim, InputError> {
        let cfg = SimConfig {
            autoscale: None,
            ..cfg
        };
        Ok(LiveSim {
            sim: Sim::new(
                std::borrow::Cow::Owned(requests),
                std::borrow::Cow::Owned(after),
                horizon_us,
                Model::Owned(service),
                None,
                cfg,
            )?,
        })
    }

    /// Applies every event at or before `t`.
    pub fn advance(&mut self, t: u64) {
        self.sim.run_until(t);
    }

    /// Keeps the time to first token of every request from now on, for [`LiveSim::ttft_p90`].
    pub fn track_ttft(&mut self) {
        self.sim.ttfts.get_or_insert_with(VecDeque::new);
    }

    /// TTFT p90 (nearest rank) of the requests whose first token came in `(now - window, now]`, and how
    /// many there were; `None` when none did (or TTFTs are not tracked). Older records are dropped.
    pub fn ttft_p90(&mut self, now: u64, window: u64) -> Option<(u64, usize)> {
        let ttfts = self.sim.ttfts.as_mut()?;
        while ttfts.front().is_some_and(|&(t, _)| t + window <= now) {
            ttfts.pop_front();
        }
        let mut v: Vec<u64> = ttfts.iter().map(|&(_, x)| x).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let rank = (v.len() * 9).div_ceil(10).clamp(1, v.len());
        Some((v[rank - 1], v.len()))
    }

    /// Requests routed to a replica and not finished.
    pub fn outstanding(&self) -> u64 {
        self.sim.replicas.iter().map(|r| r.outstanding).sum()
    }

    /// Replicas serving or starting (not draining).
    pub fn up(&self) -> u32 {
        self.sim
            .replicas
            .iter()
            .filter(|r| matches!(r.power, Power::Serving | Power::Starting))
            .count() as u32
    }

    /// Replica slots (on, off or draining).
    pub fn slots(&self) -> usize {
        self.sim.replicas.len()
    }

    /// Whether slot `r` holds GPUs (is not off).
    pub fn is_on(&self, r: usize) -> bool {
        self.sim
            .replicas
            .get(r)
            .is_some_and(|x| x.power != Power::Off)
    }

    /// Starts a replica at `t` that serves from `ready_at`: the lowest off slot, or a new one.
    pub fn start_replica(&mut self, t: u64, ready_at: u64) -> usize {
        let s = &mut self.sim;
        let r = match s.replicas.iter().position(|x| x.power == Power::Off) {
            Some(r) => r,
            None => {
                let mut x = Replica::new(Power::Off, Role::Both);
                x.stats.gpus = s.service.gpus();
                s.replicas.push(x);
                s.replicas.len() - 1
            }
        };
        let rep = &mut s.replicas[r];
        rep.power = Power::Starting;
        s.routing_dirty = true;
        rep.powered_since = t;
        rep.ready_at = ready_at;
        s.push(ready_at, Event::Ready(r));
        r
    }

    /// A draining replica serves again (taking new requests); `None` if none drains.
    pub fn undrain(&mut self, t: u64) -> Option<usize> {
        let r = self
            .sim
            .replicas
            .iter()
            .rposition(|x| x.power == Power::Draining)?;
        self.sim.replicas[r].power = Power::Serving;
        self.sim.routing_dirty = true;
        self.sim.record_active(t);
        Some(r)
    }

    /// Takes one replica out at `t`: the starting one that would serve last is cancelled, else the highest
    /// serving slot drains. Returns the slot and whether it is already off (its GPUs free now); a draining
    /// replica is reported by [`LiveSim::take_drained`] when it has finished its requests.
    pub fn stop_one(&mut self, t: u64) -> Option<(usize, bool)> {
        let s = &mut self.sim;
        let starting = (0..s.replicas.len())
            .filter(|&i| s.replicas[i].power == Power::Starting)
            .max_by_key(|&i| (s.replicas[i].ready_at, i));
        if let Some(r) = starting {
            if s.replicas[r].outstanding == 0 {
                let rep = &mut s.replicas[r];
                rep.power = Power::Off;
                s.routing_dirty = true;
                rep.stats.powered_us += t - rep.powered_since;
                return Some((r, true));
            }
        }
        let r = s.replicas.iter().rposition(|x| x.power == Power::Serving)?;
        s.replicas[r].power = Power::Draining;
        s.routing_dirty = true;
        s.record_active(t);
        s.turn_off_if_drained(r, t);
        if s.replicas[r].power == Power::Off {
            s.drained.retain(|&(x, _)| x != r);
            return Some((r, true));
        }
        Some((r, false))
    }

    /// Draining replicas that went off since the last call, with when.
    pub fn take_drained(&mut self) -> Vec<(usize, u64)> {
        std::mem::take(&mut self.sim.drained)
    }

    /// Runs what is left (requests in flight finish; nothing new is started) and returns the run.
    pub fn finish(mut self) -> SimResult {
        self.sim.run_until(u64::MAX);
        let now = self.sim.now;
        self.sim.finish(now)
    }
}

/// Headline numbers of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Requests sent (the input less session calls never sent).
    pub requests: u64,
    /// Requests that finished.
    pub completed: u64,
    /// Requests whose KV cache could never fit one replica.
    pub rejected: u64,
    /// Preemptions (a request's KV freed, to be recomputed), all requests together.
    pub preemptions: u64,
    /// Time to first token, seconds.
    pub ttft_s: Stats,
    /// Time per output token, seconds (requests with more than one output token).
    pub tpot_s: Stats,
    /// End-to-end latency, seconds.
    pub e2e_s: Stats,
    /// Disaggregated serving: the wait for the link plus the KV copy, seconds, of the requests copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_transfer_s: Option<Stats>,
    /// The targets.
    pub slo: SloSeconds,
    /// Fraction of all requests meeting both targets.
    pub slo_attainment: f64,
    /// Requests meeting both targets per second of the run.
    pub goodput_rps: f64,
    /// Output tokens per second of the run.
    pub output_tokens_per_s: f64,
    /// First arrival to last token, seconds.
    pub duration_s: f64,
    /// Fraction of prompt tokens served from prefix caches.
    pub prefix_hit_rate: f64,
    /// Most replicas serving at once.
    pub peak_replicas: u32,
    /// GPU-seconds of powered replicas.
    pub gpu_seconds: f64,
    /// Energy, kWh (SplitwiseSim power fractions).
    pub energy_kwh: f64,
}

/// SLO targets in seconds, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SloSeconds {
    /// TTFT target.
    pub ttft_s: f64,
    /// TPOT target.
    pub tpot_s: f64,
}

/// Summarises a run against `slo`.
pub fn summarize(res: &SimResult, slo: Slo) -> Summary {
    summarize_sorted(res, slo).0
}

/// Latencies of a run's completed requests, seconds, each sorted by `f64::total_cmp`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latencies {
    /// Time to first token.
    pub ttft_s: Vec<f64>,
    /// Time per output token (requests with more than one output token).
    pub tpot_s: Vec<f64>,
    /// End to end.
    pub e2e_s: Vec<f64>,
    /// Completed requests that met both SLOs.
    pub slo_met: u64,
}

/// [`summarize`], and the latencies its percentiles were taken from (so that percentiles over several
/// runs together need only merge them).
pub fn summarize_sorted(res: &SimResult, slo: Slo) -> (Summary, Latencies) {
    let secs = |us: u64| us as f64 / 1e6;
    // One pass over the requests (millions in a service's week), the latency arrays sized once: at most
    // one value per request.
    let cap = res.requests.len();
    let mut ttft: Vec<f64> = Vec::with_capacity(cap);
    let mut e2e: Vec<f64> = Vec::with_capacity(cap);
    let mut tpot: Vec<f64> = Vec::with_capacity(cap);
    let mut kv: Vec<f64> = Vec::new();
    let (mut n, mut completed, mut rejected, mut preemptions, mut good) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut prompt, mut cached, mut output) = (0u64, 0u64, 0u64);
    let mut first: Option<u64> = None;
    for o in res.requests.iter().filter(|o| !o.cancelled) {
        n += 1;
        rejected += u64::from(o.replica.is_none());
        preemptions += u64::from(o.preemptions);
        first = Some(first.map_or(o.arrival_us, |f| f.min(o.arrival_us)));
        if o.done_us.is_none() {
            continue;
        }
        completed += 1;
        ttft.extend(o.ttft_us().map(secs));
        e2e.extend(o.e2e_us().map(secs));
        tpot.extend(o.tpot_us().map(|us| us / 1e6));
        kv.extend(o.kv_transfer_us.map(secs));
        good += u64::from(o.meets(slo));
        prompt += u64::from(o.prompt_tokens);
        cached += u64::from(o.cached_tokens);
        output += u64::from(o.output_tokens);
    }
    let first = first.unwrap_or(0);
    let duration = secs(res.end_us.saturating_sub(first));
    let per_s = |x: f64| if duration > 0.0 { x / duration } else { 0.0 };
    let gpu_us: u64 = res
        .replicas
        .iter()
        .map(|r| r.powered_us * u64::from(r.gpus))
        .sum();
    let summary = Summary {
        requests: n,
        completed,
        rejected,
        preemptions,
        ttft_s: Stats::of(&mut ttft),
        tpot_s: Stats::of(&mut tpot),
        e2e_s: Stats::of(&mut e2e),
        kv_transfer_s: (!kv.is_empty()).then(|| Stats::of(&mut kv)),
        slo: SloSeconds {
            ttft_s: secs(slo.ttft_us),
            tpot_s: secs(slo.tpot_us),
        },
        slo_attainment: if n > 0 { good as f64 / n as f64 } else { 0.0 },
        goodput_rps: per_s(good as f64),
        // Whole tokens: their sum as an integer is the float sum's value, exact to 2^53.
        output_tokens_per_s: per_s(output as f64),
        duration_s: duration,
        prefix_hit_rate: if prompt > 0 {
            cached as f64 / prompt as f64
        } else {
            0.0
        },
        peak_replicas: res
            .active_timeline
            .iter()
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(0),
        gpu_seconds: secs(gpu_us),
        energy_kwh: res.energy_j / 3.6e6,
    };
    let sorted = Latencies {
        ttft_s: ttft,
        tpot_s: tpot,
        e2e_s: e2e,
        slo_met: good,
    };
    (summary, sorted)
}

/// What happened to one session: a request without a parent and every request that depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SessionOutcome {
    /// Index of its first request.
    pub first_request: usize,
    /// Requests (calls, turns) it holds.
    pub calls: u32,
    /// Calls sent (the rest were cut off by a rejected call or the horizon).
    pub sent: u32,
    /// Calls finished.
    pub completed: u32,
    /// Arrival of its first call, microseconds.
    pub start_us: u64,
    /// Last token of its last finished call (`None`: none finished), microseconds.
    pub end_us: Option<u64>,
    /// Time between a call's parent finishing and the call arriving, summed over sent calls, microseconds.
    pub tool_wait_us: u64,
    /// Arrival to last token, summed over finished calls (queueing included), microseconds.
    pub model_us: u64,
}

impl SessionOutcome {
    /// Every call finished.
    pub fn complete(&self) -> bool {
        self.completed == self.calls
    }

    /// First arrival to last token of its last finished call, microseconds.
    pub fn duration_us(&self) -> Option<u64> {
        self.end_us.map(|e| e.saturating_sub(self.start_us))
    }
}

/// Depth of each request in its session (0: no parent), and its session's first request.
fn session_roots(after: &[Option<After>], n: usize) -> Vec<(usize, u32)> {
    let mut roots: Vec<(usize, u32)> = Vec::with_capacity(n);
    for q in 0..n {
        // Parents come first (checked by the simulation), so their entry is already there.
        let entry = match after.get(q).copied().flatten() {
            Some(a) if a.parent < q => {
                let (root, depth) = roots[a.parent];
                (root, depth + 1)
            }
            _ => (q, 0),
        };
        roots.push(entry);
    }
    roots
}

/// One outcome per session (every request without a parent starts one), in order of first request.
pub fn sessions(after: &[Option<After>], res: &SimResult) -> Vec<SessionOutcome> {
    let roots = session_roots(after, res.requests.len());
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut out: Vec<SessionOutcome> = Vec::new();
    for (q, o) in res.requests.iter().enumerate() {
        let root = roots[q].0;
        let s = *index.entry(root).or_insert_with(|| {
            out.push(SessionOutcome {
                first_request: root,
                start_us: o.arrival_us,
                ..SessionOutcome::default()
            });
            out.len() - 1
        });
        let s = &mut out[s];
        s.calls += 1;
        if o.cancelled {
            continue;
        }
        s.sent += 1;
        if let Some(a) = after.get(q).copied().flatten() {
            s.tool_wait_us += a.delay_us;
        }
        if let Some(done) = o.done_us {
            s.completed += 1;
            s.model_us += done - o.arrival_us;
            s.end_us = Some(s.end_us.map_or(done, |e| e.max(done)));
        }
    }
    out
}

/// Headline numbers of the sessions of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    /// Sessions started.
    pub sessions: u64,
    /// Sessions whose every call finished.
    pub complete: u64,
    /// Calls finished per session.
    pub turns: Stats,
    /// First arrival to last finished token, seconds (sessions with at least one finished call; a session
    /// cut off by the horizon counts up to its last finished call).
    pub duration_s: Stats,
    /// Time spent waiting on tools (between a call finishing and the next arriving), seconds per session.
    pub tool_wait_s: Stats,
    /// Time spent on the model (arrival to last token of each call, queueing included), seconds per session.
    pub model_s: Stats,
    /// Tool waiting as a fraction of tool waiting plus model time, over all sessions.
    pub tool_wait_fraction: f64,
    /// Time to first token of first calls, seconds.
    pub ttft_first_turn_s: Stats,
    /// Time to first token of later calls (which can reuse the session's cached prefix), seconds.
    pub ttft_later_turns_s: Stats,
}

/// Summarises the sessions of a run.
pub fn summarize_sessions(after: &[Option<After>], res: &SimResult) -> SessionSummary {
    let all = sessions(after, res);
    let secs = |us: u64| us as f64 / 1e6;
    let started: Vec<&SessionOutcome> = all.iter().filter(|s| s.end_us.is_some()).collect();
    let of = |f: &dyn Fn(&SessionOutcome) -> f64| {
        let mut v: Vec<f64> = started.iter().map(|s| f(s)).collect();
        Stats::of(&mut v)
    };
    let turns = of(&|s| f64::from(s.completed));
    let duration = of(&|s| secs(s.duration_us().unwrap_or(0)));
    let tool = of(&|s| secs(s.tool_wait_us));
    let model = of(&|s| secs(s.model_us));
    let (tool_sum, model_sum): (u64, u64) = all
        .iter()
        .fold((0, 0), |(a, b), s| (a + s.tool_wait_us, b + s.model_us));
    let depth = session_roots(after, res.requests.len());
    let (mut first, mut later) = (Vec::new(), Vec::new());
    for (q, o) in res.requests.iter().enumerate() {
        if let (false, Some(t)) = (o.cancelled, o.ttft_us()) {
            if o.done_us.is_some() {
                if depth[q].1 == 0 {
                    first.push(secs(t));
                } else {
                    later.push(secs(t));
                }
            }
        }
    }
    SessionSummary {
        sessions: all.len() as u64,
        complete: all.iter().filter(|s| s.complete()).count() as u64,
        turns,
        duration_s: duration,
        tool_wait_s: tool,
        model_s: model,
        tool_wait_fraction: if tool_sum + model_sum > 0 {
            tool_sum as f64 / (tool_sum + model_sum) as f64
        } else {
            0.0
        },
        ttft_first_turn_s: Stats::of(&mut first),
        ttft_later_turns_s: Stats::of(&mut later),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        After, Autoscale, LiveSim, Model, PrefixCache, Request, Sim, SimConfig, SimResult,
    };
    use crate::domain::traffic::{Admission, Router};
    use crate::perf::inference::ServiceModel;
    use proptest::prelude::*;
    use std::borrow::Cow;
    use std::collections::{BTreeMap, BTreeSet};

    /// 1 us per uncached prompt token, 1 ms per decode step.
    struct Fixed {
        capacity: u64,
    }

    impl ServiceModel for Fixed {
        fn prefill_us(&self, new_tokens: u64, _requests: usize) -> u64 {
            new_tokens
        }
        fn decode_step_us(&self, _kv_tokens: u64, _batch: usize) -> u64 {
            1_000
        }
        fn kv_capacity_tokens(&self) -> u64 {
            self.capacity
        }
    }

    /// The eager LRU the lazy one replaced: a sorted set of (stamp, hash) kept exact at every step.
    #[derive(Default)]
    struct Eager {
        blocks: BTreeMap<u64, (u32, u64)>,
        lru: BTreeSet<(u64, u64)>,
        clock: u64,
    }

    impl Eager {
        fn pin(&mut self, ids: &[u64]) {
            for &h in ids {
                let b = self.blocks.entry(h).or_insert((0, 0));
                if b.0 == 0 {
                    self.lru.remove(&(b.1, h));
                }
                b.0 += 1;
            }
        }
        fn unpin(&mut self, ids: &[u64], keep: bool) {
            for &h in ids.iter().rev() {
                let Some(b) = self.blocks.get_mut(&h) else {
                    continue;
                };
                b.0 = b.0.saturating_sub(1);
                if b.0 == 0 {
                    if keep {
                        self.clock += 1;
                        b.1 = self.clock;
                        self.lru.insert((b.1, h));
                    } else {
                        self.blocks.remove(&h);
                    }
                }
            }
        }
        fn evict(&mut self, mut n: u64) {
            while n > 0 {
                let Some((_, h)) = self.lru.pop_first() else {
                    return;
                };
                self.blocks.remove(&h);
                n -= 1;
            }
        }
        fn clear(&mut self) {
            self.blocks.retain(|_, b| b.0 > 0);
            self.lru.clear();
        }
    }

    /// A live service whose replicas all went off and one is starting: requests wait on the starting
    /// replica (the routable set falls back to the replicas not off), and are served when it is ready.
    #[test]
    fn with_none_serving_requests_wait_on_the_starting_replica() {
        let reqs: Vec<Request> = [1_000, 2_000]
            .into_iter()
            .map(|arrival_us| Request {
                arrival_us,
                prompt_tokens: 100,
                output_tokens: 2,
                hash_ids: Vec::new(),
            })
            .collect();
        let cfg = SimConfig {
            replicas: 2,
            router: Router::LeastOutstanding,
            ..SimConfig::default()
        };
        let fixed = Box::new(Fixed { capacity: 1 << 30 });
        let mut live = LiveSim::new(reqs, Vec::new(), u64::MAX, fixed, cfg).unwrap();
        live.advance(0);
        assert_eq!(live.stop_one(0), Some((1, true)));
        assert_eq!(live.stop_one(0), Some((0, true)));
        assert_eq!(live.start_replica(0, 10_000), 0);
        live.advance(u64::MAX);
        let res = live.finish();
        for o in &res.requests {
            assert_eq!(o.replica, Some(0));
            // Ready at 10 ms, then one prefill of both prompts: 200 tokens at 1 us a token.
            assert_eq!(o.first_token_us, Some(10_200));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Pins and unpins of balanced requests (as the simulator makes them), evictions and clears: the
        /// lazy cache (compacted after any number of dead entries) holds the same blocks, counts the same
        /// idle ones and evicts in the same order; its `lru` holds one entry for every stamp from `base`.
        #[test]
        fn lazy_lru_equals_the_eager_one(
            ops in prop::collection::vec((0u8..5, prop::collection::vec(0u64..40, 1..12), 0u64..6), 1..300),
            slack in prop_oneof![0u64..6, Just(1024)],
            per_block in 0u64..3,
        ) {
            let (mut lazy, mut eager) = (PrefixCache::with_slack(slack, per_block), Eager::default());
            let mut pinned: Vec<Vec<u64>> = Vec::new();
            for (op, ids, n) in ops {
                match op {
                    0 | 1 => {
                        lazy.pin(&ids);
                        eager.pin(&ids);
                        pinned.push(ids);
                    }
                    2 => {
                        if let Some(ids) = pinned.pop() {
                            let keep = n != 0;
                            lazy.unpin(&ids, keep);
                            eager.unpin(&ids, keep);
                        }
                    }
                    3 => {
                        lazy.evict(n);
                        eager.evict(n);
                    }
                    _ => {
                        if n == 0 {
                            lazy.clear();
                            eager.clear();
                        }
                    }
                }
                prop_assert_eq!(lazy.base + lazy.lru.len() as u64, lazy.clock + 1);
                for (k, &(stamp, h)) in lazy.lru.iter().enumerate() {
                    if stamp != 0 {
                        prop_assert_eq!(stamp, lazy.base + k as u64);
                        prop_assert_eq!(lazy.blocks[&h].stamp, stamp);
                    }
                }
                if op == 2 {
                    prop_assert!(lazy.lru.len() as u64 <= 2 * lazy.idle + lazy.slack_now());
                }
                let lazy_blocks: BTreeSet<u64> = lazy.blocks.keys().copied().collect();
                let eager_blocks: BTreeSet<u64> = eager.blocks.keys().copied().collect();
                prop_assert_eq!(lazy_blocks, eager_blocks);
                prop_assert_eq!(lazy.idle, eager.lru.len() as u64);
                for (h, b) in &lazy.blocks {
                    prop_assert_eq!(b.refs, eager.blocks[h].0);
                }
            }
        }

        /// The kv-aware router with its first-block index picks the replicas the walk over every replica
        /// within the slack picks: sessions whose calls repeat and extend their context, some sharing a
        /// popular first block, on small caches that evict, under both admissions, with and without
        /// autoscaling, and in a live run where a replica drains. With a first block repeated later in a
        /// request the index is refused.
        #[test]
        fn the_first_block_index_routes_as_the_walk_over_every_replica(
            sessions in prop::collection::vec((0u8..4, 1usize..5, 1usize..4, 0u64..50_000), 1..14),
            replicas in 1u32..6,
            slack in 0u32..3,
            blocks in 3u64..40,
            paged in any::<bool>(),
            autoscale in any::<bool>(),
            messy in any::<bool>(),
            drain_at in prop::option::of(0u64..60_000),
        ) {
            let (mut reqs, mut after) = (Vec::new(), Vec::new());
            let mut next_id = 1_000u64;
            for (s, &(popular, turns, grow, start)) in sessions.iter().enumerate() {
                // Popular first blocks 1 and 2 are shared by sessions; 0 and 3 start a block of its own.
                let mut ids = vec![match popular {
                    1 | 2 => u64::from(popular),
                    _ => { next_id += 1; next_id }
                }];
                for k in 0..turns {
                    for _ in 0..grow {
                        next_id += 1;
                        ids.push(next_id);
                    }
                    if messy && s == 0 && k == 0 {
                        ids.push(1); // a popular first block at a later position
                    }
                    after.push((k > 0).then(|| After { parent: reqs.len() - 1, delay_us: 300 }));
                    reqs.push(Request {
                        arrival_us: start,
                        prompt_tokens: ids.len() as u32 * 512 - 100,
                        output_tokens: 3 + (s as u32 % 5),
                        hash_ids: ids.clone(),
                    });
                }
            }
            let cfg = SimConfig {
                replicas,
                router: Router::KvAware,
                kv_load_slack: slack,
                admission: if paged { Admission::Paged } else { Admission::Reserve },
                autoscale: autoscale.then_some(Autoscale {
                    min_replicas: 1,
                    max_replicas: replicas + 1,
                    target_outstanding: 2,
                    scale_up_delay_us: 5_000,
                }),
                ..SimConfig::default()
            };
            let model = Fixed { capacity: blocks * 512 };
            let messy_ids = messy && sessions.iter().any(|&(p, ..)| p == 1);
            let run = |index: bool| -> Result<SimResult, TestCaseError> {
                if let Some(t) = drain_at {
                    // The cluster engine's live run: the highest serving replica drains at `t`, its cache
                    // still holding first blocks while it takes no new request.
                    let fixed = Box::new(Fixed { capacity: blocks * 512 });
                    let mut live =
                        LiveSim::new(reqs.clone(), after.clone(), u64::MAX, fixed, cfg.clone()).unwrap();
                    prop_assert_eq!(live.sim.first_blocks.is_some(), !messy_ids);
                    if !index {
                        live.sim.first_blocks = None;
                    }
                    live.advance(t);
                    live.stop_one(t);
                    live.advance(u64::MAX);
                    return Ok(live.finish());
                }
                let mut sim = Sim::new(
                    Cow::Borrowed(&reqs),
                    Cow::Borrowed(&after),
                    u64::MAX,
                    Model::Borrowed(&model),
                    None,
                    cfg.clone(),
                )
                .unwrap();
                prop_assert_eq!(sim.first_blocks.is_some(), !messy_ids);
                if !index {
                    sim.first_blocks = None;
                }
                sim.run_until(u64::MAX);
                let now = sim.now;
                Ok(sim.finish(now))
            };
            let (indexed, walked) = (run(true)?, run(false)?);
            prop_assert_eq!(&indexed, &walked);
        }

        /// `census(ids)`: the distinct blocks of `ids` not held, the held unpinned ones, and the leading
        /// blocks held, on caches with pinned and unpinned blocks, for ids sorted (one pass) or not, with
        /// and without repeats.
        #[test]
        fn the_census_counts_what_the_sets_count(
            pinned in prop::collection::btree_set(0u64..24, 0..12),
            idle in prop::collection::btree_set(0u64..24, 0..12),
            ids in prop::collection::vec(0u64..24, 0..16),
            sorted in any::<bool>(),
        ) {
            let mut cache = PrefixCache::default();
            let idle: Vec<u64> = idle.difference(&pinned).copied().collect();
            cache.pin(&idle);
            cache.unpin(&idle, true);
            cache.pin(&pinned.iter().copied().collect::<Vec<_>>());
            let mut ids = ids;
            if sorted {
                ids.sort_unstable();
                ids.dedup();
            }
            let distinct: BTreeSet<u64> = ids.iter().copied().collect();
            let c = cache.census(&ids);
            let held = |h: &u64| pinned.contains(h) || idle.contains(h);
            prop_assert_eq!(c.new_blocks, distinct.iter().filter(|h| !held(h)).count() as u64);
            prop_assert_eq!(c.idle_hits, distinct.iter().filter(|h| idle.contains(h)).count() as u64);
            prop_assert_eq!(c.hits, ids.iter().take_while(|h| held(h)).count() as u64);
        }

        /// The kv-aware router's shortcut: `prefix_hits_over(ids, beat)` is the prefix length exactly when
        /// that is more than `beat`, on caches holding any subset of blocks.
        #[test]
        fn prefix_hits_over_is_the_walk_when_it_beats(
            held in prop::collection::btree_set(0u64..24, 0..24),
            ids in prop::collection::vec(0u64..24, 0..16),
            beat in 0usize..18,
        ) {
            let mut cache = PrefixCache::default();
            let held: Vec<u64> = held.into_iter().collect();
            cache.pin(&held);
            let walk = ids.iter().take_while(|h| held.contains(h)).count();
            prop_assert_eq!(cache.prefix_hits(&ids), walk);
            prop_assert_eq!(cache.prefix_hits_over(&ids, beat), (walk > beat).then_some(walk));
        }
    }

    /// The summary counts what each request's fate says, over sent requests only, and percentiles come
    /// from finished ones; a run where nothing finished reports zero rates (not negative zero).
    #[test]
    fn the_summary_counts_each_fate_once() {
        use super::{summarize_sorted, ReplicaStats, RequestOutcome};
        use crate::domain::traffic::Slo;
        let done = |arrival: u64, first: u64, end: u64, out: u32| RequestOutcome {
            replica: Some(0),
            arrival_us: arrival,
            first_token_us: Some(first),
            done_us: Some(end),
            output_tokens: out,
            prompt_tokens: 100,
            cached_tokens: 40,
            ..RequestOutcome::default()
        };
        let requests = vec![
            done(10, 1_010, 3_010, 3), // TTFT 1 ms, TPOT 1 ms, E2E 3 ms: meets
            done(20, 5_020, 5_020, 1), // one token: no TPOT; TTFT 5 ms misses 2 ms
            RequestOutcome {
                cancelled: true, // never sent: counted nowhere, even though it has times
                ..done(0, 1, 2, 9)
            },
            RequestOutcome {
                arrival_us: 30,
                preemptions: 2,
                ..RequestOutcome::default() // rejected: no replica
            },
            RequestOutcome {
                replica: Some(1),
                arrival_us: 40,
                first_token_us: Some(900), // unfinished
                preemptions: 1,
                ..RequestOutcome::default()
            },
        ];
        let res = SimResult {
            requests,
            end_us: 10_010,
            replicas: vec![ReplicaStats {
                powered_us: 10_000,
                gpus: 2,
                ..ReplicaStats::default()
            }],
            active_timeline: vec![(0, 1)],
            gpus_per_replica: 2,
            energy_j: 0.0,
            kv_pages_held_at_end: 0,
        };
        let slo = Slo {
            ttft_us: 2_000,
            tpot_us: 1_000,
        };
        let (s, lat) = summarize_sorted(&res, slo);
        assert_eq!(
            (s.requests, s.completed, s.rejected, s.preemptions),
            (4, 2, 1, 3)
        );
        assert_eq!(lat.ttft_s, vec![0.001, 0.005]);
        assert_eq!(lat.e2e_s, vec![0.003, 0.005]);
        assert_eq!(lat.tpot_s, vec![0.001]);
        assert_eq!(lat.slo_met, 1);
        assert_eq!(s.slo_attainment, 0.25);
        // From the first sent arrival (10 us) to the end: 10 ms.
        assert_eq!(s.duration_s, 0.01);
        assert_eq!(s.output_tokens_per_s, 4.0 / 0.01);
        assert_eq!(s.goodput_rps, 1.0 / 0.01);
        assert_eq!(s.prefix_hit_rate, 0.4);
        assert_eq!(s.gpu_seconds, 0.02);
        assert_eq!(s.ttft_s.max, 0.005);
        assert!(s.kv_transfer_s.is_none());

        // Nothing finished: zero rates, positive zero (a float sum of nothing would be -0.0).
        let none = SimResult {
            requests: res.requests[3..].to_vec(),
            ..res
        };
        let (s, lat) = summarize_sorted(&none, slo);
        assert_eq!((s.requests, s.completed), (2, 0));
        assert!(lat.ttft_s.is_empty() && lat.e2e_s.is_empty());
        for x in [s.output_tokens_per_s, s.goodput_rps, s.slo_attainment] {
            assert!(x == 0.0 && x.is_sign_positive(), "{x}");
        }
    }
}
