//! Request-level LLM inference serving: model architectures ([`model`]), a roofline of each replica
//! ([`perf`]), trace importers ([`trace`]), the replica simulation with routing, continuous batching and
//! prefix caching and closed-loop sessions ([`sim`]), traffic specs, their generator and [`traffic::serve`]
//! for services placed by the cluster engine ([`traffic`]), and the `replay-inference` command ([`cli`]).
//!
//! Everything except the thin `load`/`resolve` wrappers and [`cli::run`] is pure. To drive inference from
//! another engine: build a [`perf::Roofline`] (or any [`perf::ServiceModel`]), a [`sim::SimConfig`], and call
//! [`sim::simulate_replicas`] with the requests; [`sim::summarize`] gives the headline numbers.

pub mod cli;
pub mod model;
pub mod perf;
pub mod sim;
pub mod trace;
pub mod traffic;

pub use perf::{Efficiency, Roofline, ServiceModel};
pub use sim::{simulate_replicas, summarize, Request, Router, SimConfig, SimResult, Slo, Summary};
