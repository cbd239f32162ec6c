//! The world the simulator models, as typed values: GPUs and building blocks ([`catalog`]), LLM
//! architectures ([`llm`]), the cluster's topology and free capacity ([`cluster`]), the validated workload
//! ([`workload`]), its failure model ([`failures`]) and inference traffic ([`traffic`]). No file formats
//! and no I/O: `input` builds these.

pub mod catalog;
pub mod cluster;
pub mod failures;
pub mod llm;
pub mod traffic;
pub mod workload;
