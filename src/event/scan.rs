//! One validating pass over a body: is it one JSON object as `serde_json` reads it
//! (nested at most [`MAX_DEPTH`] deep), and where are
//! the values of the few members asked for. Nothing is built and nothing is copied:
//! the caller gets byte ranges, and decodes (or parses) only what it needs, when it
//! needs it.
//!
//! Bytes that are not UTF-8 and lone UTF-16 surrogate escapes are accepted inside
//! strings, as the tolerant parse that reads the values repairs them (`tolerant`).

use std::ops::Range;

use serde::de::Error as _;

use super::error::{ParseError, ParseErrorKind};
use super::tolerant::from_slice_tolerant;

/// The deepest nesting of arrays and objects accepted, the outermost object included:
/// the deepest a `serde_json::Value` can be built. A deeper body is no callback.
pub(crate) const MAX_DEPTH: usize = 127;

/// Why a body does not scan.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// The first byte that is not whitespace is not `{`.
    NotAnObject,
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Not JSON, at this byte offset.
    Syntax(&'static str, usize),
    /// A member the caller reads is there twice (serde refuses a duplicated field).
    Duplicate(&'static str),
}

/// A scan of `raw` from its start.
pub(crate) struct Scanner<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(raw: &'a [u8]) -> Self {
        Self { raw, at: 0 }
    }

    /// The bytes of a range this scanner returned.
    pub(crate) fn bytes(&self, range: Range<usize>) -> &'a [u8] {
        self.raw.get(range).unwrap_or_default()
    }

    /// The outermost object: its `{` (else [`ScanError::NotAnObject`]), its members
    /// through `member` (as [`object`](Self::object)), and nothing but whitespace
    /// after it.
    pub(crate) fn document(
        &mut self,
        member: impl FnMut(&mut Self, &[u8], bool) -> Result<(), ScanError>,
    ) -> Result<(), ScanError> {
        self.whitespace();
        if self.peek() != Some(b'{') {
            return Err(ScanError::NotAnObject);
        }
        self.at += 1;
        self.object(member)?;
        self.whitespace();
        if self.at != self.raw.len() {
            return Err(self.syntax("trailing characters after the object"));
        }
        Ok(())
    }

    /// One JSON value of any kind alone (whitespace around it aside), nested at most
    /// [`MAX_DEPTH`] deep as a body is: for a JSON text found inside a body (the jobs
    /// route's `resultJson`), checked before serde reads it.
    pub(crate) fn whole_value(&mut self) -> Result<Range<usize>, ScanError> {
        self.whitespace();
        let range = self.value(0)?;
        self.whitespace();
        if self.at != self.raw.len() {
            return Err(self.syntax("trailing characters after the value"));
        }
        Ok(range)
    }

    /// The members of an object whose `{` was just read (see [`open`](Self::open)).
    /// For each, `member` gets the key's raw bytes between its quotes and whether they
    /// hold an escape, and must read the value: with [`value`](Self::value), or
    /// [`object`](Self::object) / [`array`](Self::array) after checking
    /// [`peek`](Self::peek) and opening it.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &[u8], bool) -> Result<(), ScanError>,
    ) -> Result<(), ScanError> {
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            let (key, escaped) = self.key()?;
            let key = self.bytes(key);
            member(self, key, escaped)?;
            self.whitespace();
            match self.next() {
                Some(b',') => self.whitespace(),
                Some(b'}') => return Ok(()),
                _ => return Err(self.syntax("expected `,` or `}`")),
            }
        }
    }

    /// The elements of an array whose `[` was just read: `element` gets each one's
    /// index and must read it, as `member` does for an object.
    pub(crate) fn array(
        &mut self,
        mut element: impl FnMut(&mut Self, usize) -> Result<(), ScanError>,
    ) -> Result<(), ScanError> {
        self.whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            self.whitespace();
            element(self, index)?;
            index += 1;
            self.whitespace();
            match self.next() {
                Some(b',') => {}
                Some(b']') => return Ok(()),
                _ => return Err(self.syntax("expected `,` or `]`")),
            }
        }
    }

    /// Reads the `{` or `[` at the cursor of a container held at nesting `depth`
    /// (1: held by the outermost object); returns the container's own nesting.
    pub(crate) fn open(&mut self, depth: usize) -> Result<usize, ScanError> {
        if depth + 1 > MAX_DEPTH {
            return Err(ScanError::TooDeep);
        }
        self.at += 1;
        Ok(depth + 1)
    }

    /// The byte at the cursor.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.raw.get(self.at).copied()
    }

    /// The cursor.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    /// The error of a reader that leaves what is at the cursor to serde (an escaped
    /// key, a duplicated member, a value it does not read itself): its caller then
    /// reads the whole value with serde, which decides.
    pub(crate) fn left_to_serde(&self) -> ScanError {
        ScanError::Syntax("left to serde", self.at)
    }

    /// Skips the value at the cursor (whitespace before it skipped), checked, held by a
    /// container at nesting `depth`; returns where it lies.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Range<usize>, ScanError> {
        let start = self.at;
        // Containers opened here: bit `i` tells whether the `i`-th innermost is an
        // array. At most `MAX_DEPTH` of them, so 128 bits are enough.
        let mut arrays: u128 = 0;
        let mut open = 0usize;
        // The cursor is on a value's first byte: callers skip the whitespace before it,
        // and so does this loop before it comes back here.
        'value: loop {
            match self.peek() {
                Some(opening @ (b'{' | b'[')) => {
                    if depth + open + 1 > MAX_DEPTH {
                        return Err(ScanError::TooDeep);
                    }
                    self.at += 1;
                    let is_array = opening == b'[';
                    self.whitespace();
                    let closing = if is_array { b']' } else { b'}' };
                    if self.peek() == Some(closing) {
                        self.at += 1;
                    } else {
                        arrays = (arrays << 1) | u128::from(is_array);
                        open += 1;
                        if !is_array {
                            self.key()?;
                        }
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    self.at += 1;
                    self.string_body()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return Err(self.syntax("expected a value")),
            }
            // A value ended: close the containers that end here, or go on to the next
            // element or member.
            loop {
                if open == 0 {
                    return Ok(start..self.at);
                }
                self.whitespace();
                let in_array = arrays & 1 == 1;
                match (self.next(), in_array) {
                    (Some(b','), true) => {
                        self.whitespace();
                        continue 'value;
                    }
                    (Some(b','), false) => {
                        self.whitespace();
                        self.key()?;
                        continue 'value;
                    }
                    (Some(b']'), true) | (Some(b'}'), false) => {
                        arrays >>= 1;
                        open -= 1;
                    }
                    _ => return Err(self.syntax("expected `,` or the container's end")),
                }
            }
        }
    }

    /// The string at the cursor: the range of its content and whether it holds an
    /// escape.
    pub(crate) fn string(&mut self) -> Result<(Range<usize>, bool), ScanError> {
        if self.next() != Some(b'"') {
            return Err(self.syntax("expected a string"));
        }
        self.string_body()
    }

    /// A member's key, its `:` and the whitespace after it: the range between the
    /// quotes, and whether it holds an escape.
    #[inline(always)]
    fn key(&mut self) -> Result<(Range<usize>, bool), ScanError> {
        if self.next() != Some(b'"') {
            return Err(self.syntax("expected a key"));
        }
        let key = self.string_body()?;
        self.whitespace();
        if self.next() != Some(b':') {
            return Err(self.syntax("expected `:`"));
        }
        self.whitespace();
        Ok(key)
    }

    /// The rest of a string whose opening quote was read: the range of its content
    /// and whether it holds an escape. As `serde_json`, refuses control characters and
    /// malformed escapes; accepts any other byte.
    #[inline(always)]
    fn string_body(&mut self) -> Result<(Range<usize>, bool), ScanError> {
        let start = self.at;
        let mut escaped = false;
        loop {
            self.skip_plain();
            match self.next() {
                Some(b'"') => return Ok((start..self.at - 1, escaped)),
                Some(b'\\') => {
                    escaped = true;
                    match self.next() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            let digits = self.raw.get(self.at..self.at + 4);
                            if !digits.is_some_and(|d| d.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.syntax("invalid `\\u` escape"));
                            }
                            self.at += 4;
                        }
                        _ => return Err(self.syntax("invalid escape")),
                    }
                }
                Some(_) => return Err(self.syntax("control character in a string")),
                None => return Err(self.syntax("unterminated string")),
            }
        }
    }

    /// Moves the cursor to the next `"`, `\` or control character (or the end), eight
    /// bytes at a time.
    #[inline(always)]
    fn skip_plain(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH_BITS: u64 = ONES << 7;
        let raw = self.raw;
        let mut at = self.at;
        while let Some(chunk) = raw.get(at..at + 8) {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(chunk);
            let word = u64::from_le_bytes(bytes);
            let quote = word ^ (ONES * u64::from(b'"'));
            let backslash = word ^ (ONES * u64::from(b'\\'));
            // Each term flags the bytes that are zero (or below 0x20 for the last);
            // the lowest flag is exact, higher ones may be borrows, and only the
            // lowest is used.
            let found = ((quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash)
                | (word.wrapping_sub(ONES * 0x20) & !word))
                & HIGH_BITS;
            if found != 0 {
                self.at = at + (found.trailing_zeros() / 8) as usize;
                return;
            }
            at += 8;
        }
        while let Some(&byte) = raw.get(at) {
            if byte == b'"' || byte == b'\\' || byte < 0x20 {
                break;
            }
            at += 1;
        }
        self.at = at;
    }

    /// A number, as JSON writes it. As serde_json skips a number, its range is not
    /// checked: one beyond `f64`'s range reads as `null` in `raw_json()` (`parse`).
    #[inline(always)]
    fn number(&mut self) -> Result<(), ScanError> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Result<(), ScanError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.syntax("invalid number"));
        }
        self.digits();
        Ok(())
    }

    fn literal(&mut self, literal: &'static [u8]) -> Result<(), ScanError> {
        if !self
            .raw
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(literal))
        {
            return Err(self.syntax("expected a value"));
        }
        self.at += literal.len();
        Ok(())
    }

    /// Skips whitespace; runs of spaces (a pretty-printed body's indentation) eight
    /// bytes at a time.
    #[inline(always)]
    fn whitespace(&mut self) {
        const SPACES: u64 = 0x2020_2020_2020_2020;
        loop {
            match self.peek() {
                // Most calls find no whitespace: one comparison tells.
                Some(byte) if byte > b' ' => return,
                Some(b' ') => {}
                Some(b'\n' | b'\t' | b'\r') => {
                    self.at += 1;
                    continue;
                }
                _ => return,
            }
            let next = self.raw.get(self.at..self.at + 8);
            match next.and_then(|bytes| <[u8; 8]>::try_from(bytes).ok()) {
                Some(bytes) => {
                    // The first byte that is not a space is the lowest one that differs.
                    let differs = u64::from_le_bytes(bytes) ^ SPACES;
                    self.at += (differs.trailing_zeros() / 8) as usize;
                }
                None => self.at += 1,
            }
        }
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn syntax(&self, what: &'static str) -> ScanError {
        ScanError::Syntax(what, self.at)
    }
}

