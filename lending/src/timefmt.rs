//! Dates and times as Japanese users read them: 2026年11月22日, in Asia/Tokyo.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Asia::Tokyo;

pub fn date_ja(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

pub fn datetime_ja(t: DateTime<Utc>) -> String {
    let t = t.with_timezone(&Tokyo);
    format!("{} {:02}:{:02}", date_ja(t.date_naive()), t.hour(), t.minute())
}

/// The audit chain's canonical time text: RFC 3339, UTC, microseconds.
pub fn audit_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn shows_japanese_date_in_tokyo_time() {
        // 15:30 UTC is 00:30 the next day in Tokyo.
        let t = Utc.with_ymd_and_hms(2026, 11, 21, 15, 30, 0).unwrap();
        assert_eq!(datetime_ja(t), "2026年11月22日 00:30");
        assert_eq!(audit_time(t), "2026-11-21T15:30:00.000000Z");
    }
}
