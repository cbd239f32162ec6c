//! ultrasched: a simulator that decides where AI training and inference work runs on UltraServer-style GPU
//! clusters, and shows what each decision costs.
//!
//! Flow: [`workload`] (parse + validate a file, at the edge) -> [`sim`] (discrete-event engine, no I/O) ->
//! [`placement`] (builds kernel records, calls the [`kernel`] seam) -> [`metrics`] -> [`report`] (edge).
//! See ARCHITECTURE.md.

pub mod catalog;
pub mod error;
pub mod fgd;
pub mod kernel;
