// Node-score kernel of the fragmentation study: scores one pod against every node and reduces to the winner
// (highest score; ties to the smallest tie-break rank, then the smallest node index). The integer twins in
// src/kernel/node_score.rs (`score_int`, `IntCpuNodeScorer`) are the reference: every decision here is u32/i32.
//
// Two dispatches: `score_nodes` (one thread per node, one partial winner per workgroup), then `reduce` (one
// workgroup over the partials) writes `result[0]`.
//
// `lockstep` runs a grid of experiments (frag-study: policies x seeds on one trace) with no readback per pod:
// one workgroup per experiment places its pods one after another, each step scoring the pod against every
// node of that experiment, reducing to the winner and applying it (node records and placements stay on the
// device). The host reads the placements back at the end (src/kernel/node_score/lockstep.rs).
//
// The host guarantees the integer domain: gpu_count <= 8, gpu_left <= 1000, cpu_left <= 128000, and for FGD
// 8000 * sum(counts) < 2^31 (see `in_integer_domain`, `FgdThresholds`).

const WORKGROUP_SIZE: u32 = 64u;
const MAX_GPUS: u32 = 8u;
// The policy `score_nodes` scores with: the host builds one pipeline per policy (an override constant, so
// each pipeline holds only its policy's code).
override POLICY: u32 = 0u;
const MILLI: u32 = 1000u;
const MAX_GPU_MILLI: u32 = 8000u;
const NO_NODE: u32 = 0xFFFFFFFFu;

const POLICY_DOT_PRODUCT: u32 = 0u;
const POLICY_GPU_CLUSTERING: u32 = 1u;
const POLICY_GPU_PACKING: u32 = 2u;
const POLICY_BEST_FIT: u32 = 3u;
const POLICY_FGD: u32 = 4u;
const TAG_SHARE: u32 = 1u;

// Must match `NodeRecord` (16 words).
struct NodeRecord {
    cpu_left: u32,
    mem_left: u32,
    model: u32,
    gpu_count: u32,
    gpu_left: array<u32, 8>,
    rank: u32,
    tags: u32,
    version: u32,
    pad: u32,
}

