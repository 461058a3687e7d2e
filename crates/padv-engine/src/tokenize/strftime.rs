//! A deterministic `strftime_now` for chat templates.
//!
//! Hugging Face exposes `strftime_now(format)` to templates (Llama 3.x puts "Today Date" in the
//! system prompt). Using the wall clock would make the same trajectory tokenise differently on
//! different days, which breaks caching and reproducibility, so padv renders a fixed date
//! (midnight) that the caller chooses.

use std::fmt;

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

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

impl FixedDate {
    /// Checks the month and day ranges (including leap years).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=12).contains(&self.month) {
            return Err(format!("month {} is not in 1..=12", self.month));
        }
        let dim = days_in_month(self.year, self.month);
        if self.day < 1 || self.day > dim {
            return Err(format!("day {} is not in 1..={dim}", self.day));
        }
        Ok(())
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    fn days_since_epoch(&self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let mp = (m + 9) % 12; // March = 0
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
    fn weekday(&self) -> usize {
        (self.days_since_epoch() + 3).rem_euclid(7) as usize
    }

    fn day_of_year(&self) -> u32 {
        (1..self.month)
            .map(|m| days_in_month(self.year, m))
            .sum::<u32>()
            + self.day
    }

    /// Formats this date at midnight with C `strftime` directives: `%Y %y %m %d %e %B %b %h %A
    /// %a %j %H %I %M %S %p %F %D %u %w %%`. Any other directive is an error, so a template
    /// never silently gets a wrong date.
    pub fn strftime(&self, format: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(d) = chars.next() else {
                return Err("format ends with a lone '%'".to_string());
            };
            let month_name = MONTHS[(self.month as usize).saturating_sub(1) % 12];
            let weekday_name = WEEKDAYS[self.weekday()];
            match d {
                'Y' => out.push_str(&self.year.to_string()),
                'y' => out.push_str(&format!("{:02}", self.year.rem_euclid(100))),
                'm' => out.push_str(&format!("{:02}", self.month)),
                'd' => out.push_str(&format!("{:02}", self.day)),
                'e' => out.push_str(&format!("{:2}", self.day)),
                'B' => out.push_str(month_name),
                'b' | 'h' => out.push_str(&month_name[..3]),
                'A' => out.push_str(weekday_name),
                'a' => out.push_str(&weekday_name[..3]),
                'j' => out.push_str(&format!("{:03}", self.day_of_year())),
                'H' | 'M' | 'S' => out.push_str("00"),
                'I' => out.push_str("12"),
                'p' => out.push_str("AM"),
                'F' => out.push_str(&self.to_string()),
                'D' => out.push_str(&format!(
                    "{:02}/{:02}/{:02}",
                    self.month,
                    self.day,
                    self.year.rem_euclid(100)
                )),
                'u' => out.push_str(&(self.weekday() + 1).to_string()),
                'w' => out.push_str(&((self.weekday() + 1) % 7).to_string()),
                '%' => out.push('%'),
                other => return Err(format!("unsupported strftime directive %{other}")),
            }
        }
        Ok(out)
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
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
