//! Days: Arrow's `Date32` (days since 1970-01-01) and `YYYY-MM-DD` in the JSON records.

use chrono::{Datelike, NaiveDate};

/// Days since 1970-01-01 (Arrow's `Date32`).
pub fn date_to_days(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - 719_163
}

/// The inverse of [`date_to_days`].
pub fn days_to_date(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default() + chrono::Duration::days(days as i64)
}

/// Serialize dates as `YYYY-MM-DD` (chrono's own serde feature would rebuild the whole
/// arrow/DataFusion tree with another feature set).
pub mod serde_day {
    use chrono::NaiveDate;
    use serde::Serializer;

    pub fn one<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn many<S: Serializer>(d: &[NaiveDate], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(d.iter().map(|x| x.to_string()))
    }

    pub fn de_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_from_the_epoch() {
        let d = NaiveDate::from_ymd_opt(2022, 3, 1).unwrap();
        assert_eq!(
            date_to_days(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()),
            0
        );
        assert_eq!(date_to_days(d), 19_052);
        assert_eq!(days_to_date(date_to_days(d)), d);
    }
}
