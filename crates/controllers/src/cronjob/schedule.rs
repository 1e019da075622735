//! Cron schedules as a CronJob's `spec.schedule` spells them, read the way Kubernetes reads
//! them (robfig/cron's standard parser): five fields `minute hour day-of-month month
//! day-of-week`, each a list of `*`, `?`, values, names (`JAN`, `MON`), ranges `a-b` and steps
//! `*/n`, `a-b/n` or `a/n` (meaning `a-max/n`); or one of the macros `@yearly` (`@annually`),
//! `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly`. An optional `TZ=` or `CRON_TZ=`
//! prefix names a time zone, as older CronJobs did before `spec.timeZone`.
//!
//! Day-of-month and day-of-week combine the way cron always has: when both are restricted a
//! day matches if *either* does; when either one is unrestricted (starts with `*` or `?`) only
//! the other one decides.
//!
//! Time zones: a schedule matches wall-clock readings. A reading that never shows (skipped by
//! a daylight-saving jump forward) is skipped; one that shows twice (the hour repeated when
//! the clocks go back) fires at both instants. That is what Kubernetes does, since it asks
//! robfig/cron for the next time in absolute steps.
//!
//! Everything here is pure: no clock, no IO.

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// How far a schedule may lie in the future before it counts as never firing (a `30 2 31 2 *`
/// can never match; a `0 0 29 2 *` can take eight years around 2100).
const SEARCH_YEARS: i16 = 10;

/// The largest change of a zone's UTC offset the fold handling looks around. Daylight saving
/// moves clocks by one hour (thirty minutes on Lord Howe Island); three hours covers every
/// repeated wall-clock interval in the current tz database with room to spare.
const FOLD_WINDOW: SignedDuration = SignedDuration::from_hours(3);

/// Missed schedules beyond this many are reported instead of counted (Kubernetes' limit).
pub const MAX_MISSED: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("empty schedule")]
    Empty,
    #[error("expected exactly 5 fields, found {0}: {1:?}")]
    FieldCount(usize, String),
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    #[error("failed to parse {field} field {value:?}: {reason}")]
    Field {
        field: &'static str,
        value: String,
        reason: String,
    },
}

/// One field's bounds and names.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value the first name stands for.
    names_from: u32,
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_from: 0,
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_from: 0,
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    names_from: 1,
};
/// 7 is accepted as Sunday too, as Vixie cron does; it is folded onto 0 after parsing.
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    names_from: 0,
};

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// Day-of-month or day-of-week unrestricted: days then need both to match (the other
    /// one alone decides), not either.
    day_star: bool,
    time_zone: Option<String>,
}

