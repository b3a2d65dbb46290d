//! Builders for the music callback bodies: one place that knows their shapes, used by
//! this crate's tests, its sender simulator and yours.

use std::fmt;

use bytes::Bytes;
use serde_json::{Map, Value, json};

/// The failure codes the docs list for the music callbacks: 400, 408, 413, 451
/// (sunoapi.org), 500, 501 and 531.
///
/// ```
/// use suno_callback::event::FailureReason;
/// use suno_callback::testing::DOCUMENTED_FAILURE_CODES;
///
/// for code in DOCUMENTED_FAILURE_CODES {
///     assert!(!matches!(FailureReason::from_code(code), FailureReason::Other(_)));
/// }
/// ```
pub const DOCUMENTED_FAILURE_CODES: [i64; 7] = [400, 408, 413, 451, 500, 501, 531];

/// The `msg` a failure callback carries with `code`: for 400, 408, 413, 500, 501 and
/// 531 the texts of the documentation's examples; for 451 and codes the docs do not
/// list, a text of this crate's own.
///
/// ```
/// use suno_callback::testing::failure_msg;
///
/// assert_eq!(failure_msg(408), "Rate Limited - Timeout");
/// assert_eq!(failure_msg(599), "Generation failed (code 599)");
/// ```
pub fn failure_msg(code: i64) -> String {
    let documented = match code {
        400 => "Lyrics contained copyrighted material",
        408 => "Rate Limited - Timeout",
        413 => "Uploaded audio matches existing work of art",
        451 => "Failed to download the source file",
        500 => "An unexpected error occurred",
        501 => "Audio generation failed",
        531 => {
            "Sorry, the generation failed due to an issue. Your credits have been refunded. \
             Please try again"
        }
        other => return format!("Generation failed (code {other})"),
    };
    documented.to_owned()
}

/// Where a body carries its task id. The music callbacks use `data.task_id`; other
/// callback families use the others, and the receiver reads all four.
///
/// ```
/// use suno_callback::CallbackEvent;
/// use suno_callback::testing::{MusicCallback, TaskIdAt};
///
/// let callback = MusicCallback::complete("t1").with_task_id_at(TaskIdAt::TopLevel);
/// assert_eq!(callback.to_json()["taskId"], "t1");
/// assert_eq!(CallbackEvent::from_json(callback.body())?.task_id(), "t1");
/// # Ok::<(), suno_callback::ParseError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskIdAt {
    /// `data.task_id`, as the music callbacks send it (the default).
    #[default]
    DataTaskId,
    /// `data.taskId`.
    DataTaskIdCamel,
    /// A top-level `taskId`.
    TopLevel,
    /// A top-level `task_id`, as the current MIDI pages send it.
    TopLevelSnake,
}

/// What `data.data` holds.
#[derive(Clone, Debug, PartialEq)]
enum TrackList {
    List(Vec<TestTrack>),
    Null,
    Absent,
}

