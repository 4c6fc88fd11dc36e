//! Timestamps are stored as microseconds since the Unix epoch (UTC) on both engines,
//! so ordering and comparisons are identical everywhere.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};

pub type Micros = i64;

pub fn now_micros() -> Micros {
    Utc::now().timestamp_micros()
}

/// ISO-8601 with `Z`; fractional seconds only when non-zero, as the reference prints.
pub fn format(micros: Micros) -> String {
    let dt = Utc.timestamp_micros(micros).single().unwrap_or_default();
    if micros.rem_euclid(1_000_000) == 0 {
        dt.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        dt.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

/// Parses a client timestamp: RFC 3339 with an offset or `Z`; naive forms are UTC.
pub fn parse(input: &str) -> Option<Micros> {
    let s = input.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc).timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc).timestamp_micros());
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_micros())
}

/// Strictly increasing join times for the members one request joins, so the listing
/// order (by `joined_at`) is the request order even within one clock tick.
pub fn join_times(n: usize) -> Vec<Micros> {
    let mut last = i64::MIN;
    (0..n)
        .map(|_| {
            last = now_micros().max(last + 1);
            last
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_round_trip_without_fraction() {
        let m = parse("2023-01-01T12:00:00Z").unwrap();
        assert_eq!(format(m), "2023-01-01T12:00:00Z");
    }

    #[test]
    fn fractions_and_offsets() {
        let m = parse("2023-01-01T12:00:00.5+02:00").unwrap();
        assert_eq!(format(m), "2023-01-01T10:00:00.500000Z");
        assert_eq!(parse("2024-01-01"), parse("2024-01-01T00:00:00Z"));
        assert_eq!(parse("2024-01-01 12:00:00"), parse("2024-01-01T12:00:00Z"));
        assert!(parse("yesterday").is_none());
    }
}