impl std::str::FromStr for Schedule {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Schedule::parse(s)
    }
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, Error> {
        let mut spec = spec.trim();
        let mut time_zone = None;
        for prefix in ["TZ=", "CRON_TZ="] {
            if let Some(rest) = spec.strip_prefix(prefix) {
                let (tz, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                time_zone = Some(tz.to_string());
                spec = rest.trim();
            }
        }
        if spec.is_empty() {
            return Err(Error::Empty);
        }
        let expanded = if spec.starts_with('@') {
            match spec.to_ascii_lowercase().as_str() {
                "@yearly" | "@annually" => "0 0 1 1 *",
                "@monthly" => "0 0 1 * *",
                "@weekly" => "0 0 * * 0",
                "@daily" | "@midnight" => "0 0 * * *",
                "@hourly" => "0 * * * *",
                _ => return Err(Error::Descriptor(spec.to_string())),
            }
        } else {
            spec
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(Error::FieldCount(fields.len(), spec.to_string()));
        };
        let (minutes, _) = parse_field(minute, &MINUTE)?;
        let (hours, _) = parse_field(hour, &HOUR)?;
        let (days_of_month, dom_star) = parse_field(dom, &DAY_OF_MONTH)?;
        let (months, _) = parse_field(month, &MONTH)?;
        let (mut days_of_week, dow_star) = parse_field(dow, &DAY_OF_WEEK)?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        Ok(Schedule {
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            day_star: dom_star || dow_star,
            time_zone,
        })
    }

    /// The time zone a `TZ=` / `CRON_TZ=` prefix named.
    pub fn time_zone(&self) -> Option<&str> {
        self.time_zone.as_deref()
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let weekday = u32::try_from(date.weekday().to_sunday_zero_offset()).unwrap_or(0);
        let dow = self.days_of_week & (1 << weekday) != 0;
        if self.day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first wall-clock minute at or after `from` (seconds ignored) that the schedule
    /// matches, without regard to any time zone.
    pub fn next_civil(&self, from: DateTime) -> Option<DateTime> {
        let (mut y, mut mo, mut d, mut h, mut mi) = (
            from.year(),
            from.month(),
            from.day(),
            from.hour(),
            from.minute(),
        );
        let limit = y.saturating_add(SEARCH_YEARS);
        // Each step moves to the start of the next unit that could match; the fields are
        // checked from the coarsest down so no candidate is skipped.
        loop {
            if y > limit {
                return None;
            }
            if self.months & (1 << mo) == 0 {
                (y, mo) = next_month(y, mo);
                (d, h, mi) = (1, 0, 0);
                continue;
            }
            let date = Date::new(y, mo, d).ok()?;
            if !self.day_matches(date) {
                if d >= date.days_in_month() {
                    (y, mo) = next_month(y, mo);
                    d = 1;
                } else {
                    d += 1;
                }
                (h, mi) = (0, 0);
                continue;
            }
            if self.hours & (1 << h) == 0 {
                if h == 23 {
                    let next = date.tomorrow().ok()?;
                    (y, mo, d) = (next.year(), next.month(), next.day());
                    h = 0;
                } else {
                    h += 1;
                }
                mi = 0;
                continue;
            }
            match (mi..60).find(|m| self.minutes & (1 << m) != 0) {
                Some(m) => return Some(date.at(h, m, 0, 0)),
                None => {
                    if h == 23 {
                        let next = date.tomorrow().ok()?;
                        (y, mo, d) = (next.year(), next.month(), next.day());
                        h = 0;
                    } else {
                        h += 1;
                    }
                    mi = 0;
                }
            }
        }
    }

    /// The first instant strictly after `after` whose wall-clock reading in `tz` the schedule
    /// matches; `None` if it never fires again.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = Timestamp::from_second(after.as_second().div_euclid(60) * 60 + 60).ok()?;
        // Where clocks go back, a reading earlier than `start`'s may still lie ahead (the
        // second pass through the repeated hour), so the search starts a little before it and
        // keeps going a little past the first hit. A fixed offset has no such readings.
        let window = if tz.to_fixed_offset().is_ok() {
            SignedDuration::ZERO
        } else {
            FOLD_WINDOW
        };
        let mut civil = tz.to_datetime(start).checked_sub(window).ok()?;
        let mut best: Option<(Timestamp, DateTime)> = None;
        loop {
            let Some(candidate) = self.next_civil(civil) else {
                return best.map(|(t, _)| t);
            };
            if let Some((_, best_civil)) = best
                && candidate > best_civil.checked_add(window).ok()?
            {
                return best.map(|(t, _)| t);
            }
            for t in instants(tz, candidate) {
                if t >= start && best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, tz.to_datetime(t)));
                }
            }
            if window.is_zero() && best.is_some() {
                return best.map(|(t, _)| t);
            }
            civil = candidate.checked_add(SignedDuration::from_mins(1)).ok()?;
        }
    }

    /// The schedule times in `(earliest, now]`: the most recent one and how many there are
    /// (counted exactly up to [`MAX_MISSED`], estimated beyond).
    pub fn missed(&self, earliest: Timestamp, now: Timestamp, tz: &TimeZone) -> Missed {
        let none = Missed {
            most_recent: None,
            count: 0,
        };
        let Some(first) = self.next_after(earliest, tz) else {
            return none;
        };
        if first > now {
            return none;
        }
        let mut count = 1;
        let mut last = first;
        while count <= MAX_MISSED {
            match self.next_after(last, tz) {
                Some(t) if t <= now => {
                    count += 1;
                    last = t;
                }
                _ => {
                    return Missed {
                        most_recent: Some(last),
                        count,
                    };
                }
            }
        }
        // Too many to walk: find the most recent by bisection (`next_after` never decreases),
        // and estimate the count from the spacing of the first two, as Kubernetes does.
        let mut lo = earliest.as_second();
        let mut hi = now.as_second();
        while hi - lo > 60 {
            let mid = lo + (hi - lo) / 2;
            let fires_by_now = Timestamp::from_second(mid)
                .ok()
                .and_then(|m| self.next_after(m, tz))
                .is_some_and(|t| t <= now);
            if fires_by_now {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let most_recent = Timestamp::from_second(lo)
            .ok()
            .and_then(|t| self.next_after(t, tz))
            .filter(|t| *t <= now)
            .unwrap_or(last);
        let second = self.next_after(first, tz).unwrap_or(now);
        let spacing = (second.as_second() - first.as_second()).max(60);
        let estimate = (now.as_second() - first.as_second()) / spacing + 1;
        Missed {
            most_recent: Some(most_recent),
            count: usize::try_from(estimate).unwrap_or(usize::MAX).max(count),
        }
    }
}

/// What [`Schedule::missed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missed {
    pub most_recent: Option<Timestamp>,
    pub count: usize,
}

