//! The input edge: file formats and their parsers. Workload files ([`spec`] as written, [`parse`] with
//! located errors, [`workload`] and [`generate`] into the domain's `Workload`), serving traffic tables
//! ([`traffic`]), LLM architecture files ([`llm`]), and trace importers: request traces ([`requests`]:
//! Azure LLM 2023, Mooncake), the Alibaba openb cluster trace ([`openb`]) and the FGD original's random
//! draws ([`fgd_replay`]). The only modules that read files.

pub mod fgd_replay;
pub mod generate;
pub mod job;
pub mod job_trace;
pub mod llm;
pub mod openb;
pub mod parse;
pub mod requests;
pub mod spec;
pub mod traffic;
pub mod value;
pub mod workload;
