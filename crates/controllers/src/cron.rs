//! Cron schedules as CronJobs write them: five fields (minute, hour, day of month, month, day of
//! week) with `*`, `?`, numbers, names (`JAN`, `MON`), ranges, lists and steps (`*/5`, `1-10/2`,
//! `3/15`), or a descriptor (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
//! `@midnight`, `@hourly`), optionally behind `CRON_TZ=<zone>` or `TZ=<zone>`. As in cron, when
//! both day fields are restricted a day matching either one is due.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    any_day: bool,
    any_weekday: bool,
    zone: Option<String>,
}

struct Field {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Field = Field {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const WEEKDAY: Field = Field {
    min: 0,
    max: 6,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

impl Field {
    fn value(&self, text: &str) -> Result<u32, String> {
        let upper = text.to_ascii_uppercase();
        if let Some(i) = self.names.iter().position(|n| *n == upper) {
            return Ok(i as u32 + if self.min == 1 { 1 } else { 0 });
        }
        let v: u32 = text
            .parse()
            .map_err(|_| format!("failed to parse int from {text}"))?;
        // Sunday may be written 7.
        if self.names.first() == Some(&"SUN") && v == 7 {
            return Ok(0);
        }
        if v < self.min || v > self.max {
            return Err(format!(
                "value {v} out of range [{}, {}]",
                self.min, self.max
            ));
        }
        Ok(v)
    }

