//! One generated track, as the music callbacks carry it in `data.data`.

use serde::{Deserialize, Serialize};

use super::lenient;

/// One generated track.
///
/// Every field is optional because the sender leaves fields out, empty or `null` at
/// early stages (a `text` callback carries no audio yet) and differs between pages.
/// Empty strings are reported as `None`. Fields this type does not model stay
/// reachable through the event's [`raw_json`](crate::CallbackEvent::raw_json).
///
/// ```
/// use suno_callback::Track;
///
/// let track: Track = serde_json::from_str(r#"{
///     "id": "85510f3c", "audio_url": "https://cdn.example.net/a.mp3",
///     "stream_audio_url": "", "createTime": 1786343609818, "duration": 198.44
/// }"#)?;
/// assert_eq!(track.audio_url(), Some("https://cdn.example.net/a.mp3"));
/// assert_eq!(track.stream_audio_url(), None);
/// assert_eq!(track.create_time().and_then(|t| t.epoch_millis()), Some(1786343609818));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Track {
    #[serde(default, deserialize_with = "lenient::string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    audio_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    stream_audio_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    image_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    source_audio_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    source_stream_audio_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    source_image_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    prompt: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    model_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    title: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    tags: Option<String>,
    #[serde(
        rename = "createTime",
        default,
        deserialize_with = "lenient::create_time"
    )]
    create_time: Option<CreateTime>,
    #[serde(default, deserialize_with = "lenient::float")]
    duration: Option<f64>,
}

impl Track {
    /// The track id (`id`).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    /// The downloadable audio (`audio_url`).
    pub fn audio_url(&self) -> Option<&str> {
        self.audio_url.as_deref()
    }
    /// The streaming audio (`stream_audio_url`), usually ready before `audio_url`.
    pub fn stream_audio_url(&self) -> Option<&str> {
        self.stream_audio_url.as_deref()
    }
    /// The cover image (`image_url`).
    pub fn image_url(&self) -> Option<&str> {
        self.image_url.as_deref()
    }
    /// The uploaded source audio, on upload-cover and upload-extend (`source_audio_url`).
    pub fn source_audio_url(&self) -> Option<&str> {
        self.source_audio_url.as_deref()
    }
    /// The uploaded source's stream (`source_stream_audio_url`).
    pub fn source_stream_audio_url(&self) -> Option<&str> {
        self.source_stream_audio_url.as_deref()
    }
    /// The uploaded source's image (`source_image_url`).
    pub fn source_image_url(&self) -> Option<&str> {
        self.source_image_url.as_deref()
    }
    /// The prompt or lyrics the track was made from (`prompt`).
    pub fn prompt(&self) -> Option<&str> {
        self.prompt.as_deref()
    }
    /// The model, for example `chirp-v4-5` (`model_name`).
    pub fn model_name(&self) -> Option<&str> {
        self.model_name.as_deref()
    }
    /// The title (`title`).
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }
    /// The style tags, comma separated (`tags`); some pages leave them out.
    pub fn tags(&self) -> Option<&str> {
        self.tags.as_deref()
    }
    /// When the track was created (`createTime`).
    pub fn create_time(&self) -> Option<&CreateTime> {
        self.create_time.as_ref()
    }
    /// The length in seconds (`duration`).
    pub fn duration_seconds(&self) -> Option<f64> {
        self.duration
    }
}

/// `createTime` as the sender wrote it: some pages send a date-time string
/// (`"2025-01-01 00:00:00"`), others epoch milliseconds (`1786343609818`).
///
/// ```
/// use suno_callback::CreateTime;
///
/// let text = CreateTime::Text("2025-01-01 00:00:00".into());
/// let millis = CreateTime::EpochMillis(1_735_689_600_000);
/// assert_eq!(text.epoch_millis(), millis.epoch_millis());
/// ```
///
/// The same rules apply inside a [`Track`] and alone: a number, or a numeric string,
/// is epoch milliseconds (a fraction is dropped).
///
/// ```
/// use suno_callback::CreateTime;
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

impl<'de> Deserialize<'de> for CreateTime {
    /// The one reading of `createTime`, shared with [`Track`]'s field (where an
    /// unreadable value is `None` instead of an error).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::create_time(d)?.ok_or_else(|| {
            serde::de::Error::custom("expected a date-time string or epoch milliseconds")
        })
    }
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

    #[test]
    fn create_time_reads_the_same_in_a_track_and_alone() {
        let cases = [
            (
                "1786343609818",
                Some(CreateTime::EpochMillis(1_786_343_609_818)),
            ),
            (
                "1786343609818.0",
                Some(CreateTime::EpochMillis(1_786_343_609_818)),
            ),
            (
                r#""1786343609818.0""#,
                Some(CreateTime::EpochMillis(1_786_343_609_818)),
            ),
            (
                r#""2025-01-01 00:00:00""#,
                Some(CreateTime::Text("2025-01-01 00:00:00".into())),
            ),
            ("null", None),
            (r#"{"odd":true}"#, None),
        ];
        for (json, expected) in cases {
            let alone = serde_json::from_str::<CreateTime>(json).ok();
            let track: Track = serde_json::from_str(&format!(r#"{{"createTime":{json}}}"#))
                .expect("a track always parses");
            assert_eq!(alone, expected, "alone: {json}");
            assert_eq!(track.create_time().cloned(), expected, "in a track: {json}");
        }
    }

    #[test]
    fn lenient_fields_turn_odd_shapes_into_none() {
        let track: Track = serde_json::from_str(
            r#"{"id": 42, "audio_url": null, "image_url": "", "tags": ["a"],
                "duration": "12.5", "createTime": {"odd": true}, "extra": [1, 2]}"#,
        )
        .expect("lenient track parses");
        assert_eq!(track.id(), Some("42"));
        assert_eq!(track.audio_url(), None);
        assert_eq!(track.image_url(), None);
        assert_eq!(track.tags(), None);
        assert_eq!(track.duration_seconds(), Some(12.5));
        assert_eq!(track.create_time(), None);
    }
}
