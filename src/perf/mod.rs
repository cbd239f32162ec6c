//! Performance models, pure functions of the domain: a training step on the GPUs a gang got ([`training`]),
//! an inference replica's roofline ([`inference`]) and per-operator cost ([`operators`], measured operator
//! times from Vidur profiles in [`profile`], the choice between them in [`cost_model`]), the KV copy between
//! disaggregated prefill and decode replicas ([`kv_transfer`]), and an agentic RL step ([`rl`]).

pub mod cost_model;
pub mod inference;
pub mod kv_transfer;
pub mod operators;
pub mod profile;
pub mod rl;
pub mod training;