/// A music callback body (generate, extend, upload-cover, upload-extend,
/// add-instrumental, add-vocals and replace-section all share it), with realistic
/// defaults for each stage and every field overridable.
///
/// ```
/// use suno_callback::CallbackEvent;
/// use suno_callback::testing::{MusicCallback, TestTrack};
///
/// let complete = MusicCallback::complete("task-1");
/// let event = CallbackEvent::from_json(complete.body())?;
/// assert_eq!(event.stage().as_str(), "complete");
/// assert_eq!(event.tracks().len(), 2);
/// assert!(event.tracks()[0].audio_url().is_some());
///
/// // Any field can be overridden: here an upload-cover `first` with `createTime` in
/// // epoch milliseconds, a field this crate does not model, and no `msg`.
/// let odd = MusicCallback::first("task-1")
///     .with_source_urls()
///     .map_tracks(|track| track.with_create_time_epoch_millis(1_786_343_609_818))
///     .with_field("/data/newField", true)
///     .without_msg();
/// let event = CallbackEvent::from_json(odd.body())?;
/// assert_eq!(event.stage().as_str(), "first");
/// assert!(event.tracks()[0].source_audio_url().is_some());
/// assert_eq!(event.raw_json()["data"]["newField"], true);
/// assert_eq!(event.msg(), None);
/// # Ok::<(), suno_callback::ParseError>(())
/// ```
///
/// A failure with a documented code, ready for `oneshot`:
///
/// ```
/// use suno_callback::testing::{MusicCallback, Signer};
///
/// let request = MusicCallback::failure("task-1", 531)
///     .signed_request(&Signer::new("test-key"), "/callbacks/suno");
/// assert_eq!(request.method(), "POST");
/// assert!(request.headers().contains_key("x-webhook-timestamp"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MusicCallback {
    task_id: String,
    task_id_at: TaskIdAt,
    code: i64,
    msg: Option<String>,
    callback_type: Option<String>,
    tracks: TrackList,
    error: Option<String>,
    /// Raw JSON edits applied last, in order: a JSON pointer and a value (`None`
    /// removes).
    edits: Vec<(String, Option<Value>)>,
}

impl MusicCallback {
    /// A successful callback (`code` 200) with any `callbackType`, the stage's usual
    /// `msg` and an empty track list: the smallest body the receiver accepts for that
    /// stage. Use it for `callbackType` values this crate does not know.
    ///
    /// ```
    /// use suno_callback::{CallbackEvent, Stage};
    /// use suno_callback::testing::MusicCallback;
    ///
    /// let event = CallbackEvent::from_json(MusicCallback::new("t1", "remix").body())?;
    /// assert!(!event.is_failure());
    /// assert_eq!(event.stage(), &Stage::Other("remix".into()));
    /// # Ok::<(), suno_callback::ParseError>(())
    /// ```
    pub fn new(task_id: impl Into<String>, callback_type: impl Into<String>) -> Self {
        let callback_type = callback_type.into();
        let msg = match callback_type.as_str() {
            "text" => "Text generation completed successfully.",
            "first" => "First track generated successfully.",
            "complete" => "All generated successfully.",
            _ => "success",
        };
        Self {
            task_id: task_id.into(),
            task_id_at: TaskIdAt::default(),
            code: 200,
            msg: Some(msg.to_owned()),
            callback_type: Some(callback_type),
            tracks: TrackList::List(Vec::new()),
            error: None,
            edits: Vec::new(),
        }
    }

    /// `text`: the lyrics are done. Two tracks with their prompt, title, tags, model
    /// and creation time, and empty audio and image URLs (none exist yet).
    pub fn text(task_id: impl Into<String>) -> Self {
        let callback = Self::new(task_id, "text");
        let tracks: Vec<_> = (0..2)
            .map(|n| TestTrack::pending(&callback.task_id, n))
            .collect();
        callback.with_tracks(tracks)
    }

    /// `first`: the first track is done. One track with every documented field.
    pub fn first(task_id: impl Into<String>) -> Self {
        let callback = Self::new(task_id, "first");
        let track = TestTrack::finished(&callback.task_id, 0);
        callback.with_tracks([track])
    }

    /// `complete`: all tracks are done. Two tracks with every documented field.
    pub fn complete(task_id: impl Into<String>) -> Self {
        let callback = Self::new(task_id, "complete");
        let tracks: Vec<_> = (0..2)
            .map(|n| TestTrack::finished(&callback.task_id, n))
            .collect();
        callback.with_tracks(tracks)
    }

    /// A failure: `callbackType` `error`, the `code`, the `msg` the sender writes with
    /// it ([`failure_msg`]) and `data.data` `null`. Any code is allowed, including
    /// ones the docs do not list ([`DOCUMENTED_FAILURE_CODES`] has those they do).
    pub fn failure(task_id: impl Into<String>, code: i64) -> Self {
        Self::new(task_id, "error")
            .with_code(code)
            .with_msg(failure_msg(code))
            .with_null_tracks()
    }

