//! GPU backend: shaders/placement_cost.wgsl through wgpu.
//!
//! Follows wgpu's `repeated_compute` example: the device, pipelines and buffers are created once and kept;
//! each call writes its inputs with `queue.write_buffer`, dispatches one workgroup per job, copies only the
//! winners to a `MAP_READ` staging buffer and reads them back. Buffers grow in powers of two and are reused.
//!
//! Candidates stay resident: the backend keeps a copy of what the device's candidate buffer holds, and a
//! call uploads only the runs of records that differ (nothing when the cluster did not change between
//! calls), so a round that changed a few domains sends a few records, not all.
//!
//! Device acquisition ([`GpuBackend::new`]) is separate from the kernel ([`GpuBackend::with_device`]), so tests
//! and embedders can pass their own device.

use super::*;
pub use crate::kernel::device::enumerate_adapters;
use crate::kernel::device::{build_kernel, describe_adapter, open_device, read_back, wait};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The WGSL source of the kernel.
pub const SHADER_SOURCE: &str = include_str!("../../../shaders/placement_cost.wgsl");

/// Smallest buffer the backend allocates (bytes); also the granularity of the size caps.
const MIN_BUFFER_BYTES: u64 = 256;

/// Host-side wall time of the phases of the last call (summed over its dispatches).
///
/// With [`GpuBackend::set_phase_sync`] on, the queue is drained between phases, so each phase is what it
/// says. Off (the default, one submission per dispatch), `upload` is only the host side of `write_buffer`
/// and `dispatch` also holds the transfers and the winners' copy.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timings {
    /// `write_buffer` of params, jobs and candidates (until the queue has executed it, with phase sync).
    pub upload: Duration,
    /// Compute pass submission until the results are ready to map.
    pub dispatch: Duration,
    /// Map of the staging buffer and copy into the caller's vector (and the copy to staging, with phase sync).
    pub readback: Duration,
}

impl Timings {
    /// Sum of the three phases.
    pub fn total(&self) -> Duration {
        self.upload + self.dispatch + self.readback
    }
}

/// One reusable device buffer that grows in powers of two, capped at what the device can bind.
struct GrowBuffer {
    label: &'static str,
    usage: wgpu::BufferUsages,
    /// Largest size this buffer may take (bytes, a multiple of `MIN_BUFFER_BYTES`).
    cap: u64,
    buffer: wgpu::Buffer,
}

impl GrowBuffer {
    fn new(
        device: &wgpu::Device,
        label: &'static str,
        usage: wgpu::BufferUsages,
        cap: u64,
    ) -> GrowBuffer {
        let buffer = create_buffer(device, label, usage, MIN_BUFFER_BYTES);
        GrowBuffer {
            label,
            usage,
            cap,
            buffer,
        }
    }

    /// Makes room for `bytes`; returns true when the buffer was replaced (bind groups must be rebuilt).
    /// Callers check `bytes <= cap` first.
    fn ensure(&mut self, device: &wgpu::Device, bytes: u64) -> bool {
        if bytes <= self.buffer.size() {
            return false;
        }
        let size = bytes.next_power_of_two().min(self.cap).max(bytes);
        self.buffer = create_buffer(device, self.label, self.usage, size);
        true
    }
}

fn create_buffer(
    device: &wgpu::Device,
    label: &str,
    usage: wgpu::BufferUsages,
    size: u64,
) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage,
        mapped_at_creation: false,
    })
}

