//! Backend selection (temporary: CPU only until the GPU backend lands).

use super::cpu::CpuBackend;
use super::{CostBackend, KernelError};

/// Which kernel implementation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// GPU when an adapter exists, else CPU.
    Auto,
    /// The CPU twin.
    Cpu,
    /// The WGSL kernel.
    Gpu,
}

/// Opens a backend and a one-line note for stderr.
pub fn open_backend(
    choice: BackendChoice,
    _verify: bool,
) -> Result<(Box<dyn CostBackend>, String), KernelError> {
    match choice {
        BackendChoice::Gpu => Err(KernelError::NoAdapter(String::new())),
        _ => Ok((Box::new(CpuBackend), "backend: cpu".into())),
    }
}
