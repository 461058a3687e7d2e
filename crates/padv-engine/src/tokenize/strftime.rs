//! A deterministic `strftime_now` for chat templates.
//!
//! Hugging Face exposes `strftime_now(format)` to templates (Llama 3.x puts "Today Date" in the
//! system prompt). Using the wall clock would make the same trajectory tokenise differently on
//! different days, which breaks caching and reproducibility, so padv renders a fixed date
//! (midnight) that the caller chooses.

use std::fmt::{self, Write};

use chrono::{Datelike, Months, NaiveDate, NaiveTime};

/// A calendar date (proleptic Gregorian) that `strftime_now` reports, at 00:00:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedDate {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of the month, 1..=31.
    pub day: u32,
}

impl Default for FixedDate {
    /// 1 January 2026: an arbitrary but fixed default, so renders never depend on the clock.
    fn default() -> Self {
        FixedDate {
            year: 2026,
            month: 1,
            day: 1,
        }
    }
}

impl fmt::Display for FixedDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The directives `strftime` accepts. chrono implements many more, but for these its output
/// for a date at midnight is byte-for-byte what Python's `datetime.strftime` gives (C locale;
/// checked against CPython 3.11 on glibc, see the tests). Others are refused rather than
/// risk a template silently getting a different string from the one Hugging Face renders:
/// chrono's `%f` is nanoseconds where Python's is microseconds, `%Z`/`%z` of a naive time fail
/// in chrono and print nothing in Python, and padding modifiers such as `%-d` are
/// platform-specific in Python.
const DIRECTIVES: &str = "YymdeBbhAajHIMSpFDuw%";

impl FixedDate {
    /// Parses and checks `YYYY-MM-DD` (what `--chat-date` and the Python package's
    /// `chat_date` take).
    pub fn parse(s: &str) -> Result<FixedDate, String> {
        let parts: Vec<&str> = s.split('-').collect();
        let [y, m, d] = parts.as_slice() else {
            return Err(format!("{s:?}: expected YYYY-MM-DD"));
        };
        let num = |what: &str, v: &str| -> Result<u32, String> {
            v.parse().map_err(|e| format!("{s:?}: {what} {v:?}: {e}"))
        };
        let date = FixedDate {
            year: y.parse().map_err(|e| format!("{s:?}: year {y:?}: {e}"))?,
            month: num("month", m)?,
            day: num("day", d)?,
        };
        date.validate().map_err(|e| format!("{s:?}: {e}"))?;
        Ok(date)
    }

    /// Checks the year, month and day ranges (including leap years). Years are limited to
    /// 1000..=9999: Python's `datetime` stops at 9999, and below 1000 Python's `%Y` is
    /// unpadded on some versions (3.11 on glibc prints `999`) and padded on others.
    pub fn validate(&self) -> Result<(), String> {
        if !(1000..=9999).contains(&self.year) {
            return Err(format!("year {} is not in 1000..=9999", self.year));
        }
        if !(1..=12).contains(&self.month) {
            return Err(format!("month {} is not in 1..=12", self.month));
        }
        let dim = NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .and_then(|first| first.checked_add_months(Months::new(1)))
            .and_then(|next| next.pred_opt())
            .map_or(0, |last| last.day());
        if self.day < 1 || self.day > dim {
            return Err(format!("day {} is not in 1..={dim}", self.day));
        }
        Ok(())
    }