// Must match `GpuTypical` in src/kernel/node_score_gpu.rs (8 words).
struct Typical {
    cpu: u32,
    gpus: u32,
    milli: u32,
    model_mask: u32,
    count: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// Must match `GpuWinner` (8 words).
struct Winner {
    score: i32,
    rank: u32,
    node: u32,
    gpus: u32,
    // Non-zero when some feasible node sat on a DotProduct rounding boundary (the host decides that pod).
    ambiguous: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

struct Pod {
    cpu: u32,
    mem: u32,
    gpus: u32,
    milli: u32,
    model_mask: u32,
    tag: u32,
}

// Must match `GpuParams`.
struct Params {
    // policy, num_nodes, num_typical, num_groups (lockstep: 0, num_nodes, num_typical, max_steps)
    head: vec4<u32>,
    // cpu, mem, gpus, milli
    pod0: vec4<u32>,
    // model_mask, tag, shape, 0
    pod1: vec4<u32>,
    // lockstep: index of the first experiment of policy 0..3, then 4..7 (experiments are sorted by policy)
    first0: vec4<u32>,
    first1: vec4<u32>,
}

// Must match `GpuExperiment` (8 words).
struct Experiment {
    // Its pods' place in `orders` and `placements`.
    order_off: u32,
    order_len: u32,
    // Its first node record in `grid_nodes`.
    node_off: u32,
    // Attempts done.
    cursor: u32,
    // 1 when the pod at `cursor` sits on a DotProduct rounding boundary: the host decides it and clears this.
    stalled: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// Must match `PodRecord` (8 words).
struct PodIn {
    cpu: u32,
    mem: u32,
    gpus: u32,
    milli: u32,
    model_mask: u32,
    tag: u32,
    shape: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> nodes: array<NodeRecord>;
@group(0) @binding(2) var<storage, read> typical: array<Typical>;
// thresholds[k], k = 0..=100: FGD's score is the number of k >= 1 with D >= thresholds[k].
@group(0) @binding(3) var<storage, read> thresholds: array<i32>;
// BestFit boundary bits (`BestFitTable`).
@group(0) @binding(4) var<storage, read> best_fit_table: array<u32>;
@group(0) @binding(5) var<storage, read_write> partials: array<Winner>;
@group(0) @binding(6) var<storage, read_write> result: array<Winner>;
// Lockstep only (its own layout: bindings 0, 2, 3, 4 as above, 1, 5 and 6 unused).
@group(0) @binding(7) var<storage, read_write> grid_nodes: array<NodeRecord>;
@group(0) @binding(8) var<storage, read_write> experiments: array<Experiment>;
// Pod ids (into `pods`) in attempt order, experiment after experiment.
@group(0) @binding(9) var<storage, read> orders: array<u32>;
@group(0) @binding(10) var<storage, read> pods: array<PodIn>;
// (node, GPU mask) per attempt, laid out like `orders`; node NO_NODE when the pod failed.
@group(0) @binding(11) var<storage, read_write> placements: array<vec2<u32>>;

var<workgroup> shared_w: array<Winner, 64>;
// Lockstep: threads per experiment (larger than WORKGROUP_SIZE: a step's latency is the nodes each thread
// scores, and a grid has few experiments), their partial winners, and 1 when the experiment is done or stalled.
const LOCKSTEP_SIZE: u32 = 256u;
var<workgroup> shared_l: array<Winner, 256>;
var<workgroup> stop_flag: u32;

fn the_pod() -> Pod {
    return Pod(params.pod0.x, params.pod0.y, params.pod0.z, params.pod0.w, params.pod1.x, params.pod1.y);
}

fn none_winner() -> Winner {
    return Winner(i32(-2147483647) - 1, 0xFFFFFFFFu, NO_NODE, 0u, 0u, 0u, 0u, 0u);
}

// True when b beats a: higher score, then smaller rank, then smaller node index.
fn better(a: Winner, b: Winner) -> bool {
    if (b.node == NO_NODE) {
        return false;
    }
    if (a.node == NO_NODE) {
        return true;
    }
    if (b.score != a.score) {
        return b.score > a.score;
    }
    if (b.rank != a.rank) {
        return b.rank < a.rank;
    }
    return b.node < a.node;
}

fn merge(a: Winner, b: Winner) -> Winner {
    var w = a;
    if (better(a, b)) {
        w = b;
    }
    w.ambiguous = a.ambiguous | b.ambiguous;
    return w;
}

fn idle(n: NodeRecord) -> u32 {
    var m = n;
    var s = 0u;
    for (var i = 0u; i < m.gpu_count; i++) {
        s += m.gpu_left[i];
    }
    return s;
}

fn gpus_with_at_least(n: NodeRecord, milli: u32) -> u32 {
    var m = n;
    var c = 0u;
    for (var i = 0u; i < m.gpu_count; i++) {
        if (m.gpu_left[i] >= milli) {
            c += 1u;
        }
    }
    return c;
}

fn uses_gpu(p: Pod) -> bool {
    return p.gpus > 0u && p.milli > 0u;
}

fn is_sharing(p: Pod) -> bool {
    return p.gpus == 1u && p.milli > 0u && p.milli < MILLI;
}

fn model_ok(mask: u32, model: u32) -> bool {
    return ((mask >> min(model, 31u)) & 1u) != 0u;
}

fn feasible(n: NodeRecord, p: Pod) -> bool {
    if (p.cpu > n.cpu_left || p.mem > n.mem_left) {
        return false;
    }
    if (!uses_gpu(p)) {
        return true;
    }
    if (n.gpu_count == 0u || !model_ok(p.model_mask, n.model)) {
        return false;
    }
    return gpus_with_at_least(n, p.milli) >= p.gpus;
}

// 32 x 32 -> 64 bits as (lo, hi), through 16-bit limbs.
fn mul_wide(x: u32, y: u32) -> vec2<u32> {
    let x0 = x & 0xFFFFu;
    let x1 = x >> 16u;
    let y0 = y & 0xFFFFu;
    let y1 = y >> 16u;
    let p00 = x0 * y0;
    let p01 = x0 * y1;
    let p10 = x1 * y0;
    let p11 = x1 * y1;
    let mid = (p00 >> 16u) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
    let lo = (p00 & 0xFFFFu) | (mid << 16u);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    let carry = select(0u, 1u, lo < a.x);
    return vec2<u32>(lo, a.y + b.y + carry);
}

struct Scored {
    score: i32,
    gpus: u32,
    ambiguous: u32,
}

// DotProduct: 100 - ceil(N / 327,680,000), N = a*b + 256*c*e < 2^35; ceil(N / (2^19 * 625)) =
// ceil(ceil(N / 2^19) / 625). N a positive multiple of the divisor: ambiguous (f64 may truncate one lower).
fn score_dot_product(n: NodeRecord, p: Pod) -> Scored {
    if (n.cpu_left < p.cpu) {
        return Scored(0, 0u, 0u);
    }
    let ce = idle(n) * (p.gpus * p.milli);
    let big = add64(mul_wide(n.cpu_left, p.cpu), vec2<u32>(ce << 8u, ce >> 24u));
    let low_bits = big.x & 0x7FFFFu;
    let shifted = (big.y << 13u) | (big.x >> 19u);
    let m = shifted + select(0u, 1u, low_bits != 0u);
    let q = (m + 624u) / 625u;
    let boundary = low_bits == 0u && shifted != 0u && shifted % 625u == 0u;
    return Scored(100 - i32(q), 0u, select(0u, 1u, boundary));
}

fn score_gpu_clustering(n: NodeRecord, p: Pod) -> i32 {
    if (p.tag == 0u) {
        return 0;
    }
    let base = i32((25u * (MAX_GPU_MILLI - idle(n))) / MAX_GPU_MILLI);
    if ((n.tags & p.tag) != 0u) {
        if (countOneBits(n.tags) == 1u) {
            return base + 75;
        }
        return base + 50;
    }
    if (n.tags == 0u) {
        return base + 25;
    }
    return base;
}

fn score_gpu_packing(n: NodeRecord, p: Pod) -> i32 {
    if (p.milli == 0u) {
        return 0;
    }
    var m = n;
    let g = m.gpu_count;
    let free = i32(gpus_with_at_least(m, MILLI));
    if (free == i32(g)) {
        return max(33 - free, free);
    }
    var taken_mask = 0u;
    var taken = 0u;
    var fully_free = 0;
    var left_pct_sum = 0;
    while (taken < p.gpus) {
        var best = MAX_GPUS;
        for (var i = 0u; i < g; i++) {
            let left = m.gpu_left[i];
            if ((taken_mask & (1u << i)) == 0u && left >= p.milli && (best == MAX_GPUS || left < m.gpu_left[best])) {
                best = i;
            }
        }
        if (best == MAX_GPUS) {
            break;
        }
        taken_mask |= 1u << best;
        taken += 1u;
        if (m.gpu_left[best] == MILLI) {
            fully_free += 1;
        }
        left_pct_sum += i32(m.gpu_left[best] * 100u / MILLI);
    }
    if (fully_free > 0) {
        return max(50 - fully_free, 33);
    }
    return max(100 - left_pct_sum / 10, 50);
}

// BestFit: 100 - ceil(M / 2560), M = A + 16 B, one lower where the f64 table says so (M a multiple of 2560).
fn score_best_fit(n: NodeRecord, p: Pod) -> i32 {
    let a = n.cpu_left - p.cpu;
    let b = idle(n) - p.gpus * p.milli;
    let m = a + 16u * b;
    let q = (m + 2559u) / 2560u;
    var lowered = 0;
    if (m % 2560u == 0u) {
        let bit = b * 101u + q;
        if (((best_fit_table[bit / 32u] >> (bit % 32u)) & 1u) != 0u) {
            lowered = 1;
        }
    }
    return 100 - i32(q) - lowered;
}

// F(N) * total = sum over typical pods of count * (unusable milli).
fn frag_scaled(n: NodeRecord) -> i32 {
    var m = n;
    let id = idle(m);
    var f = 0;
    let nt = params.head.z;
    for (var j = 0u; j < nt; j++) {
        let t = typical[j];
        var x = id;
        if (t.gpus != 0u && t.milli != 0u && model_ok(t.model_mask, m.model)) {
            var fitting = 0u;
            var too_small = 0u;
            for (var i = 0u; i < m.gpu_count; i++) {
                if (m.gpu_left[i] >= t.milli) {
                    fitting += 1u;
                } else {
                    too_small += m.gpu_left[i];
                }
            }
            if (fitting >= t.gpus && m.cpu_left >= t.cpu) {
                x = too_small;
            }
        }
        f += i32(t.count) * i32(x);
    }
    return f;
}

fn fgd_score(d: i32) -> i32 {
    var s = 0;
    for (var k = 1u; k <= 100u; k++) {
        if (d >= thresholds[k]) {
            s += 1;
        }
    }
    return s;
}

fn after_placing(n: NodeRecord, p: Pod, mask: u32) -> NodeRecord {
    var m = n;
    m.cpu_left -= p.cpu;
    m.mem_left -= p.mem;
    for (var i = 0u; i < m.gpu_count; i++) {
        if ((mask & (1u << i)) != 0u) {
            m.gpu_left[i] -= p.milli;
        }
    }
    return m;
}

fn lowest_fitting_gpus(n: NodeRecord, p: Pod) -> u32 {
    var m = n;
    var mask = 0u;
    var taken = 0u;
    for (var i = 0u; i < m.gpu_count; i++) {
        if (taken == p.gpus) {
            break;
        }
        if (m.gpu_left[i] >= p.milli) {
            mask |= 1u << i;
            taken += 1u;
        }
    }
    return mask;
}

fn score_fgd(n: NodeRecord, p: Pod) -> Scored {
    var m = n;
    let before = frag_scaled(m);
    if (is_sharing(p)) {
        var best = Scored(i32(-2147483647) - 1, 0u, 0u);
        for (var i = 0u; i < m.gpu_count; i++) {
            if (m.gpu_left[i] >= p.milli) {
                let s = fgd_score(before - frag_scaled(after_placing(m, p, 1u << i)));
                if (s > best.score) {
                    best = Scored(s, 1u << i, 0u);
                }
            }
        }
        return best;
    }
    var gpus = 0u;
    if (uses_gpu(p)) {
        gpus = lowest_fitting_gpus(m, p);
    }
    return Scored(fgd_score(before - frag_scaled(after_placing(m, p, gpus))), gpus, 0u);
}

fn score(policy: u32, n: NodeRecord, p: Pod) -> Scored {
    switch policy {
        case 0u: {
            return score_dot_product(n, p);
        }
        case 1u: {
            return Scored(score_gpu_clustering(n, p), 0u, 0u);
        }
        case 2u: {
            return Scored(score_gpu_packing(n, p), 0u, 0u);
        }
        case 3u: {
            return Scored(score_best_fit(n, p), 0u, 0u);
        }
        default: {
            return score_fgd(n, p);
        }
    }
}

fn workgroup_reduce(lid: u32) {
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        workgroupBarrier();
        if (lid < stride) {
            shared_w[lid] = merge(shared_w[lid], shared_w[lid + stride]);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(64)
fn score_nodes(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(workgroup_id) wid: vec3<u32>) {
    let i = gid.x;
    var w = none_winner();
    if (i < params.head.y) {
        let n = nodes[i];
        let p = the_pod();
        if (feasible(n, p)) {
            let s = score(POLICY, n, p);
            w = Winner(s.score, n.rank, i, s.gpus, s.ambiguous, 0u, 0u, 0u);
        }
    }
    shared_w[lid.x] = w;
    workgroup_reduce(lid.x);
    if (lid.x == 0u) {
        partials[wid.x] = shared_w[0];
    }
}

@compute @workgroup_size(64)
fn reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
    var w = none_winner();
    let groups = params.head.w;
    for (var i = lid.x; i < groups; i += WORKGROUP_SIZE) {
        w = merge(w, partials[i]);
    }
    shared_w[lid.x] = w;
    workgroup_reduce(lid.x);
    if (lid.x == 0u) {
        result[0] = shared_w[0];
    }
}

// GPUs the policy gives `p` on the chosen node `n` (`chosen_gpus` in src/kernel/node_score/mod.rs): whole-GPU
// pods their lowest-indexed fitting GPUs; sharing pods FGD's best GPU (`fgd_gpus`, from its score) or else the
// tightest fitting GPU (smallest free milli, lowest index on ties).
fn chosen_gpus(n: NodeRecord, p: Pod, fgd_gpus: u32) -> u32 {
    var m = n;
    if (!uses_gpu(p)) {
        return 0u;
    }
    if (!is_sharing(p)) {
        return lowest_fitting_gpus(m, p);
    }
    if (POLICY == POLICY_FGD) {
        return fgd_gpus;
    }
    var best = MAX_GPUS;
    for (var i = 0u; i < m.gpu_count; i++) {
        let left = m.gpu_left[i];
        if (left >= p.milli && (best == MAX_GPUS || left < m.gpu_left[best])) {
            best = i;
        }
    }
    if (best == MAX_GPUS) {
        return 0u;
    }
    return 1u << best;
}

fn first_experiment(policy: u32) -> u32 {
    if (policy < 4u) {
        return params.first0[policy];
    }
    return params.first1[policy - 4u];
}

// One workgroup per experiment of policy POLICY; at most `max_steps` attempts per dispatch (the host
// dispatches again until every experiment is done). A step: every thread scores its share of the nodes and
// keeps its best, the workgroup reduces (ties as in `better`), and thread 0 places the pod (node record,
// placement, cursor). A DotProduct rounding boundary among the feasible nodes stalls the experiment instead.
@compute @workgroup_size(256)
fn lockstep(@builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(workgroup_id) wid: vec3<u32>) {
    let e = first_experiment(POLICY) + wid.x;
    let num_nodes = params.head.y;
    let max_steps = params.head.w;
    for (var step = 0u; step < max_steps; step++) {
        if (lid.x == 0u) {
            let x = experiments[e];
            stop_flag = select(0u, 1u, x.stalled != 0u || x.cursor >= x.order_len);
        }
        if (workgroupUniformLoad(&stop_flag) != 0u) {
            break;
        }
        let x = experiments[e];
        let q = pods[orders[x.order_off + x.cursor]];
        let p = Pod(q.cpu, q.mem, q.gpus, q.milli, q.model_mask, q.tag);
        var w = none_winner();
        for (var i = lid.x; i < num_nodes; i += LOCKSTEP_SIZE) {
            let n = grid_nodes[x.node_off + i];
            if (feasible(n, p)) {
                let s = score(POLICY, n, p);
                w = merge(w, Winner(s.score, n.rank, i, s.gpus, s.ambiguous, 0u, 0u, 0u));
            }
        }
        shared_l[lid.x] = w;
        for (var stride = LOCKSTEP_SIZE / 2u; stride > 0u; stride /= 2u) {
            workgroupBarrier();
            if (lid.x < stride) {
                shared_l[lid.x] = merge(shared_l[lid.x], shared_l[lid.x + stride]);
            }
        }
        workgroupBarrier();
        if (lid.x == 0u) {
            let b = shared_l[0];
            let slot = x.order_off + x.cursor;
            if (b.ambiguous != 0u) {
                experiments[e].stalled = 1u;
            } else {
                if (b.node == NO_NODE) {
                    placements[slot] = vec2<u32>(NO_NODE, 0u);
                } else {
                    let n = grid_nodes[x.node_off + b.node];
                    let mask = chosen_gpus(n, p, b.gpus);
                    var after = after_placing(n, p, mask);
                    after.tags |= p.tag;
                    after.version += 1u;
                    grid_nodes[x.node_off + b.node] = after;
                    placements[slot] = vec2<u32>(b.node, mask);
                }
                experiments[e].cursor = x.cursor + 1u;
            }
        }
        // Thread 0's writes (node, cursor) are seen by the whole workgroup in the next step.
        storageBarrier();
    }
}