    /// Another task id.
    #[must_use]
    pub fn with_task_id(mut self, task_id: impl Into<String>) -> Self {
        self.task_id = task_id.into();
        self
    }

    /// Where the body carries the task id (default `data.task_id`).
    #[must_use]
    pub fn with_task_id_at(mut self, at: TaskIdAt) -> Self {
        self.task_id_at = at;
        self
    }

    /// Another `code`. Any code but 200 makes the callback a failure for the receiver,
    /// whatever its `callbackType`.
    #[must_use]
    pub fn with_code(mut self, code: i64) -> Self {
        self.code = code;
        self
    }

    /// Another `msg`.
    #[must_use]
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }

    /// No `msg` field.
    #[must_use]
    pub fn without_msg(mut self) -> Self {
        self.msg = None;
        self
    }

    /// Another `data.callbackType`.
    #[must_use]
    pub fn with_callback_type(mut self, callback_type: impl Into<String>) -> Self {
        self.callback_type = Some(callback_type.into());
        self
    }

    /// No `data.callbackType` field.
    #[must_use]
    pub fn without_callback_type(mut self) -> Self {
        self.callback_type = None;
        self
    }

    /// These tracks in `data.data` (an empty iterator gives `[]`).
    #[must_use]
    pub fn with_tracks(mut self, tracks: impl IntoIterator<Item = TestTrack>) -> Self {
        self.tracks = TrackList::List(tracks.into_iter().collect());
        self
    }

    /// One more track in `data.data`.
    #[must_use]
    pub fn with_track(mut self, track: TestTrack) -> Self {
        match &mut self.tracks {
            TrackList::List(tracks) => tracks.push(track),
            other => *other = TrackList::List(vec![track]),
        }
        self
    }

    /// Each track replaced by `f(track)`.
    #[must_use]
    pub fn map_tracks(mut self, f: impl FnMut(TestTrack) -> TestTrack) -> Self {
        if let TrackList::List(tracks) = self.tracks {
            self.tracks = TrackList::List(tracks.into_iter().map(f).collect());
        }
        self
    }

    /// The `source_*` URLs on every track, as the upload-cover and upload-extend
    /// pages send them.
    #[must_use]
    pub fn with_source_urls(self) -> Self {
        self.map_tracks(TestTrack::with_source_urls)
    }

    /// `data.data` is `null`.
    #[must_use]
    pub fn with_null_tracks(mut self) -> Self {
        self.tracks = TrackList::Null;
        self
    }

    /// No `data.data` field.
    #[must_use]
    pub fn without_tracks(mut self) -> Self {
        self.tracks = TrackList::Absent;
        self
    }

    /// A string `data.error`, as some failure pages send.
    #[must_use]
    pub fn with_error_detail(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// Sets the value at a JSON pointer (`/data/newField`, `/data/data/0/title`),
    /// creating objects on the way. Applied after everything else, so it can
    /// overwrite any field the builder writes, with a value of any type.
    #[must_use]
    pub fn with_field(mut self, pointer: impl Into<String>, value: impl Into<Value>) -> Self {
        self.edits.push((pointer.into(), Some(value.into())));
        self
    }

    /// Removes the value at a JSON pointer (`/code`, `/data/data/0/tags`), if present.
    #[must_use]
    pub fn without_field(mut self, pointer: impl Into<String>) -> Self {
        self.edits.push((pointer.into(), None));
        self
    }

    /// The task id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The `data.callbackType`, if the body has one.
    pub fn callback_type(&self) -> Option<&str> {
        self.callback_type.as_deref()
    }

    /// The `code`.
    pub fn code(&self) -> i64 {
        self.code
    }

    /// The `msg`, if the body has one.
    pub fn msg(&self) -> Option<&str> {
        self.msg.as_deref()
    }

    /// The tracks in `data.data` (empty when it is `null` or absent).
    pub fn tracks(&self) -> &[TestTrack] {
        match &self.tracks {
            TrackList::List(tracks) => tracks,
            TrackList::Null | TrackList::Absent => &[],
        }
    }

    /// The body as a JSON value.
    pub fn to_json(&self) -> Value {
        let mut data = Map::new();
        if let Some(callback_type) = &self.callback_type {
            data.insert("callbackType".into(), callback_type.as_str().into());
        }
        let mut root = Map::new();
        root.insert("code".into(), self.code.into());
        if let Some(msg) = &self.msg {
            root.insert("msg".into(), msg.as_str().into());
        }
        let task_id = Value::from(self.task_id.as_str());
        match self.task_id_at {
            TaskIdAt::DataTaskId => data.insert("task_id".into(), task_id),
            TaskIdAt::DataTaskIdCamel => data.insert("taskId".into(), task_id),
            TaskIdAt::TopLevel => root.insert("taskId".into(), task_id),
            TaskIdAt::TopLevelSnake => root.insert("task_id".into(), task_id),
        };
        match &self.tracks {
            TrackList::List(tracks) => {
                let list = tracks.iter().map(TestTrack::to_json).collect();
                data.insert("data".into(), Value::Array(list));
            }
            TrackList::Null => {
                data.insert("data".into(), Value::Null);
            }
            TrackList::Absent => {}
        }
        if let Some(error) = &self.error {
            data.insert("error".into(), error.as_str().into());
        }
        root.insert("data".into(), Value::Object(data));
        let mut body = Value::Object(root);
        for (pointer, value) in &self.edits {
            match value {
                Some(value) => set_pointer(&mut body, pointer, value.clone()),
                None => remove_pointer(&mut body, pointer),
            }
        }
        body
    }

    /// The body as JSON text.
    pub fn to_json_string(&self) -> String {
        self.to_json().to_string()
    }
}