    /// The bits a field sets, and whether it was an unrestricted `*`/`?`.
    fn parse(&self, text: &str) -> Result<(u64, bool), String> {
        let mut bits = 0u64;
        let mut star = false;
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s
                        .parse()
                        .map_err(|_| format!("failed to parse int from {s}"))?;
                    if step == 0 {
                        return Err(format!("step of range should be a positive number: {part}"));
                    }
                    (r, Some(step))
                }
                None => (part, None),
            };
            let (start, end) = if range == "*" || range == "?" {
                if step.is_none_or(|s| s == 1) {
                    star = true;
                }
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.value(a)?, self.value(b)?)
            } else {
                let v = self.value(range)?;
                // `3/15` means from 3 to the end, every 15.
                (v, if step.is_some() { self.max } else { v })
            };
            if start > end {
                return Err(format!(
                    "beginning of range ({start}) beyond end of range ({end}): {part}"
                ));
            }
            let step = step.unwrap_or(1);
            let mut v = start;
            while v <= end {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok((bits, star && !text.contains(',')))
    }
}

fn has(bits: u64, v: impl Into<u64>) -> bool {
    bits & (1 << v.into()) != 0
}

impl Schedule {
    /// Parses a schedule; `time_zone` is the CronJob's `spec.timeZone`.
    pub fn parse(spec: &str, time_zone: Option<&str>) -> Result<Schedule, String> {
        let mut text = spec.trim();
        let mut zone = time_zone.map(String::from);
        for prefix in ["CRON_TZ=", "TZ="] {
            if let Some(rest) = text.strip_prefix(prefix) {
                let (z, rest) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| format!("provided bad spec: {spec}"))?;
                zone = Some(z.to_string());
                text = rest.trim_start();
            }
        }
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            t if t.starts_with('@') => return Err(format!("unrecognized descriptor: {t}")),
            t => t,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                fields.len()
            ));
        }
        let (minutes, _) = MINUTE.parse(fields[0])?;
        let (hours, _) = HOUR.parse(fields[1])?;
        let (days, any_day) = DAY.parse(fields[2])?;
        let (months, _) = MONTH.parse(fields[3])?;
        let (weekdays, any_weekday) = WEEKDAY.parse(fields[4])?;
        let schedule = Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
            any_day,
            any_weekday,
            zone: zone.filter(|z| !z.is_empty()),
        };
        schedule.time_zone()?;
        Ok(schedule)
    }

    /// The zone the fields are read in (UTC unless one was given).
    pub fn time_zone(&self) -> Result<TimeZone, String> {
        match self.zone.as_deref() {
            None | Some("UTC") | Some("Etc/UTC") => Ok(TimeZone::UTC),
            Some(z) => TimeZone::get(z).map_err(|_| format!("unknown time zone {z}")),
        }
    }

    fn day_matches(&self, d: Date) -> bool {
        let dom = has(self.days, d.day() as u8);
        let dow = has(self.weekdays, d.weekday().to_sunday_zero_offset() as u8);
        if self.any_day || self.any_weekday {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first scheduled time strictly after `t`; `None` when there is none within five
    /// years (a schedule such as `0 0 30 2 *`).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let zone = self.time_zone().ok()?;
        let local = t.to_zoned(zone.clone()).datetime();
        let mut dt = local
            .date()
            .at(local.hour(), local.minute(), 0, 0)
            .checked_add(Span::new().minutes(1))
            .ok()?;
        let limit = local.year() + 5;
        while dt.year() <= limit {
            if !has(self.months, dt.month() as u8) {
                dt = first_of_next_month(dt)?;
                continue;
            }
            if !self.day_matches(dt.date()) {
                dt = dt.date().tomorrow().ok()?.at(0, 0, 0, 0);
                continue;
            }
            if !has(self.hours, dt.hour() as u8) {
                dt = dt
                    .date()
                    .at(dt.hour(), 0, 0, 0)
                    .checked_add(Span::new().hours(1))
                    .ok()?;
                continue;
            }
            if !has(self.minutes, dt.minute() as u8) {
                dt = dt.checked_add(Span::new().minutes(1)).ok()?;
                continue;
            }
            let at = zone.to_ambiguous_zoned(dt).compatible().ok()?.timestamp();
            if at > t {
                return Some(at);
            }
            dt = dt.checked_add(Span::new().minutes(1)).ok()?;
        }
        None
    }

    /// The latest scheduled time in `(earliest, now]`, and roughly how many times were due in
    /// that span (counting exactly would cost as much as the span is long).
    pub fn most_recent(&self, earliest: Timestamp, now: Timestamp) -> (Option<Timestamp>, i64) {
        let Some(first) = self.next_after(earliest).filter(|t| *t <= now) else {
            return (None, 0);
        };
        let missed = match self.next_after(first) {
            Some(second) if second <= now => {
                let interval = (second.as_second() - first.as_second()).max(1);
                (now.as_second() - first.as_second()) / interval + 1
            }
            _ => 1,
        };
        // Look back over growing windows, so a frequent schedule is not walked from long ago.
        for window_hours in [1, 24, 24 * 32, 24 * 367, 24 * 366 * 6] {
            let from = now
                .checked_sub(Span::new().hours(window_hours))
                .unwrap_or(earliest)
                .max(earliest);
            let mut latest = None;
            let mut cursor = from;
            while let Some(t) = self.next_after(cursor).filter(|t| *t <= now) {
                latest = Some(t);
                cursor = t;
            }
            if latest.is_some() {
                return (latest, missed);
            }
        }
        (Some(first), missed)
    }
}

