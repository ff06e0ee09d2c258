//! Dates and times as Japanese users read them: 2026年11月22日, in Asia/Tokyo.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Asia::Tokyo;

pub fn date_ja(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// The day of an instant in Japan: 2026年11月22日.
pub fn day_ja(t: DateTime<Utc>) -> String {
    date_ja(t.with_timezone(&Tokyo).date_naive())
}

pub fn datetime_ja(t: DateTime<Utc>) -> String {
    let t = t.with_timezone(&Tokyo);
    format!("{} {:02}:{:02}", date_ja(t.date_naive()), t.hour(), t.minute())
}

/// The start of a day in Japan (00:00 JST) as a UTC instant. Japan has no daylight saving
/// time, so every local midnight exists exactly once.
pub fn tokyo_midnight(d: NaiveDate) -> DateTime<Utc> {
    (d.and_time(chrono::NaiveTime::MIN) - chrono::Duration::hours(9)).and_utc()
}

/// The audit chain's canonical time text: RFC 3339, UTC, microseconds.
pub fn audit_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A date as English readers expect it: `Nov 22, 2026`.
pub fn date_en(d: NaiveDate) -> String {
    d.format("%b %-d, %Y").to_string()
}

/// The day of a moment in Japan: `Nov 22, 2026`.
pub fn day_en(t: DateTime<Utc>) -> String {
    date_en(t.with_timezone(&Tokyo).date_naive())
}

/// `Nov 22, 2026 14:05`, in Asia/Tokyo.
pub fn datetime_en(t: DateTime<Utc>) -> String {
    let t = t.with_timezone(&Tokyo);
    format!("{} {:02}:{:02}", date_en(t.date_naive()), t.hour(), t.minute())
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
        assert_eq!(datetime_en(t), "Nov 22, 2026 00:30");
        assert_eq!(day_ja(t), "2026年11月22日");
        assert_eq!(audit_time(t), "2026-11-21T15:30:00.000000Z");
        let new_year = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        assert_eq!(tokyo_midnight(new_year), Utc.with_ymd_and_hms(2026, 12, 31, 15, 0, 0).unwrap());
        assert_eq!(tokyo_midnight(new_year).with_timezone(&Tokyo).date_naive(), new_year);
    }
}
