//! GPU twin of the node-score kernel: shaders/node_score.wgsl through wgpu.
//!
//! Like `gpu::GpuBackend`: one device context, pipelines and buffers created once (node and partial buffers
//! grow in powers of two), inputs written with `queue.write_buffer` (nodes incrementally: only records that
//! changed since the last call), two dispatches (`score_nodes`, then `reduce`), and only the winner (32 bytes)
//! read back.
//!
//! Every decision is an integer and equals the integer twins of `node_score` (`IntCpuNodeScorer`), which in turn
//! equal `CpuNodeScorer`'s f64 scores (tests/node_score_conformance.rs). Where the integer formulation is not
//! proven exact the call is decided by the CPU scorer instead, and counted in [`GpuNodeScorer::fallbacks`]:
//! - a feasible node on a DotProduct rounding boundary (the kernel flags it; f64 decides those pods);
//! - inputs outside the integer domain (`in_integer_domain`), FGD typical counts too large for i32
//!   (`MAX_FGD_TOTAL`), more nodes than one dispatch grid holds;
//! - a device error (kept in [`GpuNodeScorer::last_error`]).

mod lockstep;

pub use lockstep::{LockstepExperiment, LockstepGrid, LockstepRun};

use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};

use super::*;
use crate::kernel::device::{build_kernel, describe_adapter, open_device, read_back};
use crate::kernel::placement::KernelError;

/// A bind group with `buffers[i]` whole at binding `i`.
fn bind_buffers(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    label: &str,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

/// The WGSL source of the kernel.
pub const SHADER_SOURCE: &str = include_str!("../../../shaders/node_score.wgsl");

/// Threads per workgroup (must match `WORKGROUP_SIZE` in the shader).
const WORKGROUP_SIZE: u32 = 64;
const MIN_BUFFER_BYTES: u64 = 256;

/// `struct Params` of the shader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct GpuParams {
    head: [u32; 4],
    pod0: [u32; 4],
    pod1: [u32; 4],
    /// Lockstep: index of the first experiment of each policy (0 elsewhere).
    first: [u32; 8],
}

/// `struct Typical` of the shader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
struct GpuTypical {
    cpu: u32,
    gpus: u32,
    milli: u32,
    model_mask: u32,
    count: u32,
    _pad: [u32; 3],
}

/// `struct Winner` of the shader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct GpuWinner {
    score: i32,
    rank: u32,
    node: u32,
    gpus: u32,
    ambiguous: u32,
    _pad: [u32; 3],
}

fn create_buffer(
    device: &wgpu::Device,
    label: &str,
    usage: wgpu::BufferUsages,
    size: u64,
) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(MIN_BUFFER_BYTES),
        usage,
        mapped_at_creation: false,
    })
}

/// The wgpu node scorer. Build with [`GpuNodeScorer::new`]; use through `NodeScoreBackend`.
pub struct GpuNodeScorer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    software: bool,
    adapter_name: String,
    max_groups: u32,
    max_binding: u64,
    layout: wgpu::BindGroupLayout,
    /// `score_nodes` specialised for each policy (the `POLICY` override constant, by policy id).
    score_pipelines: Vec<wgpu::ComputePipeline>,
    reduce_pipeline: wgpu::ComputePipeline,
    params: wgpu::Buffer,
    nodes: wgpu::Buffer,
    typical: wgpu::Buffer,
    thresholds: wgpu::Buffer,
    table: wgpu::Buffer,
    partials: wgpu::Buffer,
    result: wgpu::Buffer,
    staging: wgpu::Buffer,
    bind_group: Option<wgpu::BindGroup>,
    errors: Arc<Mutex<Vec<String>>>,
    /// What the device's node buffer holds (for incremental uploads).
    uploaded: Vec<NodeRecord>,
    /// Typical pods on the device and whether their thresholds are usable.
    fgd_key: Option<(Vec<GpuTypical>, bool)>,
    fallback: CpuNodeScorer,
    fallbacks: u64,
    gpu_calls: u64,
    last_error: Option<String>,
    last_gpus: u32,
    /// The lockstep layout and its pipelines (one per policy), built on first use.
    lockstep: Option<(wgpu::BindGroupLayout, Vec<wgpu::ComputePipeline>)>,
    /// Attempts per lockstep dispatch, when set (`set_lockstep_steps`).
    lockstep_steps: Option<u32>,
}

