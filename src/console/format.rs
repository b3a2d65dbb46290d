//! Times, ages and filters as the console writes and reads them. A leaf module.

use std::fmt::Write as _;
use std::time::Duration;

use crate::inbox::{EventFilter, EventState};

/// Days since 1970-01-01 as a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A civil date as days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix milliseconds as `2026-12-04 01:50:07` (UTC).
///
/// ```text
/// 0 -> 1970-01-01 00:00:00
/// ```
pub(crate) fn utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (year, month, day) = civil(seconds.div_euclid(86_400));
    let rest = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Unix milliseconds as an `<input type="datetime-local">` value (UTC, minutes).
pub(crate) fn input_time(ms: i64) -> String {
    let text = utc(ms);
    format!("{}T{}", &text[..10], &text[11..16])
}

/// An `<input type="datetime-local">` value (read as UTC) as Unix milliseconds.
pub(crate) fn parse_input_time(text: &str) -> Option<i64> {
    let (date, time) = text.trim().split_once(['T', ' '])?;
    let mut date = date.splitn(3, '-');
    let year: i64 = date.next()?.parse().ok()?;
    let month: u32 = date.next()?.parse().ok()?;
    let day: u32 = date.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(1..=9999).contains(&year) {
        return None;
    }
    let mut time = time.splitn(3, ':');
    // Unsigned and in range before any arithmetic: a query string may say anything.
    let hour: u8 = time.next()?.parse().ok()?;
    let minute: u8 = time.next()?.parse().ok()?;
    let second: u8 = time.next().map_or(Some(0), |s| s.parse().ok())?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let (hour, minute, second) = (i64::from(hour), i64::from(minute), i64::from(second));
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// A duration as `3d 4h`, `2h 5m`, `4m 10s` or `12s`.
pub(crate) fn age(duration: Duration) -> String {
    let s = duration.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `text` cut to `chars` characters, with `…` when cut.
pub(crate) fn cut(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The events filter of a query string or form, and the page cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FilterForm {
    pub(crate) filter: EventFilter,
    pub(crate) before: Option<i64>,
}

/// The longest filter value kept (task ids are short; anything longer is not one).
const MAX_VALUE: usize = 200;

impl FilterForm {
    /// Reads `state`, `family`, `outcome`, `task`, `from`, `until` and `before`; unknown
    /// or empty fields are ignored.
    pub(crate) fn parse(query: &[u8]) -> Self {
        let mut form = Self::default();
        for (key, value) in form_urlencoded::parse(query) {
            let value = value.trim();
            if value.is_empty() || value.len() > MAX_VALUE {
                continue;
            }
            match &*key {
                "state" => form.filter.state = EventState::from_column(value),
                "family" => form.filter.family = Some(value.to_owned()),
                "outcome" => form.filter.outcome = Some(value.to_owned()),
                "task" => form.filter.task_id = Some(value.to_owned()),
                "from" => form.filter.received_from_ms = parse_input_time(value),
                "until" => form.filter.received_until_ms = parse_input_time(value),
                "before" => form.before = value.parse().ok(),
                _ => {}
            }
        }
        form
    }

    /// The filter's fields as `(name, value)` pairs, for hidden fields and links.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let filter = &self.filter;
        let mut pairs = Vec::new();
        if let Some(state) = filter.state {
            pairs.push(("state", state.as_str().to_owned()));
        }
        if let Some(family) = &filter.family {
            pairs.push(("family", family.clone()));
        }
        if let Some(outcome) = &filter.outcome {
            pairs.push(("outcome", outcome.clone()));
        }
        if let Some(task) = &filter.task_id {
            pairs.push(("task", task.clone()));
        }
        if let Some(from) = filter.received_from_ms {
            pairs.push(("from", input_time(from)));
        }
        if let Some(until) = filter.received_until_ms {
            pairs.push(("until", input_time(until)));
        }
        pairs
    }

    /// The filter as a query string (without `?`), plus `before` when given.
    pub(crate) fn query(&self, before: Option<i64>) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (key, value) in self.pairs() {
            serializer.append_pair(key, &value);
        }
        if let Some(before) = before {
            let mut text = String::new();
            let _ = write!(text, "{before}");
            serializer.append_pair("before", &text);
        }
        serializer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_and_read_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_796_349_007_000), "2026-12-04 01:50:07");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        let ms = 1_796_349_000_000;
        assert_eq!(parse_input_time(&input_time(ms)), Some(ms));
        assert_eq!(parse_input_time("2000-02-29T00:00"), Some(951_782_400_000));
        assert_eq!(parse_input_time("2000-13-01T00:00"), None);
        assert_eq!(parse_input_time("yesterday"), None);
        // Fields out of range, negative or huge are no time, never an overflow.
        for text in [
            "2026-01-01T-9223372036854775808:00",
            "2026-01-01T00:-1",
            "2026-01-01T00:00:-5",
            "2026-01-01T24:00",
            "2026-01-01T99999999999999999999:00",
        ] {
            assert_eq!(parse_input_time(text), None, "{text}");
        }
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(age(Duration::from_secs(12)), "12s");
        assert_eq!(age(Duration::from_secs(250)), "4m 10s");
        assert_eq!(age(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(age(Duration::from_secs(3 * 86_400 + 7200)), "3d 2h");
    }

    #[test]
    fn a_filter_round_trips_through_its_query() {
        let form = FilterForm::parse(
            b"state=dead&family=music&outcome=&task=a%26b&from=2026-12-04T01%3A00&x=1&before=42",
        );
        assert_eq!(form.filter.state, Some(EventState::Dead));
        assert_eq!(form.filter.task_id.as_deref(), Some("a&b"));
        assert_eq!(form.filter.outcome, None);
        assert_eq!(form.before, Some(42));
        let again = FilterForm::parse(form.query(Some(42)).as_bytes());
        assert_eq!(again, form);
        assert_eq!(FilterForm::parse(b"state=bogus").filter.state, None);
    }
}