impl MusicCallback {
    super::request::body_and_requests!();
}

impl fmt::Display for MusicCallback {
    /// The body as JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_json(), f)
    }
}

impl From<MusicCallback> for Bytes {
    fn from(callback: MusicCallback) -> Self {
        callback.body()
    }
}

/// One track of a [`MusicCallback`], as a JSON object with every field overridable.
///
/// ```
/// use suno_callback::event::Track;
/// use suno_callback::testing::TestTrack;
///
/// let track = TestTrack::finished("task-1", 0)
///     .with_title("Night City")
///     .with_create_time_epoch_millis(1_786_343_609_818)
///     .without_field("tags");
/// let parsed: Track = serde_json::from_value(track.to_json())?;
/// assert_eq!(parsed.title(), Some("Night City"));
/// assert_eq!(parsed.tags(), None);
/// assert_eq!(parsed.create_time().and_then(|t| t.epoch_millis()), Some(1_786_343_609_818));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestTrack {
    fields: Map<String, Value>,
}

const TITLES: [&str; 4] = ["Night City", "Neon Rain", "Iron Skyline", "Last Train Home"];
const DURATIONS: [f64; 4] = [198.44, 228.28, 174.9, 241.02];

impl TestTrack {
    /// A track with no fields at all (`{}`).
    pub fn empty() -> Self {
        Self::default()
    }

    /// A finished track (the `index`th of the task) with every documented field:
    /// `id`, `audio_url`, `stream_audio_url`, `image_url`, `prompt`, `model_name`,
    /// `title`, `tags`, `createTime` (as a `"YYYY-MM-DD HH:MM:SS"` string) and
    /// `duration`. The id and URLs are derived from the task id, so they differ
    /// between tasks and are the same on every run.
    pub fn finished(task_id: &str, index: usize) -> Self {
        let id = track_id(task_id, index);
        Self::pending(task_id, index)
            .with_audio_url(format!("https://cdn.example.net/audio/{id}.mp3"))
            .with_stream_audio_url(format!("https://cdn.example.net/stream/{id}"))
            .with_image_url(format!("https://cdn.example.net/cover/{id}.jpeg"))
            .with_duration(DURATIONS[index % DURATIONS.len()])
    }

