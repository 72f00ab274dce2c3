//! Text rules of the extract contract: every string is NFC before it is compared or stored.
//! Also the one SQL identifier quoter.

use std::borrow::Cow;

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// NFC form of `s`, borrowing when it already is (the common case: ASCII or composed text).
pub fn nfc_cow(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
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
    fn identifiers_are_quoted_with_inner_quotes_doubled() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