    /// Formats this date at midnight with C `strftime` directives: `%Y %y %m %d %e %B %b %h %A
    /// %a %j %H %I %M %S %p %F %D %u %w %%`. Any other directive is an error, so a template
    /// never silently gets a wrong date.
    pub fn strftime(&self, format: &str) -> Result<String, String> {
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                continue;
            }
            match chars.next() {
                None => return Err("format ends with a lone '%'".to_string()),
                Some(d) if DIRECTIVES.contains(d) => {}
                Some(d) => return Err(format!("unsupported strftime directive %{d}")),
            }
        }
        self.validate()?;
        let midnight = NaiveDate::from_ymd_opt(self.year, self.month, self.day)
            .ok_or_else(|| format!("{self} is not a date"))?
            .and_time(NaiveTime::MIN);
        let mut out = String::new();
        // chrono reports a directive it cannot format as a `fmt::Error` (the check above
        // leaves none, but `to_string` would panic on one).
        write!(out, "{}", midnight.format(format))
            .map_err(|_| format!("cannot format {format:?}"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_llama_style_dates() {
        // 26 July 2024 was a Friday, day 208 of a leap year (31+29+31+30+31+30+26 = 208).
        let d = FixedDate {
            year: 2024,
            month: 7,
            day: 26,
        };
        assert_eq!(d.strftime("%d %b %Y").unwrap(), "26 Jul 2024");
        assert_eq!(
            d.strftime("%A, %B %e %y (%j) %H:%M:%S %p %%").unwrap(),
            "Friday, July 26 24 (208) 00:00:00 AM %"
        );
        assert_eq!(
            d.strftime("%F %D %u %w").unwrap(),
            "2024-07-26 07/26/24 5 5"
        );
    }

    #[test]
    fn every_directive_matches_python() {
        // `datetime.datetime(y, m, d).strftime(ALL)` in CPython 3.11 on glibc.
        const ALL: &str = "%Y %y %m %d %e %B %b %h %A %a %j %H %I %M %S %p %F %D %u %w %%";
        let cases = [
            ((2026, 1, 1), "2026 26 01 01  1 January Jan Jan Thursday Thu 001 00 12 00 00 AM 2026-01-01 01/01/26 4 4 %"),
            ((2000, 2, 29), "2000 00 02 29 29 February Feb Feb Tuesday Tue 060 00 12 00 00 AM 2000-02-29 02/29/00 2 2 %"),
            ((1900, 1, 1), "1900 00 01 01  1 January Jan Jan Monday Mon 001 00 12 00 00 AM 1900-01-01 01/01/00 1 1 %"),
            ((9999, 12, 31), "9999 99 12 31 31 December Dec Dec Friday Fri 365 00 12 00 00 AM 9999-12-31 12/31/99 5 5 %"),
            ((1000, 3, 1), "1000 00 03 01  1 March Mar Mar Saturday Sat 060 00 12 00 00 AM 1000-03-01 03/01/00 6 6 %"),
            ((2023, 12, 31), "2023 23 12 31 31 December Dec Dec Sunday Sun 365 00 12 00 00 AM 2023-12-31 12/31/23 7 0 %"),
        ];
        for ((year, month, day), want) in cases {
            let d = FixedDate { year, month, day };
            assert_eq!(d.strftime(ALL).unwrap(), want, "{d}");
        }
        // The formats chat templates use (Llama 3.x, Granite, ...).
        let d = FixedDate {
            year: 2026,
            month: 1,
            day: 5,
        };
        assert_eq!(
            d.strftime("%d %b %Y|%Y-%m-%d|%B %d, %Y").unwrap(),
            "05 Jan 2026|2026-01-05|January 05, 2026"
        );
    }

    #[test]
    fn weekdays_are_right_across_eras() {
        // 1 Jan 2026 is a Thursday; 29 Feb 2000 a Tuesday; 1 Jan 1900 a Monday.
        let cases = [
            ((2026, 1, 1), "Thu"),
            ((2000, 2, 29), "Tue"),
            ((1900, 1, 1), "Mon"),
        ];
        for ((year, month, day), want) in cases {
            let d = FixedDate { year, month, day };
            assert_eq!(d.strftime("%a").unwrap(), want, "{d}");
        }
    }

    #[test]
    fn rejects_unknown_directives_and_bad_dates() {
        assert!(FixedDate::default().strftime("%Q").is_err());
        assert!(FixedDate::default().strftime("50%").is_err());
        // chrono knows these, but its output differs from Python's (or is an error there).
        for f in ["%f", "%Z", "%z", "%-d", "%s", "%.3f", "%+"] {
            assert!(FixedDate::default().strftime(f).is_err(), "{f}");
        }
        for year in [999, 10_000, 0, -1] {
            let d = FixedDate {
                year,
                month: 1,
                day: 1,
            };
            assert!(d.validate().is_err(), "{d}");
            assert!(d.strftime("%Y").is_err(), "{d}");
        }
        assert!(FixedDate {
            year: 2026,
            month: 13,
            day: 1
        }
        .strftime("%d")
        .is_err());
        let feb29 = FixedDate {
            year: 2025,
            month: 2,
            day: 29,
        };
        assert!(feb29.validate().is_err());
        assert!(FixedDate {
            year: 2024,
            month: 2,
            day: 29
        }
        .validate()
        .is_ok());
    }
}
