//! Builders for the callback bodies of every family but music (which has its own,
//! [`MusicCallback`](super::MusicCallback)), in the shapes of the pages.

use std::fmt;

use bytes::Bytes;
use serde_json::{Value, json};

use super::music::{remove_pointer, set_pointer};
use super::{MusicCallback, TaskIdAt};
use crate::{ApiRoute, Family};

/// The model of another provider that [`jobs_model`] gives for [`Family::Unknown`].
const OTHER_MODEL: &str = "sora-2-text-to-video";

/// A jobs-route model of `family`: the first of [`Family::JOBS_MODELS`] with it
/// (`ai-music-api/generate` for music), or another provider's model
/// (`sora-2-text-to-video`) for [`Family::Unknown`].
///
/// ```
/// use suno_callback::Family;
/// use suno_callback::testing::jobs_model;
///
/// assert_eq!(jobs_model(Family::Music), "ai-music-api/generate");
/// assert_eq!(Family::from_model(&jobs_model(Family::Wav)), Some(Family::Wav));
/// assert_eq!(Family::from_model(&jobs_model(Family::Unknown)), None);
/// ```
pub fn jobs_model(family: Family) -> String {
    Family::JOBS_MODELS
        .iter()
        .find(|(_, of)| *of == family)
        .map_or_else(
            || OTHER_MODEL.to_owned(),
            |(name, _)| format!("ai-music-api/{name}"),
        )
}

/// A callback body of any family, success or failure, with the defaults of the pages
/// (Kie's shapes; sunoapi.org's variants through [`with_field`](Self::with_field))
/// and every field overridable.
///
/// ```
/// use suno_callback::{CallbackEvent, Family};
/// use suno_callback::event::Payload;
/// use suno_callback::testing::FamilyCallback;
///
/// let wav = FamilyCallback::success(Family::Wav, "task-1");
/// let event = CallbackEvent::from_json(wav.body())?;
/// let Payload::Wav(payload) = event.payload() else { unreachable!() };
/// assert!(payload.audio_wav_url().is_some());
///
/// // A MIDI failure carries nothing but its task id: only its path types it.
/// let failure = FamilyCallback::failure(Family::Midi, "task-2");
/// assert_eq!(failure.path("/callbacks/suno"), "/callbacks/suno/midi");
/// let event = CallbackEvent::from_json_as(Family::Midi, failure.body())?;
/// assert!(event.is_failure());
/// # Ok::<(), suno_callback::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyCallback {
    family: Family,
    route: ApiRoute,
    task_id: String,
    body: Value,
    /// Raw JSON edits applied last, in order: a JSON pointer and a value (`None`
    /// removes).
    edits: Vec<(String, Option<Value>)>,
}

