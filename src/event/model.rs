//! The jobs route's model names and the family of each: the one table the jobs shape,
//! the reconciler and the README read.

use super::family::Family;

/// The prefix of every Suno model of the jobs route.
const SUNO_PREFIX: &str = "ai-music-api/";

impl Family {
    /// Every Suno model of the jobs route (`ai-music-api/` + name, as the provider's
    /// pages list them) and the family its callbacks belong to.
    ///
    /// Three models have no family of their own on the old per-endpoint pages, whose
    /// endpoints for them answer synchronously and never call back; each goes to the
    /// family whose payload is nearest, so that a handler of that family sees it and
    /// its raw `resultJson` stays reachable through
    /// [`CallbackEvent::jobs`](crate::CallbackEvent::jobs):
    /// `timeStamped-lyrics` (words of a track's lyrics with their times) and
    /// `boost-music-style` (a style text) to [`Family::Lyrics`], the family of text
    /// results; `generate-persona` (a singer persona made from a track) to
    /// [`Family::Voice`], the family of voices. No new family is added for them: a
    /// family is also a path segment, a dedup-key part and a registry column, and none
    /// of these results needs a shape of its own.
    ///
    /// ```
    /// use suno_callback::Family;
    ///
    /// assert_eq!(Family::JOBS_MODELS.len(), 23);
    /// assert!(Family::JOBS_MODELS.contains(&("generate", Family::Music)));
    /// ```
    pub const JOBS_MODELS: [(&'static str, Family); 23] = [
        ("generate", Family::Music),
        ("extend", Family::Music),
        ("upload-and-cover-audio", Family::Music),
        ("upload-and-extend-audio", Family::Music),
        ("add-instrumental", Family::Music),
        ("add-vocals", Family::Music),
        ("mashup", Family::Music),
        ("replace-section", Family::Music),
        ("sounds", Family::Music),
        ("suno-recovery-audio", Family::Music),
        ("generate-lyrics", Family::Lyrics),
        ("timeStamped-lyrics", Family::Lyrics),
        ("boost-music-style", Family::Lyrics),
        ("convert-to-wav-format", Family::Wav),
        ("separate-vocals", Family::Separation),
        ("generate-midi-from-audio", Family::Midi),
        ("create-music-video", Family::Video),
        ("cover-generate", Family::Cover),
        ("generate-persona", Family::Voice),
        ("validation-phrase", Family::Voice),
        ("regenerate-phrase", Family::Voice),
        ("create-voice", Family::Voice),
        ("check-voice", Family::Voice),
    ];

    /// The family of a jobs-route model name (`ai-music-api/generate`, compared
    /// without regard to ASCII case); `None` for a name the table does not hold: an
    /// unknown Suno model or another provider's model (`sora-2-text-to-video`), whose
    /// callbacks are delivered as [`Family::Unknown`], never refused and never guessed.
    ///
    /// ```
    /// use suno_callback::Family;
    ///
    /// assert_eq!(Family::from_model("ai-music-api/convert-to-wav-format"), Some(Family::Wav));
    /// assert_eq!(Family::from_model("ai-music-api/generate"), Some(Family::Music));
    /// assert_eq!(Family::from_model("ai-music-api/not-yet-listed"), None);
    /// assert_eq!(Family::from_model("sora-2-text-to-video"), None);
    /// ```
    pub fn from_model(model: &str) -> Option<Family> {
        let prefix = model.get(..SUNO_PREFIX.len())?;
        if !prefix.eq_ignore_ascii_case(SUNO_PREFIX) {
            return None;
        }
        let name = &model[SUNO_PREFIX.len()..];
        Family::JOBS_MODELS
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|&(_, family)| family)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table, printed: `cargo test --lib model -- --nocapture`.
    #[test]
    fn every_listed_model_has_one_family() {
        for (name, family) in Family::JOBS_MODELS {
            println!("ai-music-api/{name:<26} {family}");
            assert_eq!(
                Family::from_model(&format!("ai-music-api/{name}")),
                Some(family)
            );
            assert_eq!(
                Family::from_model(&format!("AI-MUSIC-API/{}", name.to_uppercase())),
                Some(family)
            );
        }
        let mut names: Vec<_> = Family::JOBS_MODELS.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Family::JOBS_MODELS.len(), "a name twice");
        for family in Family::ALL {
            assert!(
                Family::JOBS_MODELS.iter().any(|&(_, f)| f == family),
                "no model of {family}"
            );
        }
        for other in [
            "generate",
            "ai-music-api/",
            "ai-music-api",
            "sora-2-pro",
            "é",
        ] {
            assert_eq!(Family::from_model(other), None, "{other}");
        }
    }
}
