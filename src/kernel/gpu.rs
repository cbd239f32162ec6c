//! GPU backend: shaders/placement_cost.wgsl through wgpu. (Being written: see issue 3.)

use super::*;

/// The wgpu backend.
pub struct GpuBackend {
    _private: (),
}

impl GpuBackend {
    /// Acquires an adapter from the environment (WGPU_BACKEND, WGPU_ADAPTER_NAME) or the default.
    pub fn new() -> Result<GpuBackend, KernelError> {
        Err(KernelError::NoAdapter(
            ": the wgpu backend is not built yet".into(),
        ))
    }
}

impl CostBackend for GpuBackend {
    fn name(&self) -> &'static str {
        "gpu"
    }
    fn adapter(&self) -> String {
        String::new()
    }
    fn best_candidates(
        &mut self,
        _policy: u32,
        _jobs: &[JobRecord],
        _candidates: &[CandidateRecord],
        _out: &mut Vec<Winner>,
    ) -> Result<(), KernelError> {
        Err(KernelError::NoAdapter(String::new()))
    }
}