impl FamilyCallback {
    /// A success of `family` with realistic content: music `complete` tracks, two lyric
    /// variations, a WAV URL, two stems, a MIDI instrument with notes (times as numbers
    /// and strings), a video URL, two cover images, a voice `success` with its id.
    /// [`Family::Unknown`] gives a `200` with nothing but the task id.
    pub fn success(family: Family, task_id: impl Into<String>) -> Self {
        let task_id = task_id.into();
        let id = task_id.as_str();
        let url = |path: &str| format!("https://cdn.example.net/{id}/{path}");
        let body = match family {
            Family::Music => MusicCallback::complete(id).to_json(),
            Family::Lyrics => json!({"code": 200, "msg": "All generated successfully.", "data": {
                "callbackType": "complete", "task_id": id, "data": [
                    {"text": "[Verse]\nMoonlight on the sill", "title": "Starry Night",
                     "status": "complete", "error_message": ""},
                    {"text": "[Chorus]\nHold the light", "title": "Hold the Light",
                     "status": "complete", "error_message": ""}]}}),
            Family::Wav => json!({"code": 200, "msg": "success", "data": {
                "audioWavUrl": url("audio.wav"), "task_id": id}}),
            Family::Separation => json!({"code": 200,
                "msg": "vocal separation generated successfully.", "data": {
                "task_id": id, "vocal_separation_info": {
                    "instrumental_url": url("instrumental.mp3"), "origin_url": "",
                    "vocal_url": url("vocal.mp3")}}}),
            Family::Midi => json!({"code": 200, "msg": "success", "data": {
                "taskId": id, "state": "complete", "instruments": [{"name": "Drums", "notes": [
                    {"pitch": 73, "start": "0.036458333333333336", "end": "0.18229166666666666", "velocity": 1},
                    {"pitch": 61, "start": 0.046875, "end": 0.19270833333333334, "velocity": 1}]}]}}),
            Family::Video => json!({"code": 200, "msg": "success", "data": {
                "task_id": id, "video_url": url("video.mp4")}}),
            Family::Cover => json!({"code": 200, "msg": "success", "data": {
                "images": [url("1.png"), url("2.png")], "taskId": id}}),
            Family::Voice => json!({"code": 200, "msg": "success", "data": {
                "taskId": id, "status": "success", "voiceId": format!("voice_{id}")}}),
            _ => json!({"code": 200, "msg": "success", "data": {"task_id": id}}),
        };
        Self::from_body(family, task_id, body)
    }

    /// A failure of `family` in its documented shape and code: music `error` 501,
    /// lyrics `complete` 400 with `data.data` null, WAV / separation / video 500 with
    /// their URL null, MIDI 500 with `data` holding only the task id, cover 501 with
    /// `images` null, voice 400 with status `fail` and an error.
    pub fn failure(family: Family, task_id: impl Into<String>) -> Self {
        let task_id = task_id.into();
        let id = task_id.as_str();
        let body = match family {
            Family::Music => MusicCallback::failure(id, 501).to_json(),
            Family::Lyrics => json!({"code": 400, "msg": "Song Description flagged for moderation",
                "data": {"callbackType": "complete", "task_id": id, "data": null}}),
            Family::Wav => json!({"code": 500, "msg": "Internal Error - Please try again later",
                "data": {"audioWavUrl": null, "task_id": id}}),
            Family::Separation => json!({"code": 500, "msg": "Vocal separation failed",
                "data": {"task_id": id, "vocal_separation_info": null}}),
            Family::Video => json!({"code": 500, "msg": "Internal Error - Please try again later",
                "data": {"task_id": id, "video_url": null}}),
            Family::Cover => json!({"code": 501, "msg": "Cover generation failed",
                "data": {"taskId": id, "images": null}}),
            Family::Voice => json!({"code": 400, "msg": "Voice validation failed", "data": {
                "taskId": id, "status": "fail", "errorCode": 500,
                "errorMessage": "The recording does not match the phrase"}}),
            // MIDI, and any failure whose body says nothing of its family.
            _ => json!({"code": 500, "msg": "Generation failed", "data": {"taskId": id}}),
        };
        Self::from_body(family, task_id, body)
    }

    /// A voice callback at `status` (`wait_validating` carries `validateInfo`,
    /// `success` a `voiceId`, `fail` and `processing_validate_fail` an error).
    pub fn voice(task_id: impl Into<String>, status: &str) -> Self {
        let callback = match status {
            "fail" => Self::failure(Family::Voice, task_id),
            _ => Self::success(Family::Voice, task_id),
        };
        let id = callback.task_id.clone();
        let callback = callback.with_field("/data/status", status);
        match status {
            "wait_validating" => callback.without_field("/data/voiceId").with_field(
                "/data/validateInfo",
                "Please read: the quick brown fox jumps over the lazy dog",
            ),
            "processing_validate_fail" => callback
                .without_field("/data/voiceId")
                .with_field("/data/errorMessage", format!("validation of {id} failed")),
            _ => callback,
        }
    }

