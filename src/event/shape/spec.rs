//! What a shape is: the questions each shape file answers, and the helpers they share.

use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeOwned, Deserializer};

use crate::event::error::{ParseError, ParseErrorKind};
use crate::event::family::{ApiRoute, Family};
use crate::event::jobs::JobsMeta;
use crate::event::lenient::{self, Label};
use crate::event::markers::{Found, Key};
use crate::event::payload::Payload;
use crate::event::tolerant::from_slice_tolerant;

/// One envelope shape: which marker keys name it, how it keys a callback (stage and
/// outcome) before verification, and how it builds the payload after.
pub(crate) struct Shape {
    /// The shape's name, as the list prints it.
    pub(crate) name: &'static str,
    /// The family it types; `None` when the body names it (the jobs route's model).
    pub(crate) family: Option<Family>,
    /// The route whose callbacks have this shape.
    pub(crate) route: ApiRoute,
    /// The members of `data` whose presence names the shape (what `detect` looks at).
    pub(crate) markers: &'static [Key],
    /// Whether a body the path names no family for is of this shape.
    pub(crate) detect: fn(&Clues<'_>) -> bool,
    /// The family, stage and outcome of a body of this shape (the dedup key's parts).
    pub(crate) key: fn(&Clues<'_>, Family) -> Result<Keyed, ParseError>,
    /// The payload, from the `data` object (`None` when absent, not an object, or not
    /// to be read); run after verification only.
    pub(crate) build: fn(Family, Option<&[u8]>) -> Built,
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let markers: Vec<_> = self.markers.iter().map(|key| key.key()).collect();
        f.debug_struct("Shape")
            .field("name", &self.name)
            .field("family", &self.family)
            .field("route", &self.route)
            .field("markers", &markers)
            .finish()
    }
}

/// What the envelope read of a body, for the shapes to decide on.
pub(crate) struct Clues<'a> {
    /// The body.
    pub(crate) raw: &'a [u8],
    /// Where its members are.
    pub(crate) found: &'a Found,
    /// `code`.
    pub(crate) code: i64,
    /// `data.callbackType`, `""` when absent.
    pub(crate) callback_type: &'a str,
    /// `data.status` as a label, when it holds one.
    pub(crate) status: Option<&'a Label>,
}

impl Clues<'_> {
    /// Whether `data` holds `key`.
    pub(crate) fn has(&self, key: Key) -> bool {
        self.found.has(key)
    }

    /// A failure by `code` or by `callbackType` `error`.
    pub(crate) fn failed_by_code(&self) -> bool {
        self.code != 200 || self.callback_type == "error"
    }

    /// The raw bytes of `data.<key>`'s value.
    pub(crate) fn value(&self, key: Key) -> Option<&[u8]> {
        self.found
            .data
            .get(key)
            .and_then(|range| self.raw.get(range.clone()))
    }

    /// `data.<key>` as a label (`""` when absent or not a scalar); `bad` when it is too
    /// long or not printable.
    pub(crate) fn label(&self, key: Key, bad: ParseErrorKind) -> Result<String, ParseError> {
        label_text(decode_label(self.raw, self.found.data.get(key))?, bad)
    }
}

/// A label as the key's stage: `""` when absent, an error when too long or not
/// printable.
pub(crate) fn label_text(label: Option<Label>, bad: ParseErrorKind) -> Result<String, ParseError> {
    match label {
        None => Ok(String::new()),
        Some(Label::Text(text)) => Ok(text),
        Some(Label::Invalid) => Err(bad.into()),
    }
}

/// A scalar member decoded as the lenient rules read it.
pub(crate) struct LabelField(pub(crate) Option<Label>);

impl<'de> serde::Deserialize<'de> for LabelField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::label(d).map(Self)
    }
}

/// The value at `range` of `raw`, read as `T`; `None` for an absent member, and for an
/// array or object, which no lenient scalar takes.
pub(crate) fn decode<T: DeserializeOwned>(
    raw: &[u8],
    range: Option<&Range<usize>>,
) -> Result<Option<T>, ParseError> {
    let Some(value) = range.and_then(|range| raw.get(range.clone())) else {
        return Ok(None);
    };
    if let Some(b'[' | b'{') = value.first() {
        return Ok(None);
    }
    from_slice_tolerant(value)
        .map(Some)
        .map_err(|error| ParseErrorKind::Json(error).into())
}

/// A label member, read leniently.
pub(crate) fn decode_label(
    raw: &[u8],
    range: Option<&Range<usize>>,
) -> Result<Option<Label>, ParseError> {
    Ok(decode::<LabelField>(raw, range)?.and_then(|field| field.0))
}

/// The family, stage and outcome of a callback, as its shape reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Keyed {
    pub(crate) family: Family,
    /// The key's stage.
    pub(crate) stage: String,
    pub(crate) failed: bool,
}

impl Keyed {
    /// A family without stages: stage `""`, a failure when `code` is not 200.
    pub(crate) fn stageless(clues: &Clues<'_>, family: Family) -> Self {
        Self {
            family,
            stage: String::new(),
            failed: clues.code != 200,
        }
    }

    /// A family staged by `callbackType` (music, lyrics, unknown).
    pub(crate) fn by_callback_type(clues: &Clues<'_>, family: Family) -> Self {
        Self {
            family,
            stage: clues.callback_type.to_owned(),
            failed: clues.failed_by_code(),
        }
    }
}

/// What a shape builds of a verified body.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) payload: Payload,
    /// The jobs route's metadata, for a callback of that route.
    pub(crate) jobs: Option<Box<JobsMeta>>,
}

impl From<Payload> for Built {
    fn from(payload: Payload) -> Self {
        Self {
            payload,
            jobs: None,
        }
    }
}

/// `data` (an object's bytes) as `P`; the default payload when absent, or when serde
/// cannot read it (a duplicated field): the event is still delivered.
pub(crate) fn read<P: DeserializeOwned + Default>(data: Option<&[u8]>) -> P {
    let Some(data) = data else {
        return P::default();
    };
    // Checked as UTF-8 once, the text is parsed without checking each string again.
    let parsed = match std::str::from_utf8(data) {
        Ok(text) => serde_json::from_str::<P>(text).or_else(|_| from_slice_tolerant(data)),
        Err(_) => from_slice_tolerant(data),
    };
    match parsed {
        Ok(payload) => payload,
        Err(error) => {
            tracing::debug!(
                error = ?crate::untrusted::Untrusted(&error.to_string()),
                "callback payload unreadable; delivered untyped"
            );
            P::default()
        }
    }
}
