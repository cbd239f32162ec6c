//! The hot loops, each as a WGSL compute shader with a CPU twin that reads like it and decides the same:
//! [`placement`] scores (pending job x NVLink domain) pairs for the cluster engine; [`node_score`] scores
//! (pod x node) for the FGD study. [`device`] is what both need from wgpu. Kernels see `#[repr(C)]`
//! integer records only; the engines see the seams (`CostBackend`, `NodeScoreBackend`), never wgpu.

pub mod device;
pub mod node_score;
pub mod placement;
