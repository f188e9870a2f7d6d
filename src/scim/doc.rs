//! Document helpers shared by every resource type: a resource held as a JSON object
//! (`serde_json::Map`), as `normalize` returns it and the store keeps it.
//!
//! These know nothing of Users or Groups, so `user`, `group`, `patch` and `filter` can all
//! use them without depending on one another.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};

type Doc = Map<String, Value>;

/// Case-insensitive key lookup (RFC 7643 §2.1: attribute names are case-insensitive),
/// trying the exact key first (the common, canonical case).
pub fn get_ci<'a>(map: &'a Doc, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// RFC 3339 with milliseconds, UTC: `2024-12-03T23:13:14.109Z` (`meta.created` and
/// `meta.lastModified`, RFC 7643 §3.1).
pub fn timestamp(ms: i64) -> String {
    let mut out = Vec::with_capacity(24);
    write_timestamp(ms, &mut out);
    // Only ASCII digits and punctuation are written.
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends [`timestamp`]'s text to `out`, without a formatter: a page of users writes two
/// per user. Years outside 0000-9999 (never a server clock's) go through chrono.
pub fn write_timestamp(ms: i64, out: &mut Vec<u8>) {
    let fraction = ms.rem_euclid(1000) as u32;
    match rfc3339_text(ms.div_euclid(1000), fraction, 3) {
        Some(text) => out.extend_from_slice(text.as_bytes()),
        None => {
            let text = DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// An RFC 3339 UTC timestamp's text, held on the stack.
pub struct TimestampText {
    bytes: [u8; 30],
    len: usize,
}

impl TimestampText {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// `YYYY-MM-DDThh:mm:ss.fZ` for `secs` since the epoch, with `fraction` written in `places`
/// digits (at most 9; none and no dot for 0), digit by digit into a fixed buffer: one per
/// rendered timestamp and per log line. `None` for years outside 0000-9999.
pub fn rfc3339_text(secs: i64, fraction: u32, places: usize) -> Option<TimestampText> {
    const SECS_PER_DAY: i64 = 86_400;
    let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    if !(0..=9999).contains(&year) || places > 9 {
        return None;
    }
    // Within 0..86,400 and a year within 0..=9999: every cast below is lossless.
    let in_day = secs.rem_euclid(SECS_PER_DAY) as u32;
    let mut bytes = *b"0000-00-00T00:00:00.000000000Z";
    put_digits(&mut bytes[0..4], year as u32);
    put_digits(&mut bytes[5..7], month as u32);
    put_digits(&mut bytes[8..10], day as u32);
    put_digits(&mut bytes[11..13], in_day / 3600);
    put_digits(&mut bytes[14..16], in_day / 60 % 60);
    put_digits(&mut bytes[17..19], in_day % 60);
    let len = if places == 0 {
        bytes[19] = b'Z';
        20
    } else {
        put_digits(&mut bytes[20..20 + places], fraction);
        bytes[20 + places] = b'Z';
        21 + places
    };
    Some(TimestampText { bytes, len })
}

/// `value`'s last `out.len()` decimal digits, zero-padded.
fn put_digits(out: &mut [u8], mut value: u32) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01, by
/// H. Hinnant's `civil_from_days`: eras of 400 years (146,097 days) starting on March 1, so
/// the leap day ends each year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The reference's PUT: "sets the values of the parameters provided and leaving all other
/// properties of the user unchanged", for users and groups alike. Each attribute given
/// replaces the stored one; an extension object is a container, so its attributes merge one
/// by one; `null` clears.
pub fn merge(current: &Doc, incoming: Doc) -> Doc {
    let mut merged = current.clone();
    for (key, value) in incoming {
        match (merged.get_mut(&key), value) {
            (_, Value::Null) => {
                merged.remove(&key);
            }
            (Some(Value::Object(stored)), Value::Object(given)) if key.starts_with("urn:") => {
                for (attr, v) in given {
                    if v.is_null() {
                        stored.remove(&attr);
                    } else {
                        stored.insert(attr, v);
                    }
                }
                if stored.is_empty() {
                    merged.remove(&key);
                }
            }
            (_, value) => {
                merged.insert(key, strip_nulls(value));
            }
        }
    }
    merged
}

/// Null members of an object mean "unassigned" (RFC 7644 §3.5.1): they are not stored.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn get_ci_prefers_the_exact_key_and_otherwise_ignores_case() {
        let map = doc(json!({"userName": 1, "USERNAME": 2, "Emails": 3}));
        let cases = [
            ("userName", Some(1)),
            ("USERNAME", Some(2)),
            ("emails", Some(3)),
            ("EMAILS", Some(3)),
            ("title", None),
        ];
        for (key, want) in cases {
            assert_eq!(get_ci(&map, key), want.map(Value::from).as_ref(), "{key}");
        }
    }

    #[test]
    fn timestamps_are_rfc_3339_utc_with_milliseconds() {
        assert_eq!(timestamp(1_733_267_594_109), "2024-12-03T23:13:14.109Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them_across_leap_days_centuries_and_eras() {
        let chrono = |ms: i64| {
            DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(SecondsFormat::Millis, true)
        };
        let day = 86_400_000_i64;
        let mut cases = vec![
            0,
            -1,
            1,
            day - 1,
            -day,
            951_782_400_000,     // 2000-02-29 (a leap day of a 400th year)
            4_107_456_000_000,   // 2100-02-28 (2100 is no leap year)
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z, the last year written here
            253_402_300_800_000, // 10000-01-01: chrono's
            -62_167_219_200_000, // 0000-01-01
            -62_167_219_200_001, // before year 0: chrono's
            i64::MAX,
            i64::MIN,
        ];
        // Every day of 1999-2001 at a varying time, then a stride over 0000-9999.
        let start = 915_148_800_000;
        cases.extend((0..3 * 366).map(|d| start + d * day + d * 3_723_001 % day));
        cases.extend((0..20_000).map(|i| -62_167_219_200_000 + i * 15_778_800_777));
        for ms in cases {
            assert_eq!(timestamp(ms), chrono(ms), "{ms}");
        }
    }

    #[test]
    fn timestamps_are_written_with_as_many_fraction_digits_as_asked() {
        let cases = [
            (0, 0, 0, "1970-01-01T00:00:00Z"),
            (1_796_552_966, 415_733, 6, "2026-12-06T10:29:26.415733Z"),
            (1_796_552_966, 7, 6, "2026-12-06T10:29:26.000007Z"),
            (-1, 999_999_999, 9, "1969-12-31T23:59:59.999999999Z"),
            (253_402_300_799, 1, 1, "9999-12-31T23:59:59.1Z"),
        ];
        for (secs, fraction, places, expected) in cases {
            let text = rfc3339_text(secs, fraction, places).unwrap();
            assert_eq!(text.as_str(), expected);
        }
        assert!(rfc3339_text(253_402_300_800, 0, 3).is_none(), "year 10000");
        assert!(
            rfc3339_text(0, 0, 10).is_none(),
            "more places than nanoseconds"
        );
    }

    #[test]
    fn merge_sets_given_attributes_and_keeps_the_rest() {
        let current = doc(json!({
            "userName": "a@x.co", "displayName": "A", "title": "Boss",
            "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes", "team": "red"}
        }));
        let incoming = doc(json!({
            "userName": "b@x.co", "title": null,
            "urn:omni:params:1.0:UserAttribute": {"team": null, "level": "3"}
        }));
        let merged = merge(&current, incoming);
        assert_eq!(
            Value::Object(merged),
            json!({
                "userName": "b@x.co", "displayName": "A",
                "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes", "level": "3"}
            })
        );
    }

    #[test]
    fn merge_drops_an_extension_emptied_by_nulls_and_nested_nulls() {
        let current = doc(json!({"urn:x:ext": {"a": 1}}));
        let merged = merge(
            &current,
            doc(json!({"urn:x:ext": {"a": null}, "name": {"givenName": "G", "familyName": null}})),
        );
        assert_eq!(Value::Object(merged), json!({"name": {"givenName": "G"}}));
    }
}
