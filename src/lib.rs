//! ultrasched: a simulator that decides where AI training and inference work runs on UltraServer-style GPU
//! clusters, and shows what each decision costs.
//!
//! Flow: [`workload`] (parse + validate a file, at the edge) -> [`sim`] (discrete-event engine, no I/O) ->
//! [`placement`] (builds kernel records, calls the [`kernel`] seam) -> [`metrics`] -> [`report`] (edge).
//! See ARCHITECTURE.md.

pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod compare;
pub mod error;
pub mod fgd;
pub mod html;
pub mod inference;
pub mod kernel;
pub mod metrics;
pub mod perfmodel;
pub mod placement;
pub mod progress;
pub mod report;
pub mod rl;
pub mod serving;
pub mod sim;
pub mod svg;
pub mod trace;
pub mod workload;
