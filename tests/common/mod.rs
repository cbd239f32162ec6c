//! Helpers shared by the integration tests.

use ultrasched::kernel::placement::gpu::GpuBackend;
use ultrasched::kernel::placement::KernelError;

#[allow(dead_code)]
/// A GPU backend, or `None` (with a message) when this machine has no adapter.
pub fn gpu_backend() -> Option<GpuBackend> {
    match GpuBackend::new() {
        Ok(b) => Some(b),
        Err(KernelError::NoAdapter(why)) => {
            if std::env::var("ULTRASCHED_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("ULTRASCHED_REQUIRE_GPU=1 but no GPU adapter found{why}");
            }
            eprintln!(
                "skipping: no GPU adapter (set ULTRASCHED_REQUIRE_GPU=1 to fail instead){why}"
            );
            None
        }
        Err(e) => panic!("a GPU adapter exists but the backend failed: {e}"),
    }
}

/// The GPU node scorer, or `None` (with a message) when this machine has no adapter; like `gpu_backend`.
#[allow(dead_code)]
pub fn gpu_node_scorer() -> Option<ultrasched::kernel::node_score::gpu::GpuNodeScorer> {
    use ultrasched::kernel::node_score::gpu::GpuNodeScorer;
    match GpuNodeScorer::new() {
        Ok(b) => Some(b),
        Err(KernelError::NoAdapter(why)) => {
            if std::env::var("ULTRASCHED_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("ULTRASCHED_REQUIRE_GPU=1 but no GPU adapter found{why}");
            }
            eprintln!(
                "skipping: no GPU adapter (set ULTRASCHED_REQUIRE_GPU=1 to fail instead){why}"
            );
            None
        }
        Err(e) => panic!("a GPU adapter exists but the node scorer failed: {e}"),
    }
}
