//! The members of a body the envelope reads, by name: where the envelope found each,
//! so that the shapes ask "is `audioWavUrl` there?" without knowing how the body was
//! walked.
//!
//! A member is found by its key as serde matches a field name: an escaped key is
//! decoded first. A member found twice is refused, as serde refuses a field given
//! twice.

use std::ops::Range;

use super::scan::{ScanError, unescape_key};

/// Declares a set of named members: the enum, its names, and the lookup by key.
macro_rules! members {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $variant:ident = $key:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum $name {
            $($(#[$doc])* $variant,)+
        }

        impl $name {
            /// Every member, in declaration order.
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The member's key in the body.
            pub(crate) const fn key(self) -> &'static str {
                match self {
                    $($name::$variant => $key,)+
                }
            }

            /// The member whose key is `key` (raw bytes between the quotes; `escaped`
            /// when they hold an escape, decoded first).
            #[inline]
            pub(crate) fn find(key: &[u8], escaped: bool) -> Option<$name> {
                if escaped {
                    return Self::find(unescape_key(key)?.as_bytes(), false);
                }
                match std::str::from_utf8(key) {
                    $(Ok($key) => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// How many members there are.
            pub(crate) const COUNT: usize = Self::ALL.len();
        }

        impl Member for $name {
            const COUNT: usize = $name::COUNT;
            fn index(self) -> usize {
                self as usize
            }
            fn key(self) -> &'static str {
                $name::key(self)
            }
        }
    };
}

members! {
    /// A member of the outermost object.
    Top {
        /// `code`.
        Code = "code",
        /// `task_id` (the MIDI pages).
        TaskId = "task_id",
        /// `taskId` (older MIDI pages).
        TaskIdCamel = "taskId",
        /// `data`, the family's object.
        Data = "data",
        /// `msg`.
        Msg = "msg",
    }
}

members! {
    /// A member of `data`: the ids, the labels, and the keys whose presence names a
    /// shape (each shape file lists its own).
    Key {
        /// `callbackType` (music, lyrics).
        CallbackType = "callbackType",
        /// `task_id`.
        TaskId = "task_id",
        /// `taskId` (cover, voice, MIDI, the jobs route).
        TaskIdCamel = "taskId",
        /// `status` (voice).
        Status = "status",
        /// `data`, the list of tracks or lyric variations.
        Items = "data",
        /// `audioWavUrl` (wav).
        AudioWavUrl = "audioWavUrl",
        /// `vocal_separation_info` (separation, Kie).
        VocalSeparationInfo = "vocal_separation_info",
        /// `vocal_removal_info` (separation, sunoapi.org).
        VocalRemovalInfo = "vocal_removal_info",
        /// `instruments` (MIDI).
        Instruments = "instruments",
        /// `state` (MIDI; with `model`, the jobs route).
        State = "state",
        /// `video_url` (video).
        VideoUrl = "video_url",
        /// `images` (cover).
        Images = "images",
        /// `voiceId` (voice).
        VoiceId = "voiceId",
        /// `validateInfo` (voice).
        ValidateInfo = "validateInfo",
        /// `model` (the jobs route).
        Model = "model",
    }
}

members! {
    /// A member of the first object of `data.data` that tells a lyric variation from a
    /// track.
    Item {
        /// `text`.
        Text = "text",
        /// `error_message`.
        ErrorMessage = "error_message",
        /// `status`.
        Status = "status",
    }
}

/// A set of named members, indexable.
pub(crate) trait Member: Copy {
    const COUNT: usize;
    fn index(self) -> usize;
    fn key(self) -> &'static str;
}

/// Where each member of a set lies in the body, if it is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slots<M: Member, const N: usize> {
    ranges: [Option<Range<usize>>; N],
    member: std::marker::PhantomData<M>,
}

impl<M: Member, const N: usize> Default for Slots<M, N> {
    fn default() -> Self {
        const { assert!(N == M::COUNT) };
        Self {
            ranges: [const { None }; N],
            member: std::marker::PhantomData,
        }
    }
}

impl<M: Member, const N: usize> Slots<M, N> {
    /// Where `member`'s value lies.
    pub(crate) fn get(&self, member: M) -> Option<&Range<usize>> {
        self.ranges[member.index()].as_ref()
    }

    /// Whether `member` is there (whatever its value, `null` included).
    pub(crate) fn has(&self, member: M) -> bool {
        self.ranges[member.index()].is_some()
    }

    /// Records where `member`'s value lies, refusing a member given twice.
    pub(crate) fn record(&mut self, member: M, value: Range<usize>) -> Result<(), ScanError> {
        let slot = &mut self.ranges[member.index()];
        if slot.is_some() {
            return Err(ScanError::Duplicate(member.key()));
        }
        *slot = Some(value);
        Ok(())
    }
}

/// What the envelope's pass found in a body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// The members of the outermost object.
    pub(crate) top: Slots<Top, { Top::COUNT }>,
    /// The members of `data`, when it is an object.
    pub(crate) data: Slots<Key, { Key::COUNT }>,
    /// The members of the first object of `data.data`.
    pub(crate) item: Slots<Item, { Item::COUNT }>,
    /// `data.data` is a list holding an object.
    pub(crate) has_item: bool,
    /// `msg` is there twice.
    pub(crate) repeated_msg: bool,
}

impl Found {
    /// Whether `data` holds `key`.
    pub(crate) fn has(&self, key: Key) -> bool {
        self.data.has(key)
    }

    /// Whether the first object of `data.data` holds any of the keys of a lyric
    /// variation.
    pub(crate) fn item_is_variation(&self) -> bool {
        Item::ALL.iter().any(|&item| self.item.has(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_name_escaped_or_not() {
        for &key in Key::ALL {
            assert_eq!(Key::find(key.key().as_bytes(), false), Some(key));
        }
        assert_eq!(Key::find(br"task\u005fid", true), Some(Key::TaskId));
        assert_eq!(Key::find(b"Task_id", false), None);
        assert_eq!(Top::find(b"msg", false), Some(Top::Msg));
        let mut slots = Slots::<Key, { Key::COUNT }>::default();
        slots.record(Key::Model, 1..2).expect("first");
        assert_eq!(
            slots.record(Key::Model, 3..4),
            Err(ScanError::Duplicate("model"))
        );
        assert_eq!(slots.get(Key::Model), Some(&(1..2)));
    }
}
