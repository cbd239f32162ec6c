//! The output edge: report.json / jobs.csv / the summary table ([`report`]), report.html and the frag-study
//! page ([`html`] on [`svg`]), the Chrome/Perfetto timeline ([`timeline`]), policy comparisons
//! ([`compare`]), sweep plans and summaries ([`sweep`]) and stderr progress bars ([`progress`]). Builds text; the CLI writes it.

pub mod compare;
pub mod html;
pub mod progress;
pub mod report;
pub mod svg;
pub mod sweep;
pub mod timeline;