    /// A track as a `text` callback reports it: id, prompt, title, tags, model and
    /// creation time, with `audio_url`, `stream_audio_url` and `image_url` empty and no
    /// `duration`, since no audio exists yet.
    pub fn pending(task_id: &str, index: usize) -> Self {
        Self::empty()
            .with_id(track_id(task_id, index))
            .with_audio_url("")
            .with_stream_audio_url("")
            .with_image_url("")
            .with_prompt(
                "[Verse] Night city lights shining bright\n[Chorus] We run until the morning",
            )
            .with_model_name("chirp-v4-5")
            .with_title(TITLES[index % TITLES.len()])
            .with_tags("synthwave, electronic, driving")
            .with_create_time("2025-01-01 00:00:00")
    }

    /// `id`.
    #[must_use]
    pub fn with_id(self, id: impl Into<String>) -> Self {
        self.with_field("id", id.into())
    }

    /// `audio_url`.
    #[must_use]
    pub fn with_audio_url(self, url: impl Into<String>) -> Self {
        self.with_field("audio_url", url.into())
    }

    /// `stream_audio_url`.
    #[must_use]
    pub fn with_stream_audio_url(self, url: impl Into<String>) -> Self {
        self.with_field("stream_audio_url", url.into())
    }

    /// `image_url`.
    #[must_use]
    pub fn with_image_url(self, url: impl Into<String>) -> Self {
        self.with_field("image_url", url.into())
    }

    /// `source_audio_url`, `source_stream_audio_url` and `source_image_url`, derived
    /// from the track id, as the upload-cover and upload-extend pages send them.
    #[must_use]
    pub fn with_source_urls(self) -> Self {
        let id = match self.fields.get("id") {
            Some(Value::String(id)) => id.clone(),
            _ => "source".to_owned(),
        };
        self.with_field(
            "source_audio_url",
            format!("https://cdn.example.net/src/{id}.mp3"),
        )
        .with_field(
            "source_stream_audio_url",
            format!("https://cdn.example.net/src-stream/{id}"),
        )
        .with_field(
            "source_image_url",
            format!("https://cdn.example.net/src-cover/{id}.jpeg"),
        )
    }

    /// `prompt`.
    #[must_use]
    pub fn with_prompt(self, prompt: impl Into<String>) -> Self {
        self.with_field("prompt", prompt.into())
    }

    /// `model_name`.
    #[must_use]
    pub fn with_model_name(self, model: impl Into<String>) -> Self {
        self.with_field("model_name", model.into())
    }

    /// `title`.
    #[must_use]
    pub fn with_title(self, title: impl Into<String>) -> Self {
        self.with_field("title", title.into())
    }

    /// `tags`.
    #[must_use]
    pub fn with_tags(self, tags: impl Into<String>) -> Self {
        self.with_field("tags", tags.into())
    }

    /// `createTime` as a string, for example `"2025-01-01 00:00:00"`.
    #[must_use]
    pub fn with_create_time(self, text: impl Into<String>) -> Self {
        self.with_field("createTime", text.into())
    }

    /// `createTime` as a number of epoch milliseconds, as some pages send it.
    #[must_use]
    pub fn with_create_time_epoch_millis(self, millis: i64) -> Self {
        self.with_field("createTime", millis)
    }

    /// `duration` in seconds.
    #[must_use]
    pub fn with_duration(self, seconds: f64) -> Self {
        self.with_field("duration", seconds)
    }

    /// Any field, with a value of any type (`null`, a number where a string is
    /// documented, a field this crate does not model...).
    #[must_use]
    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// No such field.
    #[must_use]
    pub fn without_field(mut self, name: &str) -> Self {
        self.fields.remove(name);
        self
    }

