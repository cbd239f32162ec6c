//! Progress bars on stderr for the CLI (the engine only reports numbers through a callback; drawing is
//! here, at the edge). A bar appears only once work has taken [`SHOW_AFTER`], and never when stderr is not
//! a terminal or with `--quiet`, so pipes, logs and tests see nothing.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How long work runs before a bar appears: short runs should not flash one.
pub const SHOW_AFTER: Duration = Duration::from_secs(1);

/// A bar over `total` units of work, shown lazily.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    started: Instant,
    total: u64,
    unit: &'static str,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total` `unit`s; hidden with `quiet` or when stderr is not a terminal.
    pub fn new(total: u64, unit: &'static str, quiet: bool) -> Progress {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
            started: Instant::now(),
            total,
            unit,
            bar: None,
        }
    }

    /// Moves the bar to `done` units with a short message (built only when the bar is drawn).
    pub fn set(&mut self, done: u64, message: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() && self.started.elapsed() >= SHOW_AFTER {
            let bar = ProgressBar::with_draw_target(Some(self.total), ProgressDrawTarget::stderr());
            let template = format!(
                "{{elapsed:>4}} {{wide_bar}} {{pos}}/{{len}} {}  {{msg}}",
                self.unit
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(message());
        }
    }

    /// Removes the bar, so the results that follow start on a clean line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
