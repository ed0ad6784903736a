//! The encodings exported text arrives in. CloudTrail and Okta write UTF-8 JSON, but the tools
//! that export it do not always: Windows tools put a byte-order mark before UTF-8, and Windows
//! PowerShell 5's `>` and `Out-File` write UTF-16 (little-endian, with a mark). A JSON text
//! begins with an ASCII character, so UTF-16 without a mark is told by its zero bytes (as RFC
//! 4627 did). Every reader of someone else's files (CloudTrail and Okta exports) reads them
//! through here, so an export's encoding never loses its records.

use std::borrow::Cow;

/// How an input's text is encoded, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, behind a mark of `mark` bytes (0 or 3).
    Utf8 {
        /// The byte-order mark's length: 3 when present, else 0.
        mark: usize,
    },
    /// UTF-16, behind a mark of `mark` bytes (0 or 2).
    Utf16 {
        /// Most significant byte first.
        big_endian: bool,
        /// The byte-order mark's length: 2 when present, else 0.
        mark: usize,
    },
}

/// UTF-8 without a mark: what CloudTrail and Okta write.
pub const PLAIN: Encoding = Encoding::Utf8 { mark: 0 };

impl Encoding {
    /// The encoding of a text beginning with `head` (its first bytes; two are enough, fewer
    /// read as UTF-8).
    pub fn sniff(head: &[u8]) -> Encoding {
        match head {
            [0xEF, 0xBB, 0xBF, ..] => Encoding::Utf8 { mark: 3 },
            [0xFF, 0xFE, ..] => Encoding::Utf16 { big_endian: false, mark: 2 },
            [0xFE, 0xFF, ..] => Encoding::Utf16 { big_endian: true, mark: 2 },
            // An ASCII character (as JSON begins) in UTF-16: one byte of it is zero.
            [a, 0, ..] if *a != 0 => Encoding::Utf16 { big_endian: false, mark: 0 },
            [0, b, ..] if *b != 0 => Encoding::Utf16 { big_endian: true, mark: 0 },
            _ => PLAIN,
        }
    }

    /// The length of the byte-order mark.
    pub fn mark(self) -> usize {
        match self {
            Encoding::Utf8 { mark } | Encoding::Utf16 { mark, .. } => mark,
        }
    }
}

/// UTF-16 text (after its mark) as UTF-8. An unpaired surrogate becomes U+FFFD, as any UTF-16
/// reader does, so one bad character does not cost the records around it. A last odd byte (the
/// text was cut inside a character) is dropped and said: the second value is `false`.
pub fn utf16_to_utf8(bytes: &[u8], big_endian: bool) -> (String, bool) {
    let units = bytes.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if big_endian { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) }
    });
    let text =
        char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect();
    (text, bytes.len().is_multiple_of(2))
}

/// Why a file's text could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TextError {
    /// Neither UTF-8 nor UTF-16.
    #[error("not UTF-8 or UTF-16 text (invalid UTF-8 at byte {0})")]
    NotText(usize),
    /// UTF-16 with an odd number of bytes: cut inside a character.
    #[error("UTF-16 text cut short inside a character")]
    CutShort,
}

/// A whole file's text in any encoding above, as UTF-8 (borrowed when it already is).
pub fn text_of(bytes: &[u8]) -> Result<Cow<'_, str>, TextError> {
    match Encoding::sniff(bytes) {
        Encoding::Utf8 { mark } => std::str::from_utf8(&bytes[mark..])
            .map(Cow::Borrowed)
            .map_err(|e| TextError::NotText(mark + e.valid_up_to())),
        Encoding::Utf16 { big_endian, mark } => match utf16_to_utf8(&bytes[mark..], big_endian) {
            (text, true) => Ok(Cow::Owned(text)),
            (_, false) => Err(TextError::CutShort),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utf16(text: &str, big_endian: bool, mark: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let units = mark.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
        for u in units {
            out.extend(if big_endian { u.to_be_bytes() } else { u.to_le_bytes() });
        }
        out
    }

    #[test]
    fn each_encoding_is_told_from_its_first_bytes() {
        assert_eq!(Encoding::sniff(b"{\"Records\""), PLAIN);
        assert_eq!(Encoding::sniff(b"\xEF\xBB\xBF{"), Encoding::Utf8 { mark: 3 });
        assert_eq!(Encoding::sniff(b"\xFF\xFE{\0"), Encoding::Utf16 { big_endian: false, mark: 2 });
        assert_eq!(Encoding::sniff(b"\xFE\xFF\0{"), Encoding::Utf16 { big_endian: true, mark: 2 });
        assert_eq!(Encoding::sniff(b"[\0{\0"), Encoding::Utf16 { big_endian: false, mark: 0 });
        assert_eq!(Encoding::sniff(b"\0[\0{"), Encoding::Utf16 { big_endian: true, mark: 0 });
        // Too short to tell, empty, or zero bytes only: read as UTF-8 (and refused there if
        // they are not text).
        for head in [&b""[..], b"{", b"\0", b"\0\0", b"\xEF\xBB"] {
            assert_eq!(Encoding::sniff(head), PLAIN, "{head:?}");
        }
        assert_eq!(Encoding::sniff(b"\xEF\xBB\xBF").mark(), 3);
        assert_eq!(Encoding::sniff(b"\xFE\xFF").mark(), 2);
        assert_eq!(PLAIN.mark(), 0);
    }

    #[test]
    fn a_bad_utf16_character_is_replaced_and_a_cut_one_is_said() {
        // An unpaired high surrogate between two characters.
        let bytes = [b'a', 0, 0x00, 0xD8, b'b', 0];
        assert_eq!(utf16_to_utf8(&bytes, false), ("a\u{FFFD}b".to_owned(), true));
        assert_eq!(utf16_to_utf8(&bytes[..5], false), ("a\u{FFFD}".to_owned(), false));
        assert_eq!(text_of(b"\xFF\xFE{\0}"), Err(TextError::CutShort));
        assert_eq!(text_of(b"{\"a\":\xC3}"), Err(TextError::NotText(5)));
        assert_eq!(text_of(b"\xEF\xBB\xBF\xC3"), Err(TextError::NotText(3)));
    }

    proptest! {
        /// Any JSON-like text, in every encoding an export may use, reads back as the same text.
        #[test]
        fn every_encoding_reads_back_as_the_text(
            body in "[^\u{0}]{0,40}", big_endian: bool, mark: bool, utf16_form: bool,
        ) {
            let text = format!("{{\"k\":{body:?}}}");
            let bytes = if utf16_form {
                utf16(&text, big_endian, mark)
            } else {
                let mut b = if mark { vec![0xEF, 0xBB, 0xBF] } else { Vec::new() };
                b.extend(text.as_bytes());
                b
            };
            prop_assert_eq!(text_of(&bytes).unwrap(), text.as_str());
        }
    }
}
