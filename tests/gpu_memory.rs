//! A GPU run's memory does not grow with the number of dispatches (issue 16, item 5): thousands of node-score
//! dispatches of every scored policy, on one device, keep the process's resident set within a small margin.
//! (Before the policies were specialised into pipelines of their own, Mesa's lavapipe grew by ~0.5 MB per
//! dispatch of the one branching pipeline: 1,500 dispatches made ~0.8 GB.) Its own test binary, so no other
//! test allocates in the process meanwhile. Linux only: it reads /proc/self/statm.

mod common;

use ultrasched::kernel::node_score::*;

/// Resident set, MB.
fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / 1e6
}

#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(no_gpu_adapter, ignore = "no Vulkan driver on this machine")]
fn node_score_dispatches_do_not_grow_memory() {
    let Some(mut gpu) = common::gpu_node_scorer() else {
        return;
    };
    let mut nodes: Vec<NodeRecord> = (0..1000)
        .map(|i| NodeRecord {
            cpu_left: 96_000,
            mem_left: 100_000,
            model: 0,
            gpu_count: 8,
            gpu_left: [1000; 8],
            rank: i,
            ..Default::default()
        })
        .collect();
    let pod = PodRecord {
        cpu: 1000,
        mem: 100,
        gpus: 1,
        milli: 1000,
        model_mask: u32::MAX,
        ..Default::default()
    };
    let frag = vec![0.0; nodes.len()];
    let fgd = FgdInputs {
        typical: &[],
        node_frag: &frag,
    };
    let mut calls = 0u64;
    let mut run = |gpu: &mut gpu::GpuNodeScorer, nodes: &mut Vec<NodeRecord>, n: u32| {
        for k in 0..n {
            for policy in [
                POLICY_DOT_PRODUCT,
                POLICY_GPU_CLUSTERING,
                POLICY_GPU_PACKING,
                POLICY_BEST_FIT,
            ] {
                nodes[(k as usize * 7) % 1000].cpu_left -= 1;
                gpu.best_node(policy, &pod, nodes, &fgd);
                calls += 1;
            }
        }
    };
    run(&mut gpu, &mut nodes, 50); // warm up: pipelines, buffers, the driver's caches
    let before = rss_mb();
    run(&mut gpu, &mut nodes, 500);
    let grown = rss_mb() - before;
    assert!(
        gpu.gpu_calls() >= 2000 && gpu.last_error().is_none(),
        "{} of {calls} calls on the GPU; error {:?}",
        gpu.gpu_calls(),
        gpu.last_error()
    );
    assert!(
        grown < 40.0,
        "the resident set grew by {grown:.1} MB over 2,000 dispatches"
    );
}

/// Lockstep grids (issue 16, item 2) make thousands of dispatches and create and drop their buffers per
/// grid: grid after grid on one device, the resident set stays flat (a grid of 8 experiments x 1,000 pods
/// is ~8,000 dispatches on lavapipe, one step each).
#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(no_gpu_adapter, ignore = "no Vulkan driver on this machine")]
fn lockstep_grids_do_not_grow_memory() {
    use ultrasched::kernel::node_score::gpu::{LockstepExperiment, LockstepGrid};
    let Some(mut gpu) = common::gpu_node_scorer() else {
        return;
    };
    let nodes: Vec<NodeRecord> = (0..64)
        .map(|i| NodeRecord {
            cpu_left: 96_000,
            mem_left: 100_000,
            gpu_count: 8,
            gpu_left: [1000; 8],
            rank: i,
            ..Default::default()
        })
        .collect();
    let pods: Vec<PodRecord> = [(1, 1000), (1, 500), (2, 1000), (0, 0)]
        .iter()
        .map(|&(gpus, milli)| PodRecord {
            cpu: 1000,
            mem: 100,
            gpus,
            milli,
            model_mask: u32::MAX,
            ..Default::default()
        })
        .collect();
    let experiments: Vec<LockstepExperiment> = (0..8u32)
        .map(|e| LockstepExperiment {
            policy: [POLICY_GPU_CLUSTERING, POLICY_GPU_PACKING, POLICY_BEST_FIT][e as usize % 3],
            nodes: nodes.clone(),
            order: (0..1000).map(|i| (i * 7 + e) % 4).collect(),
        })
        .collect();
    let grid = LockstepGrid {
        pods: &pods,
        typical: &[],
        experiments: &experiments,
    };
    let mut grids = 0;
    let mut once = |gpu: &mut gpu::GpuNodeScorer| {
        let run = gpu.lockstep(&grid).expect("device").expect("grid fits");
        assert_eq!(run.on_device, 8000, "every attempt decided on the device");
        grids += 1;
    };
    once(&mut gpu); // warm up
    let before = rss_mb();
    for _ in 0..4 {
        once(&mut gpu);
    }
    let grown = rss_mb() - before;
    assert!(
        grown < 40.0,
        "the resident set grew by {grown:.1} MB over {grids} lockstep grids"
    );
}
