//! ultrasched: a simulator that decides where AI training and inference work runs on UltraServer-style GPU
//! clusters, and shows what each decision costs.
//!
//! The crate is a house of floors; each imports only the floors below it (tests/layers.rs checks it):
//! [`domain`] (hardware catalog, topology, the typed workload; no file formats, no I/O) ->
//! [`perf`] (training, inference and RL step-time models: pure functions) ->
//! [`kernel`] (the placement-cost and node-score kernels: CPU twins and WGSL backends) ->
//! [`engine`] (the cluster engine, request-level serving, the FGD study) ->
//! [`input`] (file formats, parsers, trace importers) -> [`output`] (reports, pages, timelines, comparisons)
//! -> [`cli`]. [`error`] (located input errors) sits beside the domain; [`check`] (the independent checker of
//! a run's files) sits on the output floor but sees only the domain and errors. See ARCHITECTURE.md.

pub mod check;
pub mod cli;
pub mod domain;
pub mod engine;
pub mod error;
pub mod input;
pub mod kernel;
pub mod output;
pub mod perf;