    /// A separation in `split_stem` mode: twelve stems.
    pub fn split_stem(task_id: impl Into<String>) -> Self {
        let task_id = task_id.into();
        let stems = [
            "backing_vocals",
            "bass",
            "brass",
            "drums",
            "fx",
            "guitar",
            "keyboard",
            "percussion",
            "strings",
            "synth",
            "vocal",
            "woodwinds",
        ];
        let mut info = serde_json::Map::new();
        info.insert("origin_url".into(), "".into());
        for stem in stems {
            let url = format!("https://cdn.example.net/{task_id}/{stem}.mp3");
            info.insert(format!("{stem}_url"), url.into());
        }
        Self::success(Family::Separation, task_id)
            .with_field("/data/vocal_separation_info", Value::Object(info))
    }

    /// A jobs-route success of `model` (`ai-music-api/generate`, any other name): the
    /// market pages' envelope (`data.model`, `data.state` `success`, credits, times,
    /// `param`) whose `resultJson` string holds what the classic success of the
    /// model's family holds in its `data` (the music `complete` object with its
    /// tracks, the lyrics list, `audioWavUrl`, `vocal_separation_info`, `instruments`,
    /// `video_url`, `images`, `voiceId`), or `{"resultUrls": […]}` for a model of no
    /// known family.
    ///
    /// ```
    /// use suno_callback::{ApiRoute, CallbackEvent, Family};
    /// use suno_callback::testing::FamilyCallback;
    ///
    /// let callback = FamilyCallback::jobs_success("ai-music-api/generate", "task-1");
    /// assert_eq!(callback.route(), ApiRoute::Jobs);
    /// assert_eq!(callback.family(), Family::Music);
    /// let event = CallbackEvent::from_json(callback.body())?;
    /// assert_eq!(event.api_route(), ApiRoute::Jobs);
    /// assert_eq!(event.tracks().len(), 2);
    /// # Ok::<(), suno_callback::ParseError>(())
    /// ```
    pub fn jobs_success(model: impl Into<String>, task_id: impl Into<String>) -> Self {
        let (model, task_id) = (model.into(), task_id.into());
        let family = Family::from_model(&model).unwrap_or(Family::Unknown);
        let result = match family {
            Family::Unknown => json!({"resultUrls": [
                format!("https://cdn.example.net/{task_id}/result.mp4")]}),
            family => Self::success(family, task_id.as_str()).to_json()["data"].take(),
        };
        let body = jobs_body(&model, &task_id, "success", &result.to_string());
        Self::from_body(family, task_id, body).on_jobs_route()
    }

    /// A jobs-route failure of `model`: `code` 501, `state` `fail`, `failCode` `"500"`
    /// and `failMsg`, an empty `resultJson`, as the market pages show.
    ///
    /// ```
    /// use suno_callback::{CallbackEvent, Family};
    /// use suno_callback::testing::FamilyCallback;
    ///
    /// let callback = FamilyCallback::jobs_failure("ai-music-api/convert-to-wav-format", "task-2");
    /// let event = CallbackEvent::from_json(callback.body())?;
    /// assert_eq!(event.family(), Family::Wav);
    /// assert!(event.is_failure());
    /// # Ok::<(), suno_callback::ParseError>(())
    /// ```
    pub fn jobs_failure(model: impl Into<String>, task_id: impl Into<String>) -> Self {
        let (model, task_id) = (model.into(), task_id.into());
        let family = Family::from_model(&model).unwrap_or(Family::Unknown);
        let mut body = jobs_body(&model, &task_id, "fail", "");
        body["code"] = json!(501);
        body["msg"] = json!("Playground task failed.");
        body["data"]["failCode"] = json!("500");
        body["data"]["failMsg"] = json!("Internal server error");
        body["data"]["consumeCredits"] = json!(0);
        Self::from_body(family, task_id, body).on_jobs_route()
    }

    fn on_jobs_route(mut self) -> Self {
        self.route = ApiRoute::Jobs;
        self
    }

    fn from_body(family: Family, task_id: String, body: Value) -> Self {
        Self {
            route: ApiRoute::Classic,
            family,
            task_id,
            body,
            edits: Vec::new(),
        }
    }

