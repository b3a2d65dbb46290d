//! One generated track, as the music callbacks carry it in `data.data`.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::lenient;
use super::scan::{ScanError, Scanner};
use super::time::CreateTime;

/// One generated track.
///
/// Every field is optional because the sender leaves fields out, empty or `null` at
/// early stages (a `text` callback carries no audio yet) and differs between pages.
/// Empty strings are reported as `None`. Fields this type does not model stay
/// reachable through the event's [`raw_json`](crate::CallbackEvent::raw_json).
///
/// ```
/// use suno_callback::event::Track;
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
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Track {
    /// Every text field, one after the other: a track costs one allocation for its
    /// text instead of one per field.
    text: String,
    /// Where each field of `TEXT_FIELDS` lies in `text`; `None` when absent or empty.
    spans: [Option<(u32, u32)>; TEXT_FIELDS.len()],
    create_time: Option<CreateTime>,
    duration: Option<f64>,
}

/// The text fields, by their JSON names, in the order of `Track::spans`.
const TEXT_FIELDS: [&str; 11] = [
    "id",
    "audio_url",
    "stream_audio_url",
    "image_url",
    "source_audio_url",
    "source_stream_audio_url",
    "source_image_url",
    "prompt",
    "model_name",
    "title",
    "tags",
];
const ID: usize = 0;
const AUDIO_URL: usize = 1;
const STREAM_AUDIO_URL: usize = 2;
const IMAGE_URL: usize = 3;
const SOURCE_AUDIO_URL: usize = 4;
const SOURCE_STREAM_AUDIO_URL: usize = 5;
const SOURCE_IMAGE_URL: usize = 6;
const PROMPT: usize = 7;
const MODEL_NAME: usize = 8;
const TITLE: usize = 9;
const TAGS: usize = 10;
/// The indices in `FIELDS` of the two fields that are not text.
const CREATE_TIME: usize = TEXT_FIELDS.len();
const DURATION: usize = TEXT_FIELDS.len() + 1;

/// Every field, as serialized.
const FIELDS: [&str; 13] = [
    "id",
    "audio_url",
    "stream_audio_url",
    "image_url",
    "source_audio_url",
    "source_stream_audio_url",
    "source_image_url",
    "prompt",
    "model_name",
    "title",
    "tags",
    "createTime",
    "duration",
];

/// The room a track's text gets when its first field arrives: a track's ids, URLs,
/// title, tags and model fit in it without growing; a long prompt grows it. A track
/// left with much more room than text gives it back ([`Track::fit_text`]), so that a
/// body of many tiny tracks holds no more memory than its text.
const FIRST_TEXT_CAPACITY: usize = 512;

impl Track {
    fn text_field(&self, index: usize) -> Option<&str> {
        let (start, end) = self.spans[index]?;
        self.text.get(start as usize..end as usize)
    }