/// The wgpu backend: one device context, two pipelines (`main` and the debug `pair_costs`), reused buffers.
pub struct GpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// The adapter is a software rasteriser (lavapipe, llvmpipe, WARP): correct but not fast.
    software: bool,
    adapter_name: String,
    limits: wgpu::Limits,
    layout: wgpu::BindGroupLayout,
    main_pipeline: wgpu::ComputePipeline,
    costs_pipeline: wgpu::ComputePipeline,
    params: wgpu::Buffer,
    jobs: GrowBuffer,
    candidates: GrowBuffer,
    winners: GrowBuffer,
    costs: GrowBuffer,
    staging: GrowBuffer,
    bind_group: Option<wgpu::BindGroup>,
    /// Errors the device reported outside an explicit check (validation, out of memory).
    errors: Arc<Mutex<Vec<String>>>,
    timings: Timings,
    /// Drain the queue between upload, dispatch and readback (benchmarks); off: one submission per dispatch.
    phase_sync: bool,
    /// What the device's candidate buffer holds (its first `resident.len()` records), so a call uploads
    /// only what changed; emptied whenever the buffer is replaced.
    resident: Vec<CandidateRecord>,
    /// Candidate records uploaded so far (all calls).
    uploaded_candidates: u64,
}

impl GpuBackend {
    /// Acquires an adapter from the environment (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`) or the
    /// default, and builds the kernel on it. `KernelError::NoAdapter` lists what was enumerated.
    pub fn new() -> Result<GpuBackend, KernelError> {
        let (device, queue, info) = open_device("ultrasched placement cost")?;
        GpuBackend::with_device(device, queue, &info)
    }

    /// True when the adapter is a software device (e.g. Mesa lavapipe) rather than a GPU.
    pub fn is_software(&self) -> bool {
        self.software
    }

