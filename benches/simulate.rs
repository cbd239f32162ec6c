//! Whole simulations of a generated workload: ~10k GPUs, 100k jobs, fifo + topology-pack on the CPU twin.
//! Target (issue 2): at least 1M scheduled jobs per minute on one core.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ultrasched::domain::workload::QueuePolicy;
use ultrasched::domain::workload::Workload;
use ultrasched::engine::cluster::simulate;
use ultrasched::input::workload::{build, build_with, parse_str, Format, Overrides, TraceText};
use ultrasched::kernel::placement::cpu::CpuBackend;

/// 139 GB200 UltraServers (10,008 GPUs); 100k jobs offering ~85 % of capacity (mean job ~12 GPUs x ~33 min
/// at 1,300 jobs/h), so the queue stays realistic instead of growing without bound.
pub const WORKLOAD: &str = r#"
name = "bench-10k-gpus-100k-jobs"
seed = 1
[cluster]
[[cluster.pools]]
preset = "p6e-gb200"
count = 139
[scheduler]
queue = "fifo"
placement = "topology-pack"
[[generators]]
count = 100000
rate_per_hour = 1300
gpu_mix = [ { gpus = 1, weight = 20 }, { gpus = 4, weight = 30 }, { gpus = 8, weight = 25 }, { gpus = 16, weight = 12 }, { gpus = 32, weight = 8 }, { gpus = 72, weight = 4 }, { gpus = 144, weight = 1 } ]
duration = { median_s = 1200, sigma = 1.0, min_s = 60, max_s = 86400 }
topology = { preferred = "domain" }
"#;

fn workload(queue: &str) -> Workload {
    let text = WORKLOAD.replace("queue = \"fifo\"", &format!("queue = \"{queue}\""));
    let spec = parse_str(&text, "bench", Format::Toml).expect("bench workload parses");
    build(spec, "bench", "bench", Overrides::default()).expect("bench workload builds")
}

/// Issue 10's replay case: 20,000 generated jobs on one pooled 6,500-GPU node, greedy (benches/fixtures).
fn trace_workload(queue: QueuePolicy) -> Workload {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/fixtures");
    let text = std::fs::read_to_string(format!("{dir}/pai-like-20k.toml")).expect("fixture");
    let csv = std::fs::read_to_string(format!("{dir}/pai-like-20k.csv")).expect("fixture trace");
    let spec = parse_str(&text, "pai-like-20k.toml", Format::Toml).expect("fixture parses");
    let ov = Overrides {
        queue: Some(queue),
        ..Overrides::default()
    };
    let trace = TraceText {
        file: "pai-like-20k.csv".into(),
        text: csv,
    };
    build_with(spec, "pai-like-20k.toml", "pai", ov, &[trace]).expect("fixture builds")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulate");
    g.sample_size(10);
    let w = workload("fifo");
    g.throughput(Throughput::Elements(w.jobs.len() as u64));
    g.bench_function("fifo_topology_pack_10k_gpus_100k_jobs", |b| {
        b.iter(|| simulate(&w, &mut CpuBackend).expect("simulation runs"))
    });
    for (name, q) in [("fifo", QueuePolicy::Fifo), ("sjf", QueuePolicy::Sjf)] {
        let w = trace_workload(q);
        g.throughput(Throughput::Elements(w.jobs.len() as u64));
        g.bench_function(format!("greedy_{name}_6500_gpu_node_20k_trace_jobs"), |b| {
            b.iter(|| simulate(&w, &mut CpuBackend).expect("simulation runs"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
