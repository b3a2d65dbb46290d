//! Field deserializers that accept every shape the sender has been seen to use and
//! turn anything unexpected into "absent" instead of an error.
//!
//! A callback that fails to parse is answered with `400`, and after three such answers
//! the sender gives up on it for good: a song is lost over a field we do not even
//! need. So only the fields the pipeline cannot work without are strict (see
//! [`super::parse`]); everything else goes through these.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::time::CreateTime;

/// A string; numbers and booleans become their text; `""`, `null` and containers
/// become `None`.
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(ScalarVisitor::<StringScalar>::new())
}

/// An integer, from a JSON integer, an integral float or a numeric string.
pub(crate) fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_any(ScalarVisitor::<IntegerScalar>::new())
}

/// A float, from a JSON number or a numeric string.
pub(crate) fn float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_any(ScalarVisitor::<FloatScalar>::new())
}

/// `createTime`: a date-time string or a number of epoch milliseconds.
pub(crate) fn create_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CreateTime>, D::Error> {
    d.deserialize_any(ScalarVisitor::<CreateTimeScalar>::new())
}

/// `createTime` given as a string (its content, unescaped), read as [`create_time`]
/// reads it.
pub(crate) fn create_time_text(text: &str) -> Option<CreateTime> {
    CreateTimeScalar::from_str(text)
}

/// A short label (`callbackType`, a voice status): [`Label::Invalid`] when it is longer
/// than [`MAX_LABEL_LEN`] bytes or has a character outside printable ASCII, without
/// copying it.
pub(crate) fn label<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Label>, D::Error> {
    d.deserialize_any(ScalarVisitor::<LabelScalar>::new())
}

/// A list of strings; other elements are skipped, anything but a list is empty.
pub(crate) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(ListVisitor::<Text>(PhantomData))
}

/// An object deserialized as `T`; any other JSON value becomes `None`.
pub(crate) fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    d.deserialize_any(ObjectVisitor(PhantomData))
}

/// A list of objects deserialized as `T`; elements that are not objects are skipped,
/// and anything that is not a list is an empty list.
pub(crate) fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    d.deserialize_any(ListVisitor::<Element<T>>(PhantomData))
}

/// One JSON value, alone in `text`, read with `read` (one of the functions above);
/// `None` when serde refuses it.
pub(crate) fn read_value<'a, T>(
    text: &'a str,
    read: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::StrRead<'a>>,
    ) -> Result<T, serde_json::Error>,
) -> Option<T> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = read(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(value)
}

/// How one scalar field turns each JSON scalar into its value.
trait Scalar {
    type Value;
    const EXPECTING: &'static str;
    fn from_str(text: &str) -> Option<Self::Value>;
    fn from_i64(value: i64) -> Option<Self::Value>;
    fn from_u64(value: u64) -> Option<Self::Value>;
    fn from_f64(value: f64) -> Option<Self::Value>;
    fn from_bool(_value: bool) -> Option<Self::Value> {
        None
    }
}

struct StringScalar;
impl Scalar for StringScalar {
    type Value = String;
    const EXPECTING: &'static str = "a string";
    fn from_str(text: &str) -> Option<String> {
        (!text.is_empty()).then(|| text.to_owned())
    }
    fn from_i64(value: i64) -> Option<String> {
        Some(value.to_string())
    }
    fn from_u64(value: u64) -> Option<String> {
        Some(value.to_string())
    }
    fn from_f64(value: f64) -> Option<String> {
        Some(value.to_string())
    }
    fn from_bool(value: bool) -> Option<String> {
        Some(value.to_string())
    }
}

/// The longest `callbackType` or voice status accepted, in bytes.
pub(crate) const MAX_LABEL_LEN: usize = 64;

/// A short label from the body, or the fact that it was not one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Label {
    Text(String),
    /// Longer than [`MAX_LABEL_LEN`], or not printable ASCII.
    Invalid,
}

struct LabelScalar;
impl Scalar for LabelScalar {
    type Value = Label;
    const EXPECTING: &'static str = "a short label";
    fn from_str(text: &str) -> Option<Label> {
        let printable = text.bytes().all(|byte| (b' '..=b'~').contains(&byte));
        match text.len() {
            0 => None,
            len if len > MAX_LABEL_LEN || !printable => Some(Label::Invalid),
            _ => Some(Label::Text(text.to_owned())),
        }
    }
    fn from_i64(value: i64) -> Option<Label> {
        Some(Label::Text(value.to_string()))
    }
    fn from_u64(value: u64) -> Option<Label> {
        Some(Label::Text(value.to_string()))
    }
    fn from_f64(value: f64) -> Option<Label> {
        Self::from_str(&value.to_string())
    }
    fn from_bool(value: bool) -> Option<Label> {
        Some(Label::Text(value.to_string()))
    }
}

