//! Applicants' personal data is replaced by a keyed HMAC before it reaches staging.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::base::error::{Error, Result};
use crate::config::Config;

/// The shortest key accepted, in characters.
pub const MIN_KEY_CHARS: usize = 16;

/// The pseudonymisation key from the environment variable the config names.
pub fn key_from_env(cfg: &Config) -> Result<Vec<u8>> {
    match std::env::var(&cfg.pii_key_env) {
        Ok(k) if k.trim().is_empty() => Err(Error::Usage(format!(
            "{} holds only whitespace: the key must hold at least {MIN_KEY_CHARS} characters",
            cfg.pii_key_env
        ))),
        Ok(k) if k.chars().count() >= MIN_KEY_CHARS => Ok(k.into_bytes()),
        Ok(k) => Err(Error::Usage(format!(
            "{} must hold at least {MIN_KEY_CHARS} characters (it holds {})",
            cfg.pii_key_env,
            k.chars().count()
        ))),
        Err(_) => Err(Error::Usage(format!(
            "{} is not set: personal data is pseudonymised with a keyed HMAC and the key comes from the environment",
            cfg.pii_key_env
        ))),
    }
}

/// Keyed pseudonymisation: HMAC-SHA256 of the NFC text, the first [`TOKEN_DIGITS`] lower-case
/// hex digits of it (128 bits, HMAC-SHA-256-128 as RFC 4868 truncates it). The same person gets
/// the same token under the same key (so analysts can count distinct applicants), and without the
/// key the clear value cannot be recovered or confirmed by guessing. 128 bits leave no collision
/// in practice (a probability of ≈ 10⁻²³ among 10⁸ distinct values, every province's years), and
/// halve what the four personal fields of a dossier version cost in staging and snapshots (they
/// were 85% of a dossier file's bytes with all 64 digits).
///
/// A warehouse keeps the token length it was recorded with (`crate::store::pii_key`): one
/// recorded before 128-bit tokens keeps all 64 digits, so an applicant keeps one token.
///
/// Not cached: with the CPU's SHA instructions a token costs ≈ 140 ns, less than a lookup in a
/// cache of a year's ≈ 1.1 M distinct values (measured: the ingest got slower with one).
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
    digits: usize,
}

/// Hex digits of a new warehouse's tokens (128 bits).
pub const TOKEN_DIGITS: usize = 32;

pub use crate::store::pii_key::FULL_DIGITS;

/// A digest and how many of its hex digits are staged; [`Token::hex`] gives the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    digest: [u8; 32],
    digits: usize,
}

impl Token {
    /// Lower-case hex of the token's digits, written into `buf` (no allocation: this runs four
    /// times per dossier version).
    pub fn hex<'b>(&self, buf: &'b mut [u8; 64]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in self.digest.iter().take(self.digits.div_ceil(2)).enumerate() {
            buf[2 * i] = HEX[(b >> 4) as usize];
            buf[2 * i + 1] = HEX[(b & 15) as usize];
        }
        std::str::from_utf8(&buf[..self.digits]).expect("hex digits are ASCII")
    }
}

impl Pseudonymiser {
    /// Tokens of [`TOKEN_DIGITS`] digits; see [`Self::with_digits`].
    pub fn new(key: &[u8]) -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length"),
            digits: TOKEN_DIGITS,
        }
    }

    /// The same key, with tokens of `digits` hex digits (even, at most 64): a warehouse's recorded
    /// length.
    pub fn with_digits(mut self, digits: usize) -> Self {
        assert!(crate::store::pii_key::valid_digits(digits));
        self.digits = digits;
        self
    }

    /// The hex digits of this pseudonymiser's tokens.
    pub fn digits(&self) -> usize {
        self.digits
    }

    /// The key's fingerprint: the whole HMAC of a fixed label (see `crate::store::pii_key`), the
    /// same whatever the token length.
    pub fn fingerprint(&self) -> String {
        self.clone()
            .with_digits(FULL_DIGITS)
            .token(crate::store::pii_key::LABEL)
    }

    /// `value` must already be NFC.
    pub fn token(&self, value: &str) -> String {
        self.digest(value).hex(&mut [0; 64]).to_string()
    }

    /// The HMAC of `value` (already NFC), as a token of this pseudonymiser's length.
    pub fn digest(&self, value: &str) -> Token {
        let mut m = self.mac.clone();
        m.update(value.as_bytes());
        Token {
            digest: m.finalize().into_bytes().into(),
            digits: self.digits,
        }
    }
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser(<key hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_keyed_and_stable() {
        let a = Pseudonymiser::new(b"k1");
        let b = Pseudonymiser::new(b"k2");
        assert_eq!(a.token("x"), a.token("x"));
        assert_ne!(a.token("x"), b.token("x"));
        assert_ne!(a.token("x"), a.token("y"));
        assert_eq!(a.token("x").len(), 32);
        // Known answer: HMAC-SHA256 with key "key" of "The quick brown fox jumps over the lazy
        // dog", its first 128 bits, and all of it for a warehouse recorded with 64 digits.
        let fox = "The quick brown fox jumps over the lazy dog";
        assert_eq!(
            Pseudonymiser::new(b"key").token(fox),
            "f7bc83f430538424b13298e6aa6fb143"
        );
        assert_eq!(
            Pseudonymiser::new(b"key")
                .with_digits(FULL_DIGITS)
                .token(fox),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        // The fingerprint is the whole digest whatever the tokens' length.
        assert_eq!(
            a.fingerprint(),
            a.clone().with_digits(FULL_DIGITS).fingerprint()
        );
        assert_eq!(a.fingerprint().len(), 64);
    }
}