    /// The track id (`id`).
    pub fn id(&self) -> Option<&str> {
        self.text_field(ID)
    }
    /// The downloadable audio (`audio_url`).
    pub fn audio_url(&self) -> Option<&str> {
        self.text_field(AUDIO_URL)
    }
    /// The streaming audio (`stream_audio_url`), usually ready before `audio_url`.
    pub fn stream_audio_url(&self) -> Option<&str> {
        self.text_field(STREAM_AUDIO_URL)
    }
    /// The cover image (`image_url`).
    pub fn image_url(&self) -> Option<&str> {
        self.text_field(IMAGE_URL)
    }
    /// The uploaded source audio, on upload-cover and upload-extend (`source_audio_url`).
    pub fn source_audio_url(&self) -> Option<&str> {
        self.text_field(SOURCE_AUDIO_URL)
    }
    /// The uploaded source's stream (`source_stream_audio_url`).
    pub fn source_stream_audio_url(&self) -> Option<&str> {
        self.text_field(SOURCE_STREAM_AUDIO_URL)
    }
    /// The uploaded source's image (`source_image_url`).
    pub fn source_image_url(&self) -> Option<&str> {
        self.text_field(SOURCE_IMAGE_URL)
    }
    /// The prompt or lyrics the track was made from (`prompt`).
    pub fn prompt(&self) -> Option<&str> {
        self.text_field(PROMPT)
    }
    /// The model, for example `chirp-v4-5` (`model_name`).
    pub fn model_name(&self) -> Option<&str> {
        self.text_field(MODEL_NAME)
    }
    /// The title (`title`).
    pub fn title(&self) -> Option<&str> {
        self.text_field(TITLE)
    }
    /// The style tags, comma separated (`tags`); some pages leave them out.
    pub fn tags(&self) -> Option<&str> {
        self.text_field(TAGS)
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

/// A scanned JSON number that is a plain integer of at most 18 digits
/// (`-?[0-9]{1,18}`): read exactly, as serde reads it, without serde.
fn plain_integer(number: &str) -> Option<i64> {
    let digits = number.strip_prefix('-').unwrap_or(number);
    let plain = (1..=18).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| number.parse().ok()).flatten()
}

impl Track {
    /// The track object at the cursor of `scanner`, held at nesting `depth`, read
    /// exactly as [`Deserialize`] reads it, but without serde for what it needs not:
    /// a plain string is copied straight from `text` (the scanned text itself), any
    /// other value is read by serde alone. An error when serde would refuse the track
    /// or the scan cannot tell (an escaped key): the caller then lets serde read the
    /// whole payload.
    pub(super) fn scan(
        scanner: &mut Scanner<'_>,
        text: &str,
        depth: usize,
    ) -> Result<Self, ScanError> {
        let mut track = Track::default();
        let mut seen = [false; FIELDS.len()];
        let depth = scanner.open(depth)?;
        scanner.object(|scanner, key, escaped| {
            if escaped {
                return Err(scanner.left_to_serde());
            }
            let Some(index) = FIELDS.iter().position(|name| name.as_bytes() == key) else {
                return scanner.value(depth).map(drop);
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(ScanError::Duplicate(FIELDS[index]));
            }
            if index <= CREATE_TIME && scanner.peek() == Some(b'"') {
                // A string: its text as it is, or, with escapes, read by serde.
                let (content, escaped) = scanner.string()?;
                let quoted = content.start - 1..content.end + 1;
                let read = match (index, escaped) {
                    (CREATE_TIME, false) => text
                        .get(content)
                        .map(|plain| track.create_time = lenient::create_time_text(plain)),
                    (CREATE_TIME, true) => text
                        .get(quoted)
                        .and_then(|quoted| lenient::read_value(quoted, |d| lenient::create_time(d)))
                        .map(|time| track.create_time = time),
                    (_, false) => text.get(content).map(|plain| {
                        track.spans[index] = AppendText(&mut track.text).append(plain);
                    }),
                    (_, true) => text
                        .get(quoted)
                        .and_then(|quoted| {
                            lenient::read_value(quoted, |d| {
                                AppendText(&mut track.text).deserialize(d)
                            })
                        })
                        .map(|span| track.spans[index] = span),
                };
                return read.ok_or_else(|| scanner.left_to_serde());
            }
            let range = scanner.value(depth)?;
            let value = text.get(range).ok_or_else(|| scanner.left_to_serde())?;
            let read = match index {
                _ if index < TEXT_FIELDS.len() => {
                    lenient::read_value(value, |d| AppendText(&mut track.text).deserialize(d))
                        .map(|span| track.spans[index] = span)
                }
                CREATE_TIME => match plain_integer(value) {
                    Some(millis) => {
                        track.create_time = Some(CreateTime::EpochMillis(millis));
                        Some(())
                    }
                    None => lenient::read_value(value, |d| lenient::create_time(d))
                        .map(|time| track.create_time = time),
                },
                _ => lenient::read_value(value, |d| lenient::float(d))
                    .map(|duration| track.duration = duration),
            };
            read.ok_or_else(|| scanner.left_to_serde())
        })?;
        track.fit_text();
        Ok(track)
    }

    /// Gives back the room of a text buffer holding less than half of it.
    fn fit_text(&mut self) {
        if self.text.capacity() > 2 * self.text.len() {
            self.text.shrink_to_fit();
        }
    }
}

impl PartialEq for Track {
    /// Field by field, however the text is laid out.
    fn eq(&self, other: &Self) -> bool {
        (0..TEXT_FIELDS.len()).all(|index| self.text_field(index) == other.text_field(index))
            && self.create_time == other.create_time
            && self.duration == other.duration
    }
}

impl fmt::Debug for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut track = f.debug_struct("Track");
        for (index, name) in TEXT_FIELDS.iter().enumerate() {
            track.field(name, &self.text_field(index));
        }
        track
            .field("create_time", &self.create_time)
            .field("duration", &self.duration)
            .finish()
    }
}

impl Serialize for Track {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut track = serializer.serialize_struct("Track", FIELDS.len())?;
        for (index, name) in TEXT_FIELDS.iter().enumerate() {
            track.serialize_field(name, &self.text_field(index))?;
        }
        track.serialize_field("createTime", &self.create_time)?;
        track.serialize_field("duration", &self.duration)?;
        track.end()
    }
}

impl<'de> Deserialize<'de> for Track {
    /// Every field read leniently (see `lenient`); a field given twice is an error, as
    /// for every other payload type.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("Track", &FIELDS, TrackVisitor(&FIELDS))
    }
}

