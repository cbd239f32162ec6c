//! Performance models, pure functions of the domain: a training step on the GPUs a gang got ([`training`]),
//! an inference replica's roofline ([`inference`]), and an agentic RL step ([`rl`]).

pub mod inference;
pub mod rl;
pub mod training;
