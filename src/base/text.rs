//! Text rules of the extract contract: every string is NFC before it is compared or stored.
//! Also the one SQL identifier quoter.

use std::borrow::Cow;

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// NFC form of `s`, borrowing when it already is (the common case: ASCII or composed text).
pub fn nfc_cow(s: &str) -> Cow<'_, str> {
    if composed_vietnamese(s) || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

/// Whether every character of `s` is below U+0300 (ASCII, Latin-1, Latin Extended-A/B, IPA:
/// `đ`, `ơ`, `ư`…) or in Latin Extended Additional, U+1E00..=U+1EFF (`ễ`, `ặ`…): characters that
/// are all NFC and never combine with a preceding one, so such text is NFC. Composed Vietnamese
/// is exactly that; a byte scan of it is several times quicker than the quick check's table
/// lookups per character, which still decides everything else (a test compares the two).
fn composed_vietnamese(s: &str) -> bool {
    if s.is_ascii() {
        return true;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0x00..=0x7F => i += 1,
            // U+0080..=U+02FF: two bytes led by C2..=CB.
            0xC2..=0xCB => i += 2,
            // U+1E00..=U+1EFF: E1 B8..=BB, then one continuation byte.
            0xE1 if matches!(b.get(i + 1), Some(0xB8..=0xBB)) => i += 3,
            _ => return false,
        }
    }
    true
}

pub fn nfc(s: &str) -> String {
    nfc_cow(s).into_owned()
}

/// A quoted SQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_and_decomposed_forms_are_equal_after_nfc() {
        let composed = "Nguyễn Văn Ánh";
        let decomposed: String = composed.nfd().collect();
        assert_ne!(composed, decomposed);
        assert_eq!(nfc(&decomposed), composed);
    }

    #[test]
    fn the_byte_scan_agrees_with_the_quick_check() {
        // Every character the scan takes must be NFC on its own and after any other it takes.
        let taken: Vec<char> = (0u32..0x300)
            .chain(0x1E00..0x1F00)
            .filter_map(char::from_u32)
            .collect();
        for &c in &taken {
            let one = c.to_string();
            assert!(composed_vietnamese(&one), "{c:?}");
            assert_eq!(is_nfc_quick(one.chars()), IsNormalized::Yes, "{c:?}");
            for &before in &['a', 'A', 'ơ', 'ư', 'ễ', 'Ă'] {
                let two: String = [before, c].iter().collect();
                assert_eq!(nfc(&two), two, "{before:?} {c:?}");
            }
        }
        // Just outside the ranges, the scan declines and the quick check decides.
        for c in [
            '\u{0300}', '\u{0301}', '\u{0323}', '\u{1DFF}', '\u{1F00}', '\u{2126}', '中',
        ] {
            assert!(!composed_vietnamese(&format!("a{c}")), "{c:?}");
        }
        assert_eq!(nfc_cow("Nguyễn Văn Ánh"), Cow::Borrowed("Nguyễn Văn Ánh"));
        let decomposed: String = "Trần Thị Ặng".nfd().collect();
        assert!(!composed_vietnamese(&decomposed));
        assert_eq!(nfc(&decomposed), "Trần Thị Ặng");
    }

    #[test]
    fn identifiers_are_quoted_with_inner_quotes_doubled() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