/// The camelCase names of the task-details answers' `sunoData` (and of some jobs-route
/// `resultJson`s), in the order of [`FIELDS`].
const CAMEL_FIELDS: [&str; 13] = [
    "id",
    "audioUrl",
    "streamAudioUrl",
    "imageUrl",
    "sourceAudioUrl",
    "sourceStreamAudioUrl",
    "sourceImageUrl",
    "prompt",
    "modelName",
    "title",
    "tags",
    "createTime",
    "duration",
];

/// A track written with camelCase names (`audioUrl`, `streamAudioUrl`, ...), read as
/// [`Track`] reads the snake_case names of the callbacks.
pub(crate) struct CamelTrack(pub(crate) Track);

impl<'de> Deserialize<'de> for CamelTrack {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("Track", &CAMEL_FIELDS, TrackVisitor(&CAMEL_FIELDS))
            .map(CamelTrack)
    }
}

impl Track {
    /// A track of which only the audio is known: one `resultUrls` entry of a jobs-route
    /// callback.
    pub(crate) fn from_audio_url(url: &str) -> Self {
        let mut track = Track::default();
        track.spans[AUDIO_URL] = AppendText(&mut track.text).append(url);
        track.fit_text();
        track
    }
}

/// A member of a track object.
enum Field {
    Text(usize),
    CreateTime,
    Duration,
    Other,
}

/// Reads a member's name as one of `names` (in the order of [`FIELDS`]).
struct FieldVisitor(&'static [&'static str; 13]);

impl<'de> DeserializeSeed<'de> for FieldVisitor {
    type Value = Field;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
        Ok(match self.0.iter().position(|field| *field == name) {
            Some(CREATE_TIME) => Field::CreateTime,
            Some(DURATION) => Field::Duration,
            Some(index) => Field::Text(index),
            None => Field::Other,
        })
    }
}

/// `createTime` and `duration`, read as `lenient` reads them.
struct LenientCreateTime(Option<CreateTime>);
struct LenientFloat(Option<f64>);

impl<'de> Deserialize<'de> for LenientCreateTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::create_time(d).map(Self)
    }
}

impl<'de> Deserialize<'de> for LenientFloat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::float(d).map(Self)
    }
}

/// Reads a track whose members are named as `names` (in the order of [`FIELDS`]).
struct TrackVisitor(&'static [&'static str; 13]);

impl<'de> Visitor<'de> for TrackVisitor {
    type Value = Track;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a track")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Track, A::Error> {
        let mut track = Track::default();
        let mut seen = [false; FIELDS.len()];
        while let Some(field) = map.next_key_seed(FieldVisitor(self.0))? {
            let index = match field {
                Field::Text(index) => index,
                Field::CreateTime => CREATE_TIME,
                Field::Duration => DURATION,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(de::Error::duplicate_field(self.0[index]));
            }
            match field {
                Field::Text(index) => {
                    track.spans[index] = map.next_value_seed(AppendText(&mut track.text))?;
                }
                Field::CreateTime => {
                    track.create_time = map.next_value::<LenientCreateTime>()?.0;
                }
                Field::Duration => track.duration = map.next_value::<LenientFloat>()?.0,
                Field::Other => {}
            }
        }
        track.fit_text();
        Ok(track)
    }
}

/// Reads a text field as `lenient::string` does (numbers and booleans as their text;
/// `""`, `null` and containers as absent), appending it to the track's text.
struct AppendText<'a>(&'a mut String);

impl AppendText<'_> {
    fn append(self, text: &str) -> Option<(u32, u32)> {
        if text.is_empty() {
            return None;
        }
        let buffer = self.0;
        if buffer.capacity() == 0 {
            buffer.reserve(text.len().max(FIRST_TEXT_CAPACITY));
        }
        let start = u32::try_from(buffer.len()).ok()?;
        let end = u32::try_from(buffer.len() + text.len()).ok()?;
        buffer.push_str(text);
        Some((start, end))
    }
}