impl GpuNodeScorer {
    /// Acquires an adapter from the environment (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`) and
    /// builds the kernel. `KernelError::NoAdapter` when there is none.
    pub fn new() -> Result<GpuNodeScorer, KernelError> {
        let (device, queue, info) = open_device("ultrasched node score")?;
        GpuNodeScorer::with_device(device, queue, &info)
    }

    /// Builds the kernel on a device the caller holds.
    pub fn with_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: &wgpu::AdapterInfo,
    ) -> Result<GpuNodeScorer, KernelError> {
        use wgpu::BufferBindingType as T;
        let ro = T::Storage { read_only: true };
        let rw = T::Storage { read_only: false };
        // One `score_nodes` pipeline per policy, the policy an override constant: each pipeline holds only its
        // policy's code after specialisation. (One pipeline branching on the policy at run time made
        // Mesa's lavapipe grow by ~0.5 MB per dispatch, without bound; the specialised ones do not.)
        let constants: Vec<[(&str, f64); 1]> = (0..POLICY_COUNT)
            .map(|p| [("POLICY", f64::from(p))])
            .collect();
        let mut entries: Vec<(&str, &[(&str, f64)])> =
            constants.iter().map(|c| ("score_nodes", &c[..])).collect();
        entries.push(("reduce", &[]));
        let built = build_kernel(
            &device,
            "node_score",
            SHADER_SOURCE,
            &[T::Uniform, ro, ro, ro, ro, rw, rw],
            &entries,
        )?;
        let (errors, layout) = (built.errors, built.layout);
        let mut score_pipelines = built.pipelines;
        let reduce_pipeline = score_pipelines
            .pop()
            .filter(|_| score_pipelines.len() == POLICY_COUNT as usize)
            .ok_or_else(|| KernelError::Device("node_score: expected six pipelines".into()))?;
        use wgpu::BufferUsages as U;
        let params = create_buffer(&device, "params", U::UNIFORM | U::COPY_DST, 256);
        let nodes = create_buffer(&device, "nodes", U::STORAGE | U::COPY_DST, 256);
        let typical = create_buffer(&device, "typical", U::STORAGE | U::COPY_DST, 256);
        let thresholds = create_buffer(&device, "thresholds", U::STORAGE | U::COPY_DST, 512);
        let table_words = &BestFitTable::get().words;
        let table = create_buffer(
            &device,
            "best_fit_table",
            U::STORAGE | U::COPY_DST,
            std::mem::size_of_val(table_words.as_slice()) as u64,
        );
        queue.write_buffer(&table, 0, bytemuck::cast_slice(table_words));
        let partials = create_buffer(&device, "partials", U::STORAGE, 256);
        let result = create_buffer(&device, "result", U::STORAGE | U::COPY_SRC, 256);
        let staging = create_buffer(&device, "staging", U::MAP_READ | U::COPY_DST, 256);
        let limits = device.limits();
        Ok(GpuNodeScorer {
            max_groups: limits.max_compute_workgroups_per_dimension.max(1),
            max_binding: limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size),
            device,
            queue,
            software: info.device_type == wgpu::DeviceType::Cpu,
            adapter_name: describe_adapter(info),
            layout,
            score_pipelines,
            reduce_pipeline,
            params,
            nodes,
            typical,
            thresholds,
            table,
            partials,
            result,
            staging,
            bind_group: None,
            errors,
            uploaded: Vec::new(),
            fgd_key: None,
            fallback: CpuNodeScorer::new(),
            fallbacks: 0,
            gpu_calls: 0,
            last_error: None,
            last_gpus: 0,
            lockstep: None,
            lockstep_steps: None,
        })
    }

    /// True when the adapter is a software device (e.g. Mesa lavapipe).
    pub fn is_software(&self) -> bool {
        self.software
    }

    /// "name, Backend" of the adapter.
    pub fn adapter(&self) -> &str {
        &self.adapter_name
    }

    /// Calls decided by the CPU scorer instead of the kernel (see the module docs).
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks
    }

    /// Calls decided by the kernel.
    pub fn gpu_calls(&self) -> u64 {
        self.gpu_calls
    }

    /// The last device error (the call was then decided on the CPU), if any.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// GPU mask the kernel chose with the last winner (FGD: its best GPU(s); 0 otherwise or after a fallback).
    pub fn last_gpus(&self) -> u32 {
        self.last_gpus
    }

    /// Uploads the typical pods and FGD thresholds when they changed; false when FGD cannot run on integers.
    fn prepare_fgd(&mut self, typical: &[TypicalRecord]) -> bool {
        let key: Vec<GpuTypical> = typical
            .iter()
            .map(|t| GpuTypical {
                cpu: t.cpu,
                gpus: t.gpus,
                milli: t.milli,
                model_mask: t.model_mask,
                count: t.count,
                _pad: [0; 3],
            })
            .collect();
        if let Some((k, ok)) = &self.fgd_key {
            if *k == key {
                return *ok;
            }
        }
        let ok = match FgdThresholds::new(typical) {
            Some(thr) => {
                let bytes = std::mem::size_of_val(key.as_slice()) as u64;
                if bytes > self.typical.size() {
                    self.typical = create_buffer(
                        &self.device,
                        "typical",
                        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                        bytes.next_power_of_two(),
                    );
                    self.bind_group = None;
                }
                self.queue
                    .write_buffer(&self.typical, 0, bytemuck::cast_slice(&key));
                self.queue
                    .write_buffer(&self.thresholds, 0, bytemuck::cast_slice(&thr.t));
                true
            }
            None => false,
        };
        self.fgd_key = Some((key, ok));
        ok
    }

    /// Writes the nodes that differ from what the device holds (all of them after a resize).
    fn upload_nodes(&mut self, nodes: &[NodeRecord]) {
        let bytes = std::mem::size_of_val(nodes) as u64;
        if bytes > self.nodes.size() {
            self.nodes = create_buffer(
                &self.device,
                "nodes",
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                bytes.next_power_of_two(),
            );
            self.bind_group = None;
            self.uploaded.clear();
        }
        if self.uploaded.len() != nodes.len() {
            self.queue
                .write_buffer(&self.nodes, 0, bytemuck::cast_slice(nodes));
            self.uploaded = nodes.to_vec();
            return;
        }
        let mut i = 0;
        while i < nodes.len() {
            if nodes[i] == self.uploaded[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < nodes.len() && nodes[i] != self.uploaded[i] {
                i += 1;
            }
            self.queue.write_buffer(
                &self.nodes,
                (start * std::mem::size_of::<NodeRecord>()) as u64,
                bytemuck::cast_slice(&nodes[start..i]),
            );
            self.uploaded[start..i].copy_from_slice(&nodes[start..i]);
        }
    }

    /// Waits for the submitted work, maps the first `bytes` of `staging` and returns them (device errors
    /// raised meanwhile are reported as errors of `what`).
    fn map_staging(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        what: &str,
    ) -> Result<Vec<u8>, KernelError> {
        Ok(read_back(
            &self.device,
            &self.errors,
            staging,
            bytes,
            what,
            <[u8]>::to_vec,
        )?)
    }

    /// The kernel's winner, or `Ok(None)` when this call must be decided on the CPU (outside the integer
    /// domain, or a DotProduct rounding boundary among the feasible nodes).
    pub fn try_best_node(
        &mut self,
        policy: u32,
        pod: &PodRecord,
        nodes: &[NodeRecord],
        fgd: &FgdInputs<'_>,
    ) -> Result<Option<(ScoreWinner, u32)>, KernelError> {
        if nodes.is_empty() {
            return Ok(Some((ScoreWinner::NONE, 0)));
        }
        let groups = nodes.len().div_ceil(WORKGROUP_SIZE as usize);
        let node_bytes = std::mem::size_of_val(nodes) as u64;
        if groups > self.max_groups as usize
            || node_bytes > self.max_binding
            || !nodes.iter().all(in_integer_domain)
        {
            return Ok(None);
        }
        let num_typical = if policy >= POLICY_FGD {
            if fgd.typical.is_empty() || !self.prepare_fgd(fgd.typical) {
                return Ok(None);
            }
            fgd.typical.len() as u32
        } else {
            0
        };
        self.upload_nodes(nodes);
        let partial_bytes = (groups * std::mem::size_of::<GpuWinner>()) as u64;
        if partial_bytes > self.partials.size() {
            self.partials = create_buffer(
                &self.device,
                "partials",
                wgpu::BufferUsages::STORAGE,
                partial_bytes.next_power_of_two(),
            );
            self.bind_group = None;
        }
        if self.bind_group.is_none() {
            let buffers = [
                &self.params,
                &self.nodes,
                &self.typical,
                &self.thresholds,
                &self.table,
                &self.partials,
                &self.result,
            ];
            self.bind_group = Some(bind_buffers(
                &self.device,
                &self.layout,
                "node_score bind group",
                &buffers,
            ));
        }
        let params = GpuParams {
            head: [policy, nodes.len() as u32, num_typical, groups as u32],
            pod0: [pod.cpu, pod.mem, pod.gpus, pod.milli],
            pod1: [pod.model_mask, pod.tag, pod.shape, 0],
            first: [0; 8],
        };
        self.queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));

        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("node_score"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, self.bind_group.as_ref(), &[]);
            let Some(score) = self.score_pipelines.get(policy as usize) else {
                return Err(KernelError::Device(format!(
                    "node_score: no policy {policy}"
                )));
            };
            pass.set_pipeline(score);
            pass.dispatch_workgroups(groups as u32, 1, 1);
            pass.set_pipeline(&self.reduce_pipeline);
            pass.dispatch_workgroups(1, 1, 1);
        }
        let bytes = std::mem::size_of::<GpuWinner>() as u64;
        encoder.copy_buffer_to_buffer(&self.result, 0, &self.staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let w: GpuWinner = bytemuck::pod_read_unaligned(&self.map_staging(
            &self.staging,
            bytes,
            "scoring nodes",
        )?);
        if w.ambiguous != 0 {
            return Ok(None);
        }
        if w.node == NO_NODE {
            return Ok(Some((ScoreWinner::NONE, 0)));
        }
        if w.node as usize >= nodes.len() {
            return Err(KernelError::Device(format!(
                "kernel returned node {} of {}",
                w.node,
                nodes.len()
            )));
        }
        Ok(Some((
            ScoreWinner {
                score: w.score,
                rank: w.rank,
                node: w.node,
            },
            w.gpus,
        )))
    }
}

impl NodeScoreBackend for GpuNodeScorer {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn reset(&mut self) {
        self.fallback.reset();
    }

    fn best_node(
        &mut self,
        policy: u32,
        pod: &PodRecord,
        nodes: &[NodeRecord],
        fgd: &FgdInputs<'_>,
    ) -> ScoreWinner {
        match self.try_best_node(policy, pod, nodes, fgd) {
            Ok(Some((w, gpus))) => {
                self.gpu_calls += 1;
                self.last_gpus = gpus;
                w
            }
            Ok(None) => {
                self.fallbacks += 1;
                self.last_gpus = 0;
                self.fallback.best_node(policy, pod, nodes, fgd)
            }
            Err(e) => {
                self.fallbacks += 1;
                self.last_gpus = 0;
                self.last_error = Some(e.to_string());
                // The device may have been left with a stale node buffer: upload everything next time.
                self.uploaded.clear();
                self.fallback.best_node(policy, pod, nodes, fgd)
            }
        }
    }
}
