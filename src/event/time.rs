//! The date and time fields (`createTime`, `completeTime`): a leaf module. How a value
//! is read from JSON is `lenient`'s business; this is the type and its clock reading.

use serde::Serialize;

/// `createTime` as the sender wrote it: some pages send a date-time string
/// (`"2025-01-01 00:00:00"`), others epoch milliseconds (`1786343609818`).
///
/// ```
/// use suno_callback::event::CreateTime;
///
/// let text = CreateTime::Text("2025-01-01 00:00:00".into());
/// let millis = CreateTime::EpochMillis(1_735_689_600_000);
/// assert_eq!(text.epoch_millis(), millis.epoch_millis());
/// ```
///
/// The same rules apply inside a [`Track`](crate::event::Track) and alone: a number,
/// or a numeric string, is epoch milliseconds (a fraction is dropped).
///
/// ```
/// use suno_callback::event::CreateTime;
///
/// let alone: CreateTime = serde_json::from_str(r#""1786343609818.0""#)?;
/// assert_eq!(alone, CreateTime::EpochMillis(1_786_343_609_818));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CreateTime {
    /// A date-time string, `YYYY-MM-DD HH:MM:SS`.
    Text(String),
    /// Milliseconds since the Unix epoch.
    EpochMillis(i64),
}

impl CreateTime {
    /// Milliseconds since the Unix epoch. A string is read as `YYYY-MM-DD HH:MM:SS`
    /// (or with a `T` separator, an optional fraction of a second and an optional `Z`)
    /// in UTC, since the docs name no zone; a string in any other form, including one
    /// with another UTC offset, gives `None`.
    pub fn epoch_millis(&self) -> Option<i64> {
        match self {
            CreateTime::EpochMillis(millis) => Some(*millis),
            CreateTime::Text(text) => parse_date_time(text),
        }
    }
}

/// `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z]` as epoch ms (the fraction is dropped).
fn parse_date_time(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 || !matches!(bytes[10], b' ' | b'T') {
        return None;
    }
    let rest = text.get(19..)?;
    let rest = rest.strip_suffix('Z').unwrap_or(rest);
    let fraction_ok = rest.is_empty()
        || rest
            .strip_prefix('.')
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    if !fraction_ok {
        return None;
    }
    let field = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let separators_ok =
        bytes[4] == b'-' && bytes[7] == b'-' && bytes[13] == b':' && bytes[16] == b':';
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_time_text_reads_as_utc_epoch_millis() {
        let cases = [
            ("1970-01-01 00:00:00", Some(0)),
            ("2025-01-01 00:00:00", Some(1_735_689_600_000)),
            ("2024-02-29T12:30:15", Some(1_709_209_815_000)),
            ("2000-03-01 00:00:01.5Z", Some(951_868_801_000)),
            ("2025-13-01 00:00:00", None),
            ("2025-02-29 00:00:00", None),
            ("2025-04-31 00:00:00", None),
            ("2025-01-01 00:00:00+08:00", None),
            ("2025-01-01 00:00:00.", None),
            ("2025-01-01", None),
            ("not a date at all!!", None),
            ("2025-01-01 0a:00:00", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                CreateTime::Text(text.into()).epoch_millis(),
                expected,
                "{text}"
            );
        }
    }
}