    /// A field's value, if set.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// The track as a JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.fields.clone())
    }
}

/// A UUID-shaped track id derived from the task id (FNV-1a), stable across runs.
fn track_id(task_id: &str, index: usize) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in task_id.bytes().chain(index.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let hex = format!(
        "{hash:016x}{:016x}",
        hash.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15
    );
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Unescapes one JSON pointer token (`~1` is `/`, `~0` is `~`).
fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Sets `value` at `pointer`, creating objects where nothing (or a scalar) is.
pub(super) fn set_pointer(root: &mut Value, pointer: &str, value: Value) {
    let tokens = pointer_tokens(pointer);
    let Some((last, parents)) = tokens.split_last() else {
        *root = value;
        return;
    };
    let mut current = root;
    for token in parents {
        current = child_or_insert(current, token);
    }
    match current {
        Value::Array(items) => match last.parse::<usize>() {
            Ok(index) if index < items.len() => items[index] = value,
            _ => items.push(value),
        },
        other => {
            if !other.is_object() {
                *other = json!({});
            }
            if let Value::Object(map) = other {
                map.insert(last.clone(), value);
            }
        }
    }
}

fn child_or_insert<'a>(current: &'a mut Value, token: &str) -> &'a mut Value {
    match current {
        Value::Array(items) => {
            let index = match token.parse::<usize>() {
                Ok(index) if index < items.len() => index,
                _ => {
                    items.push(Value::Null);
                    items.len() - 1
                }
            };
            &mut items[index]
        }
        Value::Object(map) => map.entry(token.to_owned()).or_insert(Value::Null),
        other => {
            // Indexing `null` with a string makes it an object holding that key.
            *other = Value::Null;
            &mut other[token]
        }
    }
}

/// Removes the value at `pointer`, if present.
pub(super) fn remove_pointer(root: &mut Value, pointer: &str) {
    let tokens = pointer_tokens(pointer);
    let Some((last, parents)) = tokens.split_last() else {
        return;
    };
    let mut current = root;
    for token in parents {
        let next = match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    match current {
        Value::Object(map) => {
            map.remove(last);
        }
        Value::Array(items) => {
            if let Ok(index) = last.parse::<usize>()
                && index < items.len()
            {
                items.remove(index);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_set_and_remove_nested_values() {
        let body = MusicCallback::complete("t")
            .with_field("/data/data/1/title", 42)
            .with_field("/extra/nested/flag", true)
            .with_field("/data/data/9", "appended")
            .without_field("/data/data/0/tags")
            .without_field("/data/missing/deeper")
            .with_field("/a~1b", 1)
            .to_json();
        assert_eq!(body["data"]["data"][1]["title"], 42);
        assert_eq!(body["extra"]["nested"]["flag"], true);
        assert_eq!(body["data"]["data"][2], "appended");
        assert!(body["data"]["data"][0].get("tags").is_none());
        assert_eq!(body["a/b"], 1);
    }

    #[test]
    fn track_ids_are_uuid_shaped_stable_and_distinct() {
        let a = track_id("task-a", 0);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_eq!(a, track_id("task-a", 0));
        assert_ne!(a, track_id("task-a", 1));
        assert_ne!(a, track_id("task-b", 0));
    }

    #[test]
    fn task_id_goes_where_asked() {
        let at = |place| MusicCallback::text("t9").with_task_id_at(place).to_json();
        assert_eq!(at(TaskIdAt::DataTaskId)["data"]["task_id"], "t9");
        assert_eq!(at(TaskIdAt::DataTaskIdCamel)["data"]["taskId"], "t9");
        let top = at(TaskIdAt::TopLevel);
        assert_eq!(top["taskId"], "t9");
        assert!(top["data"].get("task_id").is_none());
    }
}
