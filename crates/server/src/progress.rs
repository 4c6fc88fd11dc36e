//! Progress of long command-line work (`engram import`, `export`, `verify`) on standard
//! error. A bar is drawn only when standard error is a terminal, so scripts, pipes and
//! logs see nothing but each command's summary line.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const TICK: Duration = Duration::from_millis(120);

/// A bar over `len` items, named by `what` ("sessions", "files").
pub fn items(len: u64, what: &'static str) -> ProgressBar {
    styled(
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()),
        "{spinner} {msg:>9} [{bar:32}] {human_pos}/{human_len} ({per_sec}, {eta} left)",
        what,
    )
}

/// A bar over `len` bytes of input.
pub fn bytes(len: u64, what: &'static str) -> ProgressBar {
    styled(
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()),
        "{spinner} {msg:>9} [{bar:32}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        what,
    )
}

/// Work of unknown length: a spinner with what has been done so far.
pub fn spinner(what: &'static str) -> ProgressBar {
    styled(
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        "{spinner} {msg} {elapsed} {human_pos}",
        what,
    )
}

fn styled(bar: ProgressBar, template: &str, what: &'static str) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .expect("the progress templates are valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what);
    bar.enable_steady_tick(TICK);
    bar
}

#[cfg(test)]
mod tests {
    use indicatif::{InMemoryTerm, ProgressDrawTarget};

    #[test]
    fn a_bar_counts_what_is_done() {
        let term = InMemoryTerm::new(4, 120);
        let bar = super::items(3, "sessions");
        bar.set_draw_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
        bar.inc(2);
        // Draws are rate-limited; abandoning draws the state it stops at.
        bar.abandon();
        let screen = term.contents();
        assert!(screen.contains("sessions"), "{screen:?}");
        assert!(screen.contains("2/3"), "{screen:?}");
    }
}
