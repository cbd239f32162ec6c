//! Lockstep grids: every experiment of a frag-study grid (scored policies x seeds on one trace) placed on the
//! device at once, with no readback per pod (issue 16, item 2).
//!
//! The shader's `lockstep` entry point (shaders/node_score.wgsl) runs one workgroup per experiment: each step
//! scores the experiment's next pod against its nodes, reduces to the winner (the ties of `better`), and
//! thread 0 applies it: the node record, the placement and the cursor stay in device buffers. One dispatch
//! per policy present (pipelines specialised by the `POLICY` override, as for `score_nodes`) advances every
//! experiment by a few attempts (`set_lockstep_steps`); a round records dispatches back to back for up to
//! `STEPS_PER_ROUND` attempts, then the host reads back the experiments' cursors (32 bytes each); at the end
//! it reads the placements (8 bytes per attempt).
//!
//! A DotProduct rounding boundary among the feasible nodes (where f64 decides, see `dot_product_int`) stalls
//! that experiment: the host reads back its nodes, decides the pod with `CpuNodeScorer` (the f64 reference),
//! writes the node, placement and cursor, and dispatches again; the others go on meanwhile.
//!
//! The CPU side of the same rule is `engine::fgd::run` (one experiment, one pod at a time): a lockstep step is
//! that loop's body. `engine::fgd::replay_placements` turns the placements into the same `Outcome`, checking
//! each against the cluster as the earlier ones left it; tests/node_score_conformance.rs compares the two.

use super::*;

/// Attempts each experiment advances by per dispatch at most on a hardware adapter (a dispatch stays short, for
/// drivers with a watchdog).
const STEPS_PER_DISPATCH: u32 = 64;
/// Most attempts per round (dispatches recorded back to back, then the cursors read back once). A round
/// halves (down to `MIN_STEPS_PER_ROUND`) after one in which an experiment stalled, since a stalled
/// experiment waits for the round's end, and doubles back after one without; it never records more steps
/// than the longest unfinished experiment has left.
const STEPS_PER_ROUND: u32 = 2048;
/// Fewest attempts per round.
const MIN_STEPS_PER_ROUND: u32 = 32;

/// `struct Experiment` of the shader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
struct GpuExperiment {
    order_off: u32,
    order_len: u32,
    node_off: u32,
    cursor: u32,
    stalled: u32,
    _pad: [u32; 3],
}

/// One experiment of a lockstep grid.
#[derive(Clone, Debug, PartialEq)]
pub struct LockstepExperiment {
    /// Scored policy id (`POLICY_DOT_PRODUCT` ..= `POLICY_FGD`).
    pub policy: u32,
    /// The nodes before the first attempt, tie-break ranks set. Every experiment of a grid has as many.
    pub nodes: Vec<NodeRecord>,
    /// Pod ids (indices into `LockstepGrid::pods`) in attempt order.
    pub order: Vec<u32>,
}

/// A grid of experiments on one trace.
#[derive(Clone, Copy, Debug)]
pub struct LockstepGrid<'a> {
    /// The trace's pods.
    pub pods: &'a [PodRecord],
    /// The trace's typical pods (FGD).
    pub typical: &'a [TypicalRecord],
    /// The experiments.
    pub experiments: &'a [LockstepExperiment],
}

/// What a lockstep grid decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockstepRun {
    /// Per experiment (in the grid's order), per attempt: the node and GPU mask, or `None` when the pod failed.
    pub placements: Vec<Vec<Option<(u32, u32)>>>,
    /// Attempts decided on the device.
    pub on_device: u64,
    /// Attempts decided on the CPU (DotProduct rounding boundaries).
    pub on_cpu: u64,
    /// Submissions (each: one dispatch per policy present, then the cursors read back).
    pub rounds: u64,
}

fn storage(
    device: &wgpu::Device,
    label: &str,
    extra: wgpu::BufferUsages,
    bytes: u64,
) -> wgpu::Buffer {
    create_buffer(device, label, wgpu::BufferUsages::STORAGE | extra, bytes)
}

impl GpuNodeScorer {
    /// Places every experiment of `grid` on the device. `Ok(None)` when the grid cannot run there (nodes
    /// outside the integer domain, FGD thresholds not exact, experiments with different node counts, a policy
    /// id out of range, more experiments or bytes than the device's limits); the caller then runs it on the
    /// CPU. The device's buffers for the grid are dropped before this returns. A device error is also kept in
    /// `last_error`.
    pub fn lockstep(
        &mut self,
        grid: &LockstepGrid<'_>,
    ) -> Result<Option<LockstepRun>, KernelError> {
        let out = self.try_lockstep(grid);
        if let Err(e) = &out {
            self.last_error = Some(e.to_string());
        }
        out
    }

