//! The FGD fragmentation study (Weng et al., "Beware of Fragmentation", USENIX ATC 2023) on the openb trace:
//! six placement policies on a GPU-sharing cluster, with the published allocation and fragmentation curves.
//!
//! Flow: `input::openb` (CSV import, at the edge) -> [`trace`] (records built once) -> [`engine`] (one experiment,
//! no I/O; node scoring through `kernel::node_score`) -> [`study`] (the policy x seed grid, CSV layouts) ->
//! `cli::frag_study`. `input::fgd_replay` reads the original's random draws for exact reproduction.
//! The experiment definition is docs/fgd.md in the shared docs; data and citation: workloads/traces/openb.

pub mod engine;
pub mod policy;
pub mod study;
pub mod trace;

pub use policy::Policy;
pub use study::{study, StudyRow};