    /// Moves the task id to another documented place.
    #[must_use]
    pub fn with_task_id_at(self, at: TaskIdAt) -> Self {
        let id = Value::from(self.task_id.as_str());
        let cleared = self
            .without_field("/data/task_id")
            .without_field("/data/taskId")
            .without_field("/task_id")
            .without_field("/taskId");
        match at {
            TaskIdAt::DataTaskId => cleared.with_field("/data/task_id", id),
            TaskIdAt::DataTaskIdCamel => cleared.with_field("/data/taskId", id),
            TaskIdAt::TopLevelSnake => cleared.with_field("/task_id", id),
            _ => cleared.with_field("/taskId", id),
        }
    }

    /// Sets `code`.
    #[must_use]
    pub fn with_code(self, code: i64) -> Self {
        self.with_field("/code", code)
    }

    /// Sets `msg`.
    #[must_use]
    pub fn with_msg(self, msg: impl Into<String>) -> Self {
        self.with_field("/msg", msg.into())
    }

    /// Sets any field by JSON pointer (`/data/vocal_removal_info`), creating objects
    /// on the way.
    #[must_use]
    pub fn with_field(mut self, pointer: impl Into<String>, value: impl Into<Value>) -> Self {
        self.edits.push((pointer.into(), Some(value.into())));
        self
    }

    /// Removes a field by JSON pointer.
    #[must_use]
    pub fn without_field(mut self, pointer: impl Into<String>) -> Self {
        self.edits.push((pointer.into(), None));
        self
    }

    /// The `code` the body carries.
    pub fn code(&self) -> i64 {
        self.to_json()["code"].as_i64().unwrap_or_default()
    }

    /// The stage the body names: `callbackType` (music, lyrics) or `status` (voice);
    /// `None` for families without stages and on the jobs route (whose callbacks are
    /// all final).
    pub fn stage(&self) -> Option<String> {
        if self.route == ApiRoute::Jobs {
            return None;
        }
        let body = self.to_json();
        let data = &body["data"];
        let stage = match self.family {
            Family::Voice => &data["status"],
            _ => &data["callbackType"],
        };
        stage.as_str().map(str::to_owned)
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The route whose shape the body has: [`ApiRoute::Jobs`] for
    /// [`jobs_success`](Self::jobs_success) and [`jobs_failure`](Self::jobs_failure).
    pub fn route(&self) -> ApiRoute {
        self.route
    }

    /// The task id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The family's own path under `base`: `base/<family>`.
    pub fn path(&self, base: &str) -> String {
        format!("{}/{}", base.trim_end_matches('/'), self.family)
    }

    /// The body as a JSON value.
    pub fn to_json(&self) -> Value {
        let mut body = self.body.clone();
        for (pointer, value) in &self.edits {
            match value {
                Some(value) => set_pointer(&mut body, pointer, value.clone()),
                None => remove_pointer(&mut body, pointer),
            }
        }
        body
    }
}

impl FamilyCallback {
    super::request::body_and_requests!();
}

/// The jobs route's callback envelope about `task_id` of `model`, in `state`, with
/// this `resultJson` text.
fn jobs_body(model: &str, task_id: &str, state: &str, result_json: &str) -> Value {
    let param = json!({"model": model, "callBackUrl": "https://api.example.com/callbacks/suno",
        "input": {"prompt": "a calm piano piece", "model": "V6"}});
    json!({"code": 200, "msg": "Playground task completed successfully.", "data": {
        "taskId": task_id, "model": model, "state": state, "param": param.to_string(),
        "resultJson": result_json, "failCode": null, "failMsg": null, "costTime": 41,
        "completeTime": 1_791_201_641_000_i64, "createTime": 1_791_201_600_000_i64,
        "updateTime": 1_791_201_641_000_i64, "consumeCredits": 12, "remainedCredits": 2488}})
}

impl From<MusicCallback> for FamilyCallback {
    /// The music body, to handle music and the other families alike.
    fn from(callback: MusicCallback) -> Self {
        let task_id = callback.task_id().to_owned();
        Self::from_body(Family::Music, task_id, callback.to_json())
    }
}

impl fmt::Display for FamilyCallback {
    /// The body as JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_json(), f)
    }
}