impl Missed {
    pub fn too_many(&self) -> bool {
        self.count > MAX_MISSED
    }
}

fn next_month(y: i16, mo: i8) -> (i16, i8) {
    if mo >= 12 { (y + 1, 1) } else { (y, mo + 1) }
}

/// The instants a wall-clock reading denotes in `tz`: none in a gap, two in a fold.
fn instants(tz: &TimeZone, dt: DateTime) -> Vec<Timestamp> {
    let offsets = match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => vec![offset],
        AmbiguousOffset::Gap { .. } => Vec::new(),
        AmbiguousOffset::Fold { before, after } => vec![before, after],
    };
    offsets
        .into_iter()
        .filter_map(|o| o.to_timestamp(dt).ok())
        .collect()
}

/// Parses one field into a bit set; the flag says whether it was unrestricted (`*` or `?`
/// without a step), which matters for the day-of-month / day-of-week rule.
fn parse_field(field: &str, spec: &FieldSpec) -> Result<(u64, bool), Error> {
    let err = |reason: String| Error::Field {
        field: spec.name,
        value: field.to_string(),
        reason,
    };
    let mut bits = 0u64;
    let mut star = false;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| err(format!("invalid step {s:?}")))?;
                if step == 0 {
                    return Err(err("step must be positive".into()));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (start, end, part_star) = if range == "*" || range == "?" {
            (spec.min, spec.max, step.is_none_or(|s| s == 1))
        } else {
            match range.split_once('-') {
                Some((lo, hi)) => (value(lo, spec, &err)?, value(hi, spec, &err)?, false),
                None => {
                    let v = value(range, spec, &err)?;
                    // `a/n` is `a-max/n`.
                    let end = if step.is_some() { spec.max } else { v };
                    (v, end, false)
                }
            }
        };
        if start > end {
            return Err(err(format!(
                "beginning of range ({start}) beyond end ({end})"
            )));
        }
        star |= part_star;
        let step = step.unwrap_or(1);
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

fn value(s: &str, spec: &FieldSpec, err: &impl Fn(String) -> Error) -> Result<u32, Error> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = spec.names.iter().position(|n| *n == lower) {
        return Ok(spec.names_from + u32::try_from(i).unwrap_or(0));
    }
    let v: u32 = s.parse().map_err(|_| err(format!("invalid value {s:?}")))?;
    if v < spec.min || v > spec.max {
        return Err(err(format!(
            "{v} out of range [{}, {}]",
            spec.min, spec.max
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).expect("tz database has the zone")
    }

    fn sched(s: &str) -> Schedule {
        Schedule::parse(s).expect("schedule parses")
    }

    /// The next `n` firings after `from`, as UTC RFC 3339 strings.
    fn firings(s: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
        let sched = sched(s);
        let zone = tz(zone);
        let mut t = ts(from);
        let mut out = Vec::new();
        for _ in 0..n {
            match sched.next_after(t, &zone) {
                Some(next) => {
                    out.push(next.to_string());
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    #[test]
    fn every_minute_and_truncation() {
        assert_eq!(
            firings("* * * * *", "UTC", "2024-01-01T00:00:30Z", 3),
            [
                "2024-01-01T00:01:00Z",
                "2024-01-01T00:02:00Z",
                "2024-01-01T00:03:00Z"
            ]
        );
        // Strictly after: a time on the schedule itself moves on.
        assert_eq!(
            firings("*/5 * * * *", "UTC", "2024-01-01T00:05:00Z", 1),
            ["2024-01-01T00:10:00Z"]
        );
    }

    #[test]
    fn ranges_steps_and_lists() {
        let s = sched("1-10/3,30,45-47 2,4 * * *");
        let minutes: Vec<u32> = (0..60).filter(|m| s.minutes & (1 << m) != 0).collect();
        assert_eq!(minutes, [1, 4, 7, 10, 30, 45, 46, 47]);
        assert_eq!(s.hours, (1 << 2) | (1 << 4));
        // `a/n` runs to the end of the range.
        let s = sched("50/4 * * * *");
        let minutes: Vec<u32> = (0..60).filter(|m| s.minutes & (1 << m) != 0).collect();
        assert_eq!(minutes, [50, 54, 58]);
        assert_eq!(
            firings("0 */6 * * *", "UTC", "2024-03-01T05:00:00Z", 3),
            [
                "2024-03-01T06:00:00Z",
                "2024-03-01T12:00:00Z",
                "2024-03-01T18:00:00Z"
            ]
        );
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(sched("0 0 * JAN-mar MON,wed"), sched("0 0 * 1-3 1,3"));
        assert_eq!(sched("0 0 * * sun"), sched("0 0 * * 7"));
        // 2024-01-01 is a Monday.
        assert_eq!(
            firings("30 9 * * MON-FRI", "UTC", "2024-01-05T10:00:00Z", 2),
            ["2024-01-08T09:30:00Z", "2024-01-09T09:30:00Z"]
        );
    }

    #[test]
    fn macros() {
        assert_eq!(sched("@hourly"), sched("0 * * * *"));
        assert_eq!(sched("@daily"), sched("0 0 * * *"));
        assert_eq!(sched("@midnight"), sched("0 0 * * *"));
        assert_eq!(sched("@weekly"), sched("0 0 * * 0"));
        assert_eq!(sched("@monthly"), sched("0 0 1 * *"));
        assert_eq!(sched("@yearly"), sched("0 0 1 1 *"));
        assert_eq!(sched("@annually"), sched("0 0 1 1 *"));
        assert!(matches!(
            Schedule::parse("@every 5m"),
            Err(Error::Descriptor(_))
        ));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "5-1 * * * *",
            "*/0 * * * *",
            "a * * * *",
            "* * * FOO *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // Both restricted: the 13th OR any Friday. 2024-09-06 is a Friday, the 13th a Friday.
        assert_eq!(
            firings("0 0 13 * 5", "UTC", "2024-09-01T00:00:00Z", 4),
            [
                "2024-09-06T00:00:00Z",
                "2024-09-13T00:00:00Z",
                "2024-09-20T00:00:00Z",
                "2024-09-27T00:00:00Z"
            ]
        );
        assert_eq!(
            firings("0 0 14 * 5", "UTC", "2024-09-12T00:00:00Z", 2),
            ["2024-09-13T00:00:00Z", "2024-09-14T00:00:00Z"]
        );
        // Day-of-week unrestricted: only the day of month counts.
        assert_eq!(
            firings("0 0 13 * *", "UTC", "2024-09-01T00:00:00Z", 2),
            ["2024-09-13T00:00:00Z", "2024-10-13T00:00:00Z"]
        );
        // Day-of-month `?`: only Fridays.
        assert_eq!(
            firings("0 0 ? * FRI", "UTC", "2024-09-01T00:00:00Z", 1),
            ["2024-09-06T00:00:00Z"]
        );
        // A stepped star is a restriction (robfig/cron clears the star bit for steps > 1).
        assert!(!sched("0 0 */2 * 1").day_star);
        assert!(sched("0 0 */1 * 1").day_star);
    }

    #[test]
    fn month_ends_and_leap_years() {
        assert_eq!(
            firings("0 0 31 * *", "UTC", "2024-01-31T12:00:00Z", 3),
            [
                "2024-03-31T00:00:00Z",
                "2024-05-31T00:00:00Z",
                "2024-07-31T00:00:00Z"
            ]
        );
        assert_eq!(
            firings("0 0 29 2 *", "UTC", "2024-03-01T00:00:00Z", 1),
            ["2028-02-29T00:00:00Z"]
        );
        assert_eq!(
            firings("0 0 30 2 *", "UTC", "2024-01-01T00:00:00Z", 1),
            Vec::<String>::new()
        );
        assert_eq!(
            firings("59 23 31 12 *", "UTC", "2024-12-31T23:59:00Z", 1),
            ["2025-12-31T23:59:00Z"]
        );
    }

    #[test]
    fn time_zones() {
        // 09:00 in Tokyo (UTC+9, no DST) is midnight UTC.
        assert_eq!(
            firings("0 9 * * *", "Asia/Tokyo", "2024-06-01T00:00:00Z", 2),
            ["2024-06-02T00:00:00Z", "2024-06-03T00:00:00Z"]
        );
        // Half-hour offsets.
        assert_eq!(
            firings("0 0 * * *", "Asia/Kolkata", "2024-06-01T00:00:00Z", 1),
            ["2024-06-01T18:30:00Z"]
        );
    }

    #[test]
    fn daylight_saving_spring_forward_skips_missing_times() {
        // 2024-03-10 in New York: 02:00 EST jumps to 03:00 EDT; 02:30 never shows that day.
        assert_eq!(
            firings("30 2 * * *", "America/New_York", "2024-03-09T12:00:00Z", 2),
            ["2024-03-11T06:30:00Z", "2024-03-12T06:30:00Z"]
        );
        // A daily 03:30 moves from 08:30 UTC to 07:30 UTC.
        assert_eq!(
            firings("30 3 * * *", "America/New_York", "2024-03-09T00:00:00Z", 2),
            ["2024-03-09T08:30:00Z", "2024-03-10T07:30:00Z"]
        );
        // Hourly: the 02:00 reading does not exist, so 01:00 EST is followed by 03:00 EDT.
        assert_eq!(
            firings("0 * * * *", "America/New_York", "2024-03-10T05:30:00Z", 3),
            [
                "2024-03-10T06:00:00Z",
                "2024-03-10T07:00:00Z",
                "2024-03-10T08:00:00Z"
            ]
        );
    }

    #[test]
    fn daylight_saving_fall_back_fires_both_passes() {
        // 2024-11-03 in New York: 02:00 EDT goes back to 01:00 EST; 01:30 shows twice.
        assert_eq!(
            firings("30 1 * * *", "America/New_York", "2024-11-03T04:00:00Z", 3),
            [
                "2024-11-03T05:30:00Z",
                "2024-11-03T06:30:00Z",
                "2024-11-04T06:30:00Z"
            ]
        );
        // Every 20 minutes keeps its pace through the repeated hour.
        assert_eq!(
            firings(
                "*/20 * * * *",
                "America/New_York",
                "2024-11-03T05:30:00Z",
                5
            ),
            [
                "2024-11-03T05:40:00Z",
                "2024-11-03T06:00:00Z",
                "2024-11-03T06:20:00Z",
                "2024-11-03T06:40:00Z",
                "2024-11-03T07:00:00Z"
            ]
        );
        // Europe: 03:00 CEST goes back to 02:00 CET on 2024-10-27.
        assert_eq!(
            firings("15 2 * * *", "Europe/Berlin", "2024-10-26T12:00:00Z", 2),
            ["2024-10-27T00:15:00Z", "2024-10-27T01:15:00Z"]
        );
    }

    #[test]
    fn tz_prefix() {
        let s = sched("CRON_TZ=Europe/Paris 0 6 * * *");
        assert_eq!(s.time_zone(), Some("Europe/Paris"));
        assert_eq!(s, {
            let mut plain = sched("0 6 * * *");
            plain.time_zone = Some("Europe/Paris".into());
            plain
        });
        assert_eq!(sched("TZ=UTC @daily").time_zone(), Some("UTC"));
    }

    #[test]
    fn missed_counts_and_most_recent() {
        let s = sched("*/10 * * * *");
        let utc = TimeZone::UTC;
        let m = s.missed(ts("2024-01-01T00:00:00Z"), ts("2024-01-01T00:35:00Z"), &utc);
        assert_eq!(m.count, 3);
        assert_eq!(m.most_recent, Some(ts("2024-01-01T00:30:00Z")));
        assert!(!m.too_many());
        // Nothing due yet.
        let m = s.missed(ts("2024-01-01T00:00:00Z"), ts("2024-01-01T00:09:59Z"), &utc);
        assert_eq!(
            m,
            Missed {
                most_recent: None,
                count: 0
            }
        );
        // A schedule time equal to `now` counts.
        let m = s.missed(ts("2024-01-01T00:00:00Z"), ts("2024-01-01T00:10:00Z"), &utc);
        assert_eq!(m.most_recent, Some(ts("2024-01-01T00:10:00Z")));
    }

    #[test]
    fn missed_beyond_the_limit_still_finds_the_latest() {
        let s = sched("* * * * *");
        let utc = TimeZone::UTC;
        let m = s.missed(ts("2024-01-01T00:00:00Z"), ts("2024-01-08T12:34:56Z"), &utc);
        assert!(m.too_many());
        assert_eq!(m.most_recent, Some(ts("2024-01-08T12:34:00Z")));
        assert_eq!(m.count, 7 * 24 * 60 + 12 * 60 + 34);
        // Sparse and irregular: Mondays and Fridays at noon over two years.
        let s = sched("0 12 * * 1,5");
        let m = s.missed(ts("2022-01-01T00:00:00Z"), ts("2024-01-10T00:00:00Z"), &utc);
        assert!(m.too_many());
        // 2024-01-08 was a Monday.
        assert_eq!(m.most_recent, Some(ts("2024-01-08T12:00:00Z")));
    }
}
