//! The typed events: the envelope read before verification (the crate's `envelope`
//! module), and the whole event built from a verified body ([`CallbackEvent`]), with
//! its payload types ([`Payload`] and one per family, [`Track`], [`CreateTime`],
//! [`FailureReason`], [`JobsMeta`]). The receiver's vocabulary ([`CallbackEvent`],
//! [`Family`], [`Stage`], [`Outcome`], [`ApiRoute`]) is also at the crate's root.
//!
//! ```
//! use suno_callback::CallbackEvent;
//! use suno_callback::event::Payload;
//!
//! let body = br#"{"code": 200, "msg": "ok", "data": {"callbackType": "complete",
//!     "task_id": "2fac7b1e", "data": [{"id": "a", "audio_url": "https://cdn.example/a.mp3"}]}}"#;
//! let event = CallbackEvent::from_json(&body[..])?;
//! assert!(matches!(event.payload(), Payload::Music(_)));
//! # Ok::<(), suno_callback::ParseError>(())
//! ```
//!
//! Parsing is strict only about what the pipeline cannot work without (a JSON object
//! with a `code` and a task id, a short printable `callbackType`) and tolerant of
//! everything else, because a body answered `400` three times is a song the sender
//! will never deliver again.
//!
//! The layout, leaves first (no module imports one that imports it back):
//! - `error` (why a body is refused), `family`, `stage`, `failure`, `time` (the date
//!   and time fields), `tolerant` (the tolerant JSON reading): leaves;
//! - `scan` (the one validating pass), `markers` (the members the envelope reads, by
//!   name), `lenient` (field readers), `track`, `payload`, `jobs` (the jobs route's
//!   metadata), `model` (its model → family table);
//! - `shape`: one file per envelope shape and the order they are tried in;
//! - `envelope` (stage 2), `build` (the typed event of a verified body), `callback`
//!   ([`CallbackEvent`]); `reference`, the serde-derived envelope the scan is held to.

mod build;
mod callback;
pub(crate) mod envelope;
mod error;
mod failure;
mod family;
mod jobs;
mod lenient;
mod markers;
mod model;
mod payload;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod reference;
mod scan;
mod shape;
mod stage;
mod time;
mod tolerant;
mod track;

pub use callback::CallbackEvent;
pub(crate) use envelope::Envelope;
pub use error::ParseError;
pub use failure::FailureReason;
pub use family::{ApiRoute, Family, Outcome, UnknownFamily};
pub use jobs::JobsMeta;
pub use payload::{
    CoverPayload, Instrument, LyricsPayload, LyricsVariation, MidiPayload, MusicPayload, Note,
    Payload, SeparationPayload, Stem, VideoPayload, VoicePayload, VoiceStatus, WavPayload,
};
pub use stage::Stage;
pub use time::CreateTime;
pub use track::Track;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    /// The modules of `src/event/` and which of them each one names (`super::x`,
    /// `crate::event::x`), test code aside: no module may reach itself.
    #[test]
    fn no_module_of_the_event_layer_imports_one_that_imports_it() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src/event");
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut files = vec![std::path::PathBuf::from(root)];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(
                    std::fs::read_dir(&path)
                        .expect("dir")
                        .map(|e| e.expect("entry").path()),
                );
                continue;
            }
            let relative = path.strip_prefix(root).expect("under the root");
            let module = relative.with_extension("");
            let module = module
                .to_string_lossy()
                .replace("/mod", "")
                .replace('/', "::");
            let in_folder = module.contains("::") || relative.ends_with("mod.rs");
            let text = std::fs::read_to_string(&path).expect("source");
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            let names = graph.entry(module.clone()).or_default();
            for (prefix, nested) in [("crate::event::", false), ("super::", true)] {
                for (at, _) in code.match_indices(prefix) {
                    let rest = &code[at + prefix.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    let target = match (
                        nested && in_folder && !relative.ends_with("mod.rs"),
                        module.split_once("::"),
                    ) {
                        (true, Some((folder, _))) => format!("{folder}::{name}"),
                        _ => name,
                    };
                    if target != module && !target.is_empty() {
                        names.insert(target);
                    }
                }
            }
        }
        // `mod.rs` files declare their children: an edge too.
        for (module, _) in graph.clone() {
            if let Some((folder, _)) = module.split_once("::") {
                graph.entry(folder.to_owned()).or_default().insert(module);
            }
        }
        fn reaches(
            graph: &BTreeMap<String, BTreeSet<String>>,
            from: &str,
            to: &str,
            seen: &mut BTreeSet<String>,
        ) -> bool {
            graph.get(from).into_iter().flatten().any(|next| {
                next == to || (seen.insert(next.clone()) && reaches(graph, next, to, seen))
            })
        }
        assert!(graph.len() > 20, "{graph:?}");
        for module in graph.keys() {
            assert!(
                !reaches(&graph, module, module, &mut BTreeSet::new()),
                "{module} imports a module that imports it: {graph:#?}"
            );
        }
    }
}