impl From<FamilyCallback> for Bytes {
    fn from(callback: FamilyCallback) -> Self {
        callback.body()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallbackEvent, Outcome};

    #[test]
    fn every_family_builds_a_success_and_a_failure_typed_as_itself() {
        for family in Family::ALL {
            let success = FamilyCallback::success(family, "t-s");
            let event = CallbackEvent::from_json(success.body()).expect("success parses");
            assert_eq!(
                (event.family(), event.outcome()),
                (family, Outcome::Success)
            );
            let failure = FamilyCallback::failure(family, "t-f");
            let event = CallbackEvent::from_json_as(family, failure.body()).expect("parses");
            assert_eq!(
                (event.family(), event.outcome()),
                (family, Outcome::Failure)
            );
            for at in [
                TaskIdAt::DataTaskId,
                TaskIdAt::DataTaskIdCamel,
                TaskIdAt::TopLevel,
                TaskIdAt::TopLevelSnake,
            ] {
                let moved = FamilyCallback::success(family, "t-at").with_task_id_at(at);
                let event = CallbackEvent::from_json(moved.body()).expect("parses");
                assert_eq!(event.task_id(), "t-at", "{family} {at:?}");
            }
        }
        let voice = FamilyCallback::voice("t-v", "wait_validating");
        let event = CallbackEvent::from_json(voice.body()).expect("parses");
        assert_eq!(event.stage().as_str(), "wait_validating");
        let stems =
            CallbackEvent::from_json(FamilyCallback::split_stem("t-s").body()).expect("parses");
        let crate::event::Payload::Separation(stems) = stems.payload() else {
            panic!("separation")
        };
        assert_eq!(stems.stems().len(), 12);
    }

    #[test]
    fn every_family_builds_a_jobs_success_and_failure_typed_as_its_model_says() {
        for family in Family::ALL.into_iter().chain([Family::Unknown]) {
            let model = jobs_model(family);
            let success = FamilyCallback::jobs_success(model.as_str(), "t-js");
            assert_eq!(success.route(), ApiRoute::Jobs);
            assert_eq!(success.family(), family);
            for (callback, outcome) in [
                (success, Outcome::Success),
                (
                    FamilyCallback::jobs_failure(model.as_str(), "t-jf"),
                    Outcome::Failure,
                ),
            ] {
                for path in [Some(family), None] {
                    let event = match path {
                        Some(family) if family != Family::Unknown => {
                            CallbackEvent::from_json_as(family, callback.body())
                        }
                        _ => CallbackEvent::from_json(callback.body()),
                    }
                    .expect("parses");
                    assert_eq!(
                        (event.family(), event.outcome(), event.api_route()),
                        (family, outcome, ApiRoute::Jobs),
                        "{model} {outcome}"
                    );
                    assert_eq!(event.task_id(), callback.task_id());
                }
            }
        }
        let music = FamilyCallback::jobs_success("ai-music-api/extend", "t-m");
        let event = CallbackEvent::from_json(music.body()).expect("parses");
        assert_eq!(event.stage(), &crate::Stage::Complete);
        assert_eq!(event.tracks().len(), 2);
    }

    #[test]
    fn the_classic_builders_stay_on_the_classic_route() {
        let stems =
            CallbackEvent::from_json(FamilyCallback::split_stem("t-s").body()).expect("parses");
        assert_eq!(stems.api_route(), ApiRoute::Classic);
        let crate::event::Payload::Separation(stems) = stems.payload() else {
            panic!("separation")
        };
        assert_eq!(stems.stems().len(), 12);
    }
}