/// A string element of a list, or `None` for any other element.
struct Text(Option<String>);

impl<'de> de::Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string(d).map(Text)
    }
}

struct IntegerScalar;
impl Scalar for IntegerScalar {
    type Value = i64;
    const EXPECTING: &'static str = "an integer";
    fn from_str(text: &str) -> Option<i64> {
        text.trim().parse().ok()
    }
    fn from_i64(value: i64) -> Option<i64> {
        Some(value)
    }
    fn from_u64(value: u64) -> Option<i64> {
        i64::try_from(value).ok()
    }
    fn from_f64(value: f64) -> Option<i64> {
        integral_f64(value)
    }
}

struct FloatScalar;
impl Scalar for FloatScalar {
    type Value = f64;
    const EXPECTING: &'static str = "a number";
    fn from_str(text: &str) -> Option<f64> {
        text.trim().parse().ok().filter(|v: &f64| v.is_finite())
    }
    #[allow(clippy::cast_precision_loss)]
    fn from_i64(value: i64) -> Option<f64> {
        Some(value as f64)
    }
    #[allow(clippy::cast_precision_loss)]
    fn from_u64(value: u64) -> Option<f64> {
        Some(value as f64)
    }
    fn from_f64(value: f64) -> Option<f64> {
        value.is_finite().then_some(value)
    }
}

struct CreateTimeScalar;
impl Scalar for CreateTimeScalar {
    type Value = CreateTime;
    const EXPECTING: &'static str = "a date-time string or epoch milliseconds";
    /// A numeric string is epoch milliseconds, as the number would be.
    fn from_str(text: &str) -> Option<CreateTime> {
        match text.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => Self::from_f64(number),
            _ => (!text.is_empty()).then(|| CreateTime::Text(text.to_owned())),
        }
    }
    fn from_i64(value: i64) -> Option<CreateTime> {
        Some(CreateTime::EpochMillis(value))
    }
    fn from_u64(value: u64) -> Option<CreateTime> {
        i64::try_from(value).ok().map(CreateTime::EpochMillis)
    }
    fn from_f64(value: f64) -> Option<CreateTime> {
        integral_f64(value.trunc()).map(CreateTime::EpochMillis)
    }
}

/// `value` as an `i64` when it is a whole number inside `i64`'s range.
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn integral_f64(value: f64) -> Option<i64> {
    let in_range = value >= i64::MIN as f64 && value < i64::MAX as f64;
    (value.fract() == 0.0 && in_range).then_some(value as i64)
}

struct ScalarVisitor<S>(PhantomData<S>);

impl<S> ScalarVisitor<S> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, S: Scalar> Visitor<'de> for ScalarVisitor<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(S::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(S::from_str(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(S::from_i64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(S::from_u64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(S::from_f64(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(S::from_bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for ObjectVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A lenient list of items read as `I` (an [`Item`]): the items `I` keeps, in order.
struct ListVisitor<I>(PhantomData<I>);

/// One element of a lenient list, as [`ListVisitor`] reads it: what it keeps of the
/// element, if anything.
trait Item<'de>: de::Deserialize<'de> {
    /// What the list holds of an element.
    type Kept;
    /// What the list keeps of this element; `None` skips it.
    fn into_kept(self) -> Option<Self::Kept>;
}

/// One element of a lenient list: an object as `T`, anything else skipped.
struct Element<T>(Option<T>);

impl<'de, T: DeserializeOwned> de::Deserialize<'de> for Element<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(Element)
    }
}

impl<'de, T: DeserializeOwned> Item<'de> for Element<T> {
    type Kept = T;
    fn into_kept(self) -> Option<T> {
        self.0
    }
}

impl<'de> Item<'de> for Text {
    type Kept = String;
    fn into_kept(self) -> Option<String> {
        self.0
    }
}

impl<'de, I: Item<'de>> Visitor<'de> for ListVisitor<I> {
    type Value = Vec<I::Kept>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(item) = seq.next_element::<I>()? {
            items.extend(item.into_kept());
        }
        Ok(items)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| Vec::new())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de> de::Deserialize<'de> for CreateTime {
    /// The one reading of `createTime`, shared with `Track`'s field (where an
    /// unreadable value is `None` instead of an error).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        create_time(d)?.ok_or_else(|| {
            serde::de::Error::custom("expected a date-time string or epoch milliseconds")
        })
    }
}
