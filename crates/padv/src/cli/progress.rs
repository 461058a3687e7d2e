//! Progress of a scoring run for a person: a bar with the ETA at a terminal, and a plain log
//! line every few seconds otherwise (a batch job's log file, CI), where a redrawn bar would be
//! hundreds of carriage returns and no information.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use padv_engine::pipeline::Progress;

/// Seconds between log lines when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Shows pipeline progress on stderr.
pub enum Reporter {
    /// An interactive bar.
    Bar(ProgressBar),
    /// Log lines; the time of the last one.
    Lines { last: Option<Instant> },
}

impl Reporter {
    /// A bar when stderr is a terminal, log lines otherwise.
    pub fn new(total: usize) -> Self {
        if !std::io::stderr().is_terminal() {
            return Reporter::Lines { last: None };
        }
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} trajectories {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Reporter::Bar(bar)
    }

    /// Shows `p`.
    pub fn update(&mut self, p: &Progress) {
        match self {
            Reporter::Bar(bar) => {
                bar.set_position(p.done as u64);
                bar.set_message(format!("{:.0} tok/s", p.tokens_per_second()));
            }
            Reporter::Lines { last } => {
                let due = last.is_none_or(|t| t.elapsed() >= LOG_EVERY);
                if due || p.done == p.total {
                    eprintln!("padv: {}", line(p));
                    *last = Some(Instant::now());
                }
            }
        }
    }

    /// Removes the bar (log lines need no cleanup).
    pub fn finish(&self) {
        if let Reporter::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// `scored 64/364 trajectories (2 skipped), 1530 tok/s, ETA 3m12s`.
pub fn line(p: &Progress) -> String {
    let skipped = if p.skipped > 0 {
        format!(" ({} skipped)", p.skipped)
    } else {
        String::new()
    };
    let eta = match p.eta() {
        Some(d) if p.done < p.total => format!(", ETA {}", human_duration(d)),
        _ => format!(", done in {}", human_duration(p.elapsed)),
    };
    format!(
        "scored {}/{} trajectories{skipped}, {:.0} tok/s{eta}",
        p.done,
        p.total,
        p.tokens_per_second()
    )
}

/// `4h03m`, `3m12s`, `7.4s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

/// A plain count of finished items for jobs that are not scoring runs (`padv judge`): a bar
/// at a terminal, a log line every few seconds otherwise.
pub struct Counter {
    bar: Option<ProgressBar>,
    what: &'static str,
    last: Option<Instant>,
}

impl Counter {
    /// A counter of `total` items, each reported as `what` (e.g. "judged").
    pub fn new(total: usize, what: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} trajectories ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        Counter {
            bar,
            what,
            last: None,
        }
    }

    /// `done` of `total` finished.
    pub fn update(&mut self, done: usize, total: usize) {
        match &self.bar {
            Some(b) => b.set_position(done as u64),
            None => {
                if self.last.is_none_or(|t| t.elapsed() >= LOG_EVERY) || done == total {
                    eprintln!("padv: {} {done}/{total} trajectories", self.what);
                    self.last = Some(Instant::now());
                }
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(7400)), "7.4s");
        assert_eq!(human_duration(Duration::from_secs(192)), "3m12s");
        assert_eq!(human_duration(Duration::from_secs(4 * 3600 + 180)), "4h03m");
    }

    #[test]
    fn line_has_count_rate_and_eta() {
        let p = Progress {
            done: 1,
            total: 4,
            skipped: 1,
            computed_tokens: 1000,
            elapsed: Duration::from_secs(2),
        };
        // 2 s per trajectory, 3 left: 6 s.
        assert_eq!(
            line(&p),
            "scored 1/4 trajectories (1 skipped), 500 tok/s, ETA 6.0s"
        );
        let done = Progress { done: 4, ..p };
        assert!(line(&done).ends_with("done in 2.0s"), "{}", line(&done));
    }
}
