//! Placement cost kernel throughput (pairs scored per second), CPU twin and GPU, topology-pack policy.
//!
//! `cargo bench --bench placement_cost`; the GPU rows need an adapter (`WGPU_BACKEND=vulkan` picks Mesa's
//! lavapipe on a machine without a GPU, which proves correctness, not speed).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use ultrasched::kernel::placement::bench::random_batch;
use ultrasched::kernel::placement::cpu::CpuBackend;
use ultrasched::kernel::placement::gpu::GpuBackend;
use ultrasched::kernel::placement::{CostBackend, KernelError, POLICY_TOPOLOGY_PACK};

/// (jobs, candidates) per call.
const SIZES: [(usize, usize); 3] = [(1_000, 1_000), (4_000, 8_000), (16_000, 8_000)];

fn placement_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("placement_cost");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    let mut cpu = CpuBackend;
    let mut gpu = match GpuBackend::new() {
        Ok(g) => Some(g),
        Err(KernelError::NoAdapter(why)) => {
            eprintln!("placement_cost/gpu skipped: no GPU adapter found{why}");
            None
        }
        Err(e) => {
            eprintln!("placement_cost/gpu skipped: {e}");
            None
        }
    };
    for (jobs, candidates) in SIZES {
        let (j, cands) = random_batch(42, jobs, candidates);
        let label = format!("{jobs}x{candidates}");
        group.throughput(Throughput::Elements((jobs * candidates) as u64));
        let mut out = Vec::with_capacity(jobs);
        let mut backends: Vec<&mut dyn CostBackend> = vec![&mut cpu];
        if let Some(g) = gpu.as_mut() {
            backends.push(g);
        }
        for backend in backends {
            let name = backend.name();
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| {
                    if let Err(e) = backend.best_candidates(
                        POLICY_TOPOLOGY_PACK,
                        black_box(&j),
                        &cands,
                        &mut out,
                    ) {
                        panic!("{name} backend failed: {e}");
                    }
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, placement_cost);
criterion_main!(benches);