    /// Builds the kernel on a device the caller already holds (tests, embedders).
    pub fn with_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: &wgpu::AdapterInfo,
    ) -> Result<GpuBackend, KernelError> {
        use wgpu::BufferBindingType as T;
        let ro = T::Storage { read_only: true };
        let rw = T::Storage { read_only: false };
        let built = build_kernel(
            &device,
            "placement_cost",
            SHADER_SOURCE,
            &[T::Uniform, ro, ro, rw, rw],
            &[("main", &[]), ("pair_costs", &[])],
        )?;
        let (errors, layout) = (built.errors, built.layout);
        let [main_pipeline, costs_pipeline]: [wgpu::ComputePipeline; 2] = built
            .pipelines
            .try_into()
            .map_err(|_| KernelError::Device("placement_cost: expected two pipelines".into()))?;

        let limits = device.limits();
        let bind_cap = storage_cap(&limits);
        let buffer_cap = round_down(limits.max_buffer_size);
        use wgpu::BufferUsages as U;
        let params = create_buffer(
            &device,
            "params",
            U::UNIFORM | U::COPY_DST,
            MIN_BUFFER_BYTES,
        );
        let jobs = GrowBuffer::new(&device, "jobs", U::STORAGE | U::COPY_DST, bind_cap);
        let candidates = GrowBuffer::new(&device, "candidates", U::STORAGE | U::COPY_DST, bind_cap);
        let winners = GrowBuffer::new(&device, "winners", U::STORAGE | U::COPY_SRC, bind_cap);
        let costs = GrowBuffer::new(&device, "costs", U::STORAGE | U::COPY_SRC, bind_cap);
        let staging = GrowBuffer::new(&device, "staging", U::MAP_READ | U::COPY_DST, buffer_cap);
        Ok(GpuBackend {
            device,
            queue,
            adapter_name: describe_adapter(info),
            software: info.device_type == wgpu::DeviceType::Cpu,
            limits,
            layout,
            main_pipeline,
            costs_pipeline,
            params,
            jobs,
            candidates,
            winners,
            costs,
            staging,
            bind_group: None,
            errors,
            timings: Timings::default(),
            phase_sync: false,
            resident: Vec::new(),
            uploaded_candidates: 0,
        })
    }

    /// Waits for the queue between phases so [`Timings`] splits them exactly (costs two extra round trips
    /// per dispatch; benchmarks turn it on, the simulator leaves it off).
    pub fn set_phase_sync(&mut self, on: bool) {
        self.phase_sync = on;
    }

    /// Wall time of the phases of the last `best_candidates` or `pair_costs` call.
    pub fn last_timings(&self) -> Timings {
        self.timings
    }

    /// Candidate records uploaded so far, over all calls (resident state: unchanged records are not sent).
    pub fn uploaded_candidates(&self) -> u64 {
        self.uploaded_candidates
    }

    /// Forgets what the device holds, so the next call uploads every candidate (benchmarks compare).
    pub fn drop_resident(&mut self) {
        self.resident.clear();
    }

    /// The runs of `candidates` the device does not hold yet (records past the resident copy's end all
    /// count as changed), in order. Runs closer than `MERGE_GAP` records are merged (one write of a few
    /// unchanged records costs less than another write), and past `MAX_RUNS` runs the rest goes as one.
    /// Empty when nothing changed.
    fn changed_runs(&self, candidates: &[CandidateRecord]) -> Vec<std::ops::Range<usize>> {
        const MERGE_GAP: usize = 32;
        const MAX_RUNS: usize = 256;
        let r = &self.resident;
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            if r.get(i) == Some(c) {
                continue;
            }
            let full = runs.len() >= MAX_RUNS;
            match runs.last_mut() {
                Some(last) if i - last.end < MERGE_GAP || full => last.end = i + 1,
                _ => runs.push(i..i + 1),
            }
        }
        runs
    }

    /// The device limits the backend runs under.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Runs under stricter limits than the device's (the smaller of each): bounds the size of one dispatch,
    /// and lets tests exercise batch splitting, 2D grids and `TooLarge` on any device.
    pub fn restrict_limits(&mut self, limits: &wgpu::Limits) {
        let l = &mut self.limits;
        l.max_storage_buffer_binding_size = l
            .max_storage_buffer_binding_size
            .min(limits.max_storage_buffer_binding_size);
        l.max_buffer_size = l.max_buffer_size.min(limits.max_buffer_size);
        l.max_compute_workgroups_per_dimension = l
            .max_compute_workgroups_per_dimension
            .min(limits.max_compute_workgroups_per_dimension);
        let bind_cap = storage_cap(l);
        for b in [
            &mut self.jobs,
            &mut self.candidates,
            &mut self.winners,
            &mut self.costs,
        ] {
            b.cap = bind_cap;
        }
        self.staging.cap = round_down(l.max_buffer_size);
    }

    /// Most jobs one dispatch takes: bounded by the storage binding of jobs and winners and the 2D grid.
    fn jobs_per_dispatch(&self) -> usize {
        let cap = storage_cap(&self.limits);
        let by_jobs = cap / size_of::<JobRecord>() as u64;
        let by_winners = cap / size_of::<Winner>() as u64;
        let by_staging = round_down(self.limits.max_buffer_size) / size_of::<Winner>() as u64;
        let dim = u64::from(self.limits.max_compute_workgroups_per_dimension.max(1));
        let n = by_jobs
            .min(by_winners)
            .min(by_staging)
            .min(dim * dim)
            .min(u64::from(u32::MAX));
        usize::try_from(n).unwrap_or(usize::MAX).max(1)
    }

    /// Checks the candidate set fits one binding (every workgroup reads all of them).
    fn check_candidates(
        &self,
        n: usize,
        extra_bytes_per_candidate: u64,
    ) -> Result<(), KernelError> {
        let cap = storage_cap(&self.limits);
        let bytes = (n as u64).saturating_mul(size_of::<CandidateRecord>() as u64);
        let extra = (n as u64).saturating_mul(extra_bytes_per_candidate);
        let dim = u64::from(self.limits.max_compute_workgroups_per_dimension.max(1));
        let grid = (n as u64).div_ceil(u64::from(WORKGROUP_SIZE)) > dim * dim;
        if n > u32::MAX as usize / 2 || bytes > cap || extra > cap || grid {
            return Err(KernelError::TooLarge(format!(
                "{n} candidates need {bytes} bytes in one storage binding; {} binds at most {cap} bytes \
                 (max_storage_buffer_binding_size): use fewer candidates per round or the cpu backend",
                self.adapter_name
            )));
        }
        Ok(())
    }

    /// Grows the buffers for the given byte sizes and rebuilds the bind group when any was replaced.
    fn prepare(&mut self, jobs: u64, candidates: u64, winners: u64, costs: u64, staging: u64) {
        let mut grew = self.bind_group.is_none();
        grew |= self.jobs.ensure(&self.device, jobs);
        if self.candidates.ensure(&self.device, candidates) {
            self.resident.clear(); // a new buffer holds nothing yet
            grew = true;
        }
        grew |= self.winners.ensure(&self.device, winners);
        grew |= self.costs.ensure(&self.device, costs);
        self.staging.ensure(&self.device, staging);
        if grew {
            self.bind_group = Some(self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("placement_cost bind group"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: self.params.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: self.jobs.buffer.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: self.candidates.buffer.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: self.winners.buffer.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: self.costs.buffer.as_entire_binding(),
                    },
                ],
            }));
        }
    }

    /// Waits until the queue has executed everything submitted, then reports any device error.
    fn wait(&self, what: &str) -> Result<(), KernelError> {
        Ok(wait(&self.device, &self.errors, what)?)
    }

    /// Runs one dispatch: `upload` writes the inputs, a compute pass of `pipeline` over `workgroups`
    /// workgroups (a 2D grid when one dimension is not enough), a copy of `bytes` from `src` to the staging
    /// buffer, then `read` sees the mapped bytes.
    fn execute(
        &self,
        upload: impl FnOnce(&wgpu::Queue),
        pipeline: &wgpu::ComputePipeline,
        workgroups: u32,
        src: &wgpu::Buffer,
        bytes: u64,
        read: impl FnOnce(&[u8]),
    ) -> Result<Timings, KernelError> {
        let t0 = Instant::now();
        upload(&self.queue);
        if self.phase_sync {
            self.queue.submit([]);
            self.wait("uploading")?;
        }
        let t1 = Instant::now();

        let dim = self.limits.max_compute_workgroups_per_dimension.max(1);
        let x = workgroups.min(dim);
        let y = workgroups.div_ceil(x.max(1));
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("placement_cost"),
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, self.bind_group.as_ref(), &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
        if self.phase_sync {
            self.queue.submit([encoder.finish()]);
            self.wait("dispatching")?;
            encoder = self.device.create_command_encoder(&Default::default());
        }
        let t2 = Instant::now();

        encoder.copy_buffer_to_buffer(src, 0, &self.staging.buffer, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let t3 = read_back(
            &self.device,
            &self.errors,
            &self.staging.buffer,
            bytes,
            "reading back",
            |view| {
                let t3 = Instant::now();
                read(view);
                t3
            },
        )?;
        Ok(if self.phase_sync {
            Timings {
                upload: t1 - t0,
                dispatch: t2 - t1,
                readback: t2.elapsed(),
            }
        } else {
            Timings {
                upload: t1 - t0,
                dispatch: t3 - t1,
                readback: t3.elapsed(),
            }
        })
    }

    fn write_params(&self, policy: u32, num_jobs: usize, num_candidates: usize) {
        let params = Params {
            policy,
            num_jobs: num_jobs as u32,
            num_candidates: num_candidates as u32,
            _pad: 0,
        };
        self.queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
    }

    /// Debug path: the cost of every candidate for one job (entry point `pair_costs`), so `--verify` can name
    /// the first pair where GPU and CPU disagree.
    pub fn pair_costs(
        &mut self,
        policy: u32,
        job: &JobRecord,
        candidates: &[CandidateRecord],
    ) -> Result<Vec<u32>, KernelError> {
        self.timings = Timings::default();
        let n = candidates.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        self.check_candidates(n, size_of::<u32>() as u64)?;
        let cost_bytes = (n * size_of::<u32>()) as u64;
        let candidate_bytes = std::mem::size_of_val(candidates) as u64;
        self.prepare(16, candidate_bytes, 8, cost_bytes, cost_bytes);

        let mut costs = Vec::with_capacity(n);
        let mut resident = Vec::new();
        self.timings = self.execute(
            |queue| {
                self.write_params(policy, 1, n);
                queue.write_buffer(&self.jobs.buffer, 0, bytemuck::bytes_of(job));
                queue.write_buffer(&self.candidates.buffer, 0, bytemuck::cast_slice(candidates));
                resident = candidates.to_vec();
            },
            &self.costs_pipeline,
            n.div_ceil(WORKGROUP_SIZE as usize) as u32,
            &self.costs.buffer,
            cost_bytes,
            |bytes| {
                costs.extend(
                    bytes
                        .chunks_exact(4)
                        .map(bytemuck::pod_read_unaligned::<u32>),
                )
            },
        )?;
        self.uploaded_candidates += n as u64;
        self.resident = resident;
        Ok(costs)
    }
}

