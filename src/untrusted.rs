//! Text from the network, made safe to log and to answer with: cut to a few hundred
//! bytes and with control characters escaped, so an unsigned body can neither flood
//! the logs nor forge a log line. Every stage that logs or answers with request text,
//! or with a handler's error or panic message (which may quote the body), goes
//! through [`Untrusted`].
//!
//! A leaf module: it imports nothing from the crate.

use std::borrow::Cow;
use std::fmt;

/// How many bytes of untrusted text are shown; the rest is summarised by its length.
pub(crate) const MAX_SHOWN_BYTES: usize = 256;

/// Displays untrusted text: at most [`MAX_SHOWN_BYTES`] bytes of it (cut at a
/// character boundary, followed by `…[+N bytes]`), with control characters, line and
/// paragraph separators and bidirectional overrides escaped (`\n`, `\u{202e}`), and a
/// backslash shown as `\\`, so that an escape in the output always means an escaped
/// character and never text that looked like one. `Debug` quotes the text and escapes
/// `"` too, so a value logged with `?` cannot close its quotes and fake a field.
#[derive(Clone, Copy)]
pub(crate) struct Untrusted<'a>(pub(crate) &'a str);

impl<'a> Untrusted<'a> {
    /// The displayed form, as a string.
    pub(crate) fn to_bounded(self) -> String {
        self.to_string()
    }

    /// The displayed form, borrowed when the text is shown as it is (short, nothing
    /// to escape: every genuine task id), so the common case allocates nothing.
    pub(crate) fn bounded(self) -> Cow<'a, str> {
        if self.0.len() <= MAX_SHOWN_BYTES && !self.0.chars().any(needs_escape) {
            Cow::Borrowed(self.0)
        } else {
            Cow::Owned(self.to_bounded())
        }
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\\' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

impl Untrusted<'_> {
    /// Writes the bounded, escaped text; with `quoted`, `"` is escaped as well.
    fn write_escaped(&self, f: &mut fmt::Formatter<'_>, quoted: bool) -> fmt::Result {
        let text = self.0;
        let mut cut = text.len().min(MAX_SHOWN_BYTES);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let (shown, rest) = text.split_at(cut);
        for c in shown.chars() {
            if needs_escape(c) || (quoted && c == '"') {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        if !rest.is_empty() {
            write!(f, "…[+{} bytes]", rest.len())?;
        }
        Ok(())
    }
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_escaped(f, false)
    }
}

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        self.write_escaped(f, true)?;
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_borrows_only_what_is_shown_as_it_is() {
        for text in ["", "2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72", "caf\u{e9}"] {
            assert!(matches!(Untrusted(text).bounded(), Cow::Borrowed(t) if t == text));
        }
        let long = "x".repeat(MAX_SHOWN_BYTES + 1);
        for text in ["a\nb", "\u{202e}", long.as_str()] {
            let bounded = Untrusted(text).bounded();
            assert!(matches!(bounded, Cow::Owned(_)), "{text:?}");
            assert_eq!(bounded, Untrusted(text).to_bounded());
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        let shown = Untrusted("a\nb\r\u{1b}[31mc\u{2028}d\u{202e}e").to_bounded();
        assert_eq!(shown, "a\\nb\\r\\u{1b}[31mc\\u{2028}d\\u{202e}e");
        assert!(!shown.chars().any(|c| c != '\\' && needs_escape(c)));
    }

    #[test]
    fn a_backslash_is_escaped_so_escapes_are_unambiguous() {
        // A literal `\n` (backslash, n) and a newline must not look alike.
        assert_eq!(Untrusted("a\\nb").to_bounded(), "a\\\\nb");
        assert_eq!(Untrusted("a\nb").to_bounded(), "a\\nb");
        assert_ne!(
            Untrusted("a\\nb").to_bounded(),
            Untrusted("a\nb").to_bounded()
        );
    }

    #[test]
    fn debug_quotes_and_escapes_quotes() {
        let shown = format!("{:?}", Untrusted("db down\" task_id=\"other"));
        assert_eq!(shown, "\"db down\\\" task_id=\\\"other\"");
        // Only the two enclosing quotes are bare.
        assert_eq!(
            shown.matches('"').count() - shown.matches("\\\"").count(),
            2
        );
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let long = "é".repeat(1_000_000);
        let shown = Untrusted(&long).to_bounded();
        assert!(shown.len() < MAX_SHOWN_BYTES + 32, "{}", shown.len());
        assert!(shown.ends_with(&format!("…[+{} bytes]", 2_000_000 - MAX_SHOWN_BYTES)));
        let short = "complete";
        assert_eq!(Untrusted(short).to_bounded(), "complete");
    }

    #[test]
    fn escaping_happens_before_nothing_is_cut_mid_escape() {
        // The cut counts input bytes, so escapes cannot make the output unbounded.
        let newlines = "\n".repeat(10_000);
        let shown = Untrusted(&newlines).to_bounded();
        assert!(shown.len() <= MAX_SHOWN_BYTES * 2 + 32, "{}", shown.len());
        assert!(!shown.contains('\n'));
    }
}
