//! Time formats: the database stores INTEGER Unix milliseconds; JSON carries RFC 3339 UTC strings.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Unix ms as an RFC 3339 UTC string with millisecond precision (`2026-11-24T21:33:20.123Z`);
/// empty outside the years 0000-9999.
pub fn rfc3339(ms: i64) -> String {
    Rfc3339Ms(ms).text()
}

/// Unix ms that serializes as [`rfc3339`] text without allocating (lists write thousands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339Ms(pub i64);

/// `0000-01-01T00:00:00.000Z` and `9999-12-31T23:59:59.999Z` in Unix ms.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

impl Rfc3339Ms {
    /// The 24 bytes of the text, or `None` out of range.
    pub fn bytes(self) -> Option<[u8; 24]> {
        if !(MIN_MS..=MAX_MS).contains(&self.0) {
            return None;
        }
        let days = self.0.div_euclid(86_400_000);
        let in_day = self.0.rem_euclid(86_400_000);
        // Days to a civil date (H. Hinnant's algorithm, proleptic Gregorian).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, in_day / 3_600_000);
        put(14, 2, in_day / 60_000 % 60);
        put(17, 2, in_day / 1000 % 60);
        put(20, 3, in_day % 1000);
        Some(out)
    }

    /// The text (empty out of range).
    pub fn text(self) -> String {
        self.bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl serde::Serialize for Rfc3339Ms {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.bytes() {
            // ASCII digits and punctuation only.
            Some(b) => serializer.serialize_str(std::str::from_utf8(&b).unwrap_or_default()),
            None => serializer.serialize_str(""),
        }
    }
}

/// Parses an RFC 3339 string to Unix ms.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(
            parse_rfc3339("2026-11-18T11:06:40.123Z"),
            Some(1_795_000_000_123)
        );
        assert_eq!(
            parse_rfc3339("2025-05-01T12:30:00Z"),
            Some(1_746_102_600_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    /// The hand-written formatter agrees with the `time` crate across the whole range.
    #[test]
    fn the_fast_formatter_matches_the_time_crate() {
        let reference = |ms: i64| {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        };
        let mut ms = MIN_MS;
        while ms <= MAX_MS {
            assert_eq!(rfc3339(ms), reference(ms), "{ms}");
            // A prime stride in ms walks every month, leap day and time of day.
            ms += 86_399_993_117;
        }
        for ms in [MIN_MS, MAX_MS, -1, 0, 951_782_400_000, 4_107_542_399_999] {
            assert_eq!(rfc3339(ms), reference(ms), "{ms}");
        }
        assert_eq!(rfc3339(MAX_MS + 1), "");
        assert_eq!(rfc3339(MIN_MS - 1), "");
        assert_eq!(
            serde_json::to_string(&Rfc3339Ms(0)).ok().as_deref(),
            Some("\"1970-01-01T00:00:00.000Z\"")
        );
    }
}
