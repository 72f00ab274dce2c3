//! One pseudonymisation key per warehouse: the first run records a fingerprint of its key in
//! `<warehouse>/_pii_key.json` (an HMAC of a fixed label under the key, never the key), and every
//! later run must hold the same key. Under another key the same applicant would get a second
//! token and every distinct-applicant count would be wrong.
//!
//! The record also holds the tokens' length in hex digits, for the same reason: a warehouse
//! recorded before tokens were shortened to 128 bits (its record has no length) keeps all 64
//! digits of the digest (see `crate::ingest::pseudonymise::Pseudonymiser`).

use serde::{Deserialize, Serialize};

use super::location::Location;
use crate::base::error::{Error, Result};

const FILE: &str = "_pii_key.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRecord {
    /// HMAC-SHA256 of [`LABEL`] under the key, hex.
    pub fingerprint: String,
    pub recorded_at: String,
    pub run_id: String,
    /// Hex digits of the warehouse's tokens; absent in records written before it existed, whose
    /// tokens are whole digests.
    #[serde(default = "full_digits")]
    pub token_digits: usize,
}

fn full_digits() -> usize {
    FULL_DIGITS
}

/// Hex digits of the tokens of a warehouse recorded before tokens were shortened: whole digests.
pub const FULL_DIGITS: usize = 64;

/// Whether a token of `d` hex digits is whole bytes of a digest.
pub fn valid_digits(d: usize) -> bool {
    d.is_multiple_of(2) && (2..=FULL_DIGITS).contains(&d)
}

/// The text whose HMAC under the key is its fingerprint.
pub const LABEL: &str = "cchc pii key fingerprint v1";

/// Record the key's `fingerprint` and the tokens' length `digits` on first use (a conditional
/// put), or check the fingerprint against the recorded one: another key is a usage error (exit 2)
/// that names the variable and says what to do. Gives the warehouse's token length: the recorded
/// one; for a warehouse without a record, `digits`, unless it has ingested days already (staged
/// before key records existed, with whole digests), which keeps [`FULL_DIGITS`].
pub async fn check_or_record(
    wh: &Location,
    (fingerprint, digits): (&str, usize),
    run_id: &str,
    key_env: &str,
) -> Result<usize> {
    let path = wh.path(FILE);
    let bytes = match wh.get_opt(&path).await? {
        Some(bytes) => bytes,
        None => {
            let digits = if wh.list("ledger").await?.is_empty() {
                digits
            } else {
                FULL_DIGITS
            };
            let mine = KeyRecord {
                fingerprint: fingerprint.to_string(),
                recorded_at: chrono::Utc::now().to_rfc3339(),
                run_id: run_id.to_string(),
                token_digits: digits,
            };
            let json =
                serde_json::to_vec_pretty(&mine).map_err(|e| Error::Internal(e.to_string()))?;
            if wh.create_new(&path, json.into()).await? {
                tracing::info!(
                    file = FILE,
                    token_digits = digits,
                    "recorded the fingerprint of the pseudonymisation key"
                );
                return Ok(digits);
            }
            // Another run recorded it in between.
            wh.get(&path).await?
        }
    };
    let theirs: KeyRecord = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Internal(format!("{}/{FILE} is corrupt: {e}", wh.display)))?;
    if theirs.fingerprint != fingerprint {
        return Err(Error::Usage(format!(
            "{key_env} is not the key this warehouse was pseudonymised with (its fingerprint was recorded in {}/{FILE} by run {} on {}): under another key the same applicant gets another token. Use the original key; to change keys, ingest the landing into a new warehouse (`cchc rekey` explains why tokens cannot be converted)",
            wh.display, theirs.run_id, theirs.recorded_at
        )));
    }
    let d = theirs.token_digits;
    if !valid_digits(d) {
        return Err(Error::Internal(format!(
            "{}/{FILE} is corrupt: token_digits {d} is not an even number of hex digits up to {FULL_DIGITS}",
            wh.display
        )));
    }
    Ok(d)
}