fn first_of_next_month(dt: DateTime) -> Option<DateTime> {
    let first = dt.date().first_of_month();
    Some(
        first
            .checked_add(Span::new().months(1))
            .ok()?
            .at(0, 0, 0, 0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str) -> String {
        Schedule::parse(spec, None)
            .unwrap()
            .next_after(ts(after))
            .unwrap()
            .to_string()
    }

    #[test]
    fn fields_steps_ranges_lists_and_names() {
        assert_eq!(
            next("*/15 * * * *", "2024-03-01T10:07:00Z"),
            "2024-03-01T10:15:00Z"
        );
        assert_eq!(
            next("*/1 * * * *", "2024-03-01T10:07:30Z"),
            "2024-03-01T10:08:00Z"
        );
        assert_eq!(
            next("5,10-12 3 * * *", "2024-03-01T03:10:00Z"),
            "2024-03-01T03:11:00Z"
        );
        assert_eq!(
            next("5,10-12 3 * * *", "2024-03-01T03:12:00Z"),
            "2024-03-02T03:05:00Z"
        );
        assert_eq!(
            next("0 9 * * MON-FRI", "2024-03-01T09:00:00Z"),
            "2024-03-04T09:00:00Z"
        );
        assert_eq!(
            next("0 0 1 jan,jul *", "2024-03-01T00:00:00Z"),
            "2024-07-01T00:00:00Z"
        );
        assert_eq!(
            next("0 12 * * 7", "2024-03-01T00:00:00Z"),
            "2024-03-03T12:00:00Z"
        );
        assert_eq!(
            next("30 0/6 * * *", "2024-03-01T07:00:00Z"),
            "2024-03-01T12:30:00Z"
        );
        assert_eq!(
            next("0 0 29 2 *", "2023-03-01T00:00:00Z"),
            "2024-02-29T00:00:00Z"
        );
    }

    #[test]
    fn descriptors() {
        assert_eq!(
            next("@hourly", "2024-03-01T10:07:00Z"),
            "2024-03-01T11:00:00Z"
        );
        assert_eq!(
            next("@daily", "2024-03-01T10:07:00Z"),
            "2024-03-02T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2024-03-01T10:07:00Z"),
            "2024-03-03T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2024-03-01T10:07:00Z"),
            "2024-04-01T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2024-03-01T10:07:00Z"),
            "2025-01-01T00:00:00Z"
        );
    }

    #[test]
    fn restricted_day_fields_match_either() {
        // The 13th, or any Friday.
        assert_eq!(
            next("0 0 13 * FRI", "2024-09-01T00:00:00Z"),
            "2024-09-06T00:00:00Z"
        );
        assert_eq!(
            next("0 0 13 * FRI", "2024-09-06T00:00:00Z"),
            "2024-09-13T00:00:00Z"
        );
        // A bare star on one side means both must match ...
        assert_eq!(
            next("0 0 * * FRI", "2024-09-01T00:00:00Z"),
            "2024-09-06T00:00:00Z"
        );
        // ... while a stepped one restricts the field like any other list.
        assert_eq!(
            next("0 0 */2 * FRI", "2024-09-01T00:00:00Z"),
            "2024-09-03T00:00:00Z"
        );
    }

    #[test]
    fn time_zones() {
        let s = Schedule::parse("0 9 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            s.next_after(ts("2024-01-10T00:00:00Z"))
                .unwrap()
                .to_string(),
            "2024-01-10T08:00:00Z"
        );
        let s = Schedule::parse("CRON_TZ=America/New_York 0 9 * * *", None).unwrap();
        assert_eq!(
            s.next_after(ts("2024-07-10T00:00:00Z"))
                .unwrap()
                .to_string(),
            "2024-07-10T13:00:00Z"
        );
        assert!(Schedule::parse("0 9 * * *", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn bad_schedules_are_rejected() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "x * * * *",
            "@every 5m",
            "@reboot",
        ] {
            assert!(Schedule::parse(bad, None).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn impossible_dates_have_no_next_time() {
        let s = Schedule::parse("0 0 30 2 *", None).unwrap();
        assert_eq!(s.next_after(ts("2024-01-01T00:00:00Z")), None);
    }

    #[test]
    fn most_recent_due_time() {
        let s = Schedule::parse("*/5 * * * *", None).unwrap();
        let (t, missed) = s.most_recent(ts("2024-03-01T10:00:00Z"), ts("2024-03-01T10:17:00Z"));
        assert_eq!(t.unwrap().to_string(), "2024-03-01T10:15:00Z");
        assert_eq!(missed, 3);
        let (t, missed) = s.most_recent(ts("2024-03-01T10:00:00Z"), ts("2024-03-01T10:04:59Z"));
        assert_eq!((t, missed), (None, 0));
        // Long ago: still the latest time, without walking every minute since.
        let every = Schedule::parse("* * * * *", None).unwrap();
        let (t, missed) = every.most_recent(ts("2020-01-01T00:00:00Z"), ts("2024-03-01T10:17:30Z"));
        assert_eq!(t.unwrap().to_string(), "2024-03-01T10:17:00Z");
        assert!(missed > 100);
        let monthly = Schedule::parse("@monthly", None).unwrap();
        let (t, _) = monthly.most_recent(ts("2023-01-15T00:00:00Z"), ts("2024-03-20T00:00:00Z"));
        assert_eq!(t.unwrap().to_string(), "2024-03-01T00:00:00Z");
    }
}
