//! One pseudonymisation key per warehouse: the first run records a fingerprint of its key in
//! `<warehouse>/_pii_key.json` (an HMAC of a fixed label under the key, never the key), and every
//! later run must hold the same key. Under another key the same applicant would get a second
//! token and every distinct-applicant count would be wrong.

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
}

/// The text whose HMAC under the key is its fingerprint.
pub const LABEL: &str = "cchc pii key fingerprint v1";

/// Record `fingerprint` on first use (a conditional put), or check it against the recorded one:
/// another key is a usage error (exit 2) that names the variable and says what to do.
pub async fn check_or_record(
    wh: &Location,
    fingerprint: &str,
    run_id: &str,
    key_env: &str,
) -> Result<()> {
    let path = wh.path(FILE);
    let mine = KeyRecord {
        fingerprint: fingerprint.to_string(),
        recorded_at: chrono::Utc::now().to_rfc3339(),
        run_id: run_id.to_string(),
    };
    let json = serde_json::to_vec_pretty(&mine).map_err(|e| Error::Internal(e.to_string()))?;
    if wh.create_new(&path, json.into()).await? {
        tracing::info!(
            file = FILE,
            "recorded the fingerprint of the pseudonymisation key"
        );
        return Ok(());
    }
    let bytes = wh.get(&path).await?;
    let theirs: KeyRecord = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Internal(format!("{}/{FILE} is corrupt: {e}", wh.display)))?;
    if theirs.fingerprint == fingerprint {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{key_env} is not the key this warehouse was pseudonymised with (its fingerprint was recorded in {}/{FILE} by run {} on {}): under another key the same applicant gets another token. Use the original key; to change keys, ingest the landing into a new warehouse (`cchc rekey` explains why tokens cannot be converted)",
            wh.display, theirs.run_id, theirs.recorded_at
        )))
    }
}
