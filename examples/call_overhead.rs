//! Per-call overhead of the GPU backend on tiny batches (what the simulator does between events).
//!
//! `cargo run --release --example call_overhead`

use std::time::Instant;
use ultrasched::kernel::placement::bench::random_batch;
use ultrasched::kernel::placement::cpu::CpuBackend;
use ultrasched::kernel::placement::gpu::GpuBackend;
use ultrasched::kernel::placement::{CostBackend, POLICY_TOPOLOGY_PACK};

fn main() {
    let mut gpu = match GpuBackend::new() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
    };
    let mut cpu = CpuBackend;
    for (jobs, candidates) in [(1, 64), (1, 1000), (16, 1000)] {
        let (j, c) = random_batch(1, jobs, candidates);
        let mut out = Vec::new();
        let backends: [&mut dyn CostBackend; 2] = [&mut cpu, &mut gpu];
        for b in backends {
            let calls = 300;
            let t = Instant::now();
            for _ in 0..calls {
                if let Err(e) = b.best_candidates(POLICY_TOPOLOGY_PACK, &j, &c, &mut out) {
                    eprintln!("Error: {e}");
                    std::process::exit(1);
                }
            }
            let per_call = t.elapsed() / calls;
            println!(
                "{:>4} x {:>5}  {:<4} {:>10.1} us/call",
                jobs,
                candidates,
                b.name(),
                per_call.as_secs_f64() * 1e6
            );
        }
    }
}
