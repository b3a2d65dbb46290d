//! The tolerant JSON reading every part of the event shares: `serde_json`, retried
//! once with what a JavaScript sender gets wrong repaired. A leaf module.

/// `serde_json::from_slice`, retried once with lone UTF-16 surrogate escapes and bytes
/// that are not UTF-8 replaced by U+FFFD, and numbers beyond `f64`'s range by `null`.
///
/// serde_json refuses an escape such as `"\ud83c"` that is not half of a pair, but a
/// JavaScript sender writes exactly that when it cuts a title inside an emoji; one
/// such character must not cost a song. A byte that is not UTF-8 inside a string is
/// repaired the same way, so the typed parse and [`raw_json`] always agree.
///
/// [`raw_json`]: crate::CallbackEvent::raw_json
pub(crate) fn from_slice_tolerant<T: serde::de::DeserializeOwned>(
    raw: &[u8],
) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(raw) {
        Ok(value) => Ok(value),
        Err(error) => {
            // Bytes that are not UTF-8 become U+FFFD, as a lone surrogate escape does.
            let lossy = std::str::from_utf8(raw)
                .is_err()
                .then(|| String::from_utf8_lossy(raw).into_owned().into_bytes());
            let repaired = replace_lone_surrogates(lossy.as_deref().unwrap_or(raw)).or(lossy);
            let repaired =
                replace_numbers_out_of_range(repaired.as_deref().unwrap_or(raw)).or(repaired);
            match repaired {
                Some(repaired) => serde_json::from_slice(&repaired).map_err(|_| error),
                None => Err(error),
            }
        }
    }
}

/// The body with every number beyond `f64`'s range (such as `1E400`) replaced by
/// `null`, or `None` when it has none.
///
/// serde_json refuses such a number when it builds a value, but skips it unread where
/// the typed parse ignores the field; replacing it lets [`raw_json`] give a value for
/// every body the typed parse accepts. No genuine callback carries one.
///
/// [`raw_json`]: crate::CallbackEvent::raw_json
pub(super) fn replace_numbers_out_of_range(raw: &[u8]) -> Option<Vec<u8>> {
    let mut repaired: Option<Vec<u8>> = None;
    let mut copied_up_to = 0;
    let (mut in_string, mut escaped) = (false, false);
    let mut at = 0;
    while at < raw.len() {
        let byte = raw[at];
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            at += 1;
            continue;
        }
        if byte == b'"' {
            in_string = true;
            at += 1;
            continue;
        }
        if byte != b'-' && !byte.is_ascii_digit() {
            at += 1;
            continue;
        }
        let end = raw[at..]
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .map_or(raw.len(), |length| at + length);
        // Out of range as serde_json reads it (its `f64` rounding is not Rust's): a
        // JSON number (which `IgnoredAny` checks, range aside) that it refuses as `f64`.
        let out_of_range = std::str::from_utf8(&raw[at..end]).is_ok_and(|token| {
            serde_json::from_str::<serde::de::IgnoredAny>(token).is_ok()
                && serde_json::from_str::<f64>(token).is_err()
        });
        if out_of_range {
            let out = repaired.get_or_insert_with(|| Vec::with_capacity(raw.len()));
            out.extend_from_slice(&raw[copied_up_to..at]);
            out.extend_from_slice(b"null");
            copied_up_to = end;
        }
        at = end;
    }
    let mut out = repaired?;
    out.extend_from_slice(&raw[copied_up_to..]);
    Some(out)
}

/// The body with every `\uXXXX` escape of a lone surrogate replaced by `\uFFFD`, or
/// `None` when it has none.
pub(super) fn replace_lone_surrogates(raw: &[u8]) -> Option<Vec<u8>> {
    const REPLACEMENT: &[u8] = b"\\uFFFD";
    let unit_at = |at: usize| -> Option<u16> {
        let is_escape = raw.get(at) == Some(&b'\\') && raw.get(at + 1) == Some(&b'u');
        let digits = std::str::from_utf8(raw.get(at + 2..at + 6)?).ok()?;
        is_escape.then(|| u16::from_str_radix(digits, 16).ok())?
    };
    let is_high = |unit: u16| (0xD800..0xDC00).contains(&unit);
    let is_low = |unit: u16| (0xDC00..0xE000).contains(&unit);
    let mut repaired = Vec::with_capacity(raw.len());
    let mut changed = false;
    let mut at = 0;
    while at < raw.len() {
        if raw[at] != b'\\' {
            repaired.push(raw[at]);
            at += 1;
            continue;
        }
        let escape_len = match unit_at(at) {
            Some(high) if is_high(high) && unit_at(at + 6).is_some_and(is_low) => 12,
            Some(unit) if is_high(unit) || is_low(unit) => {
                repaired.extend_from_slice(REPLACEMENT);
                changed = true;
                at += 6;
                continue;
            }
            Some(_) => 6,
            // Any other escape is two bytes (`\\`, `\"`, `\n`, ...).
            None => 2,
        };
        let end = (at + escape_len).min(raw.len());
        repaired.extend_from_slice(&raw[at..end]);
        at = end;
    }
    changed.then_some(repaired)
}