/// The largest storage binding, rounded down to the allocation granularity.
fn storage_cap(limits: &wgpu::Limits) -> u64 {
    round_down(
        limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size),
    )
}

fn round_down(bytes: u64) -> u64 {
    (bytes / MIN_BUFFER_BYTES * MIN_BUFFER_BYTES).max(MIN_BUFFER_BYTES)
}

impl CostBackend for GpuBackend {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn adapter(&self) -> String {
        self.adapter_name.clone()
    }

    fn best_candidates(
        &mut self,
        policy: u32,
        jobs: &[JobRecord],
        candidates: &[CandidateRecord],
        out: &mut Vec<Winner>,
    ) -> Result<(), KernelError> {
        out.clear();
        self.timings = Timings::default();
        if jobs.is_empty() {
            return Ok(());
        }
        if candidates.is_empty() {
            out.resize(jobs.len(), Winner::NONE);
            return Ok(());
        }
        self.check_candidates(candidates.len(), 0)?;
        out.reserve(jobs.len());
        let per_dispatch = self.jobs_per_dispatch().min(jobs.len());
        self.prepare(
            (per_dispatch * size_of::<JobRecord>()) as u64,
            std::mem::size_of_val(candidates) as u64,
            (per_dispatch * size_of::<Winner>()) as u64,
            4,
            (per_dispatch * size_of::<Winner>()) as u64,
        );

        let mut timings = Timings::default();
        // Only what the device does not hold yet; every dispatch of a call reads the same candidates.
        let runs = self.changed_runs(candidates);
        for (k, chunk) in jobs.chunks(per_dispatch).enumerate() {
            let t = self.execute(
                |queue| {
                    self.write_params(policy, chunk.len(), candidates.len());
                    queue.write_buffer(&self.jobs.buffer, 0, bytemuck::cast_slice(chunk));
                    if k == 0 {
                        for run in &runs {
                            queue.write_buffer(
                                &self.candidates.buffer,
                                (run.start * size_of::<CandidateRecord>()) as u64,
                                bytemuck::cast_slice(&candidates[run.clone()]),
                            );
                        }
                    }
                },
                &self.main_pipeline,
                chunk.len() as u32,
                &self.winners.buffer,
                (chunk.len() * size_of::<Winner>()) as u64,
                |b| {
                    let winners = b.chunks_exact(size_of::<Winner>());
                    out.extend(winners.map(bytemuck::pod_read_unaligned::<Winner>));
                },
            )?;
            timings.upload += t.upload;
            timings.dispatch += t.dispatch;
            timings.readback += t.readback;
        }
        self.uploaded_candidates += runs.iter().map(|r| r.len() as u64).sum::<u64>();
        // The device now holds `candidates` (and stale records past their end, which no call reads:
        // `num_candidates` bounds the shader).
        self.resident.clear();
        self.resident.extend_from_slice(candidates);
        self.timings = timings;
        Ok(())
    }
}
