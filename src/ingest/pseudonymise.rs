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
/// With the CPU's SHA instructions a token costs ≈ 100–140 ns, less than a lookup in a cache of
/// a year's ≈ 1.1 M distinct values (measured: the ingest got slower with one); the values that
/// repeat within a source-day are computed once by a small [`TokenMemo`].
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

/// Tokens of the values that repeat within a source-day, so that each is computed once: an
/// applicant's name recurs across a day's dossiers far more than an identity number does. A
/// direct-mapped table of [`MEMO_SLOTS`] recent values (the clear value and its digest, held in
/// memory only and dropped with the source-day, never written anywhere), checked by the value's
/// bytes, so a hit is the HMAC itself. Each column is tried on its first [`MEMO_TRIAL`] values
/// and keeps the memo only if at least one in [`MEMO_MIN_HIT_SHARE`] was found there: a column
/// of values that hardly repeat (identity numbers, phones) then costs no lookups at all.
///
/// The full cache of a run's distinct values was measured slower than the HMAC (a lookup in a
/// table of ≈ 1.1 M values misses the CPU's caches); this one holds 4,096 values (320 KB).
pub struct TokenMemo {
    slots: std::cell::RefCell<Vec<Slot>>,
    /// Per column (by the caller's id), how its trial went.
    columns: std::cell::RefCell<Vec<MemoColumn>>,
    hasher: foldhash::fast::FixedState,
}

/// Slots of a [`TokenMemo`] (a power of two).
pub const MEMO_SLOTS: usize = 4096;
/// Values of a column looked up before the memo is kept or dropped for it.
pub const MEMO_TRIAL: u32 = 256;
/// The memo is kept for a column when at least one in this many trial values was found.
pub const MEMO_MIN_HIT_SHARE: u32 = 8;
/// Longest value a slot holds, in bytes; longer values are always computed.
const SLOT_TEXT: usize = 47;

#[derive(Clone, Copy)]
struct Slot {
    /// The value's length; 0 for an empty slot (an empty value is never pseudonymised).
    len: u8,
    text: [u8; SLOT_TEXT],
    digest: [u8; 32],
}

const EMPTY_SLOT: Slot = Slot {
    len: 0,
    text: [0; SLOT_TEXT],
    digest: [0; 32],
};

struct MemoColumn {
    id: usize,
    looked_up: u32,
    found: u32,
    in_use: bool,
}

impl Default for TokenMemo {
    fn default() -> Self {
        Self {
            slots: Default::default(),
            columns: Default::default(),
            hasher: foldhash::fast::FixedState::with_seed(0x6363_6863),
        }
    }
}

impl TokenMemo {
    /// The token of `value` (already NFC) in the column the caller identifies by `column`:
    /// from the memo when the value was seen recently, else from `pii`.
    pub fn digest(&self, pii: &Pseudonymiser, column: usize, value: &str) -> Token {
        let bytes = value.as_bytes();
        let mut columns = self.columns.borrow_mut();
        let at = match columns.iter().position(|c| c.id == column) {
            Some(at) => at,
            None => {
                columns.push(MemoColumn {
                    id: column,
                    looked_up: 0,
                    found: 0,
                    in_use: true,
                });
                columns.len() - 1
            }
        };
        let col = &mut columns[at];
        if !col.in_use || bytes.is_empty() || bytes.len() > SLOT_TEXT {
            return pii.digest(value);
        }
        let mut slots = self.slots.borrow_mut();
        if slots.is_empty() {
            slots.resize(MEMO_SLOTS, EMPTY_SLOT);
        }
        let slot = &mut slots
            [std::hash::BuildHasher::hash_one(&self.hasher, bytes) as usize & (MEMO_SLOTS - 1)];
        let found = slot.len as usize == bytes.len() && &slot.text[..bytes.len()] == bytes;
        col.looked_up += 1;
        col.found += found as u32;
        if col.looked_up == MEMO_TRIAL && col.found * MEMO_MIN_HIT_SHARE < MEMO_TRIAL {
            col.in_use = false;
        }
        if found {
            return Token {
                digest: slot.digest,
                digits: pii.digits,
            };
        }
        let token = pii.digest(value);
        slot.len = bytes.len() as u8;
        slot.text[..bytes.len()].copy_from_slice(bytes);
        slot.digest = token.digest;
        token
    }

    /// Whether the memo is still used for `column`.
    #[cfg(test)]
    fn used_for(&self, column: usize) -> bool {
        self.columns
            .borrow()
            .iter()
            .find(|c| c.id == column)
            .is_none_or(|c| c.in_use)
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
    fn the_memo_gives_the_hmac_and_drops_columns_that_do_not_repeat() {
        let pii = Pseudonymiser::new(b"a key of sixteen chars");
        let memo = TokenMemo::default();
        let names = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường"];
        // A column whose values repeat keeps the memo, and every token equals the HMAC.
        for i in 0..1000 {
            let v = names[i % 3];
            assert_eq!(memo.digest(&pii, 1, v), pii.digest(v));
        }
        assert!(memo.used_for(1));
        // One whose values never repeat is dropped after its trial, and still gets the HMAC.
        for i in 0..1000 {
            let v = format!("0{i:011}");
            assert_eq!(memo.digest(&pii, 2, &v), pii.digest(&v));
        }
        assert!(!memo.used_for(2));
        assert!(memo.used_for(1));
        // Values sharing a slot (far more than the slots) and long values: still the HMAC.
        for i in 0..3 * MEMO_SLOTS {
            let v = format!("{}-{}", names[i % 3], i % 50);
            assert_eq!(memo.digest(&pii, 3, &v), pii.digest(&v));
        }
        let long = "x".repeat(SLOT_TEXT + 1);
        assert_eq!(memo.digest(&pii, 1, &long), pii.digest(&long));
        assert_eq!(
            memo.digest(&pii, 1, &long[..SLOT_TEXT]),
            pii.digest(&long[..SLOT_TEXT])
        );
        // The token keeps the pseudonymiser's length.
        let full = pii.clone().with_digits(FULL_DIGITS);
        let t = memo.digest(&full, 1, names[0]);
        assert_eq!(t.hex(&mut [0; 64]).len(), FULL_DIGITS);
        assert_eq!(t, full.digest(names[0]));
    }

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