impl<'de> DeserializeSeed<'de> for AppendText<'_> {
    type Value = Option<(u32, u32)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AppendText<'_> {
    type Value = Option<(u32, u32)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.append(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.append(&v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.append(&v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.append(&v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(self.append(if v { "true" } else { "false" }))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn one_text_buffer_reads_compares_and_serializes_as_separate_fields() {
        let a: Track = serde_json::from_str(
            r#"{"title":"T","id":7,"tags":"","prompt":true,"duration":1.5,
                "createTime":"2025-01-01 00:00:00","other":{"id":"x"}}"#,
        )
        .expect("a track");
        let b: Track = serde_json::from_str(
            r#"{"createTime":"2025-01-01 00:00:00","prompt":"true","id":"7","duration":1.5,
                "title":"T","tags":null}"#,
        )
        .expect("a track");
        assert_eq!(a, b, "equal whatever the order of the fields");
        assert_ne!(a, Track::default());
        assert_eq!(
            (a.id(), a.title(), a.tags(), a.prompt(), a.audio_url()),
            (Some("7"), Some("T"), None, Some("true"), None)
        );
        let mut expected = serde_json::Map::new();
        for name in FIELDS {
            expected.insert(name.to_owned(), serde_json::Value::Null);
        }
        expected.insert("id".into(), "7".into());
        expected.insert("prompt".into(), "true".into());
        expected.insert("title".into(), "T".into());
        expected.insert("createTime".into(), "2025-01-01 00:00:00".into());
        expected.insert("duration".into(), 1.5.into());
        assert_eq!(
            serde_json::to_value(&a).expect("serializes"),
            serde_json::Value::Object(expected)
        );
        let debug = format!("{a:?}");
        assert!(
            debug.starts_with(r#"Track { id: Some("7"), audio_url: None"#),
            "{debug}"
        );
        let error = serde_json::from_str::<Track>(r#"{"id":"a","id":"b"}"#).expect_err("twice");
        assert!(
            error.to_string().contains("duplicate field `id`"),
            "{error}"
        );
    }

    /// The track in `json` as serde reads it and as the scan does, held equal.
    fn read_both(json: &str) -> [Track; 2] {
        let by_serde: Track = serde_json::from_str(json).expect("a track");
        let by_scan = Track::scan(&mut Scanner::new(json.as_bytes()), json, 0)
            .expect("the scan reads a plain track");
        assert_eq!(by_serde, by_scan, "{json}");
        assert_eq!(by_serde.create_time, by_scan.create_time, "{json}");
        [by_serde, by_scan]
    }

    #[test]
    fn the_scan_reads_create_time_as_serde_does() {
        let cases = [
            (
                "1786343609818",
                Some(CreateTime::EpochMillis(1_786_343_609_818)),
            ),
            ("-5", Some(CreateTime::EpochMillis(-5))),
            ("0", Some(CreateTime::EpochMillis(0))),
            ("-0", Some(CreateTime::EpochMillis(0))),
            (
                "999999999999999999",
                Some(CreateTime::EpochMillis(999_999_999_999_999_999)),
            ),
            ("9999999999999999999", None),
            (
                "1786343609818.9",
                Some(CreateTime::EpochMillis(1_786_343_609_818)),
            ),
            ("1e3", Some(CreateTime::EpochMillis(1000))),
            ("-1.5E2", Some(CreateTime::EpochMillis(-150))),
            (
                r#""2025-01-01 00:00:00""#,
                Some(CreateTime::Text("2025-01-01 00:00:00".into())),
            ),
            (
                r#""1786343609818.5""#,
                Some(CreateTime::EpochMillis(1_786_343_609_818)),
            ),
            (r#"" 12 ""#, Some(CreateTime::EpochMillis(12))),
            (r#""""#, None),
            (r#""abc""#, Some(CreateTime::Text("abc".into()))),
        ];
        for (number, expected) in cases {
            let [track, _] = read_both(&format!(r#"{{"id":"a","createTime":{number}}}"#));
            assert_eq!(track.create_time, expected, "{number}");
        }
        let [track, _] = read_both(r#"{"createTime":"a\u0062c"}"#);
        assert_eq!(track.create_time, Some(CreateTime::Text("abc".into())));
        assert_eq!(plain_integer("1786343609818"), Some(1_786_343_609_818));
        for not_plain in ["", "-", "1.0", "1e3", "9999999999999999999", "+1", " 1"] {
            assert_eq!(plain_integer(not_plain), None, "{not_plain}");
        }
    }

    #[test]
    fn a_track_holds_little_more_room_than_its_text() {
        for track in read_both(r#"{"id":"a","title":"b"}"#) {
            assert_eq!(track.id(), Some("a"));
            assert!(track.text.capacity() <= 2 * track.text.len(), "{track:?}");
        }
        let url = format!("https://cdn.example/{}.mp3", "x".repeat(80));
        let typical = format!(
            r#"{{"id":"{id}","audio_url":"{url}","stream_audio_url":"{url}","image_url":"{url}","title":"Song","tags":"pop"}}"#,
            id = "e".repeat(36)
        );
        for track in read_both(&typical) {
            assert!(track.text.len() > 300, "{}", track.text.len());
            assert_eq!(
                track.text.capacity(),
                FIRST_TEXT_CAPACITY,
                "a typical track keeps its room"
            );
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