    /// Attempts a lockstep dispatch advances each experiment by (at least 1). The default is 64 on a hardware
    /// adapter and 1 on a software one. On Mesa's llvmpipe (lavapipe) a workgroup that ran 2,048 steps had
    /// its loops cut short, silently, after a fixed amount of loop work (deterministically: ~620 DotProduct
    /// steps of the default trace, ~50 FGD steps), the winner of that step lost and the loops ended: the
    /// behaviour of a bound on loop iterations per invocation (gallivm's loop limiter, 65,535 iterations,
    /// is the likely cause). One step per dispatch stays far inside it. Tests set more steps where they stay
    /// inside the bound.
    pub fn set_lockstep_steps(&mut self, steps: u32) {
        self.lockstep_steps = Some(steps.max(1));
    }

    /// Records an error found in what the device returned (by a caller checking its results).
    pub fn note_error(&mut self, error: String) {
        self.last_error = Some(error);
    }

    fn try_lockstep(
        &mut self,
        grid: &LockstepGrid<'_>,
    ) -> Result<Option<LockstepRun>, KernelError> {
        let exps = grid.experiments;
        let Some(first) = exps.first() else {
            return Ok(Some(LockstepRun::default()));
        };
        let num_nodes = first.nodes.len();
        let npods = grid.pods.len();
        if exps.iter().any(|x| {
            x.nodes.len() != num_nodes
                || x.policy >= POLICY_COUNT
                || !x.nodes.iter().all(in_integer_domain)
                || x.order.iter().any(|&p| p as usize >= npods)
        }) {
            return Ok(None);
        }
        if num_nodes == 0 {
            // Nothing fits anywhere: every attempt fails.
            return Ok(Some(LockstepRun {
                placements: exps.iter().map(|x| vec![None; x.order.len()]).collect(),
                ..LockstepRun::default()
            }));
        }
        let num_typical = if exps.iter().any(|x| x.policy == POLICY_FGD) {
            if grid.typical.is_empty() || !self.prepare_fgd(grid.typical) {
                return Ok(None);
            }
            grid.typical.len() as u32
        } else {
            0
        };
        // Experiments sorted by policy, so each policy's are one run of workgroups.
        let mut by_policy: Vec<usize> = (0..exps.len()).collect();
        by_policy.sort_by_key(|&i| exps[i].policy);
        let mut count = [0u32; 8];
        for x in exps {
            count[x.policy as usize] += 1;
        }
        let mut firsts = [0u32; 8];
        for p in 1..8 {
            firsts[p] = firsts[p - 1] + count[p - 1];
        }
        let attempts: usize = exps.iter().map(|x| x.order.len()).sum();
        let node_bytes = (exps.len() * num_nodes * std::mem::size_of::<NodeRecord>()) as u64;
        let placement_bytes = (attempts * 8) as u64;
        if count.iter().any(|&c| c > self.max_groups)
            || node_bytes > self.max_binding
            || placement_bytes > self.max_binding
            || std::mem::size_of_val(grid.pods) as u64 > self.max_binding
            || u32::try_from(attempts).is_err()
        {
            return Ok(None);
        }

        // Device state: nodes, experiments, orders and placements laid out in policy order.
        let mut nodes: Vec<NodeRecord> = Vec::with_capacity(exps.len() * num_nodes);
        let mut orders: Vec<u32> = Vec::with_capacity(attempts);
        let mut state: Vec<GpuExperiment> = Vec::with_capacity(exps.len());
        for &i in &by_policy {
            let x = &exps[i];
            state.push(GpuExperiment {
                order_off: orders.len() as u32,
                order_len: x.order.len() as u32,
                node_off: nodes.len() as u32,
                ..GpuExperiment::default()
            });
            nodes.extend_from_slice(&x.nodes);
            orders.extend_from_slice(&x.order);
        }
        use wgpu::BufferUsages as U;
        let dev = &self.device;
        let grid_nodes = storage(dev, "grid nodes", U::COPY_DST | U::COPY_SRC, node_bytes);
        let experiments = storage(
            dev,
            "experiments",
            U::COPY_DST | U::COPY_SRC,
            std::mem::size_of_val(state.as_slice()) as u64,
        );
        let orders_buf = storage(dev, "orders", U::COPY_DST, (orders.len() * 4) as u64);
        let pods = storage(
            dev,
            "pods",
            U::COPY_DST,
            std::mem::size_of_val(grid.pods) as u64,
        );
        let placements = storage(
            dev,
            "placements",
            U::COPY_SRC | U::COPY_DST,
            placement_bytes,
        );
        let params = create_buffer(dev, "lockstep params", U::UNIFORM | U::COPY_DST, 256);
        let unused_ro = storage(dev, "unused", U::empty(), 256);
        let unused_rw = [
            storage(dev, "unused", U::empty(), 256),
            storage(dev, "unused", U::empty(), 256),
        ];
        self.queue
            .write_buffer(&grid_nodes, 0, bytemuck::cast_slice(&nodes));
        self.queue
            .write_buffer(&experiments, 0, bytemuck::cast_slice(&state));
        if !orders.is_empty() {
            self.queue
                .write_buffer(&orders_buf, 0, bytemuck::cast_slice(&orders));
        }
        if !grid.pods.is_empty() {
            self.queue
                .write_buffer(&pods, 0, bytemuck::cast_slice(grid.pods));
        }
        let steps =
            self.lockstep_steps
                .unwrap_or(if self.software { 1 } else { STEPS_PER_DISPATCH });
        let head = [0, num_nodes as u32, num_typical, steps];
        let p = GpuParams {
            head,
            first: firsts,
            ..GpuParams::default()
        };
        self.queue.write_buffer(&params, 0, bytemuck::bytes_of(&p));
        drop(nodes);
        drop(orders);

        self.build_lockstep()?;
        let Some((layout, pipelines)) = self.lockstep.as_ref() else {
            return Err(KernelError::Device("lockstep pipelines missing".into()));
        };
        let buffers = [
            &params,
            &unused_ro,
            &self.typical,
            &self.thresholds,
            &self.table,
            &unused_rw[0],
            &unused_rw[1],
            &grid_nodes,
            &experiments,
            &orders_buf,
            &pods,
            &placements,
        ];
        let bind_group = bind_buffers(&self.device, layout, "lockstep bind group", &buffers);

        let mut run = LockstepRun::default();
        let mut round_steps = STEPS_PER_ROUND;
        let mut host = CpuNodeScorer::new();
        let node_size = std::mem::size_of::<NodeRecord>() as u64;
        loop {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("lockstep"),
                    timestamp_writes: None,
                });
                pass.set_bind_group(0, &bind_group, &[]);
                // Policies with work left, and the most attempts any of their experiments has left.
                let mut busy = [false; 8];
                let mut left = 0;
                for (k, x) in state.iter().enumerate() {
                    if x.cursor < x.order_len {
                        busy[exps[by_policy[k]].policy as usize] = true;
                        left = left.max(x.order_len - x.cursor);
                    }
                }
                for _ in 0..round_steps.min(left).div_ceil(steps) {
                    for (policy, &c) in count.iter().enumerate().take(POLICY_COUNT as usize) {
                        if c > 0 && busy[policy] {
                            pass.set_pipeline(&pipelines[policy]);
                            pass.dispatch_workgroups(c, 1, 1);
                        }
                    }
                }
            }
            self.queue.submit([encoder.finish()]);
            run.rounds += 1;
            let before: u64 = state.iter().map(|x| u64::from(x.cursor)).sum();
            let bytes = self.read_back(&[(
                &experiments,
                0,
                std::mem::size_of_val(state.as_slice()) as u64,
            )])?;
            let now: Vec<GpuExperiment> = bytemuck::pod_collect_to_vec(&bytes);
            if now.len() != state.len()
                || now.iter().zip(&state).any(|(n, s)| {
                    n.cursor < s.cursor || n.cursor > n.order_len || n.order_off != s.order_off
                })
            {
                return Err(KernelError::Device(
                    "lockstep: experiment records corrupted".into(),
                ));
            }
            state = now;
            let stalled: Vec<usize> = (0..state.len())
                .filter(|&k| state[k].stalled != 0)
                .collect();
            round_steps = if stalled.is_empty() {
                (round_steps * 2).min(STEPS_PER_ROUND)
            } else {
                (round_steps / 2).max(MIN_STEPS_PER_ROUND)
            };
            if stalled.is_empty() {
                if state.iter().all(|x| x.cursor == x.order_len) {
                    break;
                }
                let after: u64 = state.iter().map(|x| u64::from(x.cursor)).sum();
                if after == before {
                    return Err(KernelError::Device(
                        "lockstep: no experiment advanced".into(),
                    ));
                }
                continue;
            }
            // The stalled experiments' pods are decided here, on their nodes as the device holds them.
            let copies: Vec<(&wgpu::Buffer, u64, u64)> = stalled
                .iter()
                .map(|&k| {
                    (
                        &grid_nodes,
                        u64::from(state[k].node_off) * node_size,
                        num_nodes as u64 * node_size,
                    )
                })
                .collect();
            let bytes = self.read_back(&copies)?;
            let all: Vec<NodeRecord> = bytemuck::pod_collect_to_vec(&bytes);
            for (j, &k) in stalled.iter().enumerate() {
                let x = &exps[by_policy[k]];
                let s = state[k];
                let ns = &all[j * num_nodes..(j + 1) * num_nodes];
                let pod = &grid.pods[x.order[s.cursor as usize] as usize];
                let frag: Vec<f64> = if x.policy == POLICY_FGD {
                    ns.iter().map(|n| node_frag(n, grid.typical)).collect()
                } else {
                    Vec::new()
                };
                let fgd = FgdInputs {
                    typical: grid.typical,
                    node_frag: &frag,
                };
                host.reset();
                let w = host.best_node(x.policy, pod, ns, &fgd);
                let slot = u64::from(s.order_off + s.cursor) * 8;
                let placed = if w.is_feasible() {
                    let ni = w.node as usize;
                    let f = frag.get(ni).copied().unwrap_or(0.0);
                    let mask = chosen_gpus(x.policy, &ns[ni], pod, grid.typical, f);
                    let mut after = after_placing(&ns[ni], pod, mask);
                    after.tags |= pod.tag;
                    after.version += 1;
                    self.queue.write_buffer(
                        &grid_nodes,
                        (u64::from(s.node_off) + ni as u64) * node_size,
                        bytemuck::bytes_of(&after),
                    );
                    [w.node, mask]
                } else {
                    [NO_NODE, 0]
                };
                self.queue
                    .write_buffer(&placements, slot, bytemuck::cast_slice(&placed));
                let next = GpuExperiment {
                    cursor: s.cursor + 1,
                    stalled: 0,
                    ..s
                };
                state[k] = next;
                self.queue.write_buffer(
                    &experiments,
                    (k * std::mem::size_of::<GpuExperiment>()) as u64,
                    bytemuck::bytes_of(&next),
                );
                run.on_cpu += 1;
            }
        }
        let bytes = if attempts == 0 {
            Vec::new()
        } else {
            self.read_back(&[(&placements, 0, placement_bytes)])?
        };
        let flat: Vec<[u32; 2]> = bytemuck::pod_collect_to_vec(&bytes);
        run.placements = vec![Vec::new(); exps.len()];
        for (k, s) in state.iter().enumerate() {
            let slice = &flat[s.order_off as usize..(s.order_off + s.order_len) as usize];
            run.placements[by_policy[k]] = slice
                .iter()
                .map(|&[node, mask]| (node != NO_NODE).then_some((node, mask)))
                .collect();
        }
        run.on_device = attempts as u64 - run.on_cpu;
        self.gpu_calls += run.on_device;
        self.fallbacks += run.on_cpu;
        Ok(Some(run))
    }

    /// Builds the lockstep layout (bindings 0..=11) and its pipelines, once.
    fn build_lockstep(&mut self) -> Result<(), KernelError> {
        if self.lockstep.is_some() {
            return Ok(());
        }
        use wgpu::BufferBindingType as T;
        let ro = T::Storage { read_only: true };
        let rw = T::Storage { read_only: false };
        let constants: Vec<[(&str, f64); 1]> = (0..POLICY_COUNT)
            .map(|p| [("POLICY", f64::from(p))])
            .collect();
        let entries: Vec<(&str, &[(&str, f64)])> =
            constants.iter().map(|c| ("lockstep", &c[..])).collect();
        let built = build_kernel(
            &self.device,
            "node_score lockstep",
            SHADER_SOURCE,
            &[T::Uniform, ro, ro, ro, ro, rw, rw, rw, rw, ro, ro, rw],
            &entries,
        )?;
        self.lockstep = Some((built.layout, built.pipelines));
        Ok(())
    }

    /// Copies `(buffer, offset, bytes)` ranges into one staging buffer and reads them back, concatenated.
    fn read_back(&self, ranges: &[(&wgpu::Buffer, u64, u64)]) -> Result<Vec<u8>, KernelError> {
        let total: u64 = ranges.iter().map(|r| r.2).sum();
        if total == 0 {
            return Ok(Vec::new());
        }
        let staging = create_buffer(
            &self.device,
            "lockstep staging",
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            total,
        );
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let mut at = 0;
        for &(buffer, offset, bytes) in ranges {
            encoder.copy_buffer_to_buffer(buffer, offset, &staging, at, bytes);
            at += bytes;
        }
        self.queue.submit([encoder.finish()]);
        self.map_staging(&staging, total, "lockstep")
    }
}
