//! The engines, each deterministic and free of I/O: the cluster engine ([`cluster`]: events, queue,
//! backfill, preemption, placement, metrics), request-level LLM serving ([`serving`]), and the FGD
//! fragmentation study ([`fgd`]).

pub mod cluster;
pub mod fgd;
pub mod serving;
