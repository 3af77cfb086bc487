//! A one-line progress bar on stderr (`indicatif`), drawn only when stderr is a terminal.
//!
//! indicatif hides the bar itself when its target is not a terminal, and limits redraws (20 per
//! second by default), so ticking from many worker threads stays cheap.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: usize) -> Self {
        let target = if total > 0 {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len}")
                .expect("progress template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.into());
        Self { bar }
    }

    /// Counts one finished item.
    pub fn tick(&self) {
        self.bar.inc(1);
    }

    /// Draws the final state and ends the bar's line.
    pub fn finish(&self) {
        self.bar.finish();
    }
}
