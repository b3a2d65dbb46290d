//! Where the provider answers about a task: the task-details path of each [`Family`]
//! on the classic route, and the jobs route's paths.

use crate::event::Family;

/// `POST`: creates a task of any model on the jobs route.
pub(crate) const JOBS_CREATE_PATH: &str = "/api/v1/jobs/createTask";
/// `GET …?taskId=`: the task details of a jobs-route task, whatever its model.
pub(crate) const JOBS_RECORD_INFO_PATH: &str = "/api/v1/jobs/recordInfo";

/// The path of `family`'s task-details endpoint on the classic route (`GET
/// …?taskId=`); `None` for [`Family::Unknown`], whose endpoint nobody can tell.
///
/// ```
/// use suno_callback::Family;
/// use suno_callback::provider::record_info_path;
///
/// assert_eq!(record_info_path(Family::Wav), Some("/api/v1/wav/record-info"));
/// assert_eq!(record_info_path(Family::Unknown), None);
/// ```
pub fn record_info_path(family: Family) -> Option<&'static str> {
    let path = match family {
        Family::Music => "/api/v1/generate/record-info",
        Family::Lyrics => "/api/v1/lyrics/record-info",
        Family::Wav => "/api/v1/wav/record-info",
        Family::Separation => "/api/v1/vocal-removal/record-info",
        Family::Midi => "/api/v1/midi/record-info",
        Family::Video => "/api/v1/mp4/record-info",
        Family::Cover => "/api/v1/suno/cover/record-info",
        Family::Voice => "/api/v1/voice/record-info",
        _ => return None,
    };
    Some(path)
}

/// A family name as registries store it ([`Family::as_str`], `unknown` included);
/// `None` for a name this version does not know.
pub(crate) fn stored_family(name: &str) -> Option<Family> {
    match name {
        "unknown" => Some(Family::Unknown),
        name => Family::from_name(name),
    }
}