/// The text of a key that holds an escape (`"task\u005fid"`), decoded as serde decodes
/// a field name before matching it; `None` when it does not decode.
pub(crate) fn unescape_key(key: &[u8]) -> Option<String> {
    let mut quoted = Vec::with_capacity(key.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(key);
    quoted.push(b'"');
    from_slice_tolerant(&quoted).ok()
}

impl From<ScanError> for ParseError {
    fn from(error: ScanError) -> Self {
        match error {
            ScanError::NotAnObject => ParseErrorKind::NotAnObject.into(),
            ScanError::TooDeep => ParseErrorKind::TooDeep.into(),
            ScanError::Syntax(what, at) => ParseErrorKind::Json(serde_json::Error::custom(
                format_args!("{what} at byte {at}"),
            ))
            .into(),
            ScanError::Duplicate(name) => ParseErrorKind::Json(serde_json::Error::custom(
                format_args!("duplicate field `{name}`"),
            ))
            .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `raw` as a document whose members are all skipped.
    fn scan(raw: &[u8]) -> Result<(), ScanError> {
        Scanner::new(raw).document(|scanner, _, _| scanner.value(1).map(drop))
    }

    /// Whether serde_json reads `raw` as an object, skipping its values as the typed
    /// parse skips the fields it does not model, after the repairs of the tolerant
    /// parse (bytes that are not UTF-8, lone surrogates).
    fn serde_reads(raw: &[u8]) -> bool {
        let lossy = String::from_utf8_lossy(raw).into_owned();
        let repaired = lossy.replace("\\ud", "\\u0").replace("\\uD", "\\u0");
        let is_object = repaired.trim_start().starts_with('{');
        is_object && serde_json::from_str::<serde::de::IgnoredAny>(&repaired).is_ok()
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        let cases: &[&[u8]] = &[
            br#"{}"#,
            br#" {"a" : [ 1 , -2.5e+3 , 0 , -0.0E-2 , true , false , null , "x" ] } "#,
            br#"{"a":{"b":{"c":[[],{}]}},"d":"\"\\\/\b\f\n\r\t\u00e9"}"#,
            br#"{"a":"\ud83c"}"#,
            b"{\"a\":\"\xff\xfe\"}",
            br#"{"a":"\u12"}"#,
            br#"{"a":"\x"}"#,
            b"{\"a\":\"line\nbreak\"}",
            br#"{"a":01}"#,
            br#"{"a":1.}"#,
            br#"{"a":.5}"#,
            br#"{"a":1e}"#,
            br#"{"a":-}"#,
            br#"{"a":+1}"#,
            br#"{"a":1,}"#,
            br#"{"a":[1,]}"#,
            br#"{"a":[1 2]}"#,
            br#"{"a" 1}"#,
            br#"{a:1}"#,
            br#"{"a":tru}"#,
            br#"{"a":nul}"#,
            br#"{"a":1}}"#,
            br#"{"a":1} x"#,
            br#"{"a":1"#,
            br#"{"a":"#,
            br#"{"a":"x"#,
            br#"{"a":[}"#,
            br#"{"a":{]}"#,
            br#"{"a":1e308,"b":-1.7e308,"c":1e-400,"d":0e99999}"#,
            br#"{"a":-1E863436098}"#,
            b"{\r\n\t          \"a\" \t:\n 1 \r,                 \"b\":[ ]   \n }\n\n",
            b"{\"a\":1            \x0b}",
        ];
        for case in cases {
            assert_eq!(
                scan(case).is_ok(),
                serde_reads(case),
                "{}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn agrees_with_serde_json_on_every_cut_and_byte_change_of_a_callback() {
        let body = include_bytes!("../../tests/fixtures/music/add_instrumental_complete.json");
        // Every prefix, and every byte replaced by each byte that matters to JSON.
        for end in 0..body.len() {
            let cut = &body[..end];
            assert_eq!(scan(cut).is_ok(), serde_reads(cut), "cut at {end}");
        }
        let mut changed = body.to_vec();
        for at in 0..body.len() {
            for byte in *b"{}[]\",:\\ 0-.eE+tfnu\x01" {
                changed[at] = byte;
                assert_eq!(
                    scan(&changed).is_ok(),
                    serde_reads(&changed),
                    "{}",
                    String::from_utf8_lossy(&changed)
                );
            }
            changed[at] = body[at];
        }
    }

    #[test]
    fn finds_the_first_special_byte_in_any_position() {
        for len in 0..20 {
            for special in [b'"', b'\\', 0x1f] {
                let mut raw = vec![b'a'; len];
                raw.push(special);
                raw.extend_from_slice(b"aaaaaaaa\"");
                let mut scanner = Scanner::new(&raw);
                scanner.skip_plain();
                assert_eq!(scanner.position(), len, "{len} {special}");
            }
        }
    }

    #[test]
    fn depth_is_counted_from_the_outermost_object() {
        let nested = |depth: usize| {
            format!(
                r#"{{"x":{}1{}}}"#,
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        assert_eq!(scan(nested(MAX_DEPTH).as_bytes()), Ok(()));
        assert_eq!(
            scan(nested(MAX_DEPTH + 1).as_bytes()),
            Err(ScanError::TooDeep)
        );
        let quoted = format!(r#"{{"x":"{}"}}"#, "[".repeat(500));
        assert_eq!(scan(quoted.as_bytes()), Ok(()));
    }
}
